//! From ring-buffer bytes to events: decode in place, keep the process table and the hash
//! cache up to date, and enrich each event with lineage, ids and hashes.

use std::{
    fs,
    path::{Path, PathBuf},
    time::{Duration, Instant, UNIX_EPOCH},
};

use node_agent_common::{
    decode::{DecodeError, Record, decode},
    exec_flags,
};
use serde::Serialize;

use crate::{
    container::ContainerResolver,
    deleted_exe::{DeletionWatch, Watched},
    detect::accounts::{AccountChanges, AccountFile, AccountSnapshots},
    event::{
        ActivityInfo, Ancestor, Clock, Event, ExecInfo, ForkInfo, ProcessRef, activity_info,
        cgroup_made, dirent_info, dns_info, exec_info, exit_info, file_info, kernel_dev, net_info,
        normalize, resolve_exe, stream_info, sysctl_info, user_dev, writer,
    },
    exe_hash::{Digest, ExeHashCache},
    file_changes::{ChangePairs, Source},
    proctable::{self, ProcessInfo, ProcessTable},
    sensor::dirents::DirentChange,
};

/// How far up the lineage goes (init is usually reached well before).
pub const LINEAGE_DEPTH: usize = 32;

/// Bounds of the pipeline's caches.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Processes in the table (live and recently exited).
    pub processes: usize,
    /// Executable hashes kept.
    pub hashes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            processes: 65_536,
            hashes: 4_096,
        }
    }
}

/// What the pipeline counted.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineStats {
    /// Records decoded.
    pub records: u64,
    /// Records that did not decode (unknown kind or size): a version mismatch or a bug.
    pub decode_errors: u64,
    /// The last decode error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_decode_error: Option<String>,
    /// Exec, fork, exit, connect, accept, dns.
    pub exec: u64,
    /// Forks.
    pub fork: u64,
    /// Exits.
    pub exit: u64,
    /// Connects.
    pub connect: u64,
    /// Failed handshakes of non-blocking connects, reported after the syscall returned.
    pub connect_outcome: u64,
    /// Accepts.
    pub accept: u64,
    /// DNS messages.
    pub dns: u64,
    /// Heads of TCP connections that started like a JSON object.
    pub stream: u64,
    /// File operations on sensitive paths.
    pub file: u64,
    /// Changes fanotify reported in the sensitive directories (`file_dirents`); those not
    /// dropped as duplicates are counted in `file` too.
    pub dirent: u64,
    /// Records dropped as the second sensor's copy of a change the other had reported
    /// (see [`crate::file_changes`]).
    pub file_duplicates: u64,
    /// Kernel-level activity.
    pub activity: u64,
    /// Kernel settings written (the `sysctl` hook), turned into file events.
    #[serde(skip_serializing_if = "is_zero")]
    pub sysctl: u64,
    /// Cgroups made in the unified hierarchy, learned by the container resolver (not turned
    /// into events).
    #[serde(skip_serializing_if = "is_zero")]
    pub cgroups_made: u64,
    /// Synthetic benchmark records (counted, not turned into events).
    #[serde(skip_serializing_if = "is_zero")]
    pub synthetic: u64,
    /// Execs whose executable's path and digest came from [`ExeObjects`]: the same file object
    /// and version exec'd by the same path before, nothing opened.
    pub exe_objects_reused: u64,
    /// Processes found running a binary deleted from a memory-backed or world-writable
    /// directory after they started ([`Pipeline::deleted_executables`]).
    #[serde(skip_serializing_if = "is_zero")]
    pub deleted_executables: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The agent's user-space state.
pub struct Pipeline {
    clock: Clock,
    boot_id: String,
    procs: ProcessTable,
    hashes: ExeHashCache,
    containers: ContainerResolver,
    stats: PipelineStats,
    /// Boot-time stamp of the record being handled.
    seen_ns: u64,
    /// Process uuids by (pid, start time): a SHA-256 per process, not per event (nor per
    /// ancestor of every exec's lineage); kept as bytes, formatted on use.
    uuids: crate::PidMap<(u32, u64), [u8; 16]>,
    /// The kernel's written-files map, for the writer of a `#!` script.
    written: Option<crate::sensor::WrittenFiles>,
    /// The kernel's map of the host's security agents, kept from execs and exits.
    guarded: Option<crate::sensor::GuardedProcesses>,
    /// The host's `/proc`, through which a process's own paths are opened.
    proc_root: PathBuf,
    /// The rules, for the script operand of a shell or interpreter exec: the detector's own set
    /// when detection runs (one compiled copy), else the built-in rules.
    script_rules: Option<std::sync::Arc<crate::detect::RuleSet>>,
    /// Pairs the file sensors' records of one change, once fanotify runs.
    pairs: Option<ChangePairs>,
    /// The cgroup v2 hierarchy, for the cgroup id of a process fanotify names.
    cgroup_root: Option<PathBuf>,
    /// The sender of each socket's stream records, for its segments sent from softirq.
    stream_senders: StreamSenders,
    /// Executables resolved before, by the kernel's file object.
    exe_objects: ExeObjects,
    /// Processes running a binary from a memory-backed or world-writable directory, watched
    /// for the file being deleted while they run.
    deletions: DeletionWatch,
    /// The account files (`/etc/passwd`, `/etc/shadow`, `/etc/group`) of the host and of
    /// containers as last read: a change is judged by what it granted since.
    accounts: AccountSnapshots,
    /// The `sysctl` hook runs: it records kernel settings as they are written, so an open of a
    /// setting for writing is not read back.
    sysctl_hook: bool,
    /// Settings opened for writing through another procfs mount, for the hook's record of the
    /// write that follows.
    settings_through: SettingsThrough,
}

/// Kernel settings opened for writing through a procfs mounted somewhere other than `/proc`
/// (`/host_proc/sys/kernel/core_pattern`), by pid, until the `sysctl` hook's record of the write
/// takes the path: that record names the setting only. The last [`SettingsThrough::MAX`]
/// opens; an open whose write never comes is dropped as newer ones arrive.
#[derive(Debug, Default)]
struct SettingsThrough(std::collections::VecDeque<(u32, PathBuf, PathBuf)>);

impl SettingsThrough {
    const MAX: usize = 64;

    fn opened(&mut self, pid: u32, setting: PathBuf, through: PathBuf) {
        if self.0.len() >= Self::MAX {
            self.0.pop_front();
        }
        self.0.push_back((pid, setting, through));
    }

    /// The path `pid` opened `setting` through, most recent first, taken out.
    fn take(&mut self, pid: u32, setting: &Path) -> Option<PathBuf> {
        let at = self
            .0
            .iter()
            .rposition(|(p, s, _)| *p == pid && s == setting)?;
        self.0.remove(at).map(|(_, _, through)| through)
    }
}

/// A repeated exec: the same file object (mount and dentry), in the same version (device,
/// inode and change time), exec'd by the same path. Each of these is what the kernel held at
/// the exec, so the executable's path and digest resolved the first time hold again, and the
/// exec costs no `open`, `stat` or `readlink` of `/proc/<pid>/exe`. A write, chmod, chown,
/// link, unlink or rename of the file moves its change time, and another name for the inode is
/// another dentry or mount: either is a miss.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ExeObjectKey {
    object: node_agent_common::ExeObject,
    dev: u32,
    ino: u64,
    /// The path exec'd, joined to the working directory when relative.
    exec_path: PathBuf,
}

impl ExeObjectKey {
    /// The key of an exec record, `None` when the kernel could not read the object or the
    /// file has no name to reuse (a memfd, a deleted file) or the path exec'd names the
    /// agent's own objects (`/proc/self/exe`).
    fn of(ev: &node_agent_common::ExecEvent, exec_path: &Path) -> Option<Self> {
        let object = ev.exe_object;
        let nameless = exec_flags::EXE_MEMFD | exec_flags::EXE_DELETED;
        let readable = object.mnt != 0 && object.dentry != 0 && object.ctime_sec != 0;
        (readable
            && ev.exe_ino != 0
            && ev.flags & nameless == 0
            && exec_path.is_absolute()
            && !names_the_agents_own(exec_path))
        .then(|| Self {
            object,
            dev: ev.exe_dev,
            ino: ev.exe_ino,
            exec_path: exec_path.to_path_buf(),
        })
    }
}

/// Resolved executables by [`ExeObjectKey`]: the newest [`EXE_OBJECTS`], dropped whole past it.
#[derive(Default)]
struct ExeObjects {
    resolved: std::collections::HashMap<ExeObjectKey, (PathBuf, Digest)>,
}

/// Executables remembered by [`ExeObjects`] (a key holds a path: about 300 bytes each).
const EXE_OBJECTS: usize = 4_096;

impl ExeObjects {
    fn get(&self, key: &ExeObjectKey) -> Option<&(PathBuf, Digest)> {
        self.resolved.get(key)
    }

    fn insert(&mut self, key: ExeObjectKey, exe: PathBuf, digest: Digest) {
        if self.resolved.len() >= EXE_OBJECTS {
            self.resolved.clear();
        }
        self.resolved.insert(key, (exe, digest));
    }
}

/// Sockets whose sender the stream sensor named, by socket cookie (cookies are never reused
/// within a boot): the newest [`STREAM_SENDERS`], first in, first out.
#[derive(Default)]
struct StreamSenders {
    by_cookie: std::collections::HashMap<u64, node_agent_common::TaskIdentity>,
    order: std::collections::VecDeque<u64>,
    shed: u64,
}

/// Sockets remembered by [`StreamSenders`]. Only connections whose first segments start like a
/// JSON object are remembered, and only one softirq segment of such a connection needs it.
const STREAM_SENDERS: usize = 4_096;

impl StreamSenders {
    fn insert(&mut self, cookie: u64, task: node_agent_common::TaskIdentity) {
        if self.by_cookie.insert(cookie, task).is_some() {
            return;
        }
        self.order.push_back(cookie);
        if self.order.len() > STREAM_SENDERS
            && let Some(oldest) = self.order.pop_front()
        {
            self.by_cookie.remove(&oldest);
            self.shed += 1;
        }
    }

    fn get(&self, cookie: u64) -> Option<node_agent_common::TaskIdentity> {
        self.by_cookie.get(&cookie).copied()
    }

    fn tracked(&self) -> crate::tracked::TrackedTable {
        crate::tracked::TrackedTable::by_entries(
            "streamSenders",
            self.by_cookie.len() as u64,
            STREAM_SENDERS as u64,
            self.shed,
        )
    }
}

/// Files added to the kernel's written-files map past which it may have evicted some: its LRU
/// starts evicting before it is full, as free entries sit in per-CPU lists, so a quarter of its
/// size is taken as the point from which an entry may be gone.
const WRITTEN_MAY_HAVE_EVICTED: u64 = node_agent_common::WRITTEN_FILES_MAX as u64 / 4;

/// Cached process uuids; the cache is dropped whole past this many.
const UUID_CACHE: usize = 65_536;

impl Pipeline {
    /// An empty pipeline.
    pub fn new(clock: Clock, boot_id: String, limits: Limits) -> Self {
        Self {
            clock,
            boot_id,
            procs: ProcessTable::new(limits.processes),
            hashes: ExeHashCache::new(limits.hashes).deferring(),
            containers: ContainerResolver::new(
                crate::sensor::cgroup2_root(),
                PathBuf::from("/proc"),
            ),
            stats: PipelineStats::default(),
            seen_ns: 0,
            uuids: crate::PidMap::default(),
            written: None,
            guarded: None,
            proc_root: PathBuf::from("/proc"),
            script_rules: None,
            pairs: None,
            cgroup_root: crate::sensor::cgroup2_root(),
            stream_senders: StreamSenders::default(),
            exe_objects: ExeObjects::default(),
            deletions: DeletionWatch::default(),
            accounts: AccountSnapshots::default(),
            sysctl_hook: false,
            settings_through: SettingsThrough::default(),
        }
    }

    /// The root directory of the processes still in cgroup `id` (a container's, once the
    /// process that wrote a file there has exited): `/proc/PID/root` of the first one listed
    /// that is still there.
    fn root_in_cgroup(&mut self, id: u64) -> Option<PathBuf> {
        self.containers
            .cgroup_procs(id, self.seen_ns)
            .into_iter()
            .map(|pid| self.proc_root.join(pid.to_string()).join("root"))
            .find(|root| root.exists())
    }

    /// Takes kernel settings from the `sysctl` hook's records (the value as written) instead of
    /// reading a setting back after an open for writing.
    pub fn with_sysctl_hook(mut self, active: bool) -> Self {
        self.sysctl_hook = active;
        self
    }

    /// The setting `name` (`kernel/core_pattern`) as it reads now, through the host's `/proc`;
    /// `None` for a name with `.` or `..` components or one that cannot be read.
    fn setting_now(&self, name: &str) -> Option<String> {
        let name = name.trim_start_matches('/');
        if name.is_empty() || name.split('/').any(|c| matches!(c, "" | "." | "..")) {
            return None;
        }
        fs::read_to_string(self.proc_root.join("sys").join(name))
            .ok()
            .map(|v| v.trim().to_owned())
    }

    /// Takes changes from fanotify too ([`Pipeline::handle_dirent`]), paired with the
    /// `file_change` sensor's records of the same change so that each passes once. `aliases`:
    /// the watched directories' names and real paths
    /// ([`crate::sensor::dirents::DirentWatch::aliases`]).
    pub fn with_dirents(
        mut self,
        sensitive: crate::sensitive::SensitivePaths,
        aliases: Vec<(PathBuf, PathBuf)>,
    ) -> Self {
        self.pairs = Some(ChangePairs::new(sensitive, aliases));
        self
    }

    /// The pairing table of the file sensors against its bound, when fanotify runs.
    pub fn pairs_tracked(&self) -> Option<crate::tracked::TrackedTable> {
        self.pairs.as_ref().map(ChangePairs::tracked)
    }

    /// Turns a change fanotify reported into a file event; `None` when the `file_change`
    /// sensor already reported it (counted).
    pub fn handle_dirent(&mut self, change: &DirentChange) -> Option<Event> {
        let process = self.process_of(change.pid);
        let mut info = dirent_info(change, process, &self.clock);
        let host = self
            .containers
            .in_host_namespaces(info.process.pid_ns, info.process.mnt_ns);
        info.program_written =
            program_written(&info, host, || self.root_in_cgroup(info.process.cgroup_id));
        self.stats.dirent += 1;
        if let Some(pairs) = &mut self.pairs
            && !pairs.admit(&info, Source::Dirents)
        {
            self.stats.file_duplicates += 1;
            return None;
        }
        info.accounts_changed = self.accounts_changed(&info);
        self.stats.file += 1;
        self.seen_ns = change.boot_ns;
        self.identify(&mut info.process);
        Some(Event::File(info))
    }

    /// Who a pid fanotify gave is: the process table's entry (a process that has exited is
    /// named by what the table remembers), its namespaces and cgroup from `/proc` while it
    /// lives.
    fn process_of(&self, pid: u32) -> ProcessRef {
        let mut p = ProcessRef {
            pid,
            tid: pid,
            ..ProcessRef::default()
        };
        if let Some(known) = self.procs.get(pid) {
            p.ppid = known.ppid;
            p.uid = known.uid;
            p.gid = known.gid;
            p.euid = known.euid;
            p.egid = known.egid;
            p.comm.clone_from(&known.comm);
            p.start_time_ns = known.start_time_ns;
        }
        let ns = |kind| {
            crate::container::namespace_inode(&self.proc_root, &pid.to_string(), kind).unwrap_or(0)
        };
        p.pid_ns = ns("pid");
        p.mnt_ns = ns("mnt");
        p.cgroup_id = cgroup_id(&self.proc_root, self.cgroup_root.as_deref(), pid).unwrap_or(0);
        p
    }

    /// Reads who wrote a `#!` script from the kernel's written-files map ([`Sensor::take_written`]),
    /// and script operands with `rules` (the detector's [`Detector::shared_rules`]; the built-in
    /// rules, compiled here, when detection is off).
    ///
    /// [`Sensor::take_written`]: crate::sensor::Sensor::take_written
    /// [`Detector::shared_rules`]: crate::detect::Detector::shared_rules
    pub fn with_written_files(
        mut self,
        written: Option<crate::sensor::WrittenFiles>,
        rules: Option<std::sync::Arc<crate::detect::RuleSet>>,
    ) -> Self {
        if written.is_some() {
            self.script_rules = rules.or_else(|| {
                crate::detect::RuleSet::builtin()
                    .inspect_err(
                        |error| tracing::warn!(%error, "built-in rules: script operands not read"),
                    )
                    .ok()
                    .map(std::sync::Arc::new)
            });
        }
        self.written = written;
        self
    }

    /// Keeps the kernel's map of guarded processes ([`Sensor::take_guarded`]) from the
    /// executables of the processes that exec and exit, and of those seeded from `/proc`.
    ///
    /// [`Sensor::take_guarded`]: crate::sensor::Sensor::take_guarded
    pub fn with_guarded(mut self, guarded: Option<crate::sensor::GuardedProcesses>) -> Self {
        self.guarded = guarded;
        self
    }

    /// Reads container context from the host's `/proc` and cgroup v2 hierarchy mounted
    /// elsewhere (the agent in a pod sees the host's as `/host/proc` and
    /// `/host/sys/fs/cgroup`). A hybrid host's cgroup v2 is under `unified/`: either works.
    pub fn with_host_paths(mut self, proc_root: PathBuf, cgroup_root: Option<PathBuf>) -> Self {
        let root = cgroup_root
            .map(|r| {
                let unified = r.join("unified");
                if !r.join("cgroup.controllers").exists()
                    && unified.join("cgroup.controllers").exists()
                {
                    unified
                } else {
                    r
                }
            })
            .or_else(crate::sensor::cgroup2_root);
        self.cgroup_root.clone_from(&root);
        self.containers = ContainerResolver::new(root, proc_root.clone());
        self.proc_root = proc_root;
        self
    }

    /// Seeds the process table from `/proc`, so processes older than the agent have parents.
    pub fn seed(&mut self, proc_root: &Path) -> Result<usize, proctable::ProcTableError> {
        self.seed_accounts(proc_root);
        let seeded = self.procs.seed_from_proc(proc_root)?.seeded;
        if let Some(guarded) = &mut self.guarded {
            for p in self.procs.live() {
                if let Some(exe) = &p.exe {
                    guarded.on_exec(p.tgid, exe);
                }
            }
        }
        Ok(seeded)
    }

    /// Reads the host's account files ([`host_etc`]): what they grant now is the host's own,
    /// and a later change is judged by what it adds. A file that cannot be read is judged from
    /// its first read-back.
    fn seed_accounts(&mut self, proc_root: &Path) {
        let Some((etc, place)) = host_etc(proc_root) else {
            tracing::warn!("no /etc to read the account files from");
            return;
        };
        for file in AccountFile::ALL {
            match account_file_text(&etc, file) {
                Some(text) => self.accounts.seed_host(place, file, &text),
                None => tracing::warn!(
                    file = file.name(),
                    "account file not read at start: its changes are judged from the first"
                ),
            }
        }
    }

    /// What an account file the event changed now grants that it did not when last read: read
    /// back once the writer has closed it (as a kernel setting is; `/etc/passwd` and the others
    /// are written rarely, so the wait costs nothing), where the process sees it (its
    /// `/proc/<pid>/root`, a container's own file). When the process is gone: the host's file
    /// if it ran in the host's namespaces, else its container's through another process of its
    /// cgroup, else nothing. A gone container process's write read back from the host's file
    /// would take the host's own change (one made since its last read) into the host's
    /// snapshot, and the event that made it would then show none.
    fn accounts_changed(&mut self, info: &crate::event::FileInfo) -> Option<AccountChanges> {
        let (file, changed) = account_file_changed(info)?;
        let pid = info.process.pid;
        if info.operation == "openWrite" {
            wait_for_close_within(ACCOUNT_WRITE_WAIT, pid, info.ret, changed);
        }
        let host = self
            .containers
            .in_host_namespaces(info.process.pid_ns, info.process.mnt_ns);
        let (etc, place) = match etc_place(&self.proc_root.join(pid.to_string()).join("root")) {
            Some(found) => found,
            None if host => host_etc(&self.proc_root)?,
            None => etc_place(&self.root_in_cgroup(info.process.cgroup_id)?)?,
        };
        let text = account_file_text(&etc, file)?;
        let changes = self.accounts.observe(place, file, &text);

        (!changes.is_empty()).then_some(changes)
    }

    /// Counters so far.
    pub fn stats(&self) -> &PipelineStats {
        &self.stats
    }

    /// The process table.
    pub fn processes(&self) -> &ProcessTable {
        &self.procs
    }

    /// The hash cache against its bound.
    pub fn hash_tracked(&self) -> crate::tracked::TrackedTable {
        self.hashes.tracked()
    }

    /// Guards the process a miner finding was raised for ([`crate::detect::miner_process`]),
    /// so that a competitor's signal to it is reported whatever its executable is called: when
    /// the process with that pid still runs and is the one the finding names (its uuid), never
    /// a later process that reused the pid.
    pub fn guard_miner(&mut self, pid: u32, uuid: &str) {
        let Some(guarded) = &mut self.guarded else {
            return;
        };
        let Some(p) = self.procs.get(pid).filter(|p| !p.exited) else {
            return;
        };
        if cached_uuid(&mut self.uuids, &self.boot_id, pid, p.start_time_ns) == uuid {
            guarded.on_miner(pid);
        }
    }

    /// The kernel's map of guarded processes as a tracked table, when the pipeline keeps it.
    pub fn guarded_tracked(&self) -> Option<crate::tracked::TrackedTable> {
        self.guarded.as_ref().map(|g| g.tracked())
    }

    /// The kernel's written-files map as a tracked table: files added since the start against
    /// its size; `shed` is how many older entries the additions past its size evicted at the
    /// least. `None` without the map or its counter.
    pub fn written_tracked(&self) -> Option<crate::tracked::TrackedTable> {
        let added = self.written.as_ref()?.added()?;
        let max = u64::from(node_agent_common::WRITTEN_FILES_MAX);
        Some(crate::tracked::TrackedTable::by_entries(
            "kernelWrittenFiles",
            added.min(max),
            max,
            added.saturating_sub(max),
        ))
    }

    /// The stream sensor's senders by socket against their bound.
    pub fn stream_senders_tracked(&self) -> crate::tracked::TrackedTable {
        self.stream_senders.tracked()
    }

    /// Hash cache counters.
    pub fn hash_stats(&self) -> crate::exe_hash::ExeHashStats {
        self.hashes.stats()
    }

    /// Turns one record into an event, updating the tables. `None` for bytes that did not
    /// decode (counted).
    pub fn handle(&mut self, bytes: &[u8]) -> Option<Event> {
        let record = match decode(bytes) {
            Ok(record) => record,
            Err(error) => {
                self.note_decode_error(error);
                return None;
            }
        };
        self.stats.records += 1;
        self.seen_ns = node_agent_common::decode::view::<node_agent_common::EventHeader>(bytes)
            .map_or(0, |h| h.ktime_ns);
        Some(match record {
            Record::Synthetic(_) => {
                self.stats.synthetic += 1;
                return None;
            }
            Record::Exec(ev) => {
                self.stats.exec += 1;
                let mut info = exec_info(ev, &self.clock);
                let pid = info.process.pid;
                let key = ExeObjectKey::of(ev, &info.exe);
                match key.as_ref().and_then(|k| self.exe_objects.get(k)) {
                    Some((exe, digest)) => {
                        info.exe = exe.clone();
                        info.sha256 = Some(*digest);
                        self.stats.exe_objects_reused += 1;
                    }
                    None => {
                        self.resolve_executable(&mut info);
                        if let (Some(key), Some(digest)) = (key, info.sha256) {
                            self.exe_objects.insert(key, info.exe.clone(), digest);
                        }
                    }
                }
                self.procs.on_exec(ProcessInfo {
                    tgid: pid,
                    ppid: info.process.ppid,
                    start_time_ns: info.process.start_time_ns,
                    comm: info.process.comm.clone(),
                    exe: Some(info.exe.clone()),
                    argv: info.argv.clone(),
                    cwd: info.cwd.clone(),
                    uid: info.process.uid,
                    gid: info.process.gid,
                    euid: info.process.euid,
                    egid: info.process.egid,
                    exe_sha256: info.sha256,
                    exited: false,
                    exit_code: None,
                });
                self.watch_for_deletion(&info);
                if let Some(guarded) = &mut self.guarded {
                    guarded.on_exec(pid, &info.exe);
                }
                self.identify(&mut info.process);
                // The root directory the kernel read at exec, when it could.
                let root =
                    (ev.root_ino != 0).then(|| (crate::event::user_dev(ev.root_dev), ev.root_ino));
                info.host_root = info.process.container.is_some()
                    && self.containers.runs_in_host_root(
                        pid,
                        info.process.mnt_ns,
                        info.exe_dev,
                        root,
                    );
                // After identify: a container's changes count from its first process on.
                if written_before_container(&info.process, &ev.writer, ev.ns_init_start_ns) {
                    info.written_by = None;
                }
                self.untracked_change(&mut info, ev);
                info.lineage = self.lineage(pid);
                self.script_writer(&mut info, ev);
                self.input_fifo(&mut info);
                if info.argv0_empty {
                    info.exe_set_id = self.exe_set_id(&info);
                }
                Event::Exec(Box::new(info))
            }
            Record::Fork(ev) => {
                self.stats.fork += 1;
                self.procs
                    .on_fork(ev.task.tgid, ev.child_tgid, ev.child_start_time_ns);
                let mut process = ProcessRef::from(&ev.task);
                self.identify(&mut process);
                Event::Fork(ForkInfo {
                    time: self.clock.rfc3339(ev.header.ktime_ns),
                    process,
                    child_pid: ev.child_tgid,
                })
            }
            Record::Exit(ev) => {
                self.stats.exit += 1;
                let mut info = exit_info(ev, &self.clock);
                self.identify(&mut info.process);
                // The process is gone: its uuid will not be asked for again.
                self.uuids
                    .remove(&(info.process.pid, info.process.start_time_ns));
                self.procs.on_exit(ev.task.tgid, ev.exit_code);
                self.deletions.on_exit(ev.task.tgid);
                if let Some(guarded) = &mut self.guarded {
                    guarded.on_exit(ev.task.tgid);
                }
                Event::Exit(info)
            }
            Record::Connect(ev) => {
                self.stats.connect += 1;
                let mut info = net_info(ev, &self.clock);
                self.identify(&mut info.process);
                Event::Connect(info)
            }
            Record::ConnectOutcome(ev) => {
                self.stats.connect_outcome += 1;
                let mut info = net_info(ev, &self.clock);
                self.identify(&mut info.process);
                Event::ConnectOutcome(info)
            }
            Record::Accept(ev) => {
                self.stats.accept += 1;
                let mut info = net_info(ev, &self.clock);
                self.identify(&mut info.process);
                Event::Accept(info)
            }
            Record::File(ev) => {
                self.stats.file += 1;
                let mut info = file_info(ev, &self.clock);
                // Where the kernel could not record the base directory, ask /proc (the
                // process may be gone by now: then the path stays relative).
                if info.resolved_path.is_none() && info.operation != "redirect" {
                    info.resolved_path = resolve_at(info.process.pid, ev.dirfd, &info.path);
                }
                if let (None, Some(path2)) = (&info.resolved_path2, &info.path2) {
                    info.resolved_path2 = resolve_at(info.process.pid, ev.dirfd2, path2);
                }
                if !chmod_kept(&info) {
                    return None;
                }
                if info.operation == "openWrite"
                    && info.ret >= 0
                    && let Some(path) = info.resolved_path.as_deref()
                {
                    if self.sysctl_hook {
                        // The hook records each value as it is written (`sysctlWrite`): no
                        // wait, no read back. A setting reached through another procfs mount
                        // is still named, for the file rules that skip settings.
                        if !path.starts_with("/proc/sys/") {
                            info.sysctl_setting = setting_through_other_procfs(
                                info.process.pid,
                                info.ret,
                                path,
                                info.inode,
                            );
                        }
                        info.sysctl_by_hook =
                            path.starts_with("/proc/sys/") || info.sysctl_setting.is_some();
                        // The hook's record names the setting, not the mount the writer used:
                        // kept for the write that follows.
                        if let Some(setting) = &info.sysctl_setting {
                            self.settings_through.opened(
                                info.process.pid,
                                setting.clone(),
                                path.to_path_buf(),
                            );
                        }
                    } else if path.starts_with("/proc/sys/") {
                        info.sysctl_value = sysctl_value_written(info.process.pid, info.ret, path);
                    } else if let Some(setting) =
                        setting_through_other_procfs(info.process.pid, info.ret, path, info.inode)
                    {
                        wait_for_close_of(info.process.pid, info.ret);
                        info.sysctl_value = fs::read_to_string(&setting)
                            .ok()
                            .map(|v| v.trim().to_owned());
                        info.sysctl_setting = Some(setting);
                    }
                }
                info.git_config = git_config_written(&info);
                info.sysctl_file = sysctl_file_written(&info);
                let host = self
                    .containers
                    .in_host_namespaces(info.process.pid_ns, info.process.mnt_ns);
                info.program_written =
                    program_written(&info, host, || self.root_in_cgroup(info.process.cgroup_id));
                info.hashes_owner = hashes_owner(&info, &self.proc_root, host);
                if ev.match_flags & node_agent_common::file_flags::WRITTEN_BY_OTHER != 0 {
                    let key = node_agent_common::FileKey {
                        dev: ev.dev,
                        _pad: 0,
                        ino: ev.ino,
                    };
                    info.written_by = self
                        .written
                        .as_ref()
                        .and_then(|m| m.writer(&key))
                        .map(|w| writer(&w, &self.clock));
                }
                if let Some(pairs) = &mut self.pairs
                    && !pairs.admit(&info, Source::Kernel)
                {
                    self.stats.file_duplicates += 1;
                    return None;
                }
                // After the pairing: the copy of a change that passes is the one that reads it.
                info.accounts_changed = self.accounts_changed(&info);
                self.identify(&mut info.process);
                Event::File(info)
            }
            Record::Activity(ev) if ev.op == node_agent_common::activity::CGROUP_MKDIR => {
                self.stats.cgroups_made += 1;
                let (id, path) = cgroup_made(ev);
                self.containers.on_cgroup_made(id, path);
                return None;
            }
            Record::Activity(ev) if ev.op == node_agent_common::activity::SYSCTL_WRITE => {
                self.stats.sysctl += 1;
                let (mut info, write) = sysctl_info(ev, &self.clock);
                // Written through another procfs mount (the host's `/proc` given to a
                // container): the file as the writer opened it, as an open's record has it.
                if let Some(setting) = info.resolved_path.clone()
                    && let Some(through) = self.settings_through.take(info.process.pid, &setting)
                {
                    info.resolved_path = Some(through);
                    info.sysctl_setting = Some(setting);
                }
                if write.position > 0 {
                    // A piece of a value written before (a string setting written in parts):
                    // the setting as it reads now, once the kernel took the piece.
                    info.sysctl_value = self.setting_now(&write.name);
                }
                self.identify(&mut info.process);
                Event::File(info)
            }
            Record::Activity(ev) => {
                self.stats.activity += 1;
                let mut info = activity_info(ev, &self.clock);
                self.identify(&mut info.process);
                if ev.op == node_agent_common::activity::LIBRARY_LOAD
                    && written_before_container(&info.process, &ev.writer, ev.ns_init_start_ns)
                {
                    info.written_by = None;
                }
                if info.operation == "setns" && info.ret >= 0 {
                    info.host_namespaces_joined = self.containers.host_namespaces_joined(
                        info.inode,
                        info.name.as_deref(),
                        &info.namespaces,
                        info.process.mnt_ns,
                        info.process.pid_ns,
                    );
                }
                Event::Activity(info)
            }
            Record::Dns(ev) => {
                self.stats.dns += 1;
                let mut info = dns_info(ev, &self.clock);
                if info.untracked == Some("unknown") {
                    // No task: the socket's cgroup is all there is (no pid to look up).
                    info.process.container =
                        self.containers
                            .container(info.process.cgroup_id, self.seen_ns, 0, 0, true);
                } else {
                    self.identify(&mut info.process);
                }
                Event::Dns(info)
            }
            Record::Stream(ev) => {
                self.stats.stream += 1;
                let mut info = stream_info(ev, &self.clock);
                if info.sender == "socketLock" {
                    self.stream_senders.insert(ev.cookie, ev.task);
                } else if let Some(task) = self.stream_senders.get(ev.cookie) {
                    // Sent from softirq: the socket's earlier segments name the sender.
                    info.process = ProcessRef::from(&task);
                    info.sender = "earlierSegment";
                }
                self.identify(&mut info.process);
                Event::Stream(info)
            }
        })
    }

    /// Watches a binary exec'd from a memory-backed or world-writable directory (the built-in
    /// rules' lists, read when the written-files map is) for its deletion while it runs.
    fn watch_for_deletion(&mut self, info: &ExecInfo) {
        let exe = info.exe.to_string_lossy();
        let watched = (!info.fileless && !info.exe_deleted)
            .then_some(self.script_rules.as_ref())
            .flatten()
            .filter(|rules| crate::detect::runs_from_writable_dir(rules, &exe))
            .map(|_| Watched {
                start_time_ns: info.process.start_time_ns,
                exe: info.exe.clone(),
                ino: info.exe_inode,
            });
        self.deletions.on_exec(info.process.pid, watched);
    }

    /// Processes whose executable, run from a memory-backed or world-writable directory, has
    /// been deleted since they started ([`crate::deleted_exe`]): an `executableDeleted`
    /// activity each, once. Reads `/proc` at most every [`crate::deleted_exe::POLL_EVERY`],
    /// and only for the processes watched.
    pub fn deleted_executables(&mut self) -> Vec<Event> {
        let proc_root = &self.proc_root;
        let hashes = &mut self.hashes;
        let deleted = self.deletions.poll(Instant::now(), |pid| {
            hashes.links_of(&proc_root.join(pid.to_string()).join("exe"))
        });
        deleted
            .into_iter()
            .map(|(pid, w)| {
                let mut process = self.process_of(pid);
                if process.start_time_ns == 0 {
                    process.start_time_ns = w.start_time_ns;
                }
                self.identify(&mut process);
                self.stats.deleted_executables += 1;
                Event::Activity(ActivityInfo {
                    time: self.clock.rfc3339(crate::container::boot_ns()),
                    process,
                    operation: "executableDeleted",
                    name: Some(w.exe.display().to_string()),
                    inode: Some(w.ino),
                    ..ActivityInfo::default()
                })
            })
            .collect()
    }

    /// The table of processes watched for their executable's deletion.
    pub fn deletions_tracked(&self) -> crate::tracked::TrackedTable {
        self.deletions.tracked()
    }

    /// Finds the image that runs (for a script, its interpreter) and hashes it, making sure the
    /// file hashed is the inode the kernel exec'd: `/proc/<pid>/exe` while the process lives,
    /// else the exec'd path if it still names that inode.
    fn resolve_executable(&mut self, info: &mut ExecInfo) {
        let kernel_ino = info.exe_inode;
        // Through the hash cache: an O_PATH handle, and never a stat on a network or FUSE
        // filesystem, which could stall the reader.
        let hashes = &mut self.hashes;
        let mut same_inode = |path: &Path| {
            hashes
                .inode_of(path)
                .is_some_and(|ino| kernel_ino == 0 || ino == kernel_ino)
        };
        let proc_exe = PathBuf::from(format!("/proc/{}/exe", info.process.pid));
        // A program that re-executes itself (`/proc/self/exe`, or an fd of its own binary, as
        // `runc init` does) runs the image it ran before this exec, or its parent's: known to
        // the table, and accepted only when it is still the inode the kernel exec'd.
        let before: Vec<PathBuf> = [info.process.pid, info.process.ppid]
            .iter()
            .filter_map(|&pid| self.procs.get(pid).and_then(|p| p.exe.clone()))
            .filter(|exe| exe.is_absolute() && !names_the_agents_own(exe))
            .collect();
        // The link is read after the inode check and kept only if `/proc/<pid>/exe` still leads
        // to the inode the kernel exec'd: a process can exec again in between (`#!/usr/bin/env
        // bash`: env execs bash at once), and the link would then name the next image.
        let proc_link = if same_inode(&proc_exe) {
            let link = fs::read_link(&proc_exe).map(strip_deleted);
            same_inode(&proc_exe).then_some(link)
        } else {
            None
        };
        let target = if let Some(link) = proc_link {
            match link {
                // A file bind-mounted in a mount namespace the agent cannot reach (runc's copy
                // of itself in a container) reads as "/": name it by the image it came from.
                Ok(link) if link != Path::new("/") => info.exe = link,
                _ => {
                    if let Some(image) = before.iter().find(|exe| same_inode(exe)) {
                        info.exe = image.clone();
                    }
                }
            }
            proc_exe.clone()
        } else if !names_the_agents_own(&info.exe) && same_inode(&info.exe) {
            // The process is gone: the path exec'd, with its symbolic links resolved, as
            // `/proc/<pid>/exe` would have named it (`/var/run/x` is `/run/x`; a link to
            // `/dev/shm` in a home directory does not hide where the program is), kept only if
            // it still leads to the inode the kernel exec'd.
            if let Ok(real) = fs::canonicalize(&info.exe)
                && real != info.exe
                && same_inode(&real)
            {
                info.exe = real;
            }
            info.exe.clone()
        } else if let Some(interpreter) = shebang_interpreter(info)
            .and_then(|i| fs::canonicalize(i).ok())
            .filter(|i| kernel_ino != 0 && !names_the_agents_own(i) && same_inode(i))
        {
            // The process is gone and ran a `#!` script: the kernel put the interpreter's
            // path first in argv and ran that file; it names the image when it still leads to
            // the inode the kernel ran (an argv[0] a program chose cannot pass for it).
            info.exe = interpreter.clone();
            interpreter
        } else if let Some(image) = before
            .iter()
            .find(|exe| kernel_ino != 0 && same_inode(exe))
            .cloned()
        {
            info.exe = image.clone();
            image
        } else {
            info.sha256_error = Some(format!(
                "the process is gone and {} is not the file it ran (an interpreted script, or replaced since)",
                info.exe.display()
            ));
            return;
        };
        let digest = self.hashes.hash_file(&target);
        // Hashed through `/proc/<pid>/exe`: the image may have changed meanwhile, as above (a
        // process that has exited since is no sign of that: most are short-lived).
        if target == proc_exe
            && kernel_ino != 0
            && self
                .hashes
                .inode_of(&proc_exe)
                .is_some_and(|ino| ino != kernel_ino)
        {
            info.sha256_error = Some("the process exec'd again before it was hashed".into());
            return;
        }
        match digest {
            Ok(digest) => info.sha256 = Some(digest),
            Err(error) => info.sha256_error = Some(error.to_string()),
        }
    }

    /// Whether the file the kernel ran for `info` has a setuid or setgid bit: `/proc/<pid>/exe`
    /// while the process lives, else, when it ran in the host's namespaces, the exec'd path,
    /// each only while it is still the inode the kernel ran. Read for an exec with an empty
    /// `argv[0]` alone (PwnKit's shape), which nothing ordinary makes.
    fn exe_set_id(&mut self, info: &ExecInfo) -> bool {
        let proc_exe = self
            .proc_root
            .join(info.process.pid.to_string())
            .join("exe");
        let (dev, ino) = (info.exe_dev, info.exe_inode);
        let hashes = &mut self.hashes;
        let mut set_id = |path: &Path| {
            hashes
                .mode_of(path)
                .filter(|(d, i, _)| (*d, *i) == (dev, ino))
                .map(|(_, _, mode)| mode & 0o6000 != 0)
        };
        set_id(&proc_exe)
            .or_else(|| {
                info.process
                    .host_namespaces
                    .then(|| set_id(&info.exe))
                    .flatten()
            })
            .unwrap_or(false)
    }

    /// An executable the kernel's written-files map does not hold, whose change time is after
    /// the agent's start (the kernel sends it only then): once the map may have evicted entries,
    /// a binary written since the start may be one of them, so the change time stands in for
    /// the writer ([`ExecInfo::changed_untracked`]). In a container, only changes after its
    /// first process started count: its image was unpacked before that. A flood of written
    /// files can evict the writer but not the change time.
    fn untracked_change(&self, info: &mut ExecInfo, ev: &node_agent_common::ExecEvent) {
        let ctime_sec = ev.exe_ctime_sec;
        if ctime_sec <= 0 || info.written_by.is_some() || info.fileless {
            return;
        }
        let Some(written) = &self.written else {
            return;
        };
        // An unreadable counter is taken as a full map: the change time is all there is.
        if written
            .added()
            .is_some_and(|added| added <= WRITTEN_MAY_HAVE_EVICTED)
        {
            return;
        }
        let changed = UNIX_EPOCH
            + Duration::from_secs(ctime_sec as u64)
            + Duration::from_nanos(u64::from(ev.exe_ctime_nsec.min(999_999_999)));
        if info.process.container.is_some()
            && ev.ns_init_start_ns != 0
            && changed <= self.clock.wall(ev.ns_init_start_ns)
        {
            return;
        }
        info.changed_untracked = Some(humantime::format_rfc3339_seconds(changed).to_string());
    }

    /// For a `#!` script, or the script operand of a shell or interpreter (`sh x.sh`), who wrote
    /// it since the agent started, from the kernel's written-files map: the exec record knows the
    /// writer of the executable only, the interpreter here. For `#!` the kernel put the path
    /// exec'd after the interpreter in argv. The script is opened through
    /// the process's root (a container's paths are its own), or, once the process is gone, by
    /// its path when it shared the host's namespaces. Only script execs pay for the lookup.
    fn script_writer(&mut self, info: &mut ExecInfo, ev: &node_agent_common::ExecEvent) {
        if ev.stdin_ino != 0 {
            self.stdin_script(info, ev.stdin_dev, ev.stdin_ino, ev.ns_init_start_ns);
        }
        let Some(written) = &self.written else {
            return;
        };
        let shebang = script_follows_interpreter(info);
        let operand = || {
            self.script_rules
                .as_ref()
                .and_then(|r| crate::detect::script_operand(r, &info.argv))
        };
        let Some(script) = shebang.then_some(info.filename.as_str()).or_else(operand) else {
            return;
        };
        let script = normalize(&resolve_exe(script, info.cwd.as_deref()));
        let Ok(relative) = script.strip_prefix("/") else {
            return;
        };
        let through_root = self
            .proc_root
            .join(info.process.pid.to_string())
            .join("root")
            .join(relative);
        let identity = self.hashes.identity_of(&through_root).or_else(|| {
            info.process
                .host_namespaces
                .then(|| self.hashes.identity_of(&script))
                .flatten()
        });
        let Some((dev, ino)) = identity else {
            return;
        };
        if (dev, ino) == (info.exe_dev, info.exe_inode) {
            // The executable itself (a binary exec'd with its own path as an argument).
            return;
        }
        // A shell's script: the substitutions its text evaluates (`eval "$(curl URL)"`).
        if self
            .script_rules
            .as_ref()
            .is_some_and(|r| crate::detect::runs_shell(r, &info.exe))
            && let Some(text) =
                read_regular_file(&through_root, SHELL_SCRIPT_MAX_BYTES).or_else(|| {
                    info.process
                        .host_namespaces
                        .then(|| read_regular_file(&script, SHELL_SCRIPT_MAX_BYTES))
                        .flatten()
                })
        {
            let text = String::from_utf8_lossy(&text);
            info.script_evals = crate::detect::evaluated_substitutions(&text);
            if let Some(rules) = &self.script_rules {
                info.script_lines =
                    rules.script_lines_matching(crate::detect::path_basename(&info.exe), &text);
            }
        }
        let key = node_agent_common::FileKey {
            dev: kernel_dev(dev),
            _pad: 0,
            ino,
        };
        if let Some(w) = written.writer(&key)
            && !written_before_container(&info.process, &w, ev.ns_init_start_ns)
        {
            info.script_written_by = Some(writer(&w, &self.clock));
        }
    }

    /// A filter writing into a pipe, with no pipe on its standard input, that reads a named FIFO
    /// an operand names (`cat f | sh -i 2>&1 | nc host port > f`, the commonest netcat reverse
    /// shell: `cat` opens the FIFO after its exec, so the exec record cannot hold it): the
    /// FIFO's inode, by `stat` through the process's root from its working directory (no open:
    /// a FIFO cannot block it). Only such filters pay ([`crate::detect::fifo_operands`]); a
    /// name that is no FIFO adds nothing.
    fn input_fifo(&mut self, info: &mut ExecInfo) {
        let Some(rules) = self.script_rules.as_ref() else {
            return;
        };
        let root = self
            .proc_root
            .join(info.process.pid.to_string())
            .join("root");
        for operand in crate::detect::fifo_operands(rules, info) {
            let path = normalize(&resolve_exe(operand, info.cwd.as_deref()));
            let Ok(relative) = path.strip_prefix("/") else {
                continue;
            };
            if let Some(ino) = self.hashes.fifo_inode_of(&root.join(relative)) {
                info.input_fifo = Some(ino);
                return;
            }
        }
    }

    /// A shell or interpreter reading its program from a regular file on standard input
    /// (`sh < x.sh`; the kernel recorded the file's device and inode at exec): the file's path,
    /// read from the process's fd 0 while it runs and accepted only when it is still that file,
    /// and who wrote it since the agent started, from the written-files map by the kernel's
    /// identity (known even once the process is gone).
    fn stdin_script(
        &mut self,
        info: &mut ExecInfo,
        kernel_dev_stdin: u32,
        ino: u64,
        container_start_ns: u64,
    ) {
        let reads_stdin = self
            .script_rules
            .as_ref()
            .is_some_and(|r| crate::detect::reads_program_on_stdin(r, &info.argv));
        if !reads_stdin {
            return;
        }
        let fd0 = self
            .proc_root
            .join(info.process.pid.to_string())
            .join("fd/0");
        if self.hashes.identity_of(&fd0) == Some((user_dev(kernel_dev_stdin), ino)) {
            info.stdin_script = fs::read_link(&fd0).ok().map(strip_deleted);
        }
        let key = node_agent_common::FileKey {
            dev: kernel_dev_stdin,
            _pad: 0,
            ino,
        };
        if let Some(w) = self.written.as_ref().and_then(|m| m.writer(&key))
            && !written_before_container(&info.process, &w, container_start_ns)
        {
            info.script_written_by = Some(writer(&w, &self.clock));
        }
    }

    fn note_decode_error(&mut self, error: DecodeError) {
        self.stats.decode_errors += 1;
        if self.stats.last_decode_error.is_none() {
            tracing::warn!(%error, "undecodable record: agent and eBPF object disagree");
        }
        self.stats.last_decode_error = Some(error.to_string());
    }

    fn identify(&mut self, process: &mut ProcessRef) {
        process.uuid = cached_uuid(
            &mut self.uuids,
            &self.boot_id,
            process.pid,
            process.start_time_ns,
        );
        process.host_namespaces = self
            .containers
            .in_host_namespaces(process.pid_ns, process.mnt_ns);
        process.container = self.containers.container(
            process.cgroup_id,
            self.seen_ns,
            process.pid,
            process.pid_ns,
            process.host_namespaces,
        );
    }

    fn lineage(&mut self, pid: u32) -> std::sync::Arc<[Ancestor]> {
        let (uuids, boot_id) = (&mut self.uuids, &self.boot_id);
        self.procs
            .lineage(pid, LINEAGE_DEPTH)
            .into_iter()
            .skip(1)
            .map(|p| Ancestor {
                pid: p.tgid,
                ppid: p.ppid,
                comm: p.comm.clone(),
                exe: p.exe.clone(),
                uuid: cached_uuid(uuids, boot_id, p.tgid, p.start_time_ns),
            })
            .collect()
    }
}

/// The interpreter a `#!` script's exec names: the kernel rewrites argv to the interpreter's
/// path from the `#!` line, its optional argument, then the script's path as exec'd
/// (`["/bin/sh", "/root/x.sh"]`, `["/usr/bin/python3", "-u", "./x.py"]`). `None` when argv does
/// not have that shape.
fn shebang_interpreter(info: &ExecInfo) -> Option<&Path> {
    let first = info.argv.first()?;
    (first.starts_with('/') && *first != info.filename && script_follows_interpreter(info))
        .then(|| Path::new(first))
}

/// Whether the path exec'd comes second or third in argv, where the kernel puts a `#!`
/// script's path after its interpreter (and the interpreter's optional argument).
fn script_follows_interpreter(info: &ExecInfo) -> bool {
    info.argv
        .iter()
        .skip(1)
        .take(2)
        .any(|a| *a == info.filename)
}

/// Whether the write the kernel's written-files map holds for a file a container process
/// runs, loads or reads as its script came before the container's first process started
/// (`container_start_ns`, boot-time ns, from the exec or library-load record): then the file
/// came with the container, not after it. Its image unpacked (the runtime untars a layer
/// after the agent started), or a file the runtime put there before the start; or no file of
/// this container at all: the map's key is the device and inode numbers, and an overlay's
/// anonymous device number and its layers' inode numbers are both handed out again once an
/// earlier container is gone, so a file written in that container can carry the key of one in
/// this container's image. On the host (or with no start known) every write counts.
fn written_before_container(
    process: &ProcessRef,
    w: &node_agent_common::WriterInfo,
    container_start_ns: u64,
) -> bool {
    process.container.is_some() && container_start_ns != 0 && w.time_ns <= container_start_ns
}

/// The uuid of (pid, start time) from `cache`, computed and kept on a miss (the cache is
/// dropped whole past [`UUID_CACHE`]).
fn cached_uuid(
    cache: &mut crate::PidMap<(u32, u64), [u8; 16]>,
    boot_id: &str,
    pid: u32,
    start_time_ns: u64,
) -> String {
    let key = (pid, start_time_ns);
    let bytes = match cache.get(&key) {
        Some(bytes) => *bytes,
        None => {
            if cache.len() >= UUID_CACHE {
                cache.clear();
            }
            let bytes = proctable::process_uuid_bytes(boot_id, pid, start_time_ns);
            cache.insert(key, bytes);
            bytes
        }
    };
    proctable::format_uuid(&bytes)
}

/// A path that, opened by the agent, names the agent's own objects rather than the process's:
/// `/proc/self/...`, `/dev/fd/N` (what a process passes to re-execute itself).
fn names_the_agents_own(path: &Path) -> bool {
    path.starts_with("/proc/self")
        || path.starts_with("/proc/thread-self")
        || path.starts_with("/dev/fd")
}

/// `/proc/<pid>/exe` of a deleted file reads `path (deleted)`.
fn strip_deleted(path: PathBuf) -> PathBuf {
    match path.to_str().and_then(|s| s.strip_suffix(" (deleted)")) {
        Some(stripped) => PathBuf::from(stripped),
        None => path,
    }
}

/// How long the pipeline waits for a writer to close a kernel setting before reading its value.
const SYSCTL_WRITE_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

/// The value of a kernel setting under `/proc/sys` that `pid` opened for writing as `fd`: read
/// once the writer has closed it (or exited), so the write that follows the open is in, waiting
/// at most [`SYSCTL_WRITE_WAIT`]. Only settings in the sensitive-path set come here
/// (`randomize_va_space` and the other hardening settings), and they are written rarely: the
/// wait costs nothing in practice.
fn sysctl_value_written(pid: u32, fd: i64, path: &Path) -> Option<String> {
    wait_for_close(pid, fd, path);
    fs::read_to_string(path).ok().map(|v| v.trim().to_owned())
}

/// The setting under `/proc/sys` that `path`, opened by `pid` as `fd` (the kernel recorded
/// `inode`), is when the file is on a procfs mounted elsewhere
/// (`/host_proc/sys/kernel/core_pattern` in a container given the host's `/proc`): the
/// setting is what follows the path's last `/sys/`, and the file is that setting when the
/// descriptor, still open, is on procfs, or, once it is closed (a shell's `echo >` is gone at
/// once), when the inode opened is the setting's own (a bind mount of the host's `/proc`
/// shares its inodes). Only files of the sensitive-path set opened for writing come here
/// (`core_pattern` by name, anywhere).
fn setting_through_other_procfs(
    pid: u32,
    fd: i64,
    path: &Path,
    inode: Option<u64>,
) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let text = path.to_str()?;
    let setting = &text[text.rfind("/sys/")? + "/sys/".len()..];
    if setting.is_empty() || setting.split('/').any(|c| c == ".." || c == ".") {
        return None;
    }
    let setting = Path::new("/proc/sys").join(setting);
    let link = std::ffi::CString::new(format!("/proc/{pid}/fd/{fd}")).ok()?;
    // SAFETY: a zeroed statfs is valid.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: link is a valid C string and st a valid statfs to fill.
    let on_procfs = if unsafe { libc::statfs(link.as_ptr(), &mut st) } == 0 {
        st.f_type == libc::PROC_SUPER_MAGIC
    } else {
        inode.is_some_and(|ino| fs::metadata(&setting).is_ok_and(|m| m.ino() == ino))
    };
    on_procfs.then_some(setting)
}

/// [`wait_for_close`] for a descriptor whose path the agent cannot name (a file seen through
/// another mount namespace): waits while `fd` still names what it named first.
fn wait_for_close_of(pid: u32, fd: i64) {
    let link = PathBuf::from(format!("/proc/{pid}/fd/{fd}"));
    let Ok(first) = fs::read_link(&link) else {
        return;
    };
    wait_while(SYSCTL_WRITE_WAIT, || {
        fs::read_link(&link).is_ok_and(|target| target == first)
    });
}

/// Waits, at most [`SYSCTL_WRITE_WAIT`] and within the thread's [`WAIT_BUDGET`], until `pid`
/// no longer holds `path` open as `fd` (it closed it or exited): the write that followed the
/// open is in the file then.
fn wait_for_close(pid: u32, fd: i64, path: &Path) {
    wait_for_close_within(SYSCTL_WRITE_WAIT, pid, fd, path);
}

/// [`wait_for_close`] with its own bound `cap` (still within the thread's [`WAIT_BUDGET`]).
fn wait_for_close_within(cap: Duration, pid: u32, fd: i64, path: &Path) {
    let link = PathBuf::from(format!("/proc/{pid}/fd/{fd}"));
    wait_while(cap, || {
        fs::read_link(&link).is_ok_and(|target| target == path)
    });
}

/// How long the pipeline waits for a writer to close an account file (`/etc/passwd` and the
/// others) before reading it back: the whole of [`WAIT_BUDGET`]. Only root writes them, and
/// rarely; a shell that opened one (`echo ... >> /etc/passwd`) and was not scheduled again for
/// 50 ms on a busy machine had its line read back missing, the change then taken in by the
/// next read and reported for nobody.
const ACCOUNT_WRITE_WAIT: Duration = WAIT_BUDGET;

/// Most of any [`WAIT_WINDOW`] the reader thread spends waiting for writers to let go of files
/// it reads back. A repository's `.git/config` is anyone's to create and hold open for writing:
/// without a bound, a process holding a thousand of them would stall the reader for a minute
/// and let the rings fill.
const WAIT_BUDGET: Duration = Duration::from_millis(250);
/// The window [`WAIT_BUDGET`] is counted over.
const WAIT_WINDOW: Duration = Duration::from_secs(1);

/// The waits of one reader thread, against [`WAIT_BUDGET`] per [`WAIT_WINDOW`]. Pure: the
/// clock is the caller's.
#[derive(Clone, Copy, Debug, Default)]
struct WaitBudget {
    window_start: Option<Instant>,
    spent: Duration,
}

impl WaitBudget {
    /// How long a wait starting `now` may last at most (its own bound is the caller's).
    fn allowed(&mut self, now: Instant) -> Duration {
        if self
            .window_start
            .is_none_or(|start| now.saturating_duration_since(start) >= WAIT_WINDOW)
        {
            self.window_start = Some(now);
            self.spent = Duration::ZERO;
        }
        WAIT_BUDGET.saturating_sub(self.spent)
    }

    /// Counts a wait that lasted `waited`.
    fn spend(&mut self, waited: Duration) {
        self.spent = self.spent.saturating_add(waited);
    }
}

thread_local! {
    /// The pipeline runs on one thread; each thread has its own budget.
    static WAITS: std::cell::Cell<WaitBudget> = const {
        std::cell::Cell::new(WaitBudget { window_start: None, spent: Duration::ZERO })
    };
}

/// Waits while `held()` says the writer still holds the file, at most `cap`, and within what
/// is left of this thread's [`WAIT_BUDGET`]: past it the file is read at once, perhaps before
/// the write is in (the finding may then miss what the write said).
fn wait_while(cap: Duration, mut held: impl FnMut() -> bool) {
    let start = Instant::now();
    let allowed = WAITS.with(|w| {
        let mut budget = w.get();
        let allowed = budget.allowed(start);
        w.set(budget);
        allowed
    });
    let deadline = start + cap.min(allowed);
    while Instant::now() < deadline && held() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let waited = start.elapsed();
    WAITS.with(|w| {
        let mut budget = w.get();
        budget.spend(waited);
        w.set(budget);
    });
}

/// The `/etc` directory under `root` (`/proc/<pid>/root`, a process's view) with its device
/// and inode: the place whose account files are compared with each other.
fn etc_place(root: &Path) -> Option<(PathBuf, crate::detect::accounts::Place)> {
    use std::os::unix::fs::MetadataExt;
    let etc = root.join("etc");
    let m = fs::metadata(&etc).ok()?;
    m.is_dir().then(|| (etc, (m.dev(), m.ino())))
}

/// The host's `/etc`: through init's root under `proc_root` (the agent in a pod), else the
/// agent's own (where init's root cannot be followed).
fn host_etc(proc_root: &Path) -> Option<(PathBuf, crate::detect::accounts::Place)> {
    etc_place(&proc_root.join("1/root")).or_else(|| etc_place(Path::new("/")))
}

/// The text of an account file in `etc`, or `None` when it is not a regular file, cannot be
/// read or is over [`crate::detect::accounts::MAX_ACCOUNT_FILE_BYTES`].
fn account_file_text(etc: &Path, file: AccountFile) -> Option<String> {
    let max = crate::detect::accounts::MAX_ACCOUNT_FILE_BYTES;
    let bytes = read_regular_file(&etc.join(file.name()), max + 1)?;
    (bytes.len() as u64 <= max).then(|| String::from_utf8_lossy(&bytes).into_owned())
}

/// After a chown of the password hashes (`detect::is_password_hashes`) that returned: the
/// owner and group the kernel was asked for (the file's own where the call left one
/// unchanged), the file's mode, and the group's name, read where the process sees them
/// (`/proc/<pid>/root`), else the host's when the process is gone and ran there. The ids come
/// from the call, so a chown put back before the read still shows; the mode is read back (a
/// chown does not set it). One `stat` and one read of `/etc/group`, for these few files alone.
/// After an ACL was set on them (`setAcl`): the same, with the file's access ACL read back and
/// its named groups' names.
fn hashes_owner(
    info: &crate::event::FileInfo,
    proc_root: &Path,
    host: bool,
) -> Option<crate::event::HashesOwner> {
    use std::os::unix::fs::MetadataExt;
    if !matches!(info.operation, "chown" | "setAcl") || info.ret < 0 {
        return None;
    }
    let path = info.resolved_path.as_deref()?;
    if !crate::detect::is_password_hashes(path) {
        return None;
    }
    let root = proc_root.join(info.process.pid.to_string()).join("root");
    let through_root = root.join(path.strip_prefix("/").ok()?);
    let (m, file, etc) = match fs::metadata(&through_root) {
        Ok(m) => (m, through_root, etc_place(&root)),
        Err(_) if host => (
            fs::metadata(path).ok()?,
            path.to_path_buf(),
            host_etc(proc_root),
        ),
        Err(_) => return None,
    };
    let (uid, gid) = info.owner.unwrap_or((None, None));
    let (uid, gid) = (uid.unwrap_or(m.uid()), gid.unwrap_or(m.gid()));
    let groups = etc.and_then(|(etc, _)| account_file_text(&etc, AccountFile::Group));
    let name_of = |gid: u32| {
        groups
            .as_deref()
            .and_then(|text| crate::detect::accounts::group_name(text, gid))
    };
    let acl = if info.operation == "setAcl" {
        let mut acl = access_acl(&file).unwrap_or_default();
        for entry in &mut acl {
            if entry.tag == "group" {
                entry.name = entry.id.and_then(name_of);
            }
        }
        acl
    } else {
        Vec::new()
    };
    Some(crate::event::HashesOwner {
        mode: m.mode(),
        uid,
        gid,
        group: name_of(gid),
        acl,
    })
}

/// The entries of `path`'s access ACL (`system.posix_acl_access`), `None` when it has none or
/// it cannot be read. One `getxattr` into a bounded buffer.
fn access_acl(path: &Path) -> Option<Vec<crate::detect::accounts::AclEntry>> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut buf = [0u8; 4 + 8 * crate::detect::accounts::MAX_ACL_ENTRIES];
    // SAFETY: both strings are NUL-terminated; the kernel writes at most `buf.len()` bytes.
    let n = unsafe {
        libc::getxattr(
            c_path.as_ptr(),
            c"system.posix_acl_access".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let n = usize::try_from(n).ok()?;
    crate::detect::accounts::parse_posix_acl(buf.get(..n)?)
}

/// The account file a file event changed (opened for writing, or a file renamed or linked over
/// it: `useradd`, `vipw` and `sed -i` write a copy and rename it), if any.
fn account_file_changed(info: &crate::event::FileInfo) -> Option<(AccountFile, &Path)> {
    let changed = match info.operation {
        "openWrite" if info.ret >= 0 => info.resolved_path.as_deref(),
        "rename" | "link" if info.ret >= 0 => info.resolved_path2.as_deref(),
        _ => None,
    }?;
    Some((AccountFile::at(changed)?, changed))
}

/// A program written, renamed or linked into a system program directory
/// ([`crate::detect::system_program_dir`]), or a file the kernel saw given a setuid or setgid
/// mode anywhere (`setId`: a chmod, an open that creates): its mode, owner and whether it is a
/// script, read once the writer has let go of a program it writes ([`wait_until_unheld`])
/// where the process sees it (`/proc/<pid>/root`), else, when the process is gone, on the host
/// if it ran in the host's namespaces (`host`: a container's `/usr/bin/x` is not the host's).
/// Those directories change when packages are installed: the read is one `stat` and 128
/// bytes (a `#!` line's interpreter), and the wait ends at the writer's close (dpkg closes each file it unpacks before the
/// next). A set-id mode is read at once: the mode is what is judged.
fn program_written(
    info: &crate::event::FileInfo,
    host: bool,
    container_root: impl FnOnce() -> Option<PathBuf>,
) -> Option<crate::event::WrittenProgram> {
    use std::os::unix::fs::MetadataExt;
    if info.ret < 0 {
        return None;
    }
    let set_id = info.matched_by.contains(&"setId");
    let path = match info.operation {
        "openWrite" => info.resolved_path.as_deref()?,
        "rename" | "link" => info.resolved_path2.as_deref()?,
        "chmod" if set_id => info.resolved_path.as_deref()?,
        _ => return None,
    };
    let system = crate::detect::system_program_dir(path.to_str()?).is_some();
    if !system && !set_id {
        return None;
    }
    let pid = info.process.pid;
    if info.operation == "openWrite" && system {
        wait_until_unheld(pid, path);
    }
    let rel = path.strip_prefix("/").ok()?;
    let inside = PathBuf::from(format!("/proc/{pid}/root")).join(rel);
    let (meta, at) = match fs::metadata(&inside) {
        Ok(meta) => (meta, inside),
        Err(_) if host => (fs::metadata(path).ok()?, path.to_path_buf()),
        // The writer is gone (a shell's `echo >` exits at once): its container's file, through
        // a process still in the container.
        Err(_) => {
            let other = container_root()?.join(rel);
            (fs::metadata(&other).ok()?, other)
        }
    };
    // A directory (a setgid one is how shared directories are made) or a device is no program.
    if !meta.is_file() {
        return None;
    }
    // Enough for a `#!` line's interpreter.
    let head = read_regular_file(&at, 128).unwrap_or_default();
    Some(crate::event::WrittenProgram {
        mode: meta.mode(),
        uid: meta.uid(),
        content: crate::event::ProgramContent::of(&head),
    })
}

/// How long the pipeline waits for a writer to let go of a program it writes.
const PROGRAM_WRITE_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// Waits, at most [`PROGRAM_WRITE_WAIT`] and within the thread's [`WAIT_BUDGET`], until `pid`
/// holds `path` open under no descriptor (it
/// closed it or exited). Not only the descriptor the open returned: a shell's redirection
/// (`cat x > /usr/bin/sudo`) moves it to standard output and closes the first before the
/// program it runs writes.
fn wait_until_unheld(pid: u32, path: &Path) {
    let dir = PathBuf::from(format!("/proc/{pid}/fd"));
    wait_while(PROGRAM_WRITE_WAIT, || {
        fs::read_dir(&dir).is_ok_and(|fds| {
            fds.flatten()
                .any(|fd| fs::read_link(fd.path()).is_ok_and(|target| target == path))
        })
    });
}

/// How much of a git configuration file the pipeline reads.
const GIT_CONFIG_MAX_BYTES: u64 = 64 * 1024;

/// The text of a git configuration file (`.gitconfig` in any directory, `/etc/gitconfig`) that
/// a process opened for writing (read once the writer closed it, as a kernel setting's value
/// is) or renamed into place (`git config` writes `.gitconfig.lock`, then renames it; `sed -i`
/// likewise). Only those files come here, and they are written rarely.
fn git_config_written(info: &crate::event::FileInfo) -> Option<String> {
    text_written(
        info,
        crate::detect::is_git_config,
        GIT_CONFIG_MAX_BYTES,
        wait_for_close,
    )
}

/// The text of a file of one kind (`wanted`) that a process opened for writing, read once
/// `wait` says the writer is done with it, or renamed or linked into place; at most `max`
/// bytes, from a regular file only.
fn text_written(
    info: &crate::event::FileInfo,
    wanted: fn(&Path) -> bool,
    max: u64,
    wait: impl FnOnce(u32, i64, &Path),
) -> Option<String> {
    if info.ret < 0 {
        return None;
    }
    let path = match info.operation {
        "openWrite" => info.resolved_path.as_deref()?,
        "rename" | "link" => info.resolved_path2.as_deref()?,
        _ => return None,
    };
    if !wanted(path) {
        return None;
    }
    if info.operation == "openWrite" {
        wait(info.process.pid, info.ret, path);
    }
    let text = read_regular_file(path, max)?;
    Some(String::from_utf8_lossy(&text).into_owned())
}

/// `S_ISUID | S_ISGID` and the execute bits: a chmod's mode that is news on any sensitive path.
const CHMOD_EXEC_OR_ID_BITS: u32 = 0o6111;

/// Whether a file record is kept: every operation but a chmod that adds no execute or set-id
/// bit, which the kernel sends for the bits it gives others (`chmod 0644 /etc/shadow`) and
/// which only the password hashes keep (`detect::is_password_hashes`): `chmod 644` of a cron
/// file or a `.bashrc` is nothing.
fn chmod_kept(info: &crate::event::FileInfo) -> bool {
    if info.operation != "chmod" {
        return true;
    }
    let mode = info
        .mode
        .as_deref()
        .and_then(|m| u32::from_str_radix(m, 8).ok())
        .unwrap_or(0);
    mode & CHMOD_EXEC_OR_ID_BITS != 0
        || info
            .resolved_path
            .as_deref()
            .is_some_and(crate::detect::is_password_hashes)
}

/// How much of a shell's script the pipeline reads for the substitutions it evaluates.
const SHELL_SCRIPT_MAX_BYTES: u64 = 64 * 1024;

/// How much of a kernel settings file the pipeline reads.
const SYSCTL_FILE_MAX_BYTES: u64 = 64 * 1024;

/// The text of a kernel settings file (`/etc/sysctl.conf`, a `.conf` file of a `sysctl.d`
/// directory) that a process opened for writing (read once the writer closed it) or renamed or
/// linked into place (`sed -i`, an editor's save). Only those files come here, and they are
/// written rarely.
fn sysctl_file_written(info: &crate::event::FileInfo) -> Option<String> {
    // Under any descriptor: a shell's redirection (`echo k=v > f`) moves the file to standard
    // output before the builtin writes.
    text_written(
        info,
        crate::detect::is_sysctl_file,
        SYSCTL_FILE_MAX_BYTES,
        |pid, _, path| wait_until_unheld(pid, path),
    )
}

/// At most `max` bytes of the file at `path`, a regular file only, opened without blocking: a
/// writer may have put a FIFO or a device there (through a link) to stall the pipeline. The
/// read-back of files a process wrote (git configurations, account files) goes through here.
fn read_regular_file(path: &Path, max: u64) -> Option<Vec<u8>> {
    use std::{io::Read, os::unix::fs::OpenOptionsExt};
    if !fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return None;
    }
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .ok()?;
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return None;
    }
    let mut bytes = Vec::new();
    file.take(max).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

/// The cgroup v2 id of a live process: the inode of its cgroup directory.
fn cgroup_id(proc_root: &Path, cgroup_root: Option<&Path>, pid: u32) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    let text = fs::read_to_string(proc_root.join(pid.to_string()).join("cgroup")).ok()?;
    let path = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    let dir = cgroup_root?.join(path.trim_start_matches('/'));
    fs::metadata(dir).ok().map(|m| m.ino())
}

/// `AT_FDCWD`.
const AT_FDCWD: i32 = -100;

/// Makes a path absolute against the directory it was relative to: the process's working
/// directory or the directory fd, read from `/proc` while the process is alive.
fn resolve_at(pid: u32, dirfd: i32, path: &str) -> Option<PathBuf> {
    let path = Path::new(path);
    if path.is_absolute() {
        return Some(normalize(path));
    }
    let base = if dirfd == AT_FDCWD {
        fs::read_link(format!("/proc/{pid}/cwd")).ok()?
    } else {
        fs::read_link(format!("/proc/{pid}/fd/{dirfd}")).ok()?
    };
    Some(normalize(&base.join(path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_for_writers_is_bounded_per_window() {
        let t0 = Instant::now();
        let mut budget = WaitBudget::default();
        assert_eq!(budget.allowed(t0), WAIT_BUDGET);
        budget.spend(Duration::from_millis(200));
        assert_eq!(
            budget.allowed(t0 + Duration::from_millis(500)),
            Duration::from_millis(50)
        );
        budget.spend(Duration::from_millis(80));
        // Spent past the budget: no wait at all until the window ends.
        assert_eq!(
            budget.allowed(t0 + Duration::from_millis(900)),
            Duration::ZERO
        );
        assert_eq!(budget.allowed(t0 + WAIT_WINDOW), WAIT_BUDGET);
        // A thread whose budget is spent reads at once: the writer is not even looked at. (The
        // window is put an hour ahead so that no pause of this thread can end it.)
        WAITS.with(|w| {
            w.set(WaitBudget {
                window_start: Some(Instant::now() + Duration::from_secs(3600)),
                spent: WAIT_BUDGET,
            })
        });
        let mut looked = 0;
        wait_while(Duration::from_secs(3600), || {
            looked += 1;
            true
        });
        assert_eq!(looked, 0);
    }

    #[test]
    fn a_file_written_before_its_container_started_came_with_it() {
        let host = ProcessRef::default();
        let contained = ProcessRef {
            container: Some(crate::container::Container {
                id: "cd".repeat(32),
                runtime: crate::container::Runtime::Podman,
                pod_uid: None,
                cgroup: "/machine.slice/libpod-x.scope".into(),
                described: None,
            }),
            ..ProcessRef::default()
        };
        let at = |time_ns| node_agent_common::WriterInfo {
            tgid: 7,
            time_ns,
            ..Default::default()
        };
        let started = 5_000_000_000;
        // The image's file, unpacked before the start (or a reused key's earlier write).
        assert!(written_before_container(
            &contained,
            &at(4_000_000_000),
            started
        ));
        assert!(written_before_container(&contained, &at(started), started));
        // Written once the container ran: new.
        assert!(!written_before_container(
            &contained,
            &at(started + 1),
            started
        ));
        // The host, and a start the kernel could not read: every write counts.
        assert!(!written_before_container(
            &host,
            &at(4_000_000_000),
            started
        ));
        assert!(!written_before_container(&contained, &at(4_000_000_000), 0));
    }

    #[test]
    fn a_setting_opened_through_another_procfs_is_kept_for_its_write_only() {
        let mut t = SettingsThrough::default();
        let core = PathBuf::from("/proc/sys/kernel/core_pattern");
        t.opened(
            7,
            core.clone(),
            PathBuf::from("/host_proc/sys/kernel/core_pattern"),
        );
        assert_eq!(t.take(8, &core), None, "another process");
        assert_eq!(
            t.take(7, Path::new("/proc/sys/kernel/randomize_va_space")),
            None
        );
        assert_eq!(
            t.take(7, &core),
            Some(PathBuf::from("/host_proc/sys/kernel/core_pattern"))
        );
        assert_eq!(t.take(7, &core), None, "taken once");
        for pid in 0..(SettingsThrough::MAX as u32 + 10) {
            t.opened(pid, core.clone(), PathBuf::from("/x"));
        }
        assert_eq!(t.0.len(), SettingsThrough::MAX);
        assert_eq!(t.take(0, &core), None, "the oldest went first");
    }

    #[test]
    fn chmods_that_only_give_others_access_are_kept_for_the_password_hashes() {
        let chmod = |path: &str, mode: &str| crate::event::FileInfo {
            time: String::new(),
            process: crate::event::ProcessRef::default(),
            operation: "chmod",
            path: path.to_owned(),
            resolved_path: Some(PathBuf::from(path)),
            path2: None,
            resolved_path2: None,
            ret: 0,
            error: None,
            open_flags: None,
            mode: Some(mode.to_owned()),
            owner: None,
            inode: None,
            matched_by: Vec::new(),
            proc_mem_pid: None,
            sysctl_value: None,
            sysctl_setting: None,
            sysctl_by_hook: false,
            git_config: None,
            sysctl_file: None,
            accounts_changed: None,
            hashes_owner: None,
            program_written: None,
            written_by: None,
            truncated: false,
        };
        assert!(chmod_kept(&chmod("/etc/shadow", "644")));
        assert!(chmod_kept(&chmod("/etc/gshadow", "100604")));
        // Elsewhere only execute and set-id bits are news.
        assert!(!chmod_kept(&chmod("/etc/cron.d/job", "644")));
        assert!(!chmod_kept(&chmod("/root/.bashrc", "666")));
        assert!(chmod_kept(&chmod("/etc/cron.d/job", "755")));
        assert!(chmod_kept(&chmod("/tmp/x", "4755")));
        let mut write = chmod("/etc/cron.d/job", "644");
        write.operation = "openWrite";
        assert!(chmod_kept(&write));
    }

    #[test]
    fn a_git_configuration_is_read_only_from_a_regular_file() {
        let dir = std::env::temp_dir().join(format!("vigil-gitconfig-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let renamed_onto = |path: &Path| crate::event::FileInfo {
            time: String::new(),
            process: crate::event::ProcessRef::default(),
            operation: "rename",
            path: String::new(),
            resolved_path: None,
            path2: None,
            resolved_path2: Some(path.to_path_buf()),
            ret: 0,
            error: None,
            open_flags: None,
            mode: None,
            owner: None,
            inode: None,
            matched_by: Vec::new(),
            proc_mem_pid: None,
            sysctl_value: None,
            sysctl_setting: None,
            sysctl_by_hook: false,
            git_config: None,
            sysctl_file: None,
            accounts_changed: None,
            hashes_owner: None,
            program_written: None,
            written_by: None,
            truncated: false,
        };
        let home = dir.join("home");
        fs::create_dir_all(&home).unwrap();
        let config = home.join(".gitconfig");
        fs::write(&config, "[core]\n\tpager = less\n").unwrap();
        assert_eq!(
            git_config_written(&renamed_onto(&config)).as_deref(),
            Some("[core]\n\tpager = less\n")
        );
        // Not a git configuration by name.
        let other = dir.join("config");
        fs::write(&other, "x").unwrap();
        assert_eq!(git_config_written(&renamed_onto(&other)), None);
        // A FIFO (here through a link) is not read: opening it would wait for a writer.
        let fifo = dir.join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let linked = dir.join("other").join(".gitconfig");
        fs::create_dir_all(linked.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&fifo, &linked).unwrap();
        assert_eq!(git_config_written(&renamed_onto(&linked)), None);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_account_file_is_read_whole_or_not_at_all() {
        let etc = std::env::temp_dir().join(format!("vigil-accounts-{}", std::process::id()));
        fs::create_dir_all(&etc).unwrap();
        fs::write(etc.join("passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        assert_eq!(
            account_file_text(&etc, AccountFile::Passwd).as_deref(),
            Some("root:x:0:0::/root:/bin/sh\n")
        );
        // A FIFO would block the pipeline until a writer came.
        let fifo = std::ffi::CString::new(etc.join("shadow").to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        assert_eq!(account_file_text(&etc, AccountFile::Shadow), None);
        // Over the cap: not a prefix (the names past it would look removed).
        let max = crate::detect::accounts::MAX_ACCOUNT_FILE_BYTES as usize;
        fs::write(etc.join("group"), "#".repeat(max + 1)).unwrap();
        assert_eq!(account_file_text(&etc, AccountFile::Group), None);
        fs::write(etc.join("group"), "#".repeat(max)).unwrap();
        assert!(account_file_text(&etc, AccountFile::Group).is_some());
        fs::remove_dir_all(&etc).unwrap();
    }

    /// A `#!` script whose process is gone before the agent reads `/proc/<pid>/exe`: the image
    /// is the interpreter argv names, checked against the inode the kernel ran; an argv[0] that
    /// does not lead to that inode changes nothing.
    #[test]
    fn a_gone_script_runs_its_interpreter_when_the_inode_says_so() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::Builder::new()
            .prefix("vigil-shebang-")
            .tempdir()
            .unwrap();
        let script = dir.path().join("upd");
        fs::write(&script, "#!/bin/sh\ntrue\n").unwrap();
        let shell = fs::canonicalize("/bin/sh").unwrap();
        let shell_ino = fs::metadata(&shell).unwrap().ino();
        let script_path = script.display().to_string();
        let resolved = |argv: &[&str], kernel_ino: u64| {
            let mut p = Pipeline::new(Clock::with_offset(0), "boot".into(), Limits::default());
            // SAFETY: a repr(C) record of integers and byte arrays: all zeros is a valid one.
            let ev: node_agent_common::ExecEvent = unsafe { std::mem::zeroed() };
            let mut info = crate::event::exec_info(&ev, &Clock::with_offset(0));
            // No such process: /proc/<pid>/exe cannot be read.
            info.process.pid = u32::MAX - 1;
            info.filename = script_path.clone();
            info.exe = script.clone();
            info.argv = argv.iter().map(|a| (*a).to_owned()).collect();
            info.exe_inode = kernel_ino;
            p.resolve_executable(&mut info);
            (info.exe, info.sha256.is_some())
        };
        assert_eq!(
            resolved(&["/bin/sh", &script_path], shell_ino),
            (shell.clone(), true)
        );
        assert_eq!(
            resolved(&["/bin/sh", "-e", &script_path], shell_ino),
            (shell.clone(), true)
        );
        // The kernel ran another inode: argv[0] is only what the caller chose.
        let other = fs::metadata("/bin/true").unwrap().ino();
        assert_eq!(
            resolved(&["/bin/sh", &script_path], other),
            (script.clone(), false)
        );
        // Not a script's argv: nothing to take.
        assert_eq!(resolved(&["upd"], shell_ino), (script.clone(), false));
    }

    #[test]
    fn normalize_is_lexical() {
        assert_eq!(
            normalize(Path::new("/etc/./ssh/../passwd")),
            PathBuf::from("/etc/passwd")
        );
        assert_eq!(normalize(Path::new("/../x")), PathBuf::from("/x"));
        assert_eq!(normalize(Path::new("/a//b/")), PathBuf::from("/a/b"));
    }

    /// A stream record of `cookie`, sent by `tgid` (0: from softirq, no task).
    fn stream_record(cookie: u64, tgid: u32, segment: u32) -> Vec<u64> {
        use node_agent_common::{EventHeader, STREAM_HEAD_LEN, StreamEvent, TaskIdentity, kind};
        let head = br#"{"id":2,"method":"mining.authorize","params":["w","x"]}"#;
        let mut ev = StreamEvent {
            header: EventHeader {
                kind: kind::STREAM,
                _pad: 0,
                size: std::mem::size_of::<StreamEvent>() as u32,
                ktime_ns: 1_000,
            },
            task: TaskIdentity {
                pid: tgid,
                tgid,
                start_time_ns: u64::from(tgid) * 10,
                comm: *b"backup-sync\0\0\0\0\0",
                ..TaskIdentity::default()
            },
            cookie,
            family: node_agent_common::family::INET,
            local_port: 40_000,
            remote_port: 3333,
            _pad: 0,
            addr: [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            segment,
            flags: 0,
            payload_len: head.len() as u32,
            head_len: head.len() as u32,
            head: [0; STREAM_HEAD_LEN],
        };
        ev.head[..head.len()].copy_from_slice(head);
        if tgid == 0 {
            ev.task = TaskIdentity::default();
            ev.flags = node_agent_common::stream_flags::OWNER_UNKNOWN;
        }
        let bytes = node_agent_common::decode::bytes_of(&ev);
        let mut words = vec![0u64; bytes.len().div_ceil(8)];
        // SAFETY: words holds at least bytes.len() bytes; u64 memory is 8-aligned, as the ring
        // buffer's records are.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                words.as_mut_ptr().cast::<u8>(),
                bytes.len(),
            )
        };
        words
    }

    fn as_bytes(words: &[u64]) -> &[u8] {
        // SAFETY: the u64s' memory viewed as bytes.
        unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), words.len() * 8) }
    }

    #[test]
    fn a_segment_sent_from_softirq_is_named_by_its_socket_s_earlier_segment() {
        let mut p = Pipeline::new(Clock::with_offset(0), "boot".into(), Limits::default());
        let sender = |e: Option<Event>| match e {
            Some(Event::Stream(s)) => (s.sender, s.process.pid),
            other => panic!("expected a stream event, got {other:?}"),
        };
        let size = std::mem::size_of::<node_agent_common::StreamEvent>();
        let first = stream_record(7, 4242, 0);
        assert_eq!(
            sender(p.handle(&as_bytes(&first)[..size])),
            ("socketLock", 4242)
        );
        let later = stream_record(7, 0, 1);
        assert_eq!(
            sender(p.handle(&as_bytes(&later)[..size])),
            ("earlierSegment", 4242)
        );
        let other_socket = stream_record(8, 0, 1);
        assert_eq!(
            sender(p.handle(&as_bytes(&other_socket)[..size])),
            ("unknown", 0)
        );
        // Bounded: the oldest socket is forgotten past the bound, and counted.
        for cookie in 100..100 + STREAM_SENDERS as u64 {
            p.stream_senders
                .insert(cookie, node_agent_common::TaskIdentity::default());
        }
        let table = p.stream_senders_tracked();
        assert_eq!(table.entries, STREAM_SENDERS as u64);
        assert_eq!(table.shed, 1);
        assert_eq!(sender(p.handle(&as_bytes(&later)[..size])), ("unknown", 0));
    }

    #[test]
    fn relative_paths_resolve_against_this_process() {
        let cwd = std::env::current_dir().expect("cwd");
        let resolved = resolve_at(std::process::id(), AT_FDCWD, "x/../y").expect("resolves");
        assert_eq!(resolved, normalize(&cwd.join("y")));
        assert_eq!(
            resolve_at(std::process::id(), AT_FDCWD, "/etc/passwd"),
            Some(PathBuf::from("/etc/passwd"))
        );
    }
}
