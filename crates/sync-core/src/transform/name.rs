//! Splitting a full name into first and last name, and joining them back.
//!
//! The rule (seed guide "Name handling"): the last word is the last name and everything
//! before it is the first name, so "Mary Jane Watson" becomes ("Mary Jane", "Watson").

/// Splits a full name: whitespace is collapsed; a single word is a first name with an empty
/// last name; an empty or blank input gives two empty parts.
///
/// ```
/// use sync_core::transform::split_name;
/// assert_eq!(split_name("Mary Jane Watson"), ("Mary Jane".to_string(), "Watson".to_string()));
/// assert_eq!(split_name("  Cher "), ("Cher".to_string(), String::new()));
/// ```
pub fn split_name(full: &str) -> (String, String) {
    let mut words: Vec<&str> = full.split_whitespace().collect();
    match words.len() {
        0 => (String::new(), String::new()),
        1 => (words[0].to_owned(), String::new()),
        _ => {
            let last = words.pop().unwrap_or_default().to_owned();
            (words.join(" "), last)
        }
    }
}

/// Joins first and last name with one space, trimming each part; a blank part is left out.
///
/// ```
/// use sync_core::transform::join_name;
/// assert_eq!(join_name("Jane", "Smith"), "Jane Smith");
/// assert_eq!(join_name(" ", "Smith"), "Smith");
/// ```
pub fn join_name(first: &str, last: &str) -> String {
    let first = first.split_whitespace().collect::<Vec<_>>().join(" ");
    let last = last.split_whitespace().collect::<Vec<_>>().join(" ");
    match (first.is_empty(), last.is_empty()) {
        (true, true) => String::new(),
        (false, true) => first,
        (true, false) => last,
        (false, false) => format!("{first} {last}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(a: &str, b: &str) -> (String, String) {
        (a.to_owned(), b.to_owned())
    }

    #[test]
    fn two_words() {
        assert_eq!(split_name("Jane Smith"), s("Jane", "Smith"));
    }

    #[test]
    fn multi_word_first_name() {
        assert_eq!(split_name("Mary Jane Watson"), s("Mary Jane", "Watson"));
    }

    #[test]
    fn single_word() {
        assert_eq!(split_name("Madonna"), s("Madonna", ""));
    }

    #[test]
    fn extra_spaces() {
        assert_eq!(
            split_name("  Mary   Jane \t Watson  "),
            s("Mary Jane", "Watson")
        );
    }

    #[test]
    fn empty_and_blank() {
        assert_eq!(split_name(""), s("", ""));
        assert_eq!(split_name("   "), s("", ""));
    }

    #[test]
    fn join_round_trips_split() {
        for full in ["Jane Smith", "Mary Jane Watson", "Madonna", ""] {
            let (f, l) = split_name(full);
            assert_eq!(join_name(&f, &l), full);
        }
        assert_eq!(join_name("  Mary  Jane ", " Watson "), "Mary Jane Watson");
        assert_eq!(join_name("", ""), "");
    }
}
