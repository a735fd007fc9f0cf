//! Reputation findings: connections and DNS names against threat intelligence, DGA-looking
//! names, and names that resolve to the instance metadata address.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use vigil_crds::finding::{
    ConnectionDirection, DnsAction, NetworkAction, ResourceRole, RuntimeContext,
    ThreatIntelligenceDetail,
};
use vigil_detection::FindingType;

use super::{Candidate, Detector, ProcessLookup};
use crate::event::{DnsInfo, NetInfo};

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
const MAX_ANSWERS: usize = 8_192;

/// Names never scored for DGA: reverse lookups, local and service-discovery names.
fn dga_exempt(name: &str) -> bool {
    name.ends_with(".arpa")
        || name.ends_with(".local")
        || name.ends_with(".internal")
        || name.ends_with(".localdomain")
        || name.contains('_')
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

pub(crate) fn check_dns(
    d: &mut Detector,
    m: &DnsInfo,
    lookup: &dyn ProcessLookup,
) -> Vec<Candidate> {
    if m.direction == "answer" {
        return check_answer(d, m, lookup);
    }
    let intel = d.intel.snapshot();
    let mut out = Vec::new();
    for q in &m.questions {
        let name = q.name.as_str();
        if name.is_empty() {
            continue;
        }
        let types = by_type(intel.lookup_domain(name), FindingType::is_dns);
        for (t, lists) in types {
            out.push(Candidate {
                container: m.process.container.clone(),
                finding_type: t,
                severity: super::default_severity(t),
                title: title(t).into(),
                description: format!(
                    "Process {} (pid {}) queried {name} ({} {}), listed on {}.",
                    m.process.comm,
                    m.process.pid,
                    q.qtype,
                    m.protocol,
                    lists.join(", ")
                ),
                key: name.to_owned(),
                role: ResourceRole::Actor,
                process: Some(d.process_details(&m.process, lookup)),
                context: RuntimeContext::default(),
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
        if let Some(c) = check_dga(d, m, name, lookup) {
            out.push(c);
        }
    }
    out
}

fn check_dga(
    d: &mut Detector,
    m: &DnsInfo,
    name: &str,
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    let model = d.dga.as_ref()?;
    if dga_exempt(name) || !model.is_dga(name) {
        return None;
    }
    let threshold = d.config.dga_names_per_process.max(1);
    let pid = m.process.pid;
    let start = m.process.start_time_ns;
    if d.dga_hits.len() >= d.config.max_processes && !d.dga_hits.contains_key(&pid) {
        return None;
    }
    let entry = d.dga_hits.entry(pid).or_insert_with(|| (start, Vec::new()));
    if entry.0 != start {
        // The pid was reused by a new process.
        *entry = (start, Vec::new());
    }
    if !entry.1.iter().any(|n| n == name) {
        if entry.1.len() >= 16 {
            entry.1.remove(0);
        }
        entry.1.push(name.to_owned());
    }
    if entry.1.len() < threshold {
        return None;
    }
    let names = entry.1.join(",");
    let process = d.process_details(&m.process, lookup);
    let t = FindingType::TrojanDgaDomainRequestCDns;
    let mut context = RuntimeContext::default();
    context
        .additional
        .insert("dgaDomains".into(), names.clone());
    Some(Candidate {
        container: m.process.container.clone(),
        finding_type: t,
        severity: super::default_severity(t),
        title: title(t).into(),
        description: format!(
            "Process {} (pid {}) queried names that look algorithmically generated: {names}.",
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

fn check_answer(d: &mut Detector, m: &DnsInfo, lookup: &dyn ProcessLookup) -> Vec<Candidate> {
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
        if d.answers.len() >= MAX_ANSWERS && !d.answers.contains_key(&ip) {
            d.answers.clear();
        }
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
                "Process {} (pid {}) resolved {name} to {ip}, the instance metadata address: a DNS rebinding attempt to reach instance credentials.",
                m.process.comm, m.process.pid
            ),
            key: name.to_owned(),
            role: ResourceRole::Actor,
            process: Some(d.process_details(&m.process, lookup)),
            context: RuntimeContext::default(),
            network: None,
            dns: Some(DnsAction {
                domain: name.to_owned(),
                protocol: protocol(m.protocol),
            }),
            evidence: Vec::new(),
        });
    }
    out
}
