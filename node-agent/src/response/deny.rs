//! The kernel deny hook: loads the `vigil-response` object, fills its address maps from the
//! threat lists chosen for denial, switches between dry run and enforcement, and attaches the
//! cgroup `connect4`/`connect6` programs to the cgroup v2 root (the host) or to one cgroup (a
//! pod).
//!
//! The programs look up the address the kernel is about to connect to, so what is denied is
//! what the socket would reach, whatever the process calls itself.

use std::{
    collections::{BTreeMap, HashSet},
    fs::File,
    net::IpAddr,
    path::{Path, PathBuf},
};

use aya::{
    Ebpf, EbpfLoader,
    maps::{
        Array, MapData, MapError, PerCpuArray,
        lpm_trie::{Key, LpmTrie},
    },
    programs::{
        CgroupAttachMode, CgroupSockAddr, ProgramError, cgroup_sock_addr::CgroupSockAddrLinkId,
    },
};
use node_agent_common::response::{
    DENY_V4_ENTRIES, DENY_V6_ENTRIES, MODE_DRY_RUN, MODE_ENFORCE, STAT_CHECKED, STAT_DENIED,
    STAT_WOULD_DENY,
};
use serde::Serialize;
use vigil_detection::{IpNet, ThreatIntel};

use super::config::{Mode, ThreatListChoice};
use crate::sensor::{HookState, HookStatus};

/// The response object built by `build.rs` from `node-agent-ebpf/src/response.rs`.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vigil-response"));

/// The two programs, one per address family.
const PROGRAMS: [&str; 2] = ["deny_connect4", "deny_connect6"];

/// Why the deny hook could not be set up or changed.
#[derive(Debug, thiserror::Error)]
pub enum DenyError {
    /// The binary was built without eBPF objects (`AYA_BUILD_SKIP=1`).
    #[error(
        "this node-agent binary carries no response eBPF object (built with AYA_BUILD_SKIP=1); \
         rebuild it without that variable to use the kernel deny action"
    )]
    NoObject,
    /// The object's maps could not be created.
    #[error(
        "the kernel refused the response object's maps: {0} (run the agent as root, or with CAP_BPF)"
    )]
    Load(#[source] aya::EbpfError),
    /// A program is missing from the object or was refused by the kernel.
    #[error("the kernel deny program {program} could not be loaded or attached: {reason}")]
    Program {
        /// The program.
        program: &'static str,
        /// What the kernel or aya said.
        reason: String,
    },
    /// A map is missing or could not be read or written.
    #[error("the response map {map} failed: {source}")]
    Map {
        /// The map.
        map: &'static str,
        /// aya's error.
        #[source]
        source: MapError,
    },
    /// The cgroup to attach to could not be opened.
    #[error("cannot open the cgroup {path} to attach the deny hook: {source}")]
    Cgroup {
        /// The cgroup directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// No cgroup v2 hierarchy is mounted, so there is no root to attach to.
    #[error(
        "no cgroup v2 hierarchy is mounted (looked in /proc/self/mountinfo); the kernel deny \
         hook attaches to cgroup v2 (pure v2, or the unified mount of a hybrid host)"
    )]
    NoCgroup2,
}

/// What the hook did, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DenyCounters {
    /// Connects looked at.
    pub checked: u64,
    /// Connects refused with `EPERM` (enforce).
    pub denied: u64,
    /// Connects to a denied address let through (dry run).
    pub would_deny: u64,
}

/// What filling the maps from the threat lists did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FillReport {
    /// The threat lists chosen, by name.
    pub lists: Vec<String>,
    /// IPv4 networks in the map.
    pub v4: usize,
    /// IPv6 networks in the map.
    pub v6: usize,
    /// Networks left out because the map was full (the maps' bounds: 65,536 IPv4, 16,384
    /// IPv6); never silent: logged at start and in the health summary.
    pub left_out: usize,
}

/// The loaded deny hook. Dropping it detaches the programs everywhere.
pub struct KernelDeny {
    ebpf: Ebpf,
    attached: BTreeMap<PathBuf, Vec<(&'static str, CgroupSockAddrLinkId)>>,
    mode: Mode,
}

impl std::fmt::Debug for KernelDeny {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelDeny")
            .field("attached", &self.attached.keys().collect::<Vec<_>>())
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

fn program_error(program: &'static str) -> impl Fn(ProgramError) -> DenyError {
    move |e| {
        // aya's message names the call; the kernel's answer is in the source.
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            reason.push_str(": ");
            reason.push_str(&s.to_string());
            source = s.source();
        }
        DenyError::Program { program, reason }
    }
}

impl KernelDeny {
    /// Loads and verifies both programs (nothing attached yet) and sets `mode`.
    pub fn load(mode: Mode) -> Result<Self, DenyError> {
        if OBJECT.is_empty() {
            return Err(DenyError::NoObject);
        }
        let btf = aya::Btf::from_sys_fs().ok();
        let mut ebpf = EbpfLoader::new()
            .btf(btf.as_ref())
            .load(OBJECT)
            .map_err(DenyError::Load)?;
        for program in PROGRAMS {
            let prog: &mut CgroupSockAddr = ebpf
                .program_mut(program)
                .ok_or(DenyError::Program {
                    program,
                    reason: "missing from the object".into(),
                })?
                .try_into()
                .map_err(program_error(program))?;
            prog.load().map_err(program_error(program))?;
        }
        let mut deny = Self {
            ebpf,
            attached: BTreeMap::new(),
            mode,
        };
        deny.set_mode(mode)?;
        Ok(deny)
    }

    /// Switches between dry run (hits counted, connects go ahead) and enforcement (hits
    /// refused with `EPERM`); takes effect on the next connect.
    pub fn set_mode(&mut self, mode: Mode) -> Result<(), DenyError> {
        let map = "DENY_MODE";
        let mut array: Array<&mut MapData, u32> = self
            .ebpf
            .map_mut(map)
            .ok_or(DenyError::Map {
                map,
                source: MapError::InvalidName { name: map.into() },
            })?
            .try_into()
            .map_err(|source| DenyError::Map { map, source })?;
        let value = match mode {
            Mode::DryRun => MODE_DRY_RUN,
            Mode::Enforce => MODE_ENFORCE,
        };
        array
            .set(0, value, 0)
            .map_err(|source| DenyError::Map { map, source })?;
        self.mode = mode;
        Ok(())
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Replaces the maps' contents with the networks of the chosen threat lists in `intel`
    /// (new ones added first, then stale ones removed, so a reload never opens a gap).
    pub fn fill(
        &mut self,
        intel: &ThreatIntel,
        choice: &ThreatListChoice,
    ) -> Result<FillReport, DenyError> {
        let chosen: u64 = intel
            .lists()
            .iter()
            .enumerate()
            .filter(|(_, l)| choice.selects(&l.name, &l.feeds))
            .fold(0, |mask, (i, _)| mask | 1u64 << (i & 63));
        let mut report = FillReport {
            lists: intel
                .lists()
                .iter()
                .filter(|l| choice.selects(&l.name, &l.feeds))
                .map(|l| l.name.clone())
                .collect(),
            ..FillReport::default()
        };
        let mut wanted: Vec<(IpNet, u64)> = Vec::new();
        if chosen != 0 {
            for (net, lists) in intel.ip_networks() {
                let mask = lists.mask() & chosen;
                if mask != 0 {
                    wanted.push((net, mask));
                }
            }
        }
        let (v4, v6): (Vec<_>, Vec<_>) = wanted.into_iter().partition(|(n, _)| n.addr().is_ipv4());
        let (kept, left) = self.replace::<4>("DENY_V4", v4, DENY_V4_ENTRIES as usize)?;
        report.v4 = kept;
        report.left_out += left;
        let (kept, left) = self.replace::<16>("DENY_V6", v6, DENY_V6_ENTRIES as usize)?;
        report.v6 = kept;
        report.left_out += left;
        if report.left_out > 0 {
            tracing::warn!(
                left_out = report.left_out,
                "the kernel deny maps are full: some listed networks are not denied"
            );
        }
        Ok(report)
    }

    /// Adds one network (tests, and addresses learned at run time).
    pub fn insert(&mut self, net: IpNet, lists: u64) -> Result<(), DenyError> {
        match net.addr() {
            IpAddr::V4(a) => {
                let map = "DENY_V4";
                let mut trie = self.trie::<4>(map)?;
                trie.insert(&Key::new(u32::from(net.prefix()), a.octets()), lists, 0)
                    .map_err(|source| DenyError::Map { map, source })
            }
            IpAddr::V6(a) => {
                let map = "DENY_V6";
                let mut trie = self.trie::<16>(map)?;
                trie.insert(&Key::new(u32::from(net.prefix()), a.octets()), lists, 0)
                    .map_err(|source| DenyError::Map { map, source })
            }
        }
    }

    /// Whether the maps deny `ip` (an IPv4-mapped IPv6 address is looked up as IPv4, as the
    /// kernel program does).
    pub fn denies(&mut self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        match ip {
            IpAddr::V4(a) => self
                .trie::<4>("DENY_V4")
                .is_ok_and(|t| t.get(&Key::new(32, a.octets()), 0).is_ok()),
            IpAddr::V6(a) => self
                .trie::<16>("DENY_V6")
                .is_ok_and(|t| t.get(&Key::new(128, a.octets()), 0).is_ok()),
        }
    }

    fn trie<const N: usize>(
        &mut self,
        map: &'static str,
    ) -> Result<LpmTrie<&mut MapData, [u8; N], u64>, DenyError> {
        self.ebpf
            .map_mut(map)
            .ok_or(DenyError::Map {
                map,
                source: MapError::InvalidName { name: map.into() },
            })?
            .try_into()
            .map_err(|source| DenyError::Map { map, source })
    }

    /// Makes the map hold exactly `nets` (up to `capacity`): (kept, left out).
    fn replace<const N: usize>(
        &mut self,
        map: &'static str,
        nets: Vec<(IpNet, u64)>,
        capacity: usize,
    ) -> Result<(usize, usize), DenyError> {
        let mut trie = self.trie::<N>(map)?;
        let err = |source| DenyError::Map { map, source };
        let mut keep: HashSet<(u32, [u8; N])> = HashSet::new();
        let mut left_out = 0;
        for (net, mask) in nets {
            let data: [u8; N] = match net.addr() {
                IpAddr::V4(a) => match <[u8; N]>::try_from(&a.octets()[..]) {
                    Ok(d) => d,
                    Err(_) => continue,
                },
                IpAddr::V6(a) => match <[u8; N]>::try_from(&a.octets()[..]) {
                    Ok(d) => d,
                    Err(_) => continue,
                },
            };
            let prefix = u32::from(net.prefix());
            if keep.len() >= capacity {
                left_out += 1;
                continue;
            }
            match trie.insert(&Key::new(prefix, data), mask, 0) {
                Ok(()) => {
                    keep.insert((prefix, data));
                }
                // Full (entries from an earlier fill not yet removed count too).
                Err(MapError::SyscallError(_)) => left_out += 1,
                Err(e) => return Err(err(e)),
            }
        }
        let stale: Vec<Key<[u8; N]>> = trie
            .keys()
            .filter_map(Result::ok)
            .filter(|k| !keep.contains(&(k.prefix_len(), k.data())))
            .collect();
        for key in stale {
            trie.remove(&key).map_err(err)?;
        }
        Ok((keep.len(), left_out))
    }

    /// Attaches both programs to the cgroup v2 directory `cgroup` (the root for the whole
    /// host, a pod's cgroup for one pod), next to any other programs there. Attaching where
    /// already attached does nothing.
    pub fn attach(&mut self, cgroup: &Path) -> Result<(), DenyError> {
        if self.attached.contains_key(cgroup) {
            return Ok(());
        }
        let file = File::open(cgroup).map_err(|source| DenyError::Cgroup {
            path: cgroup.to_owned(),
            source,
        })?;
        let mut links = Vec::new();
        for program in PROGRAMS {
            let prog = self.program(program)?;
            // From Linux 5.7 aya attaches through a BPF link, and cgroup links always run
            // next to the cgroup's other programs (the sensors' included): `Single` only means
            // "no attach flags", which link creation requires. (The agent needs 5.11.)
            match prog.attach(&file, CgroupAttachMode::Single) {
                Ok(link) => links.push((program, link)),
                Err(e) => {
                    // Leave nothing half attached.
                    for (program, link) in links {
                        if let Ok(p) = self.program(program) {
                            let _ = p.detach(link);
                        }
                    }
                    return Err(program_error(program)(e));
                }
            }
        }
        self.attached.insert(cgroup.to_owned(), links);
        Ok(())
    }

    /// Detaches both programs from `cgroup`; false when they were not attached there.
    pub fn detach(&mut self, cgroup: &Path) -> bool {
        let Some(links) = self.attached.remove(cgroup) else {
            return false;
        };
        for (program, link) in links {
            if let Ok(p) = self.program(program) {
                let _ = p.detach(link);
            }
        }
        true
    }

    /// The cgroups the programs are attached to.
    pub fn attached(&self) -> impl Iterator<Item = &Path> {
        self.attached.keys().map(PathBuf::as_path)
    }

    fn program(&mut self, program: &'static str) -> Result<&mut CgroupSockAddr, DenyError> {
        self.ebpf
            .program_mut(program)
            .ok_or(DenyError::Program {
                program,
                reason: "missing from the object".into(),
            })?
            .try_into()
            .map_err(program_error(program))
    }

    /// The hook's state for the start-up report, as the sensors report theirs.
    pub fn status(&self) -> HookStatus {
        HookStatus {
            hook: "response_deny",
            mechanism: "cgroup",
            state: if self.attached.is_empty() {
                HookState::Failed("loaded, attached to no cgroup".into())
            } else {
                HookState::Active
            },
        }
    }

    /// What the hook did so far.
    pub fn counters(&self) -> DenyCounters {
        let Some(Ok(stats)) = self
            .ebpf
            .map("DENY_STATS")
            .map(PerCpuArray::<&MapData, u64>::try_from)
        else {
            return DenyCounters::default();
        };
        let read = |slot: u32| -> u64 { stats.get(&slot, 0).map(|v| v.iter().sum()).unwrap_or(0) };
        DenyCounters {
            checked: read(STAT_CHECKED),
            denied: read(STAT_DENIED),
            would_deny: read(STAT_WOULD_DENY),
        }
    }
}
