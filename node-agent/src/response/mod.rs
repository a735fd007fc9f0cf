//! Opt-in automated response: the kernel deny hook on connect, killing the offending process,
//! and quarantining a pod (docs/RESPONSE.md).

pub mod config;
pub mod deny;
pub mod engine;
pub mod kill;

pub use config::{Mode, ResponseConfig, ResponseConfigError};
pub use deny::{DenyCounters, DenyError, FillReport, KernelDeny};
pub use engine::{PodRef, Responder, ResponseStartError};
