//! Reputation findings: connections and DNS names against threat intelligence, DGA-looking
//! names, and names that resolve to the instance metadata address.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::PathBuf,
};

use k8s_openapi::jiff::Timestamp;

use vigil_crds::finding::{
    ConnectionDirection, DnsAction, NetworkAction, ProcessDetails, ResourceRole, RuntimeContext,
    ThreatIntelligenceDetail,
};
use vigil_detection::FindingType;

use super::{Candidate, Detector, ProcessLookup, bounded::FifoMap};
use crate::event::{DnsInfo, NetInfo, ProcessRef};

/// The instance metadata service addresses (AWS IPv4 and IPv6; GCP, Azure and others use the
/// IPv4 one too).
pub const METADATA_ADDRESSES: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
];

/// Types a connect to a listed address raises.
const CONNECT_TYPES: &[FindingType] = &[
    FindingType::BackdoorCcActivityB,
    FindingType::CryptoCurrencyBitcoinToolB,
    FindingType::UnauthorizedAccessTorClient,
    FindingType::TrojanBlackholeTraffic,
    FindingType::TrojanDropPoint,
];

/// Types an accept from a listed address raises: a Tor node connecting in means this host
/// relays Tor traffic.
const ACCEPT_TYPES: &[FindingType] = &[FindingType::UnauthorizedAccessTorRelay];

/// Most DNS answers remembered for naming the remote end of later connections.
pub(crate) const MAX_ANSWERS: usize = 8_192;

/// Names never scored for DGA: reverse lookups, local and service-discovery names, and
/// internationalised names (a punycode label, `xn--...`, is an encoding of what a person chose:
/// its characters look random to a model of ASCII labels whatever the name says).
fn dga_exempt(name: &str) -> bool {
    name.ends_with(".arpa")
        || name.ends_with(".local")
        || name.ends_with(".internal")
        || name.ends_with(".localdomain")
        || name.contains('_')
        || vigil_detection::dga::registrable_label(name).is_some_and(|l| l.starts_with("xn--"))
        || name.parse::<IpAddr>().is_ok()
}

fn title(t: FindingType) -> &'static str {
    match t {
        FindingType::BackdoorCcActivityB => {
            "A process connected to an IP address of a known command-and-control server"
        }
        FindingType::BackdoorCcActivityBDns => {
            "A process queried a domain of a known command-and-control server"
        }
        FindingType::CryptoCurrencyBitcoinToolB => {
            "A process connected to an IP address associated with cryptocurrency mining"
        }
        FindingType::CryptoCurrencyBitcoinToolBDns => {
            "A process queried a domain associated with cryptocurrency mining"
        }
        FindingType::UnauthorizedAccessTorClient => "A process connected to a Tor node",
        FindingType::UnauthorizedAccessTorRelay => {
            "A Tor node connected in: this host may act as a Tor relay"
        }
        FindingType::TrojanBlackholeTraffic => {
            "A process connected to a sinkholed (black hole) IP address"
        }
        FindingType::TrojanBlackholeTrafficDns => "A process queried a sinkholed domain",
        FindingType::TrojanDropPoint => {
            "A process connected to an IP address known to receive stolen data"
        }
        FindingType::TrojanDropPointDns => {
            "A process queried a domain known to receive stolen data"
        }
        FindingType::TrojanDgaDomainRequestCDns => {
            "A process queried several algorithmically generated domains"
        }
        FindingType::TrojanDriveBySourceTrafficDns => {
            "A process queried a domain known to serve drive-by downloads"
        }
        FindingType::TrojanPhishingDomainRequestDns => "A process queried a phishing domain",
        FindingType::ImpactAbusedDomainRequestReputation => {
            "A process queried a domain often abused by attackers"
        }
        FindingType::ImpactBitcoinDomainRequestReputation => {
            "A process queried a cryptocurrency-related domain"
        }
        FindingType::ImpactMaliciousDomainRequestReputation => {
            "A process queried a domain with a malicious reputation"
        }
        FindingType::ImpactSuspiciousDomainRequestReputation => {
            "A process queried a domain with a suspicious reputation"
        }
        FindingType::UnauthorizedAccessMetadataDnsRebind => {
            "A domain name resolved to the instance metadata address"
        }
        _ => "Threat intelligence match",
    }
}

fn protocol(p: &str) -> String {
    p.to_ascii_uppercase()
}

/// Groups matching lists by the finding types they feed, keeping only `allowed` types.
fn by_type<'a>(
    matches: impl Iterator<Item = &'a vigil_detection::ListInfo>,
    allowed: impl Fn(FindingType) -> bool,
) -> BTreeMap<FindingType, Vec<String>> {
    let mut out: BTreeMap<FindingType, Vec<String>> = BTreeMap::new();
    for list in matches {
        for t in list.feeds.iter().copied().filter(|t| allowed(*t)) {
            out.entry(t).or_default().push(list.name.clone());
        }
    }
    out
}

pub(crate) fn check_connect(
    d: &mut Detector,
    n: &NetInfo,
    lookup: &dyn ProcessLookup,
) -> Vec<Candidate> {
    check_net(d, n, lookup, CONNECT_TYPES, ConnectionDirection::Outbound)
}

pub(crate) fn check_accept(
    d: &mut Detector,
    n: &NetInfo,
    lookup: &dyn ProcessLookup,
) -> Vec<Candidate> {
    check_net(d, n, lookup, ACCEPT_TYPES, ConnectionDirection::Inbound)
}

fn check_net(
    d: &mut Detector,
    n: &NetInfo,
    lookup: &dyn ProcessLookup,
    allowed: &[FindingType],
    direction: ConnectionDirection,
) -> Vec<Candidate> {
    let Some(remote) = n.remote else {
        return Vec::new();
    };
    let ip = remote.ip();
    let intel = d.intel.snapshot();
    let types = by_type(intel.lookup_ip(ip), |t| allowed.contains(&t));
    if types.is_empty() {
        return Vec::new();
    }
    let process = d.process_details(&n.process, lookup);
    let domain = d.answers.get(&ip).cloned();
    let network = NetworkAction {
        connection_direction: direction,
        protocol: protocol(n.protocol),
        // The connect and accept sensors report the remote end only.
        local_ip: String::new(),
        local_port: 0,
        remote_ip: ip.to_string(),
        remote_port: remote.port(),
        remote_domain: domain,
    };
    types
        .into_iter()
        .map(|(t, lists)| {
            let mut context = RuntimeContext::default();
            if let Some(error) = &n.error {
                // A refused or pending connect is still an attempt to reach the address.
                context
                    .additional
                    .insert("connectResult".into(), error.clone());
            }
            Candidate {
                container: n.process.container.clone(),
                finding_type: t,
                severity: super::default_severity(t),
                title: title(t).into(),
                description: format!(
                    "Process {} (pid {}) {} {}:{} ({} {}), listed on {}.",
                    n.process.comm,
                    n.process.pid,
                    if direction == ConnectionDirection::Outbound {
                        "connected to"
                    } else {
                        "accepted a connection from"
                    },
                    ip,
                    remote.port(),
                    network.protocol,
                    n.error.as_deref().unwrap_or("ok"),
                    lists.join(", ")
                ),
                key: ip.to_string(),
                role: ResourceRole::Actor,
                process: Some(process.clone()),
                context,
                network: Some(network.clone()),
                dns: None,
                evidence: lists
                    .into_iter()
                    .map(|name| ThreatIntelligenceDetail {
                        threat_list_name: name,
                        indicator: ip.to_string(),
                    })
                    .collect(),
            }
        })
        .collect()
}

/// How long after a process asked for a name another process's query for the same name counts
/// as forwarding it (a resolver asks upstream within milliseconds; retries take seconds).
const FORWARD_WINDOW_MS: i64 = 10_000;

/// Names remembered with the process that last asked for them (for recognising forwarding).
const MAX_ASKED: usize = 16_384;

/// DGA-flagged names remembered per process (the newest are kept).
const MAX_DGA_NAMES: usize = 32;
/// Processes whose DGA-flagged names are remembered (the oldest tracked goes first).
const MAX_DGA_PROCESSES: usize = 4_096;
/// DGA-flagged names remembered over all processes: past it, the oldest tracked processes are
/// forgotten whole.
const MAX_DGA_TOTAL_NAMES: usize = 8_192;
/// Processes remembered as local resolvers.
const MAX_RESOLVERS: usize = 1_024;

/// Bytes counted per remembered entry besides its name: the key, the value and the hash table's
/// share, rounded up.
pub(crate) const ENTRY_OVERHEAD: usize = 64;

/// The most [`DnsMemory::tracked_bytes`] and the answers table together can reach, names at the
/// DNS maximum of 255 bytes.
pub const DNS_TRACKED_BYTES_BOUND: usize = (MAX_ASKED + MAX_ANSWERS + MAX_DGA_TOTAL_NAMES)
    * (crate::dns::MAX_NAME_LEN + ENTRY_OVERHEAD)
    + (MAX_DGA_PROCESSES + MAX_RESOLVERS) * ENTRY_OVERHEAD;

/// The most entries the DNS tables hold together (flagged processes and their names, names
/// asked, resolvers, answers).
pub const DNS_TRACKED_ENTRIES_BOUND: usize =
    MAX_ASKED + MAX_ANSWERS + MAX_DGA_TOTAL_NAMES + MAX_DGA_PROCESSES + MAX_RESOLVERS;

/// What the DNS checks remember between messages: DGA-flagged names per process, who asked
/// for which name a moment ago, and the processes recognised as local caching resolvers. Every
/// table is bounded by construction (first in, first out), whatever a DNS flood sends.
#[derive(Debug)]
pub(crate) struct DnsMemory {
    dga: FifoMap<u32, DgaProcess>,
    /// Names in `dga`, over all processes.
    dga_names: usize,
    asked: FifoMap<String, Asker>,
    /// Local resolvers: pid -> start time.
    resolvers: FifoMap<u32, u64>,
}

impl Default for DnsMemory {
    fn default() -> Self {
        Self {
            dga: FifoMap::new(MAX_DGA_PROCESSES),
            dga_names: 0,
            asked: FifoMap::new(MAX_ASKED),
            resolvers: FifoMap::new(MAX_RESOLVERS),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Asker {
    pid: u32,
    ms: i64,
    /// Length of the name (the key), for the byte count.
    name_len: usize,
}

/// Names one process queried that the DGA model flags, within the window.
#[derive(Debug)]
struct DgaProcess {
    start_time_ns: u64,
    names: Vec<FlaggedName>,
}

#[derive(Debug)]
struct FlaggedName {
    name: String,
    /// When it was first queried (ms, wall clock of the message).
    first_ms: i64,
    /// An answer said the name does not exist.
    nxdomain: bool,
}

impl DnsMemory {
    /// Forgets an exited process.
    pub(crate) fn forget(&mut self, pid: u32) {
        self.forget_dga(pid);
        self.resolvers.remove(&pid);
    }

    fn forget_dga(&mut self, pid: u32) {
        if let Some(p) = self.dga.remove(&pid) {
            self.dga_names = self.dga_names.saturating_sub(p.names.len());
        }
    }

    /// Bytes held (names plus [`ENTRY_OVERHEAD`] per entry); at most
    /// [`DNS_TRACKED_BYTES_BOUND`] with the answers table.
    pub(crate) fn tracked_bytes(&self) -> usize {
        let dga: usize = self
            .dga
            .values()
            .map(|p| {
                ENTRY_OVERHEAD
                    + p.names
                        .iter()
                        .map(|n| n.name.len() + ENTRY_OVERHEAD)
                        .sum::<usize>()
            })
            .sum();
        let asked = self.asked.len() * ENTRY_OVERHEAD
            + self.asked.values().map(|a| a.name_len).sum::<usize>();
        dga + asked + self.resolvers.len() * ENTRY_OVERHEAD
    }

    /// Entries dropped to stay within the bounds.
    pub(crate) fn evicted(&self) -> u64 {
        self.dga.evicted() + self.asked.evicted() + self.resolvers.evicted()
    }

    /// Entries held: flagged processes, their names, names asked and resolvers.
    pub(crate) fn len(&self) -> usize {
        self.dga.len() + self.dga_names + self.asked.len() + self.resolvers.len()
    }

    fn is_resolver(&self, p: &ProcessRef) -> bool {
        self.resolvers.get(&p.pid) == Some(&p.start_time_ns)
    }

    /// Whether a process other than `pid` asked for `name` within the forwarding window.
    fn asked_by_other(&self, name: &str, pid: u32, now: i64) -> bool {
        self.asked.get(name).is_some_and(|a| {
            a.pid != pid && now >= a.ms.saturating_sub(1_000) && now - a.ms <= FORWARD_WINDOW_MS
        })
    }

    fn record_ask(&mut self, name: &str, pid: u32, now: i64) {
        let asker = Asker {
            pid,
            ms: now,
            name_len: name.len(),
        };
        match self.asked.get_mut(name) {
            Some(a) => *a = asker,
            None => {
                self.asked.insert(name.to_owned(), asker);
            }
        }
    }
}

/// The message's time in ms (its wall-clock `time`; now when it does not parse).
fn message_ms(m: &DnsInfo) -> i64 {
    m.time
        .parse::<Timestamp>()
        .unwrap_or_else(|_| Timestamp::now())
        .as_millisecond()
}

/// Whether no task could be named for the message (its socket had left the kernel's table
/// and it was not sent in a task's context: `DnsInfo::untracked`).
fn owner_unknown(m: &DnsInfo) -> bool {
    m.untracked == Some("unknown")
}

/// Who sent or received the message, for a finding's description.
fn asker(m: &DnsInfo) -> String {
    if owner_unknown(m) {
        "A process the agent could not name (its DNS socket had left the kernel's table)".into()
    } else {
        format!("Process {} (pid {})", m.process.comm, m.process.pid)
    }
}

/// The process of a finding about the message; `None` when no task could be named.
fn actor(d: &Detector, m: &DnsInfo, lookup: &dyn ProcessLookup) -> Option<ProcessDetails> {
    (!owner_unknown(m)).then(|| d.process_details(&m.process, lookup))
}

/// The runtime context of a finding about the message: how its owner was known when the
/// kernel's table of DNS sockets no longer held the socket.
fn dns_context(m: &DnsInfo) -> RuntimeContext {
    let mut context = RuntimeContext::default();
    if let Some(how) = m.untracked {
        context.additional.insert(
            "dnsSocket".into(),
            match how {
                "sender" => "untracked: the process is the task that sent the message".into(),
                _ => "untracked: no process known, only its cgroup".into(),
            },
        );
    }
    context
}

/// The resolved path of the process's executable, from its exec or the process table.
fn executable(d: &Detector, p: &ProcessRef, lookup: &dyn ProcessLookup) -> Option<PathBuf> {
    d.procs
        .get(&p.pid)
        .filter(|r| r.start_time_ns == p.start_time_ns)
        .and_then(|r| r.exe.clone())
        .or_else(|| {
            lookup
                .get(p.pid)
                .filter(|k| k.start_time_ns == p.start_time_ns)
                .and_then(|k| k.exe)
        })
}

/// Whether this query of `name` is a local resolver forwarding another process's question.
/// A process is recognised as a local resolver by what it is (its executable on the
/// `localResolvers` list) and by what it does (it asks for a name another process asked for a
/// moment before); from then on, until it exits, it is one.
fn forwarded(
    d: &mut Detector,
    p: &ProcessRef,
    name: &str,
    now: i64,
    lookup: &dyn ProcessLookup,
) -> bool {
    let other = d.dns.asked_by_other(name, p.pid, now);
    if d.dns.is_resolver(p) {
        return other;
    }
    if other && executable(d, p, lookup).is_some_and(|exe| d.rules.is_local_resolver(&exe)) {
        d.dns.resolvers.insert(p.pid, p.start_time_ns);
        // What it queried before it was recognised was for others too.
        d.dns.forget_dga(p.pid);
        return true;
    }
    false
}

pub(crate) fn check_dns(
    d: &mut Detector,
    m: &DnsInfo,
    lookup: &dyn ProcessLookup,
) -> Vec<Candidate> {
    if m.direction == "answer" {
        return check_answer(d, m, lookup);
    }
    let now = message_ms(m);
    let intel = d.intel.snapshot();
    let mut out = Vec::new();
    for q in &m.questions {
        let name = q.name.as_str();
        if name.is_empty() {
            continue;
        }
        // A resolver asking for a client's name: the client's own query raised what it raises.
        if forwarded(d, &m.process, name, now, lookup) {
            continue;
        }
        if !d.dns.is_resolver(&m.process) && !owner_unknown(m) {
            d.dns.record_ask(name, m.process.pid, now);
        }
        let types = by_type(intel.lookup_domain(name), FindingType::is_dns);
        for (t, lists) in types {
            out.push(Candidate {
                container: m.process.container.clone(),
                finding_type: t,
                severity: super::default_severity(t),
                title: title(t).into(),
                description: format!(
                    "{} queried {name} ({} {}), listed on {}.",
                    asker(m),
                    q.qtype,
                    m.protocol,
                    lists.join(", ")
                ),
                key: name.to_owned(),
                role: ResourceRole::Actor,
                process: actor(d, m, lookup),
                context: dns_context(m),
                network: None,
                dns: Some(DnsAction {
                    domain: name.to_owned(),
                    protocol: protocol(m.protocol),
                }),
                evidence: lists
                    .into_iter()
                    .map(|list| ThreatIntelligenceDetail {
                        threat_list_name: list,
                        indicator: name.to_owned(),
                    })
                    .collect(),
            });
        }
        if let Some(c) = check_dga(d, m, name, None, now, lookup) {
            out.push(c);
        }
    }
    out
}

/// Counts a DGA-flagged name for the process (a query, or an answer with its response code)
/// and raises the finding once, within the window, enough names answered NXDOMAIN
/// (`DetectorConfig::dga_nxdomain_names`) or enough names whatever the answers
/// (`dga_names_any_answer`). Local resolvers never count.
fn check_dga(
    d: &mut Detector,
    m: &DnsInfo,
    name: &str,
    rcode: Option<&str>,
    now: i64,
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    let model = d.dga.as_ref()?;
    // Names of processes the agent could not name are not counted together: they may be many.
    if dga_exempt(name) || d.dns.is_resolver(&m.process) || owner_unknown(m) {
        return None;
    }
    let pid = m.process.pid;
    let start = m.process.start_time_ns;
    let known = d
        .dns
        .dga
        .get(&pid)
        .is_some_and(|e| e.start_time_ns == start && e.names.iter().any(|n| n.name == name));
    if !known && !model.is_dga(name) {
        return None;
    }
    let nxdomain = rcode == Some("NXDOMAIN");
    let window_ms = i64::try_from(d.config.dga_window.as_millis()).unwrap_or(i64::MAX);
    let mem = &mut d.dns;
    if mem.dga.get(&pid).is_some_and(|e| e.start_time_ns != start) {
        // The pid was reused by a new process.
        mem.forget_dga(pid);
    }
    if !mem.dga.contains_key(&pid) {
        let fresh = DgaProcess {
            start_time_ns: start,
            names: Vec::new(),
        };
        if let Some((_, old)) = mem.dga.insert(pid, fresh) {
            mem.dga_names = mem.dga_names.saturating_sub(old.names.len());
        }
    }
    let before = mem.dga.get(&pid).map_or(0, |e| e.names.len());
    let entry = mem.dga.get_mut(&pid)?;
    entry
        .names
        .retain(|n| now.saturating_sub(n.first_ms) <= window_ms);
    let changed = match entry.names.iter_mut().find(|n| n.name == name) {
        Some(n) => {
            let upgraded = nxdomain && !n.nxdomain;
            n.nxdomain |= nxdomain;
            upgraded
        }
        None => {
            if entry.names.len() >= MAX_DGA_NAMES {
                entry.names.remove(0);
            }
            entry.names.push(FlaggedName {
                name: name.to_owned(),
                first_ms: now,
                nxdomain,
            });
            true
        }
    };
    let (total, nx) = (
        entry.names.len(),
        entry.names.iter().filter(|n| n.nxdomain).count(),
    );
    let names = entry
        .names
        .iter()
        .map(|n| n.name.as_str())
        .collect::<Vec<_>>()
        .join(",");
    mem.dga_names = mem.dga_names.saturating_sub(before) + total;
    // Over the budget of names, the longest-tracked other processes are forgotten whole.
    while mem.dga_names > MAX_DGA_TOTAL_NAMES {
        let Some((old_pid, old)) = mem.dga.pop_oldest() else {
            break;
        };
        mem.dga_names = mem.dga_names.saturating_sub(old.names.len());
        if old_pid == pid {
            // This process was the oldest: keep it, it is the one asking now.
            mem.dga_names += old.names.len();
            mem.dga.insert(old_pid, old);
            if mem.dga.len() == 1 {
                break;
            }
        }
    }
    if !changed
        || (nx < d.config.dga_nxdomain_names.max(1) && total < d.config.dga_names_any_answer.max(1))
    {
        return None;
    }
    let minutes = window_ms / 60_000;
    let process = d.process_details(&m.process, lookup);
    let t = FindingType::TrojanDgaDomainRequestCDns;
    let mut context = RuntimeContext::default();
    context
        .additional
        .insert("dgaDomains".into(), names.clone());
    context
        .additional
        .insert("dgaNxdomain".into(), nx.to_string());
    Some(Candidate {
        container: m.process.container.clone(),
        finding_type: t,
        severity: super::default_severity(t),
        title: title(t).into(),
        description: format!(
            "Process {} (pid {}) queried {total} names that look algorithmically generated within {minutes} minutes, {nx} of them answered NXDOMAIN: {names}.",
            m.process.comm, m.process.pid
        ),
        key: if process.executable_path.is_empty() {
            m.process.comm.clone()
        } else {
            process.executable_path.clone()
        },
        role: ResourceRole::Actor,
        process: Some(process),
        context,
        network: None,
        dns: Some(DnsAction {
            domain: name.to_owned(),
            protocol: protocol(m.protocol),
        }),
        evidence: Vec::new(),
    })
}

/// The DNS type raised when a DNS answer carries an address on a list that feeds `t` (a
/// connection type); `None` for types with no DNS counterpart (Tor).
pub(crate) fn dns_type_for_address(t: FindingType) -> Option<FindingType> {
    match t {
        FindingType::BackdoorCcActivityB => Some(FindingType::BackdoorCcActivityBDns),
        FindingType::CryptoCurrencyBitcoinToolB => Some(FindingType::CryptoCurrencyBitcoinToolBDns),
        FindingType::TrojanBlackholeTraffic => Some(FindingType::TrojanBlackholeTrafficDns),
        FindingType::TrojanDropPoint => Some(FindingType::TrojanDropPointDns),
        _ => None,
    }
}

fn check_answer(d: &mut Detector, m: &DnsInfo, lookup: &dyn ProcessLookup) -> Vec<Candidate> {
    let now = message_ms(m);
    let mut out = Vec::new();
    let question = m.questions.first().map(|q| q.name.as_str()).unwrap_or("");
    for a in &m.answers {
        if a.rtype != "A" && a.rtype != "AAAA" {
            continue;
        }
        let Ok(ip) = a.data.parse::<IpAddr>() else {
            continue;
        };
        let name = if question.is_empty() {
            a.name.as_str()
        } else {
            question
        };
        d.answers.insert(ip, name.to_owned());
        if !METADATA_ADDRESSES.contains(&ip)
            || name.is_empty()
            || name.parse::<IpAddr>().is_ok()
            || d.rules.is_metadata_name(name)
        {
            continue;
        }
        let t = FindingType::UnauthorizedAccessMetadataDnsRebind;
        out.push(Candidate {
            container: m.process.container.clone(),
            finding_type: t,
            severity: super::default_severity(t),
            title: title(t).into(),
            description: format!(
                "{} resolved {name} to {ip}, the instance metadata address: a DNS rebinding attempt to reach instance credentials.",
                asker(m)
            ),
            key: name.to_owned(),
            role: ResourceRole::Actor,
            process: actor(d, m, lookup),
            context: dns_context(m),
            network: None,
            dns: Some(DnsAction {
                domain: name.to_owned(),
                protocol: protocol(m.protocol),
            }),
            evidence: Vec::new(),
        });
    }
    // A resolver's answer to a client's question: the client's copy of it is checked.
    let forwarded = !question.is_empty()
        && d.dns.is_resolver(&m.process)
        && d.dns.asked_by_other(question, m.process.pid, now);
    if !forwarded {
        out.extend(check_answer_intel(d, m, question, lookup));
    }
    if !question.is_empty()
        && let Some(rcode) = m.rcode.as_deref()
        && let Some(c) = check_dga(d, m, question, Some(rcode), now, lookup)
    {
        out.push(c);
    }
    out
}

/// Threat intel on what an answer says: every name of the CNAME chain and every A/AAAA
/// address. A listed name raises the DNS type its list feeds; a listed address raises the DNS
/// counterpart of the connection type its list feeds (a name resolving to a C2 address is
/// `C&CActivity.B!DNS`, to a sinkhole `BlackholeTraffic!DNS`). Types the queried name itself
/// raised when it was sent are not raised again.
fn check_answer_intel(
    d: &Detector,
    m: &DnsInfo,
    question: &str,
    lookup: &dyn ProcessLookup,
) -> Vec<Candidate> {
    if m.answers.is_empty() {
        return Vec::new();
    }
    let intel = d.intel.snapshot();
    let asked: BTreeSet<FindingType> = if question.is_empty() {
        BTreeSet::new()
    } else {
        by_type(intel.lookup_domain(question), FindingType::is_dns)
            .into_keys()
            .collect()
    };
    // Per type: (what in the answer is listed, the list).
    let mut hits: BTreeMap<FindingType, Vec<(String, String)>> = BTreeMap::new();
    let mut names: Vec<&str> = Vec::new();
    for a in &m.answers {
        let target = (a.rtype == "CNAME").then_some(a.data.as_str());
        for n in [Some(a.name.as_str()), target].into_iter().flatten() {
            if n.is_empty() || n == question || names.contains(&n) {
                continue;
            }
            names.push(n);
            for (t, lists) in by_type(intel.lookup_domain(n), FindingType::is_dns) {
                if !asked.contains(&t) {
                    let hit = hits.entry(t).or_default();
                    hit.extend(lists.into_iter().map(|l| (n.to_owned(), l)));
                }
            }
        }
        if a.rtype != "A" && a.rtype != "AAAA" {
            continue;
        }
        let Ok(ip) = a.data.parse::<IpAddr>() else {
            continue;
        };
        for list in intel.lookup_ip(ip) {
            for t in list.feeds.iter().filter_map(|t| dns_type_for_address(*t)) {
                if !asked.contains(&t) {
                    hits.entry(t)
                        .or_default()
                        .push((ip.to_string(), list.name.clone()));
                }
            }
        }
    }
    if hits.is_empty() {
        return Vec::new();
    }
    let domain = if question.is_empty() {
        names.first().copied().unwrap_or("")
    } else {
        question
    };
    let process = actor(d, m, lookup);
    hits.into_iter()
        .map(|(t, found)| {
            let mut listed: Vec<&str> = found.iter().map(|(i, _)| i.as_str()).collect();
            listed.dedup();
            let mut context = dns_context(m);
            context
                .additional
                .insert("dnsAnswerListed".into(), listed.join(","));
            let lists: BTreeSet<&str> = found.iter().map(|(_, l)| l.as_str()).collect();
            Candidate {
                container: m.process.container.clone(),
                finding_type: t,
                severity: super::default_severity(t),
                title: title(t).into(),
                description: format!(
                    "{} queried {domain} ({}); the answer carries {}, listed on {}.",
                    asker(m),
                    m.protocol,
                    listed.join(", "),
                    lists.into_iter().collect::<Vec<_>>().join(", ")
                ),
                key: domain.to_owned(),
                role: ResourceRole::Actor,
                process: process.clone(),
                context,
                network: None,
                dns: Some(DnsAction {
                    domain: domain.to_owned(),
                    protocol: protocol(m.protocol),
                }),
                evidence: found
                    .into_iter()
                    .map(|(indicator, list)| ThreatIntelligenceDetail {
                        threat_list_name: list,
                        indicator,
                    })
                    .collect(),
            }
        })
        .collect()
}
