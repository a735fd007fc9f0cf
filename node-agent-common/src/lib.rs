//! Records shared by Vigil's eBPF programs (kernel side) and its agent (user side).
//!
//! Every record written to the ring buffer starts with an [`EventHeader`]. All structs are
//! `#[repr(C)]`, use only fixed-width integers and byte arrays (no `bool`, no enums) and have
//! explicit padding, so the kernel and user space agree on the layout byte for byte; the
//! `const` assertions at the bottom of each module fail the build when a layout drifts.
//!
//! Record kinds live in numbered ranges, one per sensor family, with room to grow:
//!
//! | range           | family                                   |
//! |-----------------|------------------------------------------|
//! | `0x0100-0x01ff` | process: exec, fork, exit                |
//! | `0x0200-0x02ff` | network: connect, accept                 |
//! | `0x0300-0x03ff` | DNS packets                              |
//! | `0x0400-0x04ff` | file operations on sensitive paths       |
//! | `0x0500-0x05ff` | kernel-level activity (memfd, ptrace, ...) |
//! | `0x0600-0x7eff` | free                                     |
//! | `0x7f00-0x7fff` | synthetic records for benchmarks         |
//!
//! Within a range, kinds are numbered from its start ([`kind`]); the rest of the range is free.
#![no_std]

pub mod config;
pub mod event;
pub mod maps;
pub mod response;
pub mod stats;

#[cfg(feature = "user")]
pub mod decode;

pub use config::{AgentConfig, AgentIdentity, KernelOffsets};
pub use event::*;
pub use stats::{Hook, StatKind};
