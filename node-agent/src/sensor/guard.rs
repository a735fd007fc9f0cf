//! Self-protection at the kernel edge: learning the agent's own identity from the kernel (its
//! pid in a pid namespace is not the one the kernel's programs see), and telling the
//! self-protection programs which maps, programs and links are the agent's.

use std::{collections::BTreeSet, io, path::Path};

use aya::{
    Ebpf,
    maps::{Array, HashMap, MapData},
    programs::TracePoint,
};
use node_agent_common::{AgentIdentity, GUARDED_MAX, agent_object, config::MARKER_BPF_CMD};
use serde::Serialize;

/// How the agent's identity in the kernel was learned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum IdentitySource {
    /// From the kernel: the marker program saw the agent's own `bpf(2)` call.
    Kernel,
    /// The marker could not run, and the agent is in the initial pid namespace, where its
    /// own pid is the kernel's.
    InitialPidNamespace,
    /// Unknown: the agent's own activity is not filtered and nothing aimed at it is seen.
    Unknown,
}

/// The agent's identity in the kernel's numbering (the host's pids).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SelfIdentity {
    /// The agent's process id as the host sees it; 0 when unknown.
    pub pid: u32,
    /// Its parent's, when it started (the supervisor that may stop it).
    pub parent_pid: u32,
    /// Its process id in its own pid namespace (differs without hostPID).
    pub own_pid: u32,
    /// How `pid` was learned.
    pub source: IdentitySource,
}

/// `readlink /proc/self/ns/pid` in the initial pid namespace (`PROC_PID_INIT_INO`, fixed in
/// the kernel).
const INITIAL_PID_NS: &str = "pid:[4026531836]";

/// Learns who the agent is in the kernel's numbering and writes it to the `AGENT` map, which
/// every program reads to filter the agent's own tasks. Call before attaching the sensors.
pub fn learn_identity(ebpf: &mut Ebpf, nonce: u64) -> SelfIdentity {
    let own_pid = std::process::id();
    let learned = match mark(ebpf, nonce) {
        Ok(Some(identity)) if plausible(&identity) => Some(identity),
        Ok(Some(identity)) => {
            tracing::warn!(
                pid = identity.tgid,
                "the identity marker recorded a process that did not start when the agent did; ignored"
            );
            None
        }
        Ok(None) => None,
        Err(error) => {
            tracing::warn!(%error, "the identity marker could not run");
            None
        }
    };
    let (identity, source) = match learned {
        Some(identity) => (identity, IdentitySource::Kernel),
        None if in_initial_pid_namespace() => (
            AgentIdentity {
                tgid: own_pid,
                ppid: std::os::unix::process::parent_id(),
                start_time_ns: 0,
            },
            IdentitySource::InitialPidNamespace,
        ),
        None => {
            tracing::warn!(
                "cannot learn the agent's process id in the kernel's numbering: its own \
                 activity is reported and nothing aimed at it is seen"
            );
            (AgentIdentity::default(), IdentitySource::Unknown)
        }
    };
    if source != IdentitySource::Kernel
        && let Err(error) = write_identity(ebpf, identity)
    {
        tracing::warn!(%error, "cannot write the agent's identity to the kernel");
    }
    SelfIdentity {
        pid: identity.tgid,
        parent_pid: identity.ppid,
        own_pid,
        source,
    }
}

/// Attaches the marker program, makes the marker call, detaches it, and reads what it recorded.
fn mark(ebpf: &mut Ebpf, nonce: u64) -> Result<Option<AgentIdentity>, String> {
    let program: &mut TracePoint = ebpf
        .program_mut("agent_marker")
        .ok_or("the agent_marker program is missing from the eBPF object")?
        .try_into()
        .map_err(|e: aya::programs::ProgramError| e.to_string())?;
    program.load().map_err(|e| e.to_string())?;
    let link = program
        .attach("syscalls", "sys_enter_bpf")
        .map_err(|e| e.to_string())?;
    // SAFETY: bpf(2) with an unknown command and a zero size reads nothing; the kernel answers
    // EINVAL after the tracepoint has run.
    let rc = unsafe { libc::syscall(libc::SYS_bpf, MARKER_BPF_CMD, nonce, 0u32) };
    let answer = io::Error::last_os_error();
    if rc == 0 {
        tracing::debug!("the identity marker's bpf(2) call succeeded; unexpected");
    } else {
        tracing::debug!(%answer, "identity marker sent");
    }
    let _ = program.detach(link);
    let _ = program.unload();
    let agent: Array<_, AgentIdentity> = Array::try_from(
        ebpf.map("AGENT")
            .ok_or("the AGENT map is missing from the eBPF object")?,
    )
    .map_err(|e| e.to_string())?;
    let identity = agent.get(&0, 0).map_err(|e| e.to_string())?;
    Ok((identity.tgid != 0).then_some(identity))
}

/// The marker recorded a process that started when this one did (clock ticks since boot, the
/// same in every pid namespace): nobody else made the call with our nonce.
fn plausible(identity: &AgentIdentity) -> bool {
    let Some(ticks) = own_start_ticks() else {
        return true;
    };
    // SAFETY: sysconf has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz <= 0 {
        return true;
    }
    let learned = identity.start_time_ns / (1_000_000_000 / hz as u64);
    learned.abs_diff(ticks) <= 1
}

/// Field 22 of `/proc/self/stat`: when this process started, in clock ticks since boot.
fn own_start_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces and parentheses: count from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn in_initial_pid_namespace() -> bool {
    std::fs::read_link("/proc/self/ns/pid")
        .map(|link| link.as_os_str() == INITIAL_PID_NS)
        .unwrap_or(false)
}

fn write_identity(ebpf: &mut Ebpf, identity: AgentIdentity) -> Result<(), String> {
    let mut agent: Array<_, AgentIdentity> = Array::try_from(
        ebpf.map_mut("AGENT")
            .ok_or("the AGENT map is missing from the eBPF object")?,
    )
    .map_err(|e| e.to_string())?;
    agent.set(0, identity, 0).map_err(|e| e.to_string())
}

/// Puts the ids of the agent's loaded programs, the maps they use and their links into
/// `AGENT_OBJECTS`, for the `bpf_agent` program. Returns how many objects are watched.
pub fn register_objects(ebpf: &mut Ebpf) -> Result<usize, String> {
    let mut programs = BTreeSet::new();
    let mut maps = BTreeSet::new();
    for (_, program) in ebpf.programs() {
        let Ok(info) = program.info() else {
            continue; // not loaded
        };
        programs.insert(info.id());
        if let Ok(Some(ids)) = info.map_ids() {
            maps.extend(ids);
        }
    }
    let links: BTreeSet<u32> = aya::programs::loaded_links()
        .filter_map(Result::ok)
        .filter(|link| programs.contains(&link.program_id()))
        .map(|link| link.id())
        .collect();
    let mut objects: HashMap<_, u64, u32> = HashMap::try_from(
        ebpf.map_mut("AGENT_OBJECTS")
            .ok_or("the AGENT_OBJECTS map is missing from the eBPF object")?,
    )
    .map_err(|e| e.to_string())?;
    let mut n = 0;
    for (kind, ids) in [
        (agent_object::PROG, &programs),
        (agent_object::MAP, &maps),
        (agent_object::LINK, &links),
    ] {
        for &id in ids {
            objects
                .insert(kind << 32 | u64::from(id), 1, 0)
                .map_err(|e| e.to_string())?;
            n += 1;
        }
    }
    Ok(n)
}

/// A random nonce for the marker (never 0, which the marker program ignores).
pub fn nonce() -> u64 {
    let mut bytes = [0u8; 8];
    // SAFETY: getrandom writes at most `bytes.len()` bytes into the buffer.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    let value = if n == 8 {
        u64::from_ne_bytes(bytes)
    } else {
        // No getrandom: the time and pid are still unknown to a process that is not root.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        now ^ u64::from(std::process::id()).rotate_left(32)
    };
    value.max(1)
}

/// The kernel's `GUARDED` map: the processes whose stopping signals from other processes the
/// kernel reports, the host's other security agents (`signalGuarded`) and programs named like
/// miners (`signalMiner`: a dropper clearing competitors away kills them however it found
/// their ids). The pipeline keeps it from the executables it sees exec and exit, and seeds it
/// from `/proc`.
pub struct GuardedProcesses {
    map: HashMap<MapData, u32, u32>,
    /// Executable names of security agents (`behaviour.securityAgents`).
    agents: Vec<String>,
    /// Executable names of miners (`behaviour.minerNames`), compared without case.
    miners: Vec<String>,
    /// What the map holds (tgid -> `guarded::*`), so that an exit of any other process costs
    /// no `bpf(2)` call.
    held: std::collections::HashMap<u32, u32>,
    /// Processes not guarded because the map was full.
    shed: u64,
}

impl GuardedProcesses {
    /// Takes the map out of the loaded object.
    pub(super) fn take(ebpf: &mut Ebpf, agents: Vec<String>, miners: Vec<String>) -> Option<Self> {
        let map = HashMap::try_from(ebpf.take_map("GUARDED")?).ok()?;
        Some(Self {
            map,
            agents,
            miners,
            held: std::collections::HashMap::new(),
            shed: 0,
        })
    }

    /// A process now runs `exe`: guarded when it is a security agent's or a miner's, and no
    /// longer when it was one and exec'd something else.
    pub fn on_exec(&mut self, tgid: u32, exe: &Path) {
        let Some(kind) = guarded_kind(&self.agents, &self.miners, exe) else {
            self.on_exit(tgid);
            return;
        };
        self.hold(tgid, kind);
    }

    /// A process found to be a miner by what it did (a miner finding raised for it: stratum
    /// on the wire, a pool's address or name, a miner's options), whatever its executable is
    /// called: guarded as a miner until it exits or execs another program. A security agent
    /// stays one.
    pub fn on_miner(&mut self, tgid: u32) {
        if !self.held.contains_key(&tgid) {
            self.hold(tgid, node_agent_common::guarded::MINER);
        }
    }

    fn hold(&mut self, tgid: u32, kind: u32) {
        if self.held.get(&tgid) == Some(&kind) {
            return;
        }
        if !self.held.contains_key(&tgid) && self.held.len() >= GUARDED_MAX as usize {
            self.shed += 1;
            return;
        }
        match self.map.insert(tgid, kind, 0) {
            Ok(()) => {
                self.held.insert(tgid, kind);
            }
            Err(error) => tracing::debug!(%error, tgid, "cannot guard a process"),
        }
    }

    /// A process exited.
    pub fn on_exit(&mut self, tgid: u32) {
        if self.held.remove(&tgid).is_some() {
            let _ = self.map.remove(&tgid);
        }
    }

    /// The table's use against its bound.
    pub fn tracked(&self) -> crate::tracked::TrackedTable {
        crate::tracked::TrackedTable::by_entries(
            "guardedProcesses",
            self.held.len() as u64,
            u64::from(GUARDED_MAX),
            self.shed,
        )
    }
}

/// What a process running `exe` is to the `GUARDED` map, by the executable's file name: a
/// security agent (`agents`, exact) or a miner (`miners`, without case), else nothing.
pub fn guarded_kind(agents: &[String], miners: &[String], exe: &Path) -> Option<u32> {
    let name = exe.file_name().and_then(|n| n.to_str())?;
    if agents.iter().any(|a| a == name) {
        Some(node_agent_common::guarded::SECURITY_AGENT)
    } else if miners.iter().any(|m| m.eq_ignore_ascii_case(name)) {
        Some(node_agent_common::guarded::MINER)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_start_time_is_read_from_proc() {
        let ticks = own_start_ticks().expect("/proc/self/stat");
        assert!(ticks > 0);
    }

    #[test]
    fn nonces_are_never_zero_and_differ() {
        let a = nonce();
        let b = nonce();
        assert!(a != 0 && b != 0);
        assert_ne!(a, b);
    }

    #[test]
    fn security_agents_and_miners_are_known_by_their_executable_name() {
        use node_agent_common::guarded::{MINER, SECURITY_AGENT};
        let agents = vec!["falco".to_owned(), "osqueryd".to_owned()];
        let miners = vec!["xmrig".to_owned(), "kdevtmpfsi".to_owned()];
        let kind = |exe: &str| guarded_kind(&agents, &miners, Path::new(exe));
        assert_eq!(kind("/usr/bin/falco"), Some(SECURITY_AGENT));
        assert_eq!(kind("/opt/osquery/bin/osqueryd"), Some(SECURITY_AGENT));
        assert_eq!(kind("/tmp/.x/xmrig"), Some(MINER));
        assert_eq!(
            kind("/var/tmp/XMRig"),
            Some(MINER),
            "a miner's name in any case"
        );
        assert_eq!(kind("/tmp/kdevtmpfsi"), Some(MINER));
        assert_eq!(kind("/usr/bin/falcon"), None);
        assert_eq!(kind("/usr/bin/falco.sh"), None);
        assert_eq!(kind("/usr/bin/xmrig-proxy"), None);
        assert_eq!(kind("/usr/bin/Falco"), None, "agents by their exact name");
        assert_eq!(kind("/"), None);
        assert_eq!(guarded_kind(&[], &[], Path::new("/usr/bin/falco")), None);
    }
}
