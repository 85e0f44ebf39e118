//! Normalized email addresses: the natural key that links a CRM contact to a community user.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

/// Longest address accepted, in bytes (RFC 5321 limits a path to 256 octets including the
/// angle brackets, so 254 for the address itself).
pub const MAX_EMAIL_LEN: usize = 254;

/// A normalized email address: trimmed and lowercased.
///
/// Both HubSpot and Cativa treat addresses case-insensitively, so the SDK compares them in
/// this one normalized form everywhere (mapping table, planner, stores).
///
/// ```
/// use sync_core::Email;
/// let e: Email = "  Jane.Doe@Example.COM ".parse()?;
/// assert_eq!(e.as_str(), "jane.doe@example.com");
/// assert!("not an email".parse::<Email>().is_err());
/// # Ok::<(), sync_core::EmailError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Email(String);

/// Why a string is not an acceptable email address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EmailError {
    /// The input was empty or only whitespace.
    #[error("email is empty: provide an address such as jane@example.com")]
    Empty,
    /// The input has whitespace between its characters.
    #[error("email contains whitespace inside the address: remove the spaces")]
    Whitespace,
    /// The input has no `@`, or nothing before or after it.
    #[error("email must have a local part, one '@' and a domain (got {0:?})")]
    MissingAt(String),
    /// The input has more than one `@`.
    #[error("email has more than one '@' (got {0:?})")]
    SeveralAt(String),
    /// The input contains a control character (NUL, ESC, ...).
    #[error("email contains a control character: remove it")]
    ControlCharacter,
    /// The input contains an invisible character: a format character (Unicode category
    /// Cf, e.g. U+200B zero-width space, U+202E right-to-left override, U+FEFF), or another
    /// default-ignorable or private-use code point. Such addresses look identical to
    /// another one and would create look-alike duplicates.
    #[error(
        "email contains the invisible character U+{0:04X}: remove it (it makes a look-alike of another address)"
    )]
    InvisibleCharacter(u32),
    /// The input is longer than [`MAX_EMAIL_LEN`] bytes.
    #[error("email is {0} bytes long, over the limit of 254: check the source field")]
    TooLong(usize),
    /// The domain part is not a plausible host name.
    #[error("email domain {0:?} is not a valid host name")]
    BadDomain(String),
}

impl Email {
    /// Parses and normalizes an address: trims surrounding whitespace and lowercases it.
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(EmailError::Empty);
        }
        if trimmed.len() > MAX_EMAIL_LEN {
            return Err(EmailError::TooLong(trimmed.len()));
        }
        let ascii = trimmed.is_ascii();
        if ascii {
            // The common case, checked byte by byte: no ASCII character is invisible, so
            // the Unicode category lookup per character is skipped.
            check_ascii_characters(trimmed.as_bytes())?;
        } else {
            check_characters(trimmed)?;
        }
        let mut parts = trimmed.splitn(3, '@');
        let local = parts.next().unwrap_or_default();
        let Some(domain) = parts.next() else {
            return Err(EmailError::MissingAt(trimmed.to_owned()));
        };
        if parts.next().is_some() {
            return Err(EmailError::SeveralAt(trimmed.to_owned()));
        }
        if local.is_empty() || domain.is_empty() {
            return Err(EmailError::MissingAt(trimmed.to_owned()));
        }
        if domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..")
            || domain.chars().any(|c| {
                c.is_control()
                    || matches!(
                        c,
                        ',' | ';' | '<' | '>' | '(' | ')' | '[' | ']' | '"' | '\\'
                    )
            })
        {
            return Err(EmailError::BadDomain(domain.to_owned()));
        }
        Ok(Self(if ascii {
            trimmed.to_ascii_lowercase()
        } else {
            trimmed.to_lowercase()
        }))
    }

    /// The normalized address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after the `@`.
    pub fn domain(&self) -> &str {
        self.0.rsplit('@').next().unwrap_or_default()
    }

    /// Consumes the email and returns the normalized string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whitespace, control and invisible characters, in that order of precedence.
fn check_characters(trimmed: &str) -> Result<(), EmailError> {
    if trimmed.chars().any(char::is_whitespace) {
        return Err(EmailError::Whitespace);
    }
    // Control characters (NUL, ESC, ...) have no place in an address and would let a
    // hostile value inject into logs and CSV files.
    if trimmed.chars().any(char::is_control) {
        return Err(EmailError::ControlCharacter);
    }
    if let Some(c) = trimmed.chars().find(|c| is_invisible(*c)) {
        return Err(EmailError::InvisibleCharacter(u32::from(c)));
    }
    Ok(())
}

/// [`check_characters`] for ASCII input, with the same precedence.
fn check_ascii_characters(bytes: &[u8]) -> Result<(), EmailError> {
    let mut control = false;
    for &b in bytes {
        let c = char::from(b);
        if c.is_whitespace() {
            return Err(EmailError::Whitespace);
        }
        control |= c.is_control();
    }
    if control {
        return Err(EmailError::ControlCharacter);
    }
    Ok(())
}

/// Code points that render as nothing: every format character (category Cf), private-use
/// and unassigned code points, and the default-ignorable code points of other categories
/// (Unicode's `Default_Ignorable_Code_Point` minus Cf: the combining grapheme joiner,
/// Hangul fillers, Khmer inherent vowels, Mongolian and other variation selectors), plus
/// the blank Braille pattern.
fn is_invisible(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    matches!(
        c.general_category(),
        GeneralCategory::Format
            | GeneralCategory::PrivateUse
            | GeneralCategory::Unassigned
            | GeneralCategory::Surrogate
    ) || matches!(
        c,
        '\u{034F}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{2800}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FFA0}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

impl FromStr for Email {
    type Err = EmailError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Email {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Email::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_lowercases() {
        assert_eq!(Email::parse("  A@B.Com\t").unwrap().as_str(), "a@b.com");
    }

    #[test]
    fn ascii_and_unicode_checks_agree() {
        for input in [
            "Jane.Doe@Example.COM",
            "a\u{0}b@x.io",
            "a\u{1}b c@x.io",
            "a\u{7f}@x.io",
            "a\u{b}b@x.io",
            "a\u{c}b@x.io",
            "jane@x.com\u{1c}",
        ] {
            assert_eq!(
                check_ascii_characters(input.as_bytes()),
                check_characters(input),
                "{input:?}"
            );
        }
        for b in 0..=127u8 {
            let s = format!("a{}b@x.io", char::from(b));
            assert_eq!(
                check_ascii_characters(s.as_bytes()),
                check_characters(&s),
                "{b}"
            );
        }
    }

    #[test]
    fn rejects_empty_and_blank() {
        assert_eq!(Email::parse(""), Err(EmailError::Empty));
        assert_eq!(Email::parse("   "), Err(EmailError::Empty));
    }

    #[test]
    fn rejects_whitespace_inside() {
        assert_eq!(Email::parse("jane doe@x.com"), Err(EmailError::Whitespace));
        assert_eq!(
            Email::parse("jane@x\u{a0}.com"),
            Err(EmailError::Whitespace)
        );
    }

    #[test]
    fn rejects_missing_or_several_at() {
        assert!(matches!(
            Email::parse("jane.example.com"),
            Err(EmailError::MissingAt(_))
        ));
        assert!(matches!(
            Email::parse("@example.com"),
            Err(EmailError::MissingAt(_))
        ));
        assert!(matches!(
            Email::parse("jane@"),
            Err(EmailError::MissingAt(_))
        ));
        assert!(matches!(
            Email::parse("a@b@c"),
            Err(EmailError::SeveralAt(_))
        ));
    }

    #[test]
    fn rejects_control_characters() {
        assert_eq!(
            Email::parse("a\u{0}b@x.io"),
            Err(EmailError::ControlCharacter)
        );
        assert_eq!(
            Email::parse("a\u{1b}[31m@x.io"),
            Err(EmailError::ControlCharacter)
        );
    }

    #[test]
    fn rejects_invisible_characters() {
        for c in [
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{202E}',
            '\u{2066}',
            '\u{FEFF}',
            '\u{2060}',
            '\u{00AD}',
            '\u{180E}',
            '\u{034F}',
            '\u{3164}',
            '\u{FE0F}',
            '\u{E0041}',
            '\u{E000}',
            '\u{2800}',
        ] {
            for input in [
                format!("ja{c}ne@example.com"),
                format!("jane@exa{c}mple.com"),
            ] {
                assert_eq!(
                    Email::parse(&input),
                    Err(EmailError::InvisibleCharacter(u32::from(c))),
                    "U+{:04X}",
                    u32::from(c)
                );
            }
        }
        // Visible non-ASCII letters stay accepted.
        assert_eq!(
            Email::parse("JOSÉ@exemplo.com.br").unwrap().as_str(),
            "josé@exemplo.com.br"
        );
    }

    #[test]
    fn rejects_over_long_input() {
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::parse(&long), Err(EmailError::TooLong(long.len())));
        let ok = format!("{}@example.com", "a".repeat(MAX_EMAIL_LEN - 12));
        assert!(Email::parse(&ok).is_ok());
    }

    #[test]
    fn rejects_bad_domains() {
        assert!(matches!(
            Email::parse("a@.com"),
            Err(EmailError::BadDomain(_))
        ));
        assert!(matches!(
            Email::parse("a@b..com"),
            Err(EmailError::BadDomain(_))
        ));
        assert!(matches!(
            Email::parse("a@b,com"),
            Err(EmailError::BadDomain(_))
        ));
    }

    #[test]
    fn serde_round_trip_normalizes_and_validates() {
        let e: Email = serde_json::from_str("\" X@Y.io \"").unwrap();
        assert_eq!(serde_json::to_string(&e).unwrap(), "\"x@y.io\"");
        assert!(serde_json::from_str::<Email>("\"nope\"").is_err());
    }

    #[test]
    fn domain_is_the_part_after_at() {
        assert_eq!(
            Email::parse("a@Sub.Example.org").unwrap().domain(),
            "sub.example.org"
        );
    }
}
