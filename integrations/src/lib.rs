//! Findings leave the host: the documents other systems read ([`format`]), the sinks that
//! deliver them ([`sink`], [`http`]) and their configuration ([`config`]). The on-disk queue and
//! the retries around the sinks are the agent's (`node_agent::sinks`).
// The expected documents of the format tests are large `json!` literals.
#![cfg_attr(test, recursion_limit = "256")]

pub mod config;
pub mod format;
pub mod http;
pub mod nats;
pub mod sample;
pub mod sink;
pub mod syslog;
