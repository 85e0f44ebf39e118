//! Configuration parsing: any text as TOML and as JSON, then validation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sync_core::SyncConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = SyncConfig::from_toml_str(text) {
        let _ = config.validate();
    }
    if let Ok(config) = SyncConfig::from_json_str(text) {
        let _ = config.validate();
    }
});
