//! Findings leave the host: the documents other systems read ([`format`]) and the sinks that
//! deliver them.

pub mod format;
