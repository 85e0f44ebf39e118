//! Phone numbers normalized to E.164 with the `phonenumber` crate (Google's libphonenumber data).

use phonenumber::{Mode, country};

use super::TransformError;

/// Parses a region code such as `BR` or `US` (ISO 3166-1 alpha-2, case-insensitive).
pub fn parse_region(code: &str) -> Option<country::Id> {
    code.trim().to_ascii_uppercase().parse().ok()
}

/// Normalizes a phone number to E.164 (`+5511987654321`).
///
/// A number without a `+` country prefix is read in `default_region`; without a default
/// region such a number is an error rather than a guess.
///
/// ```
/// use sync_core::transform::{normalize_phone, parse_region};
/// let br = parse_region("BR");
/// assert_eq!(normalize_phone("(11) 98765-4321", br).unwrap(), "+5511987654321");
/// assert_eq!(normalize_phone("+1 415 555 2671", None).unwrap(), "+14155552671");
/// ```
pub fn normalize_phone(
    raw: &str,
    default_region: Option<country::Id>,
) -> Result<String, TransformError> {
    let trimmed = raw.trim();
    let parsed =
        phonenumber::parse(default_region, trimmed).map_err(|e| TransformError::InvalidPhone {
            value: trimmed.to_owned(),
            reason: e.to_string(),
        })?;
    if !phonenumber::is_valid(&parsed) {
        return Err(TransformError::InvalidPhone {
            value: trimmed.to_owned(),
            reason: "not a valid number for its region".to_owned(),
        });
    }
    Ok(parsed.format().mode(Mode::E164).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn national_numbers_use_the_default_region() {
        let us = parse_region("us");
        assert_eq!(
            normalize_phone("(415) 555-2671", us).unwrap(),
            "+14155552671"
        );
        let br = parse_region("BR");
        assert_eq!(
            normalize_phone("11 98765 4321", br).unwrap(),
            "+5511987654321"
        );
    }

    #[test]
    fn international_numbers_need_no_region() {
        assert_eq!(
            normalize_phone(" +44 20 7946 0958 ", None).unwrap(),
            "+442079460958"
        );
    }

    #[test]
    fn garbage_and_regionless_national_numbers_are_errors() {
        assert!(matches!(
            normalize_phone("call me", parse_region("US")),
            Err(TransformError::InvalidPhone { .. })
        ));
        assert!(normalize_phone("415 555 2671", None).is_err());
        assert!(normalize_phone("+1 000", None).is_err());
    }

    #[test]
    fn region_codes_parse_case_insensitively() {
        assert!(parse_region("br").is_some());
        assert!(parse_region("XX").is_none());
    }
}
