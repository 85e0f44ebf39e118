//! Cativa webhook bodies: any bytes, parsed as each configured event type.
#![no_main]

use cativa_client::webhook::{EventType, check_unique_keys, parse_event};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let kind = EventType::ALL[usize::from(first) % EventType::ALL.len()];
    let unique = check_unique_keys(body).is_ok();
    if let Ok(event) = parse_event(body, kind) {
        // Only bodies without repeated keys parse, and as the configured type.
        assert!(unique);
        assert_eq!(event.event_type(), kind);
        let _ = event.customer_id();
        let _ = event.user();
        let _ = format!("{event:?}");
    }
});
