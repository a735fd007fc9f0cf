//! Exec-based findings: the rules of `node-agent/rules/*.yaml` (tools, commands, miners,
//! shells, elevation) and executables whose SHA-256 is on a threat list.

use vigil_crds::finding::{ResourceRole, RuntimeContext, ThreatIntelligenceDetail};
use vigil_detection::FindingType;

use super::{
    Candidate, Detector, ProcessLookup, basename, path_basename, redact::redacted_command_line,
    rules::ExecFacts,
};
use crate::event::ExecInfo;

/// Findings raised by one exec.
pub(crate) fn check(d: &Detector, e: &ExecInfo, lookup: &dyn ProcessLookup) -> Vec<Candidate> {
    let cmdline = e.argv.join(" ");
    let parent = e.lineage.first();
    let facts = ExecFacts {
        exe_name: path_basename(&e.exe),
        argv0_name: e.argv.first().map_or("", |a| basename(a)),
        filename_name: basename(&e.filename),
        cmdline: &cmdline,
        parent_exe_name: parent
            .and_then(|p| p.exe.as_deref())
            .map_or("", path_basename),
        parent_comm: parent.map_or("", |p| p.comm.as_str()),
        elevated: e.process.euid == 0 && e.process.uid != 0,
        stdio_socket: stdio_peer(e).is_some(),
    };
    let matched = d.rules.matching(&facts);
    let sha_matches = e.sha256.map(|digest| {
        let intel = d.intel.snapshot();
        let lists: Vec<String> = intel
            .lookup_sha256(digest.as_bytes())
            .filter(|l| {
                l.feeds
                    .contains(&FindingType::ExecutionMaliciousFileExecuted)
            })
            .map(|l| l.name.clone())
            .collect();
        (digest, lists)
    });
    let malicious = sha_matches.as_ref().is_some_and(|(_, l)| !l.is_empty());
    if matched.is_empty() && !malicious {
        return Vec::new();
    }
    let command = redacted_command_line(&e.argv);
    let process = d.process_details(&e.process, lookup);
    let exe = e.exe.display().to_string();
    let mut out = Vec::new();
    for rule in matched {
        let mut context = RuntimeContext {
            command_line_example: Some(command.clone()),
            ..RuntimeContext::default()
        };
        if let Some((name, category)) = &rule.tool {
            context.tool_name = Some(name.clone());
            context.tool_category = Some(category.clone());
        }
        context.additional.insert("ruleId".into(), rule.id.clone());
        context
            .additional
            .insert("mitreTechniques".into(), rule.mitre.join(","));
        context
            .additional
            .insert("ruleOrigin".into(), rule.origin.clone());
        if rule.finding_type == FindingType::ExecutionReverseShell
            && let Some(peer) = stdio_peer(e)
        {
            context
                .additional
                .insert("stdioPeer".into(), peer.to_string());
        }
        if rule.finding_type == FindingType::PrivilegeEscalationElevationToRoot {
            context
                .additional
                .insert("realUid".into(), e.process.uid.to_string());
        }
        out.push(Candidate {
            container: e.process.container.clone(),
            finding_type: rule.finding_type,
            severity: rule.severity,
            title: rule.description.clone(),
            description: format!(
                "Process {} ({exe}, pid {}) ran `{command}`: {}.",
                e.process.comm, e.process.pid, rule.description
            ),
            // A reverse shell to another peer is another finding.
            key: match (rule.finding_type, stdio_peer(e)) {
                (FindingType::ExecutionReverseShell, Some(peer)) => {
                    format!("{}\0{exe}\0{}", rule.id, peer.ip())
                }
                _ => format!("{}\0{exe}", rule.id),
            },
            role: ResourceRole::Actor,
            process: Some(process.clone()),
            context,
            network: None,
            dns: None,
            evidence: Vec::new(),
        });
    }
    if let Some((digest, lists)) = sha_matches
        && !lists.is_empty()
    {
        let hex = digest.to_string();
        out.push(Candidate {
            container: e.process.container.clone(),
            finding_type: FindingType::ExecutionMaliciousFileExecuted,
            severity: super::default_severity(FindingType::ExecutionMaliciousFileExecuted),
            title: "A known malicious file was executed".into(),
            description: format!(
                "Process {} (pid {}) executed {exe}, whose SHA-256 {hex} is on the threat list {}.",
                e.process.comm,
                e.process.pid,
                lists.join(", ")
            ),
            key: hex.clone(),
            role: ResourceRole::Actor,
            process: Some(process),
            context: RuntimeContext {
                file_path: Some(exe.clone()),
                command_line_example: Some(command),
                ..RuntimeContext::default()
            },
            network: None,
            dns: None,
            evidence: lists
                .into_iter()
                .map(|name| ThreatIntelligenceDetail {
                    threat_list_name: name,
                    indicator: hex.clone(),
                })
                .collect(),
        });
    }
    out
}

/// The peer of standard input when both standard input and output are connected IP sockets:
/// the shape of a shell driven over the network.
fn stdio_peer(e: &ExecInfo) -> Option<std::net::SocketAddr> {
    let inet = |fd: u8| {
        e.stdio_sockets
            .iter()
            .find(|s| s.fd == fd && (s.family == "inet" || s.family == "inet6"))
            .and_then(|s| s.remote)
    };
    let stdin = inet(0)?;
    inet(1)?;
    Some(stdin)
}
