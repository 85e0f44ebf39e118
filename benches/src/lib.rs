//! Shared helpers for the criterion benches of cativa-crm-sync.
//!
//! The benches live in `benches/benches/`; run them with `cargo bench -p cativa-crm-sync-benches`.
