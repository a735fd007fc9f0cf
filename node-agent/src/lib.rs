//! Vigil's node agent: loads the eBPF sensors, reads their records and turns them into events.

pub mod btf_offsets;
pub mod dns;
pub mod exe_hash;
pub mod proctable;
