//! Phone numbers normalized to E.164 with the `phonenumber` crate (Google's libphonenumber
//! data), behind the `phone` feature: its metadata is the largest part of a partner's build,
//! and only configurations with a `phone_e164` transform need it.

use std::fmt;

#[cfg(feature = "phone")]
use super::TransformError;

/// The region national phone numbers are read in: an ISO 3166-1 alpha-2 code (`BR`, `US`),
/// upper case. Build one with [`parse_region`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PhoneRegion([u8; 2]);

impl PhoneRegion {
    /// The two-letter code, upper case.
    pub fn code(&self) -> &str {
        // Built only from two ASCII letters, so this never falls back.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Display for PhoneRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Parses a region code such as `BR` or `US` (ISO 3166-1 alpha-2, case-insensitive).
///
/// With the `phone` feature the code must be one libphonenumber knows; without it only its
/// form is checked (two letters), since nothing reads it then.
pub fn parse_region(code: &str) -> Option<PhoneRegion> {
    let upper = code.trim().to_ascii_uppercase();
    let bytes: [u8; 2] = upper.as_bytes().try_into().ok()?;
    if !bytes.iter().all(u8::is_ascii_uppercase) {
        return None;
    }
    #[cfg(feature = "phone")]
    if upper.parse::<phonenumber::country::Id>().is_err() {
        return None;
    }
    Some(PhoneRegion(bytes))
}

/// Normalizes a phone number to E.164 (`+5511987654321`). Needs the `phone` feature.
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
#[cfg(feature = "phone")]
pub fn normalize_phone(
    raw: &str,
    default_region: Option<PhoneRegion>,
) -> Result<String, TransformError> {
    use phonenumber::{Mode, country};
    let trimmed = raw.trim();
    let region = default_region.and_then(|r| r.code().parse::<country::Id>().ok());
    let parsed = phonenumber::parse(region, trimmed).map_err(|e| TransformError::InvalidPhone {
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

#[cfg(all(test, feature = "phone"))]
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
        assert_eq!(
            parse_region(" br").map(|r| r.to_string()),
            Some("BR".to_owned())
        );
        assert!(parse_region("B").is_none());
        assert!(parse_region("B1").is_none());
        assert!(parse_region("XX").is_none());
    }
}
