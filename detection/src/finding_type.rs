//! The GuardDuty Runtime Monitoring finding catalogue.
//!
//! Every finding Vigil raises carries one of these types. The serialised form is the exact
//! GuardDuty string (`Backdoor:Runtime/C&CActivity.B!DNS`), so findings can be compared with,
//! or forwarded to, tooling built for GuardDuty.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// How serious a finding is, on GuardDuty's scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Severity {
    /// Suspicious activity that was blocked or is unlikely to cause harm.
    Low,
    /// Activity that deviates from normal and needs investigation.
    Medium,
    /// The resource is likely compromised and needs action now.
    High,
}

/// The default severity GuardDuty documents for a finding type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DefaultSeverity {
    /// Always raised at this severity.
    Fixed(Severity),
    /// GuardDuty documents the severity as variable: the detector decides from context (for
    /// example which tool or command matched).
    Variable,
}

impl DefaultSeverity {
    /// The severity to use when the detector has no context to refine a variable one: the
    /// variable types are raised at `Medium` unless a rule says otherwise.
    pub const fn or_medium(self) -> Severity {
        match self {
            Self::Fixed(severity) => severity,
            Self::Variable => Severity::Medium,
        }
    }
}

/// A runtime finding type: the 45 GuardDuty Runtime Monitoring types and Vigil's own
/// `DefenseEvasion:Runtime/SecurityAgentTampered` (47 in all, with
/// `CredentialAccess:Runtime/MemoryDumpCreated`).
///
/// Serialises to and parses from the exact GuardDuty string; [`FindingType::ALL`] lists the
/// whole catalogue in GuardDuty's documentation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum FindingType {
    /// `Backdoor:Runtime/C&CActivity.B`
    #[serde(rename = "Backdoor:Runtime/C&CActivity.B")]
    BackdoorCcActivityB,
    /// `Backdoor:Runtime/C&CActivity.B!DNS`
    #[serde(rename = "Backdoor:Runtime/C&CActivity.B!DNS")]
    BackdoorCcActivityBDns,
    /// `CryptoCurrency:Runtime/BitcoinTool.B`
    #[serde(rename = "CryptoCurrency:Runtime/BitcoinTool.B")]
    CryptoCurrencyBitcoinToolB,
    /// `CryptoCurrency:Runtime/BitcoinTool.B!DNS`
    #[serde(rename = "CryptoCurrency:Runtime/BitcoinTool.B!DNS")]
    CryptoCurrencyBitcoinToolBDns,
    /// `UnauthorizedAccess:Runtime/TorRelay`
    #[serde(rename = "UnauthorizedAccess:Runtime/TorRelay")]
    UnauthorizedAccessTorRelay,
    /// `UnauthorizedAccess:Runtime/TorClient`
    #[serde(rename = "UnauthorizedAccess:Runtime/TorClient")]
    UnauthorizedAccessTorClient,
    /// `Trojan:Runtime/BlackholeTraffic`
    #[serde(rename = "Trojan:Runtime/BlackholeTraffic")]
    TrojanBlackholeTraffic,
    /// `Trojan:Runtime/BlackholeTraffic!DNS`
    #[serde(rename = "Trojan:Runtime/BlackholeTraffic!DNS")]
    TrojanBlackholeTrafficDns,
    /// `Trojan:Runtime/DropPoint`
    #[serde(rename = "Trojan:Runtime/DropPoint")]
    TrojanDropPoint,
    /// `Trojan:Runtime/DropPoint!DNS`
    #[serde(rename = "Trojan:Runtime/DropPoint!DNS")]
    TrojanDropPointDns,
    /// `Trojan:Runtime/DGADomainRequest.C!DNS`
    #[serde(rename = "Trojan:Runtime/DGADomainRequest.C!DNS")]
    TrojanDgaDomainRequestCDns,
    /// `Trojan:Runtime/DriveBySourceTraffic!DNS`
    #[serde(rename = "Trojan:Runtime/DriveBySourceTraffic!DNS")]
    TrojanDriveBySourceTrafficDns,
    /// `Trojan:Runtime/PhishingDomainRequest!DNS`
    #[serde(rename = "Trojan:Runtime/PhishingDomainRequest!DNS")]
    TrojanPhishingDomainRequestDns,
    /// `Impact:Runtime/AbusedDomainRequest.Reputation`
    #[serde(rename = "Impact:Runtime/AbusedDomainRequest.Reputation")]
    ImpactAbusedDomainRequestReputation,
    /// `Impact:Runtime/BitcoinDomainRequest.Reputation`
    #[serde(rename = "Impact:Runtime/BitcoinDomainRequest.Reputation")]
    ImpactBitcoinDomainRequestReputation,
    /// `Impact:Runtime/MaliciousDomainRequest.Reputation`
    #[serde(rename = "Impact:Runtime/MaliciousDomainRequest.Reputation")]
    ImpactMaliciousDomainRequestReputation,
    /// `Impact:Runtime/SuspiciousDomainRequest.Reputation`
    #[serde(rename = "Impact:Runtime/SuspiciousDomainRequest.Reputation")]
    ImpactSuspiciousDomainRequestReputation,
    /// `UnauthorizedAccess:Runtime/MetadataDNSRebind`
    #[serde(rename = "UnauthorizedAccess:Runtime/MetadataDNSRebind")]
    UnauthorizedAccessMetadataDnsRebind,
    /// `Execution:Runtime/NewBinaryExecuted`
    #[serde(rename = "Execution:Runtime/NewBinaryExecuted")]
    ExecutionNewBinaryExecuted,
    /// `Execution:Runtime/NewLibraryLoaded`
    #[serde(rename = "Execution:Runtime/NewLibraryLoaded")]
    ExecutionNewLibraryLoaded,
    /// `PrivilegeEscalation:Runtime/DockerSocketAccessed`
    #[serde(rename = "PrivilegeEscalation:Runtime/DockerSocketAccessed")]
    PrivilegeEscalationDockerSocketAccessed,
    /// `PrivilegeEscalation:Runtime/RuncContainerEscape`
    #[serde(rename = "PrivilegeEscalation:Runtime/RuncContainerEscape")]
    PrivilegeEscalationRuncContainerEscape,
    /// `PrivilegeEscalation:Runtime/CGroupsReleaseAgentModified`
    #[serde(rename = "PrivilegeEscalation:Runtime/CGroupsReleaseAgentModified")]
    PrivilegeEscalationCGroupsReleaseAgentModified,
    /// `DefenseEvasion:Runtime/ProcessInjection.Proc`
    #[serde(rename = "DefenseEvasion:Runtime/ProcessInjection.Proc")]
    DefenseEvasionProcessInjectionProc,
    /// `DefenseEvasion:Runtime/ProcessInjection.Ptrace`
    #[serde(rename = "DefenseEvasion:Runtime/ProcessInjection.Ptrace")]
    DefenseEvasionProcessInjectionPtrace,
    /// `DefenseEvasion:Runtime/ProcessInjection.VirtualMemoryWrite`
    #[serde(rename = "DefenseEvasion:Runtime/ProcessInjection.VirtualMemoryWrite")]
    DefenseEvasionProcessInjectionVirtualMemoryWrite,
    /// `Execution:Runtime/ReverseShell`
    #[serde(rename = "Execution:Runtime/ReverseShell")]
    ExecutionReverseShell,
    /// `DefenseEvasion:Runtime/FilelessExecution`
    #[serde(rename = "DefenseEvasion:Runtime/FilelessExecution")]
    DefenseEvasionFilelessExecution,
    /// `Impact:Runtime/CryptoMinerExecuted`
    #[serde(rename = "Impact:Runtime/CryptoMinerExecuted")]
    ImpactCryptoMinerExecuted,
    /// `PrivilegeEscalation:Runtime/ContainerMountsHostDirectory`
    #[serde(rename = "PrivilegeEscalation:Runtime/ContainerMountsHostDirectory")]
    PrivilegeEscalationContainerMountsHostDirectory,
    /// `PrivilegeEscalation:Runtime/UserfaultfdUsage`
    #[serde(rename = "PrivilegeEscalation:Runtime/UserfaultfdUsage")]
    PrivilegeEscalationUserfaultfdUsage,
    /// `Execution:Runtime/SuspiciousTool`
    #[serde(rename = "Execution:Runtime/SuspiciousTool")]
    ExecutionSuspiciousTool,
    /// `Execution:Runtime/SuspiciousCommand`
    #[serde(rename = "Execution:Runtime/SuspiciousCommand")]
    ExecutionSuspiciousCommand,
    /// `DefenseEvasion:Runtime/SuspiciousCommand`
    #[serde(rename = "DefenseEvasion:Runtime/SuspiciousCommand")]
    DefenseEvasionSuspiciousCommand,
    /// `DefenseEvasion:Runtime/PtraceAntiDebugging`
    #[serde(rename = "DefenseEvasion:Runtime/PtraceAntiDebugging")]
    DefenseEvasionPtraceAntiDebugging,
    /// `Execution:Runtime/MaliciousFileExecuted`
    #[serde(rename = "Execution:Runtime/MaliciousFileExecuted")]
    ExecutionMaliciousFileExecuted,
    /// `DefenseEvasion:Runtime/KernelModuleLoaded`
    #[serde(rename = "DefenseEvasion:Runtime/KernelModuleLoaded")]
    DefenseEvasionKernelModuleLoaded,
    /// `Discovery:Runtime/SuspiciousCommand`
    #[serde(rename = "Discovery:Runtime/SuspiciousCommand")]
    DiscoverySuspiciousCommand,
    /// `Persistence:Runtime/SuspiciousCommand`
    #[serde(rename = "Persistence:Runtime/SuspiciousCommand")]
    PersistenceSuspiciousCommand,
    /// `PrivilegeEscalation:Runtime/SuspiciousCommand`
    #[serde(rename = "PrivilegeEscalation:Runtime/SuspiciousCommand")]
    PrivilegeEscalationSuspiciousCommand,
    /// `PrivilegeEscalation:Runtime/ElevationToRoot`
    #[serde(rename = "PrivilegeEscalation:Runtime/ElevationToRoot")]
    PrivilegeEscalationElevationToRoot,
    /// `Execution:Runtime/SuspiciousShellCreated`
    #[serde(rename = "Execution:Runtime/SuspiciousShellCreated")]
    ExecutionSuspiciousShellCreated,
    /// `Persistence:Runtime/SensitiveFileModified`
    #[serde(rename = "Persistence:Runtime/SensitiveFileModified")]
    PersistenceSensitiveFileModified,
    /// `PrivilegeEscalation:Runtime/SensitiveFileModified`
    #[serde(rename = "PrivilegeEscalation:Runtime/SensitiveFileModified")]
    PrivilegeEscalationSensitiveFileModified,
    /// `DefenseEvasion:Runtime/SensitiveFileModified`
    #[serde(rename = "DefenseEvasion:Runtime/SensitiveFileModified")]
    DefenseEvasionSensitiveFileModified,
    /// `DefenseEvasion:Runtime/SecurityAgentTampered`: Vigil's own type, not GuardDuty's (whose
    /// agent is protected by AWS): another process changed the agent's eBPF maps or detached
    /// its programs, signalled or traced it, or wrote its binary or configuration.
    #[serde(rename = "DefenseEvasion:Runtime/SecurityAgentTampered")]
    DefenseEvasionSecurityAgentTampered,
    /// `CredentialAccess:Runtime/MemoryDumpCreated`: a process read another process's memory
    /// (through `/proc/<pid>/mem`): a memory dump, the way credentials are taken from a running
    /// program.
    #[serde(rename = "CredentialAccess:Runtime/MemoryDumpCreated")]
    CredentialAccessMemoryDumpCreated,
}

impl FindingType {
    /// Every finding type, in the order of GuardDuty's Runtime Monitoring documentation.
    pub const ALL: [Self; 47] = [
        Self::BackdoorCcActivityB,
        Self::BackdoorCcActivityBDns,
        Self::CryptoCurrencyBitcoinToolB,
        Self::CryptoCurrencyBitcoinToolBDns,
        Self::UnauthorizedAccessTorRelay,
        Self::UnauthorizedAccessTorClient,
        Self::TrojanBlackholeTraffic,
        Self::TrojanBlackholeTrafficDns,
        Self::TrojanDropPoint,
        Self::TrojanDropPointDns,
        Self::TrojanDgaDomainRequestCDns,
        Self::TrojanDriveBySourceTrafficDns,
        Self::TrojanPhishingDomainRequestDns,
        Self::ImpactAbusedDomainRequestReputation,
        Self::ImpactBitcoinDomainRequestReputation,
        Self::ImpactMaliciousDomainRequestReputation,
        Self::ImpactSuspiciousDomainRequestReputation,
        Self::UnauthorizedAccessMetadataDnsRebind,
        Self::ExecutionNewBinaryExecuted,
        Self::ExecutionNewLibraryLoaded,
        Self::PrivilegeEscalationDockerSocketAccessed,
        Self::PrivilegeEscalationRuncContainerEscape,
        Self::PrivilegeEscalationCGroupsReleaseAgentModified,
        Self::DefenseEvasionProcessInjectionProc,
        Self::DefenseEvasionProcessInjectionPtrace,
        Self::DefenseEvasionProcessInjectionVirtualMemoryWrite,
        Self::ExecutionReverseShell,
        Self::DefenseEvasionFilelessExecution,
        Self::ImpactCryptoMinerExecuted,
        Self::PrivilegeEscalationContainerMountsHostDirectory,
        Self::PrivilegeEscalationUserfaultfdUsage,
        Self::ExecutionSuspiciousTool,
        Self::ExecutionSuspiciousCommand,
        Self::DefenseEvasionSuspiciousCommand,
        Self::DefenseEvasionPtraceAntiDebugging,
        Self::ExecutionMaliciousFileExecuted,
        Self::DefenseEvasionKernelModuleLoaded,
        Self::DiscoverySuspiciousCommand,
        Self::PersistenceSuspiciousCommand,
        Self::PrivilegeEscalationSuspiciousCommand,
        Self::PrivilegeEscalationElevationToRoot,
        Self::ExecutionSuspiciousShellCreated,
        Self::PersistenceSensitiveFileModified,
        Self::PrivilegeEscalationSensitiveFileModified,
        Self::DefenseEvasionSensitiveFileModified,
        Self::DefenseEvasionSecurityAgentTampered,
        Self::CredentialAccessMemoryDumpCreated,
    ];

    /// The exact GuardDuty string for this type.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BackdoorCcActivityB => "Backdoor:Runtime/C&CActivity.B",
            Self::BackdoorCcActivityBDns => "Backdoor:Runtime/C&CActivity.B!DNS",
            Self::CryptoCurrencyBitcoinToolB => "CryptoCurrency:Runtime/BitcoinTool.B",
            Self::CryptoCurrencyBitcoinToolBDns => "CryptoCurrency:Runtime/BitcoinTool.B!DNS",
            Self::UnauthorizedAccessTorRelay => "UnauthorizedAccess:Runtime/TorRelay",
            Self::UnauthorizedAccessTorClient => "UnauthorizedAccess:Runtime/TorClient",
            Self::TrojanBlackholeTraffic => "Trojan:Runtime/BlackholeTraffic",
            Self::TrojanBlackholeTrafficDns => "Trojan:Runtime/BlackholeTraffic!DNS",
            Self::TrojanDropPoint => "Trojan:Runtime/DropPoint",
            Self::TrojanDropPointDns => "Trojan:Runtime/DropPoint!DNS",
            Self::TrojanDgaDomainRequestCDns => "Trojan:Runtime/DGADomainRequest.C!DNS",
            Self::TrojanDriveBySourceTrafficDns => "Trojan:Runtime/DriveBySourceTraffic!DNS",
            Self::TrojanPhishingDomainRequestDns => "Trojan:Runtime/PhishingDomainRequest!DNS",
            Self::ImpactAbusedDomainRequestReputation => {
                "Impact:Runtime/AbusedDomainRequest.Reputation"
            }
            Self::ImpactBitcoinDomainRequestReputation => {
                "Impact:Runtime/BitcoinDomainRequest.Reputation"
            }
            Self::ImpactMaliciousDomainRequestReputation => {
                "Impact:Runtime/MaliciousDomainRequest.Reputation"
            }
            Self::ImpactSuspiciousDomainRequestReputation => {
                "Impact:Runtime/SuspiciousDomainRequest.Reputation"
            }
            Self::UnauthorizedAccessMetadataDnsRebind => {
                "UnauthorizedAccess:Runtime/MetadataDNSRebind"
            }
            Self::ExecutionNewBinaryExecuted => "Execution:Runtime/NewBinaryExecuted",
            Self::ExecutionNewLibraryLoaded => "Execution:Runtime/NewLibraryLoaded",
            Self::PrivilegeEscalationDockerSocketAccessed => {
                "PrivilegeEscalation:Runtime/DockerSocketAccessed"
            }
            Self::PrivilegeEscalationRuncContainerEscape => {
                "PrivilegeEscalation:Runtime/RuncContainerEscape"
            }
            Self::PrivilegeEscalationCGroupsReleaseAgentModified => {
                "PrivilegeEscalation:Runtime/CGroupsReleaseAgentModified"
            }
            Self::DefenseEvasionProcessInjectionProc => {
                "DefenseEvasion:Runtime/ProcessInjection.Proc"
            }
            Self::DefenseEvasionProcessInjectionPtrace => {
                "DefenseEvasion:Runtime/ProcessInjection.Ptrace"
            }
            Self::DefenseEvasionProcessInjectionVirtualMemoryWrite => {
                "DefenseEvasion:Runtime/ProcessInjection.VirtualMemoryWrite"
            }
            Self::ExecutionReverseShell => "Execution:Runtime/ReverseShell",
            Self::DefenseEvasionFilelessExecution => "DefenseEvasion:Runtime/FilelessExecution",
            Self::ImpactCryptoMinerExecuted => "Impact:Runtime/CryptoMinerExecuted",
            Self::PrivilegeEscalationContainerMountsHostDirectory => {
                "PrivilegeEscalation:Runtime/ContainerMountsHostDirectory"
            }
            Self::PrivilegeEscalationUserfaultfdUsage => {
                "PrivilegeEscalation:Runtime/UserfaultfdUsage"
            }
            Self::ExecutionSuspiciousTool => "Execution:Runtime/SuspiciousTool",
            Self::ExecutionSuspiciousCommand => "Execution:Runtime/SuspiciousCommand",
            Self::DefenseEvasionSuspiciousCommand => "DefenseEvasion:Runtime/SuspiciousCommand",
            Self::DefenseEvasionPtraceAntiDebugging => "DefenseEvasion:Runtime/PtraceAntiDebugging",
            Self::ExecutionMaliciousFileExecuted => "Execution:Runtime/MaliciousFileExecuted",
            Self::DefenseEvasionKernelModuleLoaded => "DefenseEvasion:Runtime/KernelModuleLoaded",
            Self::DiscoverySuspiciousCommand => "Discovery:Runtime/SuspiciousCommand",
            Self::PersistenceSuspiciousCommand => "Persistence:Runtime/SuspiciousCommand",
            Self::PrivilegeEscalationSuspiciousCommand => {
                "PrivilegeEscalation:Runtime/SuspiciousCommand"
            }
            Self::PrivilegeEscalationElevationToRoot => {
                "PrivilegeEscalation:Runtime/ElevationToRoot"
            }
            Self::ExecutionSuspiciousShellCreated => "Execution:Runtime/SuspiciousShellCreated",
            Self::PersistenceSensitiveFileModified => "Persistence:Runtime/SensitiveFileModified",
            Self::PrivilegeEscalationSensitiveFileModified => {
                "PrivilegeEscalation:Runtime/SensitiveFileModified"
            }
            Self::DefenseEvasionSensitiveFileModified => {
                "DefenseEvasion:Runtime/SensitiveFileModified"
            }
            Self::DefenseEvasionSecurityAgentTampered => {
                "DefenseEvasion:Runtime/SecurityAgentTampered"
            }
            Self::CredentialAccessMemoryDumpCreated => "CredentialAccess:Runtime/MemoryDumpCreated",
        }
    }

    /// The default severity from GuardDuty's documentation of this type (the "Default severity"
    /// line of each type on the Runtime Monitoring finding-types page,
    /// <https://docs.aws.amazon.com/guardduty/latest/ug/findings-runtime-monitoring.html>;
    /// docs/FINDINGS.md says how each was checked).
    pub const fn default_severity(self) -> DefaultSeverity {
        use DefaultSeverity::{Fixed, Variable};
        use Severity::{High, Low, Medium};
        match self {
            Self::BackdoorCcActivityB => Fixed(High),
            Self::BackdoorCcActivityBDns => Fixed(High),
            Self::CryptoCurrencyBitcoinToolB => Fixed(High),
            Self::CryptoCurrencyBitcoinToolBDns => Fixed(High),
            Self::UnauthorizedAccessTorRelay => Fixed(High),
            Self::UnauthorizedAccessTorClient => Fixed(High),
            Self::TrojanBlackholeTraffic => Fixed(Medium),
            Self::TrojanBlackholeTrafficDns => Fixed(Medium),
            Self::TrojanDropPoint => Fixed(Medium),
            Self::TrojanDropPointDns => Fixed(Medium),
            Self::TrojanDgaDomainRequestCDns => Fixed(High),
            Self::TrojanDriveBySourceTrafficDns => Fixed(High),
            Self::TrojanPhishingDomainRequestDns => Fixed(High),
            Self::ImpactAbusedDomainRequestReputation => Fixed(Medium),
            Self::ImpactBitcoinDomainRequestReputation => Fixed(High),
            Self::ImpactMaliciousDomainRequestReputation => Fixed(High),
            Self::ImpactSuspiciousDomainRequestReputation => Fixed(Low),
            Self::UnauthorizedAccessMetadataDnsRebind => Fixed(High),
            Self::ExecutionNewBinaryExecuted => Fixed(Medium),
            Self::ExecutionNewLibraryLoaded => Fixed(Medium),
            Self::PrivilegeEscalationDockerSocketAccessed => Fixed(Medium),
            Self::PrivilegeEscalationRuncContainerEscape => Fixed(High),
            Self::PrivilegeEscalationCGroupsReleaseAgentModified => Fixed(High),
            Self::DefenseEvasionProcessInjectionProc => Fixed(High),
            Self::DefenseEvasionProcessInjectionPtrace => Fixed(Medium),
            Self::DefenseEvasionProcessInjectionVirtualMemoryWrite => Fixed(High),
            Self::ExecutionReverseShell => Fixed(High),
            Self::DefenseEvasionFilelessExecution => Fixed(Medium),
            Self::ImpactCryptoMinerExecuted => Fixed(High),
            Self::PrivilegeEscalationContainerMountsHostDirectory => Fixed(Medium),
            Self::PrivilegeEscalationUserfaultfdUsage => Fixed(Medium),
            Self::ExecutionSuspiciousTool => Variable,
            Self::ExecutionSuspiciousCommand => Variable,
            // "Variable": high, medium or low depending on the defence mechanism touched.
            Self::DefenseEvasionSuspiciousCommand => Variable,
            Self::DefenseEvasionPtraceAntiDebugging => Fixed(Low),
            Self::ExecutionMaliciousFileExecuted => Fixed(High),
            Self::DefenseEvasionKernelModuleLoaded => Fixed(High),
            Self::DiscoverySuspiciousCommand => Fixed(Low),
            Self::PersistenceSuspiciousCommand => Fixed(Medium),
            Self::PrivilegeEscalationSuspiciousCommand => Fixed(Medium),
            Self::PrivilegeEscalationElevationToRoot => Fixed(Medium),
            Self::ExecutionSuspiciousShellCreated => Fixed(Low),
            Self::PersistenceSensitiveFileModified => Fixed(Medium),
            Self::PrivilegeEscalationSensitiveFileModified => Fixed(Medium),
            Self::DefenseEvasionSensitiveFileModified => Fixed(Medium),
            // Vigil's own type: an attacker blinding the sensor comes before what it hides.
            Self::DefenseEvasionSecurityAgentTampered => Fixed(High),
            // Credentials read out of a running program.
            Self::CredentialAccessMemoryDumpCreated => Fixed(High),
        }
    }

    /// Whether this type is raised from a DNS query (the `!DNS` and domain-reputation types)
    /// rather than from a connection to an IP address or from process behaviour.
    pub fn is_dns(self) -> bool {
        let name = self.as_str();
        name.ends_with("!DNS") || name.ends_with("DomainRequest.Reputation")
    }
}

impl fmt::Display for FindingType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The string is not one of the 47 finding types of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown finding type {0:?} (expected a GuardDuty Runtime type such as \"Backdoor:Runtime/C&CActivity.B\")"
)]
pub struct UnknownFindingType(pub String);

impl FromStr for FindingType {
    type Err = UnknownFindingType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownFindingType(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_type_round_trips_through_its_string_and_serde() {
        for t in FindingType::ALL {
            assert_eq!(t.as_str().parse::<FindingType>(), Ok(t));
            assert_eq!(t.to_string(), t.as_str());
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.as_str()));
            let back: FindingType = serde_json::from_str(&json).unwrap();
            assert_eq!(back, t);
        }
    }

    #[test]
    fn catalogue_has_46_distinct_runtime_types() {
        let names: HashSet<&str> = FindingType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(names.len(), 47);
        assert!(names.iter().all(|n| n.contains(":Runtime/")));
    }

    #[test]
    fn exact_strings_of_threat_intel_types() {
        assert_eq!(
            serde_json::to_string(&FindingType::BackdoorCcActivityBDns).unwrap(),
            r#""Backdoor:Runtime/C&CActivity.B!DNS""#
        );
        assert_eq!(
            FindingType::TrojanDgaDomainRequestCDns.as_str(),
            "Trojan:Runtime/DGADomainRequest.C!DNS"
        );
        assert_eq!(
            FindingType::ExecutionMaliciousFileExecuted.as_str(),
            "Execution:Runtime/MaliciousFileExecuted"
        );
    }

    #[test]
    fn unknown_strings_are_rejected() {
        assert!("Backdoor:EC2/C&CActivity.B".parse::<FindingType>().is_err());
        assert!(
            "backdoor:runtime/c&cactivity.b"
                .parse::<FindingType>()
                .is_err()
        );
        assert!(serde_json::from_str::<FindingType>(r#""Nope""#).is_err());
    }

    #[test]
    fn default_severities_follow_the_documentation() {
        assert_eq!(
            FindingType::ExecutionReverseShell.default_severity(),
            DefaultSeverity::Fixed(Severity::High)
        );
        assert_eq!(
            FindingType::ExecutionSuspiciousTool.default_severity(),
            DefaultSeverity::Variable
        );
        assert_eq!(
            FindingType::ExecutionSuspiciousTool
                .default_severity()
                .or_medium(),
            Severity::Medium
        );
        assert_eq!(
            FindingType::DiscoverySuspiciousCommand.default_severity(),
            DefaultSeverity::Fixed(Severity::Low)
        );
        assert_eq!(
            FindingType::TrojanDriveBySourceTrafficDns.default_severity(),
            DefaultSeverity::Fixed(Severity::High)
        );
        assert_eq!(
            FindingType::DefenseEvasionProcessInjectionPtrace.default_severity(),
            DefaultSeverity::Fixed(Severity::Medium)
        );
        assert_eq!(
            FindingType::DefenseEvasionSuspiciousCommand.default_severity(),
            DefaultSeverity::Variable
        );
    }

    #[test]
    fn dns_types_are_recognised() {
        assert!(FindingType::TrojanDgaDomainRequestCDns.is_dns());
        assert!(FindingType::ImpactBitcoinDomainRequestReputation.is_dns());
        assert!(!FindingType::BackdoorCcActivityB.is_dns());
        assert!(!FindingType::ExecutionReverseShell.is_dns());
    }
}
