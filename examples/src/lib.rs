//! Shared helpers for the runnable examples of cativa-crm-sync.
