//! Shared fixtures for the end-to-end tests of cativa-crm-sync (in `tests/tests/`).
