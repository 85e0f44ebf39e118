//! Email parsing: any text; a parsed email is normalized and parses to itself again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sync_core::Email;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(email) = Email::parse(text) {
        let again = Email::parse(email.as_str()).expect("a normalized email parses again");
        assert_eq!(again, email);
        assert!(email.as_str().contains('@'));
    }
});
