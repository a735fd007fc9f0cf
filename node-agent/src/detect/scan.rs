//! Port scans from what the kernel saw: one program whose connects to one host were refused on
//! many distinct ports within a short window (`nc -z host 1-1024`, a shell loop over
//! `/dev/tcp/host/$port` as a line of a script, a python socket loop, a renamed scanner), T1046.
//! Each probe of a shell loop is a forked subshell that never execs: probes count for the
//! nearest forebear that exec'd (the program the scan belongs to), through the forks seen.
//! Refused connects only: clients connect to ports that listen; a scan mostly meets closed ones.
//! A non-blocking connect (a scanner with a connect timeout) counts when its handshake was
//! refused, as the socket told at the syscall's exit or in the later `connectOutcome` event.

use std::net::IpAddr;

use k8s_openapi::jiff::Timestamp;
use vigil_crds::finding::RuntimeContext;
use vigil_detection::FindingType;

use super::{
    Candidate, Detector, ProcessLookup,
    bounded::FifoMap,
    technique::{Raises, draft, technique},
};
use crate::event::NetInfo;

/// Distinct refused ports of one host, within [`SCAN_WINDOW_MS`], that make a scan.
pub(crate) const SCAN_PORTS: usize = 16;
/// The window the ports must fall in.
pub(crate) const SCAN_WINDOW_MS: i64 = 10_000;
/// Programs and hosts followed at once (first in, first out, counted).
pub(crate) const MAX_SCANNERS: usize = 1_024;
/// Forks followed up from a probe to the program that exec'd.
const MAX_FORK_HOPS: usize = 8;

/// One program's refused connects to one host.
#[derive(Debug, Default)]
pub(crate) struct Probes {
    /// `(port, ms)` of the latest refusal of each port, at most [`SCAN_PORTS`].
    ports: Vec<(u16, i64)>,
    /// Raised already: one finding per program and host.
    reported: bool,
}

/// `(pid, start time)` of the program, and the host probed.
type Key = (u32, u64, IpAddr);

/// The probes followed, bounded.
#[derive(Debug)]
pub(crate) struct ScanTable(FifoMap<Key, Probes>);

impl Default for ScanTable {
    fn default() -> Self {
        Self(FifoMap::new(MAX_SCANNERS))
    }
}

impl ScanTable {
    /// Entries held and entries dropped to stay within the bound.
    pub(crate) fn tracked(&self) -> (usize, u64) {
        (self.0.len(), self.0.evicted())
    }

    /// Forgets what a process that exited probed.
    pub(crate) fn forget(&mut self, pid: u32) {
        let gone: Vec<Key> = self
            .0
            .keys()
            .filter(|(p, _, _)| *p == pid)
            .copied()
            .collect();
        for key in gone {
            self.0.remove(&key);
        }
    }
}

/// The program a probe belongs to: the process if it exec'd, else its nearest forebear that
/// did (a subshell of a loop), through the forks seen.
fn scanner(d: &Detector, n: &NetInfo) -> (u32, u64) {
    let mut pid = n.process.pid;
    for _ in 0..MAX_FORK_HOPS {
        if let Some(r) = d.procs.get(&pid).filter(|r| r.exe.is_some()) {
            if pid == n.process.pid && r.start_time_ns != n.process.start_time_ns {
                break;
            }
            return (pid, r.start_time_ns);
        }
        match d.parents.get(&pid) {
            Some(&up) if up != pid => pid = up,
            _ => break,
        }
    }
    (n.process.pid, n.process.start_time_ns)
}

/// A refused connect, counted for its program and host; a finding when it makes a scan.
pub(crate) fn check_connect(
    d: &mut Detector,
    n: &NetInfo,
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    let peer = n.remote?;
    let refused = n.error.as_deref() == Some("ECONNREFUSED")
        || (n.error.as_deref() == Some("EINPROGRESS")
            && n.outcome.as_deref() == Some("ECONNREFUSED"));
    if !refused || !matches!(n.family, "inet" | "inet6") {
        return None;
    }
    let now = n
        .time
        .parse::<Timestamp>()
        .unwrap_or_else(|_| Timestamp::now())
        .as_millisecond();
    let (pid, start) = scanner(d, n);
    let key = (pid, start, peer.ip());
    if !d.scans.0.contains_key(&key) {
        d.scans.0.insert(key, Probes::default());
    }
    let probes = d.scans.0.get_mut(&key)?;
    if probes.reported {
        return None;
    }
    probes
        .ports
        .retain(|&(port, at)| port != peer.port() && now.saturating_sub(at) <= SCAN_WINDOW_MS);
    probes.ports.push((peer.port(), now));
    if probes.ports.len() < SCAN_PORTS {
        return None;
    }
    probes.reported = true;
    let mut ports: Vec<u16> = probes.ports.iter().map(|&(p, _)| p).collect();
    ports.sort_unstable();
    let shown = ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let mut context = RuntimeContext::default();
    context
        .additional
        .insert("scannedHost".into(), peer.ip().to_string());
    context.additional.insert("refusedPorts".into(), shown);
    context
        .additional
        .insert("scannerPid".into(), pid.to_string());
    Some(technique(
        d,
        &n.process,
        lookup,
        Raises {
            finding_type: FindingType::DiscoverySuspiciousCommand,
            rule: "behaviour-port-scan",
            mitre: "T1046",
            severity: Some(5.0),
        },
        draft(
            "A program probed many ports of one host",
            format!(
                "Process {} (pid {}) and its program (pid {pid}) had connects to {} refused on \
                 {SCAN_PORTS} distinct ports within {} seconds: a port scan.",
                n.process.comm,
                n.process.pid,
                peer.ip(),
                SCAN_WINDOW_MS / 1000
            ),
            format!("{pid}\0{}", peer.ip()),
            context,
        ),
    ))
}
