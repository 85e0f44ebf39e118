//! HubSpot webhook batches: any bytes, then deduplication and grouping.
#![no_main]

use crm_hubspot::webhook::{dedupe, group_by_object, parse_batch};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(events) = parse_batch(data) {
        let n = events.len();
        let unique = dedupe(events);
        assert!(unique.len() <= n);
        let (groups, rest) = group_by_object(unique.clone());
        let grouped: usize = groups.iter().map(|g| g.events.len()).sum();
        assert_eq!(grouped + rest.len(), unique.len());
    }
});
