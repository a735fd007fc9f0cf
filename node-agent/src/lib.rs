//! Vigil's node agent: loads the eBPF sensors, reads their records and turns them into events.
//!
//! Layout: [`sensor`] is the kernel edge (load, attach, ring buffer, counters); [`pipeline`]
//! decodes records and keeps the process table and hash cache; [`event`] is the data model;
//! [`agent`] runs it all and prints. [`detect`] turns events into findings (pure), [`store`] keeps
//! them in SQLite. [`btf_offsets`], [`dns`], [`exe_hash`] and [`proctable`] are
//! pure helpers.

pub mod agent;
pub mod btf_offsets;
pub mod cluster;
pub mod collector;
pub mod console;
pub mod container;
pub mod deleted_exe;
pub mod detect;
pub mod dns;
pub mod event;
pub mod exe_hash;
pub mod file_changes;
pub mod memory;
pub mod metrics;
pub mod pipeline;
pub mod proctable;
pub mod response;
pub mod sensitive;
pub mod sensor;
pub mod settings;
pub mod sinks;
pub mod spool;
pub mod sqlite;
pub mod store;
pub mod tool_hashes;
pub mod tracked;

/// A hash map for the tables every record touches (processes by pid, their uuids): keyed by
/// numbers the kernel assigns, so foldhash's seeded hash (a few ns) is enough where the
/// standard SipHash costs several times more. Not for keys a workload chooses freely.
pub type PidMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// A path under a fresh scratch directory (`prefix` names it) that does not exist yet, for a
/// database the code under test creates with its parents; the directory goes with the guard.
#[cfg(test)]
pub(crate) fn scratch_path(
    prefix: &str,
    relative: &str,
) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("a scratch directory");
    let path = dir.path().join(relative);
    (dir, path)
}
