//! Cativa webhook bodies: any bytes, with or without an event type hint.
#![no_main]

use cativa_client::webhook::{EventType, parse_event};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let hint = match first % 4 {
        0 => None,
        1 => Some(EventType::UserCreated),
        2 => Some(EventType::UserReceivedBadge),
        _ => Some(EventType::UserJoinedGroup),
    };
    if let Ok(event) = parse_event(body, hint) {
        let _ = event.event_type();
        let _ = event.customer_id();
        let _ = event.user();
        let _ = format!("{event:?}");
    }
});
