//! Exec-based findings: the rules of `node-agent/rules/*.yaml` (tools, commands, miners,
//! shells, elevation) and executables whose SHA-256 is on a threat list.

use vigil_crds::finding::{ResourceRole, RuntimeContext, ThreatIntelligenceDetail};
use vigil_detection::FindingType;

use super::{
    Candidate, Detector, ProcessLookup, basename, path_basename, redact::redacted_command_line,
    rules::ExecFacts,
};
use crate::event::ExecInfo;

/// The types a SHA-256 list may feed for executables.
const HASH_TYPES: [FindingType; 3] = [
    FindingType::ExecutionMaliciousFileExecuted,
    FindingType::ExecutionSuspiciousTool,
    FindingType::ImpactCryptoMinerExecuted,
];

/// Findings raised by one exec.
pub(crate) fn check(d: &Detector, e: &ExecInfo, lookup: &dyn ProcessLookup) -> Vec<Candidate> {
    let cmdline = e.argv.join(" ");
    let parent = e.lineage.first();
    let facts = ExecFacts {
        exe_name: path_basename(&e.exe),
        argv0_name: e.argv.first().map_or("", |a| basename(a)),
        filename_name: basename(&e.filename),
        content_name: e
            .sha256
            .and_then(|digest| d.tool_hashes.get(&digest))
            .map_or("", String::as_str),
        cmdline: &cmdline,
        parent_exe_name: parent
            .and_then(|p| p.exe.as_deref())
            .map_or("", path_basename),
        parent_comm: parent.map_or("", |p| p.comm.as_str()),
        elevated: e.process.euid == 0 && e.process.uid != 0,
        stdio_socket: stdio_peer(e).is_some(),
    };
    let matched = d.rules.matching(&facts);
    // Hash lists: malicious files, and tools and miners by content (a list feeding
    // SuspiciousTool or CryptoMinerExecuted), each type with the lists that name the file.
    let mut by_hash: Vec<(FindingType, Vec<String>)> = Vec::new();
    if let Some(digest) = e.sha256 {
        let intel = d.intel.snapshot();
        for list in intel.lookup_sha256(digest.as_bytes()) {
            for &feed in &list.feeds {
                if !HASH_TYPES.contains(&feed) {
                    continue;
                }
                match by_hash.iter_mut().find(|(t, _)| *t == feed) {
                    Some((_, names)) => names.push(list.name.clone()),
                    None => by_hash.push((feed, vec![list.name.clone()])),
                }
            }
        }
    }
    // A rule that named the program already raised its type.
    by_hash.retain(|(t, _)| !matched.iter().any(|r| r.finding_type == *t));
    if matched.is_empty() && by_hash.is_empty() {
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
        if !facts.content_name.is_empty()
            && !rule.matches(&ExecFacts {
                content_name: "",
                ..facts
            })
        {
            // Only the bytes gave it away: a renamed or copied tool.
            context
                .additional
                .insert("identifiedBy".into(), "content".into());
            context
                .additional
                .insert("contentOf".into(), facts.content_name.to_owned());
        }
        name_rule(&mut context, rule);
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
    if let Some(digest) = e.sha256 {
        let hex = digest.to_string();
        for (finding_type, lists) in by_hash {
            let (title, what) = match finding_type {
                FindingType::ExecutionMaliciousFileExecuted => {
                    ("A known malicious file was executed", "a malicious file")
                }
                FindingType::ImpactCryptoMinerExecuted => {
                    ("A known cryptocurrency miner was executed", "a miner")
                }
                _ => ("A known attack tool was executed", "an attack tool"),
            };
            let mut context = RuntimeContext {
                file_path: Some(exe.clone()),
                command_line_example: Some(command.clone()),
                ..RuntimeContext::default()
            };
            context
                .additional
                .insert("identifiedBy".into(), "hashList".into());
            out.push(Candidate {
                container: e.process.container.clone(),
                finding_type,
                severity: super::default_severity(finding_type),
                title: title.into(),
                description: format!(
                    "Process {} (pid {}) executed {exe}, whose SHA-256 {hex} is {what} on the \
                     threat list {}.",
                    e.process.comm,
                    e.process.pid,
                    lists.join(", ")
                ),
                key: if finding_type == FindingType::ExecutionMaliciousFileExecuted {
                    hex.clone()
                } else {
                    format!("{}\0{hex}", finding_type.as_str())
                },
                role: ResourceRole::Actor,
                process: Some(process.clone()),
                context,
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
    }
    out
}

/// The `scriptLines` rules on the lines of the shell's script that the edge kept
/// ([`ExecInfo::script_lines`]): each line as `SHELL -c LINE` looks to a rule, raised with the
/// shell as the actor and the script and line in the context. One finding per rule and script.
pub(crate) fn check_script_lines(
    d: &Detector,
    e: &ExecInfo,
    lookup: &dyn ProcessLookup,
) -> Vec<Candidate> {
    if e.script_lines.is_empty() {
        return Vec::new();
    }
    let shell = path_basename(&e.exe);
    let script = super::script_operand(&d.rules, &e.argv).unwrap_or(&e.filename);
    let exe = e.exe.display().to_string();
    let mut out: Vec<Candidate> = Vec::new();
    for line in &e.script_lines {
        let facts = ExecFacts::script_line(shell, line);
        // Redacted word by word, as a command line is (`mysql -pSECRET` in a script).
        let words: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        let shown = redacted_command_line(&words);
        for rule in d.rules.matching(&facts) {
            if !rule.script_lines {
                continue;
            }
            let key = format!("{}\0{exe}\0{script}", rule.id);
            if out.iter().any(|c| c.key == key) {
                continue;
            }
            let mut context = RuntimeContext {
                command_line_example: Some(redacted_command_line(&e.argv)),
                ..RuntimeContext::default()
            };
            name_rule(&mut context, rule);
            let extra = &mut context.additional;
            extra.insert("script".into(), script.to_owned());
            extra.insert("scriptLine".into(), shown.clone());
            out.push(Candidate {
                container: e.process.container.clone(),
                finding_type: rule.finding_type,
                severity: rule.severity,
                title: rule.description.clone(),
                description: format!(
                    "Process {} ({exe}, pid {}) runs the script {script}, whose line `{}` \
                     matches: {}.",
                    e.process.comm, e.process.pid, shown, rule.description
                ),
                key,
                role: ResourceRole::Actor,
                process: Some(d.process_details(&e.process, lookup)),
                context,
                network: None,
                dns: None,
                evidence: Vec::new(),
            });
        }
    }
    out
}

/// Names the rule that raised a finding in its context: `ruleId`, `mitreTechniques`,
/// `ruleOrigin`.
fn name_rule(context: &mut RuntimeContext, rule: &super::rules::Rule) {
    let extra = &mut context.additional;
    extra.insert("ruleId".into(), rule.id.clone());
    extra.insert("mitreTechniques".into(), rule.mitre.join(","));
    extra.insert("ruleOrigin".into(), rule.origin.clone());
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

/// A `setuid`, `setreuid` or `setresuid` that made the effective uid 0 for a process whose real
/// and effective uids were both not 0 before it: root gained through the capability
/// `CAP_SETUID` (`setcap cap_setuid+ep` on an interpreter or a copy of one, then
/// `os.setuid(0)`) or taken back from a saved uid of 0. Nothing about it is in an exec (the
/// programs it runs afterwards have uid 0 and euid 0), so the elevation rules are applied here,
/// as the kernel recorded the call: the uids before it and after it. Their allow-lists of
/// standard setuid helpers (`notExe`: `sudo` takes its root back this way) are matched on the
/// running executable, never on `comm`. A root process dropping privileges, or one already
/// effectively root, raises nothing.
pub(crate) fn check_uid_change(
    d: &Detector,
    a: &crate::event::ActivityInfo,
    lookup: &dyn ProcessLookup,
) -> Vec<Candidate> {
    if !matches!(a.operation, "setuid" | "setreuid" | "setresuid") || a.ret < 0 {
        return Vec::new();
    }
    let Some([uid_before, euid_before, _, _]) = a.before else {
        return Vec::new();
    };
    if uid_before == 0 || euid_before == 0 || a.process.euid != 0 {
        return Vec::new();
    }
    let process = d.process_details(&a.process, lookup);
    let exe = process.executable_path.clone();
    let facts = ExecFacts {
        exe_name: path_basename(std::path::Path::new(&exe)),
        argv0_name: "",
        filename_name: "",
        content_name: "",
        cmdline: "",
        parent_exe_name: "",
        parent_comm: "",
        elevated: true,
        stdio_socket: false,
    };
    let requested = a
        .requested
        .iter()
        .map(|&v| {
            if v == u32::MAX {
                "-1".to_owned()
            } else {
                v.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let call = format!("{}({requested})", a.operation);
    d.rules
        .matching(&facts)
        .into_iter()
        .filter(|r| r.finding_type == FindingType::PrivilegeEscalationElevationToRoot)
        .map(|rule| {
            let mut context = RuntimeContext::default();
            name_rule(&mut context, rule);
            let extra = &mut context.additional;
            extra.insert("realUid".into(), uid_before.to_string());
            extra.insert("effectiveUidBefore".into(), euid_before.to_string());
            extra.insert("syscall".into(), call.clone());
            Candidate {
                container: a.process.container.clone(),
                finding_type: rule.finding_type,
                severity: rule.severity,
                title: "A process made itself root with a set*id call".into(),
                description: format!(
                    "Process {} ({}, pid {}) called {call} as uid {uid_before} (effective \
                     {euid_before}) and is now effectively root.",
                    a.process.comm,
                    if exe.is_empty() { "?" } else { exe.as_str() },
                    a.process.pid,
                ),
                // The program, as for the exec: one finding however it got its root.
                key: format!("{}\0{exe}", rule.id),
                role: ResourceRole::Actor,
                process: Some(process.clone()),
                context,
                network: None,
                dns: None,
                evidence: Vec::new(),
            }
        })
        .collect()
}
