//! Which finding types can fire: what each type needs (hooks, a threat list), and what that
//! means with the default configuration or with the hooks a sensor actually attached.
//!
//! The mapping is written by hand from the checks in this module's siblings (`reputation`,
//! `exec`, `rules`, `behaviour`, `stratum`): a type raised by a check that reads a record needs the hook
//! that writes that record. docs/FINDINGS.md shows [`default_status`] of every type and a test
//! (`node-agent/tests/docs.rs`) keeps the two in step.

use std::fmt;

use node_agent_common::stats::Hook;
use serde::Serialize;
use vigil_detection::{BUILTIN_LISTS, FindingType};

/// What a finding type needs to be raised at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Needs {
    /// Hooks, as groups: every group needs one of its hooks active.
    pub hooks: &'static [&'static [Hook]],
    /// Raised only by a threat-list match (a list must feed the type).
    pub threat_list: bool,
}

/// Hooks whose tracepoints a kernel may lack altogether (a build option), unlike the syscalls
/// every Linux kernel has: `init_module`/`finit_module` exist only with loadable-module support
/// (`CONFIG_MODULES`).
pub const KERNEL_FEATURE_HOOKS: &[(Hook, &str)] =
    &[(Hook::Module, "loadable-module support (CONFIG_MODULES)")];

/// What `t` needs. Exhaustive over the catalogue, so a new type cannot be forgotten.
pub const fn needs(t: FindingType) -> Needs {
    use FindingType as T;
    use Hook as H;
    const fn hooks(hooks: &'static [&'static [Hook]]) -> Needs {
        Needs {
            hooks,
            threat_list: false,
        }
    }
    const fn listed(hooks: &'static [&'static [Hook]]) -> Needs {
        Needs {
            hooks,
            threat_list: true,
        }
    }
    const EXEC: &[&[Hook]] = &[&[H::Exec]];
    const CONNECT: &[&[Hook]] = &[&[H::Connect]];
    // Names are checked in queries and, for the names of a CNAME chain, the addresses and the
    // response code, in answers.
    const QUERY: &[&[Hook]] = &[&[H::DnsSocket], &[H::DnsEgress, H::DnsIngress]];
    const ANSWER: &[&[Hook]] = &[&[H::DnsSocket], &[H::DnsIngress]];
    // Written-file tracking (`writtenBy`) is kept by the file_open programs.
    const WRITTEN_EXEC: &[&[Hook]] = &[&[H::Exec], &[H::FileOpen]];
    const FILES: &[&[Hook]] = &[&[H::FileOpen, H::FileChange]];
    match t {
        // A listed address at connect, or, with no list at all, stratum on the wire (the
        // stream sensor: the first segments of the connection).
        T::CryptoCurrencyBitcoinToolB => hooks(&[&[H::Connect, H::StreamEgress]]),
        T::BackdoorCcActivityB
        | T::UnauthorizedAccessTorClient
        | T::TrojanBlackholeTraffic
        | T::TrojanDropPoint => listed(CONNECT),
        T::UnauthorizedAccessTorRelay => listed(&[&[H::Accept]]),
        T::BackdoorCcActivityBDns
        | T::CryptoCurrencyBitcoinToolBDns
        | T::TrojanBlackholeTrafficDns
        | T::TrojanDropPointDns
        | T::TrojanDriveBySourceTrafficDns
        | T::TrojanPhishingDomainRequestDns
        | T::ImpactAbusedDomainRequestReputation
        | T::ImpactBitcoinDomainRequestReputation
        | T::ImpactMaliciousDomainRequestReputation
        | T::ImpactSuspiciousDomainRequestReputation => listed(QUERY),
        T::TrojanDgaDomainRequestCDns => hooks(QUERY),
        T::UnauthorizedAccessMetadataDnsRebind => hooks(ANSWER),
        T::ExecutionMaliciousFileExecuted => listed(EXEC),
        // Raised by exec rules and, from file operations, by the technique checks
        // (persistence writes; history, journal and log wiping, ASLR).
        T::DefenseEvasionSuspiciousCommand | T::PersistenceSuspiciousCommand => {
            hooks(&[&[H::Exec, H::FileOpen, H::FileChange]])
        }
        T::ExecutionSuspiciousTool
        | T::ExecutionSuspiciousCommand
        | T::DiscoverySuspiciousCommand
        | T::PrivilegeEscalationSuspiciousCommand
        | T::ImpactCryptoMinerExecuted
        | T::ExecutionSuspiciousShellCreated
        | T::PrivilegeEscalationElevationToRoot
        | T::ExecutionReverseShell
        | T::DefenseEvasionFilelessExecution => hooks(EXEC),
        T::ExecutionNewBinaryExecuted => hooks(WRITTEN_EXEC),
        T::ExecutionNewLibraryLoaded => hooks(&[&[H::LibraryLoad], &[H::FileOpen]]),
        T::PrivilegeEscalationDockerSocketAccessed => {
            hooks(&[&[H::Connect, H::FileOpen, H::FileChange]])
        }
        T::PrivilegeEscalationRuncContainerEscape
        | T::PrivilegeEscalationCGroupsReleaseAgentModified
        | T::PersistenceSensitiveFileModified
        | T::PrivilegeEscalationSensitiveFileModified
        | T::DefenseEvasionSensitiveFileModified => hooks(FILES),
        T::DefenseEvasionProcessInjectionProc | T::CredentialAccessMemoryDumpCreated => {
            hooks(&[&[H::FileOpen]])
        }
        T::DefenseEvasionProcessInjectionPtrace | T::DefenseEvasionPtraceAntiDebugging => {
            hooks(&[&[H::Ptrace]])
        }
        T::DefenseEvasionProcessInjectionVirtualMemoryWrite => hooks(&[&[H::VmWrite]]),
        T::PrivilegeEscalationUserfaultfdUsage => hooks(&[&[H::Userfaultfd]]),
        T::DefenseEvasionKernelModuleLoaded => hooks(&[&[H::Module]]),
        T::PrivilegeEscalationContainerMountsHostDirectory => hooks(&[&[H::Mount]]),
        // bpf(2) on the agent's objects, signals, ptrace, or its files written.
        T::DefenseEvasionSecurityAgentTampered => hooks(&[&[
            H::BpfAgent,
            H::SignalAgent,
            H::Ptrace,
            H::FileOpen,
            H::FileChange,
        ]]),
    }
}

/// Whether a built-in threat list feeds `t`: names it, or, for a `!DNS` type, holds addresses
/// of the connection type whose DNS counterpart it is (an answer resolving to a listed C2
/// address is `C&CActivity.B!DNS`, `reputation::dns_type_for_address`).
pub fn has_builtin_list(t: FindingType) -> bool {
    BUILTIN_LISTS.iter().any(|l| {
        l.feeds.contains(&t)
            || l.feeds
                .iter()
                .any(|&c| super::reputation::dns_type_for_address(c) == Some(t))
    })
}

/// Whether a type fires with the default configuration (built-in rules and lists, every hook
/// on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultStatus {
    /// Raised with the defaults wherever its hooks attach.
    Fires,
    /// Raised only by a threat list, and no built-in list feeds it: configure one
    /// (`--intel-config`, or a policy's lists in a cluster).
    NeedsList,
    /// Needs a hook whose tracepoints exist only with a kernel build option.
    NeedsKernelFeature(&'static str),
}

impl fmt::Display for DefaultStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fires => f.write_str("fires"),
            Self::NeedsList => f.write_str("needs a threat list"),
            Self::NeedsKernelFeature(feature) => write!(f, "needs a kernel with {feature}"),
        }
    }
}

/// [`DefaultStatus`] of `t`.
pub fn default_status(t: FindingType) -> DefaultStatus {
    let needs = needs(t);
    if needs.threat_list && !has_builtin_list(t) {
        return DefaultStatus::NeedsList;
    }
    for group in needs.hooks {
        if let Some((_, feature)) = KERNEL_FEATURE_HOOKS
            .iter()
            .find(|(hook, _)| group.iter().all(|h| h == hook))
        {
            return DefaultStatus::NeedsKernelFeature(feature);
        }
    }
    DefaultStatus::Fires
}

/// A finding type that cannot fire with the hooks this sensor attached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Unreachable {
    /// The GuardDuty type string.
    #[serde(rename = "type")]
    pub finding_type: &'static str,
    /// Hooks it needs that are not active (one of each group would do), with their state.
    pub missing: Vec<String>,
}

/// The finding types that cannot fire because a hook they need is not active, each with the
/// hooks that are missing. `inactive(hook)` says why a hook is not active (disabled,
/// unsupported by the kernel, refused), or `None` when it is.
pub fn unreachable(inactive: impl Fn(Hook) -> Option<String>) -> Vec<Unreachable> {
    FindingType::ALL
        .into_iter()
        .filter_map(|t| {
            let missing: Vec<String> = needs(t)
                .hooks
                .iter()
                .filter_map(|group| {
                    let why: Vec<String> =
                        group.iter().map(|&h| inactive(h)).collect::<Option<_>>()?;
                    Some(why)
                })
                .flatten()
                .collect();
            (!missing.is_empty()).then(|| Unreachable {
                finding_type: t.as_str(),
                missing,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_types_need_a_list_and_one_a_kernel_feature() {
        let need_list: Vec<&str> = FindingType::ALL
            .into_iter()
            .filter(|&t| default_status(t) == DefaultStatus::NeedsList)
            .map(FindingType::as_str)
            .collect();
        assert_eq!(
            need_list,
            [
                "Trojan:Runtime/DropPoint",
                "Trojan:Runtime/DropPoint!DNS",
                "Impact:Runtime/AbusedDomainRequest.Reputation",
                "Impact:Runtime/MaliciousDomainRequest.Reputation",
                "Impact:Runtime/SuspiciousDomainRequest.Reputation",
            ]
        );
        let kernel: Vec<FindingType> = FindingType::ALL
            .into_iter()
            .filter(|&t| matches!(default_status(t), DefaultStatus::NeedsKernelFeature(_)))
            .collect();
        assert_eq!(kernel, [FindingType::DefenseEvasionKernelModuleLoaded]);
        // No built-in list names a C2 domain, but c2-ips holds addresses an answer can carry.
        assert!(has_builtin_list(FindingType::BackdoorCcActivityBDns));
    }

    #[test]
    fn every_type_needs_some_hook() {
        for t in FindingType::ALL {
            let n = needs(t);
            assert!(!n.hooks.is_empty(), "{t}");
            assert!(n.hooks.iter().all(|g| !g.is_empty()), "{t}");
        }
    }

    #[test]
    fn a_missing_hook_makes_its_types_unreachable_and_one_of_a_group_is_enough() {
        assert!(unreachable(|_| None).is_empty());

        let gone = unreachable(|h| match h {
            Hook::Module => Some("module unsupported by this kernel".to_owned()),
            Hook::FileOpen => Some("file_open disabled".to_owned()),
            _ => None,
        });
        let names: Vec<&str> = gone.iter().map(|u| u.finding_type).collect();
        assert!(names.contains(&"DefenseEvasion:Runtime/KernelModuleLoaded"));
        assert!(names.contains(&"Execution:Runtime/NewBinaryExecuted"));
        assert!(names.contains(&"DefenseEvasion:Runtime/ProcessInjection.Proc"));
        // file_change still reports sensitive files; connect still sees the docker socket.
        assert!(!names.contains(&"Persistence:Runtime/SensitiveFileModified"));
        assert!(!names.contains(&"PrivilegeEscalation:Runtime/DockerSocketAccessed"));
        assert!(!names.contains(&"Execution:Runtime/SuspiciousTool"));

        // Persistence and defence evasion are seen in file operations too, not only in execs.
        let exec_off = unreachable(|h| (h == Hook::Exec).then(|| "off".to_owned()));
        let names: Vec<&str> = exec_off.iter().map(|u| u.finding_type).collect();
        assert!(!names.contains(&"Persistence:Runtime/SuspiciousCommand"));
        assert!(!names.contains(&"DefenseEvasion:Runtime/SuspiciousCommand"));
        assert!(names.contains(&"Discovery:Runtime/SuspiciousCommand"));

        // A miner is seen at connect (listed pools) or on the wire (any pool).
        let connect_off = unreachable(|h| (h == Hook::Connect).then(|| "off".to_owned()));
        let names: Vec<&str> = connect_off.iter().map(|u| u.finding_type).collect();
        assert!(names.contains(&"Backdoor:Runtime/C&CActivity.B"));
        assert!(!names.contains(&"CryptoCurrency:Runtime/BitcoinTool.B"));

        // Queries or answers: either DNS packet hook will do for the names.
        let egress_off = unreachable(|h| (h == Hook::DnsEgress).then(|| "off".to_owned()));
        assert!(egress_off.is_empty(), "{egress_off:?}");
        let both_off = unreachable(|h| {
            matches!(h, Hook::DnsEgress | Hook::DnsIngress).then(|| "off".to_owned())
        });
        assert!(
            both_off
                .iter()
                .any(|u| u.finding_type == "Trojan:Runtime/PhishingDomainRequest!DNS")
        );
        let module_type = gone
            .iter()
            .find(|u| u.finding_type == "DefenseEvasion:Runtime/KernelModuleLoaded");
        assert_eq!(
            module_type.map(|u| u.missing.clone()),
            Some(vec!["module unsupported by this kernel".to_owned()])
        );
    }
}
