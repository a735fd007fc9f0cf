//! Findings leave the host: the documents other systems read ([`format`]) and the sinks that
//! deliver them.
// The expected documents of the format tests are large `json!` literals.
#![cfg_attr(test, recursion_limit = "256")]

pub mod format;
