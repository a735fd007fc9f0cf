//! The kernel edge: loads the eBPF object, attaches each sensor to the best hook this kernel
//! offers, and hands out the ring buffer and the counters.

pub mod dirents;
mod guard;
mod hooks;
mod host;
pub mod reader;

use std::{collections::BTreeSet, fmt, path::PathBuf};

use aya::{
    Ebpf, EbpfLoader,
    maps::{HashMap as BpfHashMap, MapData, PerCpuArray, RingBuf},
};
use node_agent_common::{
    AgentConfig, FileKey, WriterInfo, maps,
    stats::{Hook, STATS_SLOTS, StatKind, stat_slot},
};
use serde::Serialize;
use vigil_detection::FindingType;

use crate::{btf_offsets, sensitive::SensitivePaths};
pub use guard::{GuardedProcesses, IdentitySource, SelfIdentity, guarded_kind};
pub use hooks::{HookState, HookStatus};
pub use host::{cgroup2_root, host_root};

/// The eBPF object built by `build.rs` from `node-agent-ebpf`.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vigil"));

/// Where the kernel publishes its BTF.
pub const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

/// How the sensor is started.
#[derive(Clone, Debug)]
pub struct SensorOptions {
    /// The kernel BTF to resolve struct offsets from.
    pub btf_path: PathBuf,
    /// Wake the reader once this many bytes wait (0: on every record).
    pub wakeup_bytes: u32,
    /// Repeats of a connection within this many ms of its last record are counted in the
    /// kernel, not sent (0: every one is sent).
    pub repeat_window_ms: u32,
    /// Hooks not to attach, by name (see `Hook::name`).
    pub disabled: Vec<String>,
    /// Finding types switched off (`--disable-finding`): not listed among the types that
    /// cannot fire, and, with `findings_only`, the hooks only they read are left off.
    pub disabled_findings: BTreeSet<FindingType>,
    /// Records become findings only, never printed events (`--findings-only`, cluster mode,
    /// detection on): hooks that no enabled finding type reads are not attached
    /// ([`HookState::NotNeeded`]).
    pub findings_only: bool,
    /// Benchmark only: attach the synthetic record generator for this process.
    pub synthetic: bool,
    /// Ring buffers to spread records over, by CPU group: a power of two up to
    /// [`maps::MAX_RINGS`]; `None` for one per four CPUs ([`maps::default_rings`]).
    pub rings: Option<u32>,
    /// What the file sensor reports.
    pub sensitive: SensitivePaths,
    /// The agent's own binary and configuration, watched for writes (self-protection); they are
    /// in `sensitive` too ([`SensitivePaths::with_agent_files`]).
    pub agent_files: Vec<PathBuf>,
    /// The host's root directory as the agent reaches it (`/` on the host;
    /// [`host::host_root`] finds it in a container), for the sensors that open the host's
    /// files by path (`file_dirents`).
    pub host_root: PathBuf,
    /// Executable file names of shells: their read-only opens of files written by others or
    /// on memory-backed file systems are reported (a script sourced by the running shell).
    pub shells: Vec<String>,
}

impl SensorOptions {
    /// One record per connection and process per second at most, however fast it repeats.
    pub const DEFAULT_REPEAT_WINDOW_MS: u32 = 1000;

    /// The built-in rules' `shells`, `busybox` (whose applets include `sh`: user space tells
    /// them apart by argv[0]) and the interpreters whose reads of code and of data the kernel
    /// tells apart (`perl`: docs/EFFICACY.md, "Scripts sourced by the running shell").
    pub fn default_shells() -> Vec<String> {
        let mut shells = crate::detect::RuleSet::builtin()
            .map(|r| r.behaviour().shells.clone())
            .unwrap_or_default();
        shells.push("busybox".to_owned());
        shells.extend(
            crate::detect::SOURCING_INTERPRETERS
                .iter()
                .map(|s| (*s).to_owned()),
        );
        shells
    }
}

impl Default for SensorOptions {
    fn default() -> Self {
        Self {
            btf_path: PathBuf::from(KERNEL_BTF),
            wakeup_bytes: 256 * 1024,
            repeat_window_ms: Self::DEFAULT_REPEAT_WINDOW_MS,
            disabled: Vec::new(),
            disabled_findings: BTreeSet::new(),
            findings_only: false,
            synthetic: false,
            rings: None,
            sensitive: SensitivePaths::default(),
            agent_files: Vec::new(),
            host_root: PathBuf::from("/"),
            shells: Self::default_shells(),
        }
    }
}

/// Why the sensor could not start. Each message is one paragraph: the cause, then the fix.
#[derive(Debug, thiserror::Error)]
pub enum SensorError {
    /// Loading eBPF needs privileges the process lacks.
    #[error(
        "Vigil cannot load eBPF programs: the process runs as uid {euid} without CAP_BPF and \
         CAP_PERFMON (or CAP_SYS_ADMIN) ({detail}). Run the agent as root (sudo node-agent \
         run), or grant it CAP_BPF and CAP_PERFMON to load its programs, CAP_NET_ADMIN for the \
         DNS hooks, CAP_DAC_READ_SEARCH to read tracefs and CAP_SYS_PTRACE to read other \
         users' /proc entries (CAP_SYS_RESOURCE only on kernels before 5.11); docs/SENSORS.md \
         (\"Privileges\") has the table."
    )]
    NotPermitted {
        /// The effective uid.
        euid: u32,
        /// What the kernel said.
        detail: String,
    },
    /// The kernel publishes no BTF, so struct offsets cannot be resolved.
    #[error(
        "Vigil needs the kernel's BTF type information and found none at {path}: this kernel \
         was built without CONFIG_DEBUG_INFO_BTF. Use a kernel with BTF (most distributions \
         ship it from Linux 5.8 on; check that {path} exists), or point --btf-path at a BTF \
         file for this exact kernel. ({source})"
    )]
    NoBtf {
        /// The path that was tried.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: btf_offsets::BtfOffsetsError,
    },
    /// The binary was built without the eBPF object (`AYA_BUILD_SKIP=1`).
    #[error(
        "this node-agent binary carries no eBPF programs: it was built with AYA_BUILD_SKIP=1. \
         Rebuild it without that variable after running scripts/bootstrap.sh, which installs \
         the nightly toolchain and bpf-linker the eBPF build needs."
    )]
    NoObject,
    /// The object itself (maps, relocations) could not be loaded.
    #[error(
        "the kernel refused Vigil's eBPF maps or object: {source}. This usually means the \
         kernel lacks ring buffers (Linux 5.8 or later is needed) or memory for maps is locked \
         down; check `dmesg` and the kernel version, and run the agent as root."
    )]
    Object {
        /// aya's error.
        #[source]
        source: aya::EbpfError,
    },
    /// No sensor could be attached at all.
    #[error(
        "no sensor could be attached, so Vigil would see nothing: {summary}. Each line names \
         the hook and the kernel's answer; if the verifier rejected a program, please report \
         it with the output of `node-agent probe`."
    )]
    NothingAttached {
        /// Per-hook reasons.
        summary: String,
    },
    /// The sensitive-path maps could not be filled.
    #[error(
        "cannot load the sensitive-path set into the kernel ({0}); the file sensor needs the \
         SENSITIVE_PREFIXES and SENSITIVE_NAMES maps (at most 1024 entries each)"
    )]
    SensitivePaths(String),
    /// The shell names could not be loaded into the kernel.
    #[error(
        "cannot load the shell names into the kernel ({0}); the file sensor needs the \
         SHELL_NAMES map (at most 64 names of at most 15 bytes)"
    )]
    ShellNames(String),
    /// A ring count the programs cannot spread records over.
    #[error(
        "cannot spread records over {0} ring buffers: the count must be a power of two from 1 \
         to {max} (--rings)",
        max = maps::MAX_RINGS
    )]
    Rings(u32),
    /// Something in the host set-up failed (tracefs, cgroup v2).
    #[error("{0}")]
    Host(#[from] host::HostError),
}

/// The kernel's written-files map, read from user space, with its count of files added.
pub struct WrittenFiles {
    map: BpfHashMap<MapData, FileKey, WriterInfo>,
    added: Option<PerCpuArray<MapData, u64>>,
}

impl WrittenFiles {
    /// Who opened the file for writing since the agent started, if the map still holds it.
    pub fn writer(&self, key: &FileKey) -> Option<WriterInfo> {
        self.map.get(key, 0).ok()
    }

    /// Files added to the map since the agent started, all CPUs together (the map holds at
    /// most [`node_agent_common::WRITTEN_FILES_MAX`]; past that, older ones were evicted).
    /// `None` when the counter cannot be read.
    pub fn added(&self) -> Option<u64> {
        let values = self.added.as_ref()?.get(&0, 0).ok()?;
        Some(values.iter().fold(0u64, |sum, v| sum.wrapping_add(*v)))
    }
}

/// A running sensor: the loaded programs (they detach when this is dropped), the ring buffer
/// and the counters.
pub struct Sensor {
    ebpf: Ebpf,
    rings: Option<Vec<RingBuf<MapData>>>,
    written: Option<WrittenFiles>,
    stats: PerCpuArray<MapData, u64>,
    hooks: Vec<HookStatus>,
    wanted: Vec<Hook>,
    disabled_findings: BTreeSet<FindingType>,
    setup: HostSetup,
    identity: SelfIdentity,
    dirents: Option<dirents::DirentWatch>,
    dirent_counters: Option<std::sync::Arc<dirents::DirentCounters>>,
    /// `max_entries` of the per-CPU LRU maps as loaded.
    lru_entries: u32,
}

/// What the start-up did to and learned about the host, for the health summary.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostSetup {
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// Whether tracefs had to be mounted by the agent.
    pub mounted_tracefs: bool,
    /// The warning if RLIMIT_MEMLOCK could not be raised (harmless from Linux 5.11).
    pub memlock_warning: Option<String>,
    /// The cgroup v2 mount the network hooks attach to.
    pub cgroup2_root: Option<PathBuf>,
    /// Kernel struct fields BTF did not have (their values are reported as 0).
    pub missing_offsets: Vec<String>,
    /// Ring buffers the programs write to (one per group of CPUs).
    pub rings: u32,
    /// Bytes of each of them.
    pub ring_bytes: u32,
}

/// Counters of one hook, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HookCounters {
    /// Records written to the ring buffer.
    pub sent: u64,
    /// Records lost because the ring buffer was full.
    pub dropped: u64,
    /// Records lost or incomplete because a kernel read or map update failed.
    pub errors: u64,
    /// Events deliberately not reported (the agent's own, threads).
    pub filtered: u64,
    /// Repeats counted in the kernel and carried by a later record instead of sent.
    pub folded: u64,
    /// Paths the kernel could not walk from its objects (too deep or too long for the walk, or
    /// a failed read): matched by the string the process passed, or by the file name only.
    pub unresolved: u64,
}

impl Sensor {
    /// Prepares the host, loads the object and attaches every sensor it can.
    pub fn start(options: &SensorOptions) -> Result<Self, SensorError> {
        if OBJECT.is_empty() {
            return Err(SensorError::NoObject);
        }
        host::check_privileges()?;
        let resolved =
            btf_offsets::resolve(&options.btf_path).map_err(|source| SensorError::NoBtf {
                path: options.btf_path.clone(),
                source,
            })?;
        let mut setup = HostSetup {
            kernel: host::kernel_release(),
            missing_offsets: resolved.missing.iter().map(|s| (*s).to_owned()).collect(),
            ..HostSetup::default()
        };
        setup.memlock_warning = host::raise_memlock();
        if let Some(warning) = &setup.memlock_warning {
            tracing::warn!(%warning, "RLIMIT_MEMLOCK not raised; kernels from 5.11 do not need it");
        }
        setup.mounted_tracefs = host::ensure_tracefs()?;
        setup.cgroup2_root = host::cgroup2_root();

        // Each CPU gets its own share of the per-CPU LRU maps, and a group of CPUs its own ring.
        let cpus = match aya::util::nr_cpus() {
            Ok(cpus) => Some(u32::try_from(cpus).unwrap_or(u32::MAX)),
            Err((path, error)) => {
                tracing::warn!(path, %error, "cannot count the CPUs: per-CPU maps keep their default size, and one ring buffer");
                None
            }
        };
        let rings = match options.rings {
            Some(rings) if maps::valid_rings(rings) => rings,
            Some(rings) => return Err(SensorError::Rings(rings)),
            None => cpus.map_or(1, maps::default_rings),
        };
        setup.rings = rings;
        setup.ring_bytes = maps::ring_bytes(rings);
        let marker_nonce = guard::nonce();
        let config = AgentConfig {
            marker_nonce,
            wakeup_bytes: options.wakeup_bytes,
            bench_tgid: if options.synthetic {
                std::process::id()
            } else {
                0
            },
            repeat_window_ms: options.repeat_window_ms,
            offsets: resolved.offsets,
            // Before the programs load: a file changed while they load counts as changed since.
            start_realtime_sec: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            ring_mask: rings - 1,
            _pad: 0,
        };
        let btf = aya::Btf::from_sys_fs().ok();
        let mut loader = EbpfLoader::new();
        loader
            .btf(btf.as_ref())
            .override_global("VIGIL_CONFIG", &config, true);
        // No CPU's share of a per-CPU LRU map is smaller than on a small machine
        // (`node_agent_common::maps`).
        let lru_entries = cpus.map_or(maps::LRU_ENTRIES, maps::per_cpu_lru_entries);
        for name in maps::PER_CPU_LRU_MAPS {
            loader.map_max_entries(name, lru_entries);
        }
        tracing::debug!(entries = lru_entries, "per-CPU LRU maps sized");
        // The rings not in use get one page, the least a ring buffer can have.
        let page = u32::try_from(host::page_size()).unwrap_or(4096);
        for (ring, name) in (0..).zip(maps::RING_NAMES) {
            let bytes = if ring < rings { setup.ring_bytes } else { page };
            loader.map_max_entries(name, bytes);
        }
        tracing::debug!(rings, bytes = setup.ring_bytes, "ring buffers sized");
        let mut ebpf = loader.load(OBJECT).map_err(|source| match &source {
            aya::EbpfError::MapError(aya::maps::MapError::CreateError { io_error, .. })
                if io_error.raw_os_error() == Some(libc::EPERM) =>
            {
                SensorError::NotPermitted {
                    euid: host::euid(),
                    detail: io_error.to_string(),
                }
            }
            _ => SensorError::Object { source },
        })?;
        // The loader copied what it needs out of the object: its pages (about 4 MiB) need
        // not stay resident.
        crate::memory::release_static(OBJECT);

        load_sensitive_paths(&mut ebpf, &options.sensitive)?;
        load_shell_names(&mut ebpf, &options.shells)?;
        // Before any sensor attaches: the programs filter the agent's own tasks by this.
        let identity = guard::learn_identity(&mut ebpf, marker_nonce);
        let loading = std::time::Instant::now();
        let hooks = hooks::attach_all(
            &mut ebpf,
            btf.as_ref(),
            setup.cgroup2_root.as_deref(),
            options,
            &config.offsets,
        );
        tracing::info!(
            took_ms = loading.elapsed().as_millis() as u64,
            "sensor programs verified and attached"
        );
        match guard::register_objects(&mut ebpf) {
            Ok(n) => tracing::debug!(objects = n, "the agent's BPF objects are watched"),
            Err(error) => {
                tracing::warn!(%error, "cannot list the agent's BPF objects for self-protection")
            }
        }
        if !hooks.iter().any(|h| h.state == HookState::Active) {
            let summary = hooks
                .iter()
                .map(|h| h.to_string())
                .collect::<Vec<_>>()
                .join("; ");
            if hooks.iter().any(|h| h.is_permission_error()) {
                return Err(SensorError::NotPermitted {
                    euid: host::euid(),
                    detail: summary,
                });
            }
            return Err(SensorError::NothingAttached { summary });
        }
        let mut hooks = hooks;
        let (dirents, dirent_status) = start_dirents(options);
        tracing::debug!(status = %dirent_status, "directory-entry sensor");
        hooks.push(dirent_status);
        let dirent_counters = dirents.as_ref().map(dirents::DirentWatch::counters);
        let ring_maps: Option<Vec<_>> = maps::RING_NAMES[..rings as usize]
            .iter()
            .map(|name| ebpf.take_map(name).and_then(|m| RingBuf::try_from(m).ok()))
            .collect();
        let added = ebpf
            .take_map("WRITTEN_ADDED")
            .and_then(|m| PerCpuArray::try_from(m).ok());
        let written = ebpf
            .take_map("WRITTEN")
            .and_then(|m| BpfHashMap::try_from(m).ok())
            .map(|map| WrittenFiles { map, added });
        let stats = ebpf
            .take_map("STATS")
            .and_then(|m| PerCpuArray::try_from(m).ok())
            .ok_or_else(|| SensorError::NothingAttached {
                summary: "the STATS map is missing from the eBPF object".to_owned(),
            })?;
        Ok(Self {
            ebpf,
            rings: ring_maps,
            written,
            stats,
            hooks,
            wanted: hooks::wanted(options),
            disabled_findings: options.disabled_findings.clone(),
            setup,
            identity,
            dirents,
            dirent_counters,
            lru_entries,
        })
    }

    /// Takes the directory-entry sensor (fanotify), for the reader. Only the first call gets
    /// it; `None` when it did not start (its hook status says why).
    pub fn take_dirents(&mut self) -> Option<dirents::DirentWatch> {
        self.dirents.take()
    }

    /// The directory-entry sensor's counters, when it started.
    pub fn dirent_stats(&self) -> Option<dirents::DirentStats> {
        self.dirent_counters.as_ref().map(|c| c.snapshot())
    }

    /// Takes the kernel's written-files map (who opened each regular file for writing since the
    /// agent started), for the reader task. Only the first call gets it.
    pub fn take_written(&mut self) -> Option<WrittenFiles> {
        self.written.take()
    }

    /// Takes the kernel's map of guarded processes (the host's other security agents and
    /// miners, by the executable names `agents` and `miners`), for the pipeline to keep. Only
    /// the first call gets it; `None` when the object has no such map.
    pub fn take_guarded(
        &mut self,
        agents: Vec<String>,
        miners: Vec<String>,
    ) -> Option<GuardedProcesses> {
        GuardedProcesses::take(&mut self.ebpf, agents, miners)
    }

    /// Takes the ring buffers in use, for the reader task (`reader::Reader`). Only the first
    /// call gets them.
    pub fn take_rings(&mut self) -> Option<Vec<RingBuf<MapData>>> {
        self.rings.take()
    }

    /// Which hooks are active, and why the others are not.
    pub fn hooks(&self) -> &[HookStatus] {
        &self.hooks
    }

    /// Whether `hook` attached and runs.
    pub fn is_active(&self, hook: node_agent_common::stats::Hook) -> bool {
        self.hooks
            .iter()
            .any(|h| h.hook == hook.name() && h.state == HookState::Active)
    }

    /// What start-up found and did.
    pub fn setup(&self) -> &HostSetup {
        &self.setup
    }

    /// Who the agent is in the kernel's numbering.
    pub fn identity(&self) -> SelfIdentity {
        self.identity
    }

    /// The enabled finding types that cannot fire because a hook they need is not active, with
    /// the state of those hooks (the disabled ones are off by choice).
    pub fn unreachable_finding_types(&self) -> Vec<crate::detect::coverage::Unreachable> {
        let mut gone = crate::detect::coverage::unreachable(|hook| {
            match self.hooks.iter().find(|s| s.hook == hook.name()) {
                Some(s) if s.state == HookState::Active => None,
                Some(s) => Some(s.to_string()),
                None => Some(format!("{} not attached", hook.name())),
            }
        });
        gone.retain(|u| {
            !self
                .disabled_findings
                .iter()
                .any(|t| t.as_str() == u.finding_type)
        });
        gone
    }

    /// The kernel's table of DNS sockets as a tracked table: sockets added (the `dns_socket`
    /// hook's sent count) against its size; `shed` is how many entries the additions past its
    /// size evicted at the least (each CPU evicts from its own share, so there can be more).
    /// `None` when the hook is not wanted.
    pub fn dns_sockets_tracked(&self) -> Option<crate::tracked::TrackedTable> {
        if !self.wanted.contains(&Hook::DnsSocket) {
            return None;
        }
        let added = self.hook_counters(Hook::DnsSocket).sent;
        let max = u64::from(self.lru_entries);
        Some(crate::tracked::TrackedTable::by_entries(
            "kernelDnsSockets",
            added.min(max),
            max,
            added.saturating_sub(max),
        ))
    }

    /// The counters of every hook, summed over CPUs.
    pub fn counters(&self) -> Vec<(Hook, HookCounters)> {
        self.wanted
            .iter()
            .map(|&hook| (hook, self.hook_counters(hook)))
            .collect()
    }

    fn hook_counters(&self, hook: Hook) -> HookCounters {
        let read = |kind: StatKind| -> u64 {
            let slot = stat_slot(hook, kind);
            if slot >= STATS_SLOTS {
                return 0;
            }
            self.stats
                .get(&slot, 0)
                .map(|values| values.iter().sum())
                .unwrap_or(0)
        };
        HookCounters {
            sent: read(StatKind::Sent),
            dropped: read(StatKind::Dropped),
            errors: read(StatKind::Errors),
            filtered: read(StatKind::Filtered),
            folded: read(StatKind::Folded),
            unresolved: read(StatKind::Unresolved),
        }
    }
}

impl fmt::Debug for Sensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sensor")
            .field("hooks", &self.hooks)
            .field("setup", &self.setup)
            .finish_non_exhaustive()
    }
}

/// The cgroup v2 hierarchy at `root`: `root` itself on a pure v2 host, its `unified/` on a
/// hybrid one (a host mount of `/sys/fs/cgroup` inside a container).
pub fn unified_cgroup(root: &std::path::Path) -> PathBuf {
    let unified = root.join("unified");
    if !root.join("cgroup.controllers").exists() && unified.join("cgroup.procs").exists() {
        unified
    } else {
        root.to_owned()
    }
}

/// Starts the directory-entry sensor unless disabled; its status for the hook list.
fn start_dirents(options: &SensorOptions) -> (Option<dirents::DirentWatch>, HookStatus) {
    let status = |state| HookStatus {
        hook: dirents::HOOK_NAME,
        mechanism: "fanotify",
        state,
    };
    if options.disabled.iter().any(|d| d == dirents::HOOK_NAME) {
        return (None, status(HookState::Disabled));
    }
    if options.findings_only
        && let Some(reason) =
            crate::detect::coverage::dirents_need(&options.disabled_findings).reason()
    {
        return (None, status(HookState::NotNeeded(reason)));
    }
    match dirents::DirentWatch::start(&options.sensitive, std::process::id(), &options.host_root) {
        Ok(watch) => (Some(watch), status(HookState::Active)),
        Err(error @ (dirents::DirentError::Init(_) | dirents::DirentError::Unprivileged)) => {
            tracing::warn!(%error, "renames and links through other paths are not seen");
            (None, status(HookState::Unsupported(error.to_string())))
        }
        Err(error) => {
            tracing::warn!(%error, "renames and links through other paths are not seen");
            (None, status(HookState::Failed(error.to_string())))
        }
    }
}

/// Bytes of a shell's executable name the kernel compares (`SHELL_NAME_LEN`), its NUL
/// included.
const SHELL_NAME_LEN: usize = 16;
/// Entries of the kernel's `SHELL_NAMES`.
const SHELL_NAMES_MAX: usize = 64;

/// Fills the kernel's shell names (`SHELL_NAMES`).
fn load_shell_names(ebpf: &mut Ebpf, shells: &[String]) -> Result<(), SensorError> {
    use aya::maps::HashMap;
    let fail = |e: &dyn fmt::Display| SensorError::ShellNames(e.to_string());
    let keys = shell_name_keys(shells).map_err(|e| fail(&e))?;
    let mut names: HashMap<_, [u8; SHELL_NAME_LEN], u32> = ebpf
        .map_mut("SHELL_NAMES")
        .ok_or_else(|| fail(&"SHELL_NAMES missing"))?
        .try_into()
        .map_err(|e: aya::maps::MapError| fail(&e))?;
    for (key, kind) in keys {
        names.insert(key, kind, 0).map_err(|e| fail(&e))?;
    }
    Ok(())
}

/// The kernel's keys for shell names (NUL-padded, each name a file name shorter than the key),
/// with how each shell sources (`shell_kind`).
fn shell_name_keys(shells: &[String]) -> Result<Vec<([u8; SHELL_NAME_LEN], u32)>, String> {
    let mut keys = Vec::new();
    for name in shells {
        if name.is_empty() || name.len() >= SHELL_NAME_LEN || name.contains(['/', '\0']) {
            return Err(format!(
                "shell name {name:?}: want a file name of 1 to {} bytes",
                SHELL_NAME_LEN - 1
            ));
        }
        let mut key = [0u8; SHELL_NAME_LEN];
        key[..name.len()].copy_from_slice(name.as_bytes());
        let kind = match name.as_str() {
            "bash" => node_agent_common::shell_kind::BASH,
            "perl" => node_agent_common::shell_kind::PERL,
            _ => node_agent_common::shell_kind::OTHER,
        };
        if !keys.iter().any(|(k, _)| *k == key) {
            keys.push((key, kind));
        }
    }
    if keys.len() > SHELL_NAMES_MAX {
        return Err(format!(
            "{} shell names, at most {SHELL_NAMES_MAX}",
            keys.len()
        ));
    }
    Ok(keys)
}

/// Fills the kernel's sensitive-path maps.
fn load_sensitive_paths(ebpf: &mut Ebpf, set: &SensitivePaths) -> Result<(), SensorError> {
    use aya::maps::{
        HashMap,
        lpm_trie::{Key, LpmTrie},
    };
    let fail = |e: &dyn fmt::Display| SensorError::SensitivePaths(e.to_string());
    set.validate().map_err(|e| fail(&e))?;
    let mut trie: LpmTrie<_, [u8; 128], u32> = ebpf
        .map_mut("SENSITIVE_PREFIXES")
        .ok_or_else(|| fail(&"SENSITIVE_PREFIXES missing"))?
        .try_into()
        .map_err(|e: aya::maps::MapError| fail(&e))?;
    for (bits, data) in set.trie_entries() {
        trie.insert(&Key::new(bits, data), 1, 0)
            .map_err(|e| fail(&e))?;
    }
    let mut names: HashMap<_, [u8; 32], u32> = ebpf
        .map_mut("SENSITIVE_NAMES")
        .ok_or_else(|| fail(&"SENSITIVE_NAMES missing"))?
        .try_into()
        .map_err(|e: aya::maps::MapError| fail(&e))?;
    for key in set.name_keys() {
        names.insert(key, 1, 0).map_err(|e| fail(&e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_names_become_padded_kernel_keys_and_bad_names_are_refused() {
        let keys = shell_name_keys(&["sh".into(), "bash".into(), "sh".into()]).expect("keys");
        assert_eq!(keys.len(), 2, "duplicates once");
        assert_eq!(&keys[1].0[..5], b"bash\0");
        assert!(keys[1].0[4..].iter().all(|&b| b == 0));
        assert_eq!(keys[1].1, node_agent_common::shell_kind::BASH);
        assert_eq!(keys[0].1, node_agent_common::shell_kind::OTHER);
        let perl = shell_name_keys(&["perl".into()]).expect("perl");
        assert_eq!(perl[0].1, node_agent_common::shell_kind::PERL);
        for bad in ["", "/bin/sh", "a-name-of-16-byt", "nul\0"] {
            assert!(shell_name_keys(&[bad.to_owned()]).is_err(), "{bad:?}");
        }
        let many: Vec<String> = (0..=SHELL_NAMES_MAX).map(|i| format!("sh{i}")).collect();
        assert!(shell_name_keys(&many).is_err());
        let defaults = SensorOptions::default().shells;
        assert!(defaults.iter().any(|s| s == "bash"));
        assert!(defaults.iter().any(|s| s == "perl"));
    }
}
