//! MITRE ATT&CK techniques of a finding: the ones its rule names (`context.additional.
//! mitreTechniques`, e.g. `T1110.001,T1046`), or else the technique a finding type stands for,
//! for the types whose technique is unambiguous. Types without a clear single technique (the
//! domain-reputation types, new binaries and libraries, sensitive files) have none rather than
//! a guess.

use vigil_crds::finding::Finding;

use super::additional;

/// An ATT&CK technique, with the sub-technique when there is one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Attack {
    /// Technique id, e.g. `T1059`.
    pub technique: String,
    /// Technique name, when known.
    pub technique_name: Option<&'static str>,
    /// Sub-technique id and name, e.g. `T1059.004`, `Unix Shell`.
    pub sub_technique: Option<(String, Option<&'static str>)>,
    /// Tactic id and name, when known, e.g. `TA0002`, `Execution`.
    pub tactic: Option<(&'static str, &'static str)>,
}

const C2: (&str, &str) = ("TA0011", "Command and Control");
const IMPACT: (&str, &str) = ("TA0040", "Impact");
const CREDENTIAL_ACCESS: (&str, &str) = ("TA0006", "Credential Access");
const PRIVILEGE_ESCALATION: (&str, &str) = ("TA0004", "Privilege Escalation");
const DEFENSE_EVASION: (&str, &str) = ("TA0005", "Defense Evasion");
const EXECUTION: (&str, &str) = ("TA0002", "Execution");
const PERSISTENCE: (&str, &str) = ("TA0003", "Persistence");
const INITIAL_ACCESS: (&str, &str) = ("TA0001", "Initial Access");

/// (finding type, technique, technique name, sub-technique and its name, tactic).
type Entry = (
    &'static str,
    &'static str,
    &'static str,
    Option<(&'static str, &'static str)>,
    (&'static str, &'static str),
);

const BY_TYPE: &[Entry] = &[
    (
        "Backdoor:Runtime/C&CActivity.B",
        "T1071",
        "Application Layer Protocol",
        None,
        C2,
    ),
    (
        "Backdoor:Runtime/C&CActivity.B!DNS",
        "T1071",
        "Application Layer Protocol",
        None,
        C2,
    ),
    (
        "CryptoCurrency:Runtime/BitcoinTool.B",
        "T1496",
        "Resource Hijacking",
        None,
        IMPACT,
    ),
    (
        "CryptoCurrency:Runtime/BitcoinTool.B!DNS",
        "T1496",
        "Resource Hijacking",
        None,
        IMPACT,
    ),
    (
        "Impact:Runtime/BitcoinDomainRequest.Reputation",
        "T1496",
        "Resource Hijacking",
        None,
        IMPACT,
    ),
    (
        "Impact:Runtime/CryptoMinerExecuted",
        "T1496",
        "Resource Hijacking",
        None,
        IMPACT,
    ),
    (
        "UnauthorizedAccess:Runtime/TorClient",
        "T1090",
        "Proxy",
        Some(("T1090.003", "Multi-hop Proxy")),
        C2,
    ),
    (
        "UnauthorizedAccess:Runtime/TorRelay",
        "T1090",
        "Proxy",
        Some(("T1090.003", "Multi-hop Proxy")),
        C2,
    ),
    (
        "Trojan:Runtime/DGADomainRequest.C!DNS",
        "T1568",
        "Dynamic Resolution",
        Some(("T1568.002", "Domain Generation Algorithms")),
        C2,
    ),
    (
        "Trojan:Runtime/DriveBySourceTraffic!DNS",
        "T1189",
        "Drive-by Compromise",
        None,
        INITIAL_ACCESS,
    ),
    (
        "UnauthorizedAccess:Runtime/MetadataDNSRebind",
        "T1552",
        "Unsecured Credentials",
        Some(("T1552.005", "Cloud Instance Metadata API")),
        CREDENTIAL_ACCESS,
    ),
    (
        "PrivilegeEscalation:Runtime/DockerSocketAccessed",
        "T1611",
        "Escape to Host",
        None,
        PRIVILEGE_ESCALATION,
    ),
    (
        "PrivilegeEscalation:Runtime/RuncContainerEscape",
        "T1611",
        "Escape to Host",
        None,
        PRIVILEGE_ESCALATION,
    ),
    (
        "PrivilegeEscalation:Runtime/CGroupsReleaseAgentModified",
        "T1611",
        "Escape to Host",
        None,
        PRIVILEGE_ESCALATION,
    ),
    (
        "PrivilegeEscalation:Runtime/ContainerMountsHostDirectory",
        "T1611",
        "Escape to Host",
        None,
        PRIVILEGE_ESCALATION,
    ),
    (
        "PrivilegeEscalation:Runtime/UserfaultfdUsage",
        "T1068",
        "Exploitation for Privilege Escalation",
        None,
        PRIVILEGE_ESCALATION,
    ),
    (
        "PrivilegeEscalation:Runtime/ElevationToRoot",
        "T1548",
        "Abuse Elevation Control Mechanism",
        Some(("T1548.001", "Setuid and Setgid")),
        PRIVILEGE_ESCALATION,
    ),
    (
        "DefenseEvasion:Runtime/ProcessInjection.Proc",
        "T1055",
        "Process Injection",
        Some(("T1055.009", "Proc Memory")),
        DEFENSE_EVASION,
    ),
    (
        "CredentialAccess:Runtime/MemoryDumpCreated",
        "T1003",
        "OS Credential Dumping",
        Some(("T1003.007", "Proc Filesystem")),
        CREDENTIAL_ACCESS,
    ),
    (
        "DefenseEvasion:Runtime/ProcessInjection.Ptrace",
        "T1055",
        "Process Injection",
        Some(("T1055.008", "Ptrace System Calls")),
        DEFENSE_EVASION,
    ),
    (
        "DefenseEvasion:Runtime/ProcessInjection.VirtualMemoryWrite",
        "T1055",
        "Process Injection",
        None,
        DEFENSE_EVASION,
    ),
    (
        "DefenseEvasion:Runtime/FilelessExecution",
        "T1620",
        "Reflective Code Loading",
        None,
        DEFENSE_EVASION,
    ),
    (
        "DefenseEvasion:Runtime/PtraceAntiDebugging",
        "T1622",
        "Debugger Evasion",
        None,
        DEFENSE_EVASION,
    ),
    (
        "DefenseEvasion:Runtime/KernelModuleLoaded",
        "T1547",
        "Boot or Logon Autostart Execution",
        Some(("T1547.006", "Kernel Modules and Extensions")),
        PERSISTENCE,
    ),
    (
        "DefenseEvasion:Runtime/SecurityAgentTampered",
        "T1562",
        "Impair Defenses",
        Some(("T1562.001", "Disable or Modify Tools")),
        DEFENSE_EVASION,
    ),
    (
        "Execution:Runtime/ReverseShell",
        "T1059",
        "Command and Scripting Interpreter",
        Some(("T1059.004", "Unix Shell")),
        EXECUTION,
    ),
    (
        "Execution:Runtime/SuspiciousShellCreated",
        "T1059",
        "Command and Scripting Interpreter",
        Some(("T1059.004", "Unix Shell")),
        EXECUTION,
    ),
    (
        "Execution:Runtime/MaliciousFileExecuted",
        "T1204",
        "User Execution",
        Some(("T1204.002", "Malicious File")),
        EXECUTION,
    ),
];

/// The techniques of `finding`: its rule's, or its type's.
pub(crate) fn attacks(finding: &Finding) -> Vec<Attack> {
    if let Some(ids) = additional(finding, "mitreTechniques") {
        let from_rule: Vec<Attack> = ids
            .split(',')
            .map(str::trim)
            .filter(|id| is_technique_id(id))
            .map(|id| match id.split_once('.') {
                Some((technique, _)) => Attack {
                    technique: technique.to_owned(),
                    technique_name: None,
                    sub_technique: Some((id.to_owned(), None)),
                    tactic: None,
                },
                None => Attack {
                    technique: id.to_owned(),
                    technique_name: None,
                    sub_technique: None,
                    tactic: None,
                },
            })
            .collect();
        if !from_rule.is_empty() {
            return from_rule;
        }
    }
    BY_TYPE
        .iter()
        .filter(|(t, ..)| *t == finding.finding_type)
        .map(|(_, technique, name, sub, tactic)| Attack {
            technique: (*technique).to_owned(),
            technique_name: Some(name),
            sub_technique: sub.map(|(id, name)| (id.to_owned(), Some(name))),
            tactic: Some(*tactic),
        })
        .collect()
}

/// `T` and four digits, optionally `.` and three digits.
fn is_technique_id(id: &str) -> bool {
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    match id.strip_prefix('T') {
        Some(rest) => match rest.split_once('.') {
            Some((t, sub)) => digits(t, 4) && digits(sub, 3),
            None => digits(rest, 4),
        },
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use vigil_detection::FindingType;

    use super::*;
    use crate::format::testdata;

    #[test]
    fn rule_techniques_win_over_the_type_and_bad_ids_are_dropped() {
        let mut f = testdata::rule_archived();
        let got = attacks(&f);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].technique, "T1110");
        assert_eq!(got[0].sub_technique, Some(("T1110.001".into(), None)));
        assert_eq!(got[1].technique, "T1046");
        assert_eq!(got[1].sub_technique, None);
        f.context
            .additional
            .insert("mitreTechniques".into(), "T12, X1000, T1059.4".into());
        assert!(attacks(&f).is_empty(), "no valid id, and the type has none");
        f.finding_type = "Execution:Runtime/ReverseShell".into();
        let got = attacks(&f);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].tactic, Some(("TA0002", "Execution")));
        assert_eq!(
            got[0].sub_technique,
            Some(("T1059.004".into(), Some("Unix Shell")))
        );
    }

    #[test]
    fn the_table_names_real_types_with_well_formed_ids() {
        for (t, technique, name, sub, (tactic, tactic_name)) in BY_TYPE {
            assert!(
                t.parse::<FindingType>().is_ok(),
                "{t} is not a finding type"
            );
            assert!(is_technique_id(technique), "{technique}");
            assert!(!name.is_empty() && !tactic_name.is_empty());
            assert!(tactic.starts_with("TA") && tactic.len() == 6, "{tactic}");
            if let Some((id, _)) = sub {
                assert!(
                    is_technique_id(id) && id.starts_with(technique),
                    "{id} of {technique}"
                );
            }
        }
    }
}
