//! Which finding types can fire: what each type needs (hooks, a threat list), and what that
//! means with the default configuration or with the hooks a sensor actually attached.
//!
//! The mapping is written by hand from the checks in this module's siblings (`reputation`,
//! `exec`, `rules`, `behaviour`, `stratum`): a type raised by a check that reads a record needs the hook
//! that writes that record. docs/FINDINGS.md shows [`default_status`] of every type and a test
//! (`node-agent/tests/docs.rs`) keeps the two in step.

use std::{collections::BTreeSet, fmt};

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
    /// Hooks that feed some of its checks without being needed for it to fire at all: without
    /// them one way of seeing it is lost (`ExecutionSuspiciousCommand`: a binary a downloader
    /// wrote, known from the written-files map that `file_open` keeps).
    pub also: &'static [Hook],
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
            also: &[],
        }
    }
    const fn listed(hooks: &'static [&'static [Hook]]) -> Needs {
        Needs {
            hooks,
            threat_list: true,
            also: &[],
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
        T::PersistenceSuspiciousCommand => hooks(&[&[H::Exec, H::FileOpen, H::FileChange]]),
        // Also a security agent sent a stopping signal (`signal_agent`'s guarded processes),
        // a mount over a process's /proc directory (`behaviour`), and hardening settings
        // written (`sysctl`: the value as written, also one put back at once), a thread
        // renamed to a kernel thread's name (`rename`).
        T::DefenseEvasionSuspiciousCommand => Needs {
            also: &[H::Mount, H::SignalAgent, H::Sysctl, H::Rename],
            ..hooks(&[&[H::Exec, H::FileOpen, H::FileChange]])
        },
        // Exec rules and pipes; also a binary or script a downloader wrote, then run (its
        // writer from the written-files map of the file_open programs, `pipes`), and a
        // reconnaissance program run by an interpreter that accepted connections (`accept`,
        // `served`), and a stopping signal to a program named like a miner (`signal_agent`,
        // `competitor`).
        T::ExecutionSuspiciousCommand => Needs {
            also: &[H::FileOpen, H::Accept, H::SignalAgent],
            ..hooks(EXEC)
        },
        // Exec rules; also the core-dump handler set through /proc/sys (`technique`, from the
        // open and from the `sysctl` hook's record of the write), a container process joining
        // the host's namespaces, opening a file by handle or making a block device
        // (`behaviour`).
        T::PrivilegeEscalationSuspiciousCommand => Needs {
            also: &[
                H::FileOpen,
                H::Namespace,
                H::OpenByHandle,
                H::Mknod,
                H::Sysctl,
            ],
            ..hooks(EXEC)
        },
        // Exec rules; also port scans seen from refused connects (`scan`), and from the
        // handshakes of non-blocking ones that ended in a refusal.
        T::DiscoverySuspiciousCommand => Needs {
            also: &[H::Connect, H::ConnectOutcome],
            ..hooks(EXEC)
        },
        T::ExecutionSuspiciousTool
        | T::ImpactCryptoMinerExecuted
        | T::DefenseEvasionFilelessExecution => hooks(EXEC),
        // Also a shell an interpreter that accepted connections had run a command string (a
        // web application's: `accept`, `served`).
        T::ExecutionSuspiciousShellCreated => Needs {
            also: &[H::Accept],
            ..hooks(EXEC)
        },
        // The shell's own descriptors at exec; also a socket its parent put on its standard
        // streams (`dup`: python's `pty.spawn` reverse shell, `stdio_dup`).
        T::ExecutionReverseShell => Needs {
            also: &[H::Dup],
            ..hooks(EXEC)
        },
        // The elevation rules at exec (a setuid-root program) and at a set*id call that made
        // the process root (a capability, a saved uid of 0).
        T::PrivilegeEscalationElevationToRoot => Needs {
            also: &[H::Privilege],
            ..hooks(EXEC)
        },
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
        T::DefenseEvasionProcessInjectionProc => hooks(&[&[H::FileOpen]]),
        // /proc/<pid>/mem read, or process_vm_readv.
        T::CredentialAccessMemoryDumpCreated => hooks(&[&[H::FileOpen, H::VmRead]]),
        T::DefenseEvasionProcessInjectionPtrace | T::DefenseEvasionPtraceAntiDebugging => {
            hooks(&[&[H::Ptrace]])
        }
        T::DefenseEvasionProcessInjectionVirtualMemoryWrite => hooks(&[&[H::VmWrite]]),
        T::PrivilegeEscalationUserfaultfdUsage => hooks(&[&[H::Userfaultfd]]),
        T::DefenseEvasionKernelModuleLoaded => hooks(&[&[H::Module]]),
        T::PrivilegeEscalationContainerMountsHostDirectory => hooks(&[&[H::Mount]]),
        // bpf(2) on the agent's objects, signals, ptrace, process_vm_writev, or its files
        // written (`selfprotect`).
        T::DefenseEvasionSecurityAgentTampered => hooks(&[&[
            H::BpfAgent,
            H::SignalAgent,
            H::Ptrace,
            H::VmWrite,
            H::FileOpen,
            H::FileChange,
        ]]),
    }
}

/// Hooks whose records the pipeline reads whatever the finding types: process lifetime and
/// lineage (the process table behind every finding's process, lineage and uuid, the parent of a
/// traced process) and the cgroups containers run in (every finding's runtime context). Never
/// left off for want of a type.
pub const PIPELINE_HOOKS: &[Hook] = &[Hook::Exec, Hook::Fork, Hook::Exit, Hook::Cgroup];

/// Every hook whose records some check of `t` reads: those of all its groups, and `also`.
pub fn feeding_hooks(t: FindingType) -> impl Iterator<Item = Hook> {
    let n = needs(t);
    n.hooks
        .iter()
        .flat_map(|group| group.iter().copied())
        .chain(n.also.iter().copied())
}

/// Whether a hook is needed when the agent makes findings only (its records are not printed as
/// events: `--findings-only`, cluster mode).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HookNeed {
    /// The pipeline reads its records, or an enabled finding type does.
    Needed,
    /// No enabled finding type reads its records: `disabled` are the switched-off types that
    /// would (empty when no type reads them at all: they are printed as events only).
    NotNeeded {
        /// The disabled types it feeds.
        disabled: Vec<FindingType>,
    },
}

impl HookNeed {
    /// Why the hook is left off; `None` when it is needed.
    pub fn reason(&self) -> Option<String> {
        match self {
            Self::Needed => None,
            Self::NotNeeded { disabled } if disabled.is_empty() => {
                Some("events are not printed and no finding type reads its records".to_owned())
            }
            Self::NotNeeded { disabled } => Some(format!(
                "events are not printed and the finding types that read its records are \
                 disabled: {}",
                disabled
                    .iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

/// Whether `hook` is needed for findings only, with the types in `disabled` switched off. A
/// hook is needed when the pipeline reads it or any enabled type's checks do, as one of
/// several alternatives included: leaving it off must never lose a way of raising an enabled
/// type.
pub fn hook_need(hook: Hook, disabled: &BTreeSet<FindingType>) -> HookNeed {
    if PIPELINE_HOOKS.contains(&hook) {
        return HookNeed::Needed;
    }
    let mut off = Vec::new();
    for t in FindingType::ALL {
        if feeding_hooks(t).any(|h| h == hook) {
            if !disabled.contains(&t) {
                return HookNeed::Needed;
            }
            off.push(t);
        }
    }
    HookNeed::NotNeeded { disabled: off }
}

/// [`hook_need`] for the directory-entry sensor (fanotify, `file_dirents`): it reports the
/// changes the `file_change` programs report, made through paths they do not see, so it feeds
/// the same types.
pub fn dirents_need(disabled: &BTreeSet<FindingType>) -> HookNeed {
    hook_need(Hook::FileChange, disabled)
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

    fn not_needed(disabled: &BTreeSet<FindingType>) -> Vec<Hook> {
        Hook::ALL
            .into_iter()
            .filter(|&h| hook_need(h, disabled) != HookNeed::Needed)
            .collect()
    }

    #[test]
    fn with_every_type_enabled_only_the_hooks_no_check_reads_are_left_off() {
        // memfd records are printed as events; no check reads them (the exec record itself
        // carries memfd executables). dup records feed ReverseShell (`stdio_dup`).
        assert_eq!(not_needed(&BTreeSet::new()), [Hook::Memfd]);
        assert_eq!(
            hook_need(Hook::Memfd, &BTreeSet::new()).reason().as_deref(),
            Some("events are not printed and no finding type reads its records")
        );
        let off = BTreeSet::from([FindingType::ExecutionReverseShell]);
        assert_eq!(
            hook_need(Hook::Dup, &off),
            HookNeed::NotNeeded {
                disabled: vec![FindingType::ExecutionReverseShell]
            }
        );
        assert_eq!(dirents_need(&BTreeSet::new()), HookNeed::Needed);
        // Every other hook feeds some type; the pipeline's feed them all.
        for hook in Hook::ALL {
            let fed = FindingType::ALL
                .into_iter()
                .any(|t| feeding_hooks(t).any(|h| h == hook));
            assert_eq!(
                fed || PIPELINE_HOOKS.contains(&hook),
                hook_need(hook, &BTreeSet::new()) == HookNeed::Needed,
                "{hook:?}"
            );
        }
    }

    #[test]
    fn new_library_loaded_off_leaves_library_load_off_and_file_open_on() {
        let off = BTreeSet::from([FindingType::ExecutionNewLibraryLoaded]);
        assert_eq!(
            hook_need(Hook::LibraryLoad, &off),
            HookNeed::NotNeeded {
                disabled: vec![FindingType::ExecutionNewLibraryLoaded]
            }
        );
        let reason = hook_need(Hook::LibraryLoad, &off).reason().unwrap();
        assert!(
            reason.ends_with("disabled: Execution:Runtime/NewLibraryLoaded"),
            "{reason}"
        );
        // file_open feeds NewBinaryExecuted and the file types too.
        assert_eq!(hook_need(Hook::FileOpen, &off), HookNeed::Needed);
        assert_eq!(not_needed(&off), [Hook::Memfd, Hook::LibraryLoad]);
    }

    #[test]
    fn the_dns_hooks_go_only_when_every_type_reading_dns_is_off() {
        let dns_hooks = [Hook::DnsSocket, Hook::DnsEgress, Hook::DnsIngress];
        // The `!DNS` and domain-reputation types read queries and answers; the metadata
        // rebinding check reads answers, so dns_socket and dns_ingress stay for it.
        let named: BTreeSet<FindingType> = FindingType::ALL
            .into_iter()
            .filter(|t| t.is_dns())
            .collect();
        assert_eq!(
            hook_need(Hook::DnsEgress, &named),
            HookNeed::NotNeeded {
                disabled: named.iter().copied().collect()
            }
        );
        assert_eq!(hook_need(Hook::DnsSocket, &named), HookNeed::Needed);
        assert_eq!(hook_need(Hook::DnsIngress, &named), HookNeed::Needed);
        let mut all = named;
        all.insert(FindingType::UnauthorizedAccessMetadataDnsRebind);
        for hook in dns_hooks {
            assert_ne!(hook_need(hook, &all), HookNeed::Needed, "{hook:?}");
        }
        // Nothing else goes with them: connects still name their domains from nothing, but
        // every connect type still fires.
        let rest: Vec<Hook> = not_needed(&all)
            .into_iter()
            .filter(|h| !dns_hooks.contains(h))
            .collect();
        assert_eq!(rest, [Hook::Memfd]);
    }

    #[test]
    fn a_hook_that_is_one_of_alternatives_stays_while_its_type_is_on() {
        // BitcoinTool.B: a listed pool at connect, or stratum on the wire.
        let connect_types: BTreeSet<FindingType> = FindingType::ALL
            .into_iter()
            .filter(|&t| t != FindingType::CryptoCurrencyBitcoinToolB)
            .filter(|&t| feeding_hooks(t).any(|h| h == Hook::Connect))
            .collect();
        assert!(connect_types.contains(&FindingType::BackdoorCcActivityB));
        assert_eq!(hook_need(Hook::Connect, &connect_types), HookNeed::Needed);
        assert_eq!(
            hook_need(Hook::StreamEgress, &connect_types),
            HookNeed::Needed
        );
        let miner_off = BTreeSet::from([FindingType::CryptoCurrencyBitcoinToolB]);
        assert_eq!(
            hook_need(Hook::StreamEgress, &miner_off),
            HookNeed::NotNeeded {
                disabled: vec![FindingType::CryptoCurrencyBitcoinToolB]
            }
        );
        assert_eq!(hook_need(Hook::Connect, &miner_off), HookNeed::Needed);
        // Self-protection: bpf_agent feeds SecurityAgentTampered alone, signal_agent that, the
        // other agents' stopping signals (DefenseEvasion SuspiciousCommand) and miners'
        // (Execution SuspiciousCommand); ptrace and vm_write feed injection types too.
        let tamper_off = BTreeSet::from([FindingType::DefenseEvasionSecurityAgentTampered]);
        assert_ne!(hook_need(Hook::BpfAgent, &tamper_off), HookNeed::Needed);
        assert_eq!(hook_need(Hook::SignalAgent, &tamper_off), HookNeed::Needed);
        let signals_off = BTreeSet::from([
            FindingType::DefenseEvasionSecurityAgentTampered,
            FindingType::DefenseEvasionSuspiciousCommand,
        ]);
        assert_eq!(hook_need(Hook::SignalAgent, &signals_off), HookNeed::Needed);
        let signals_off = BTreeSet::from([
            FindingType::DefenseEvasionSecurityAgentTampered,
            FindingType::DefenseEvasionSuspiciousCommand,
            FindingType::ExecutionSuspiciousCommand,
        ]);
        assert_ne!(hook_need(Hook::SignalAgent, &signals_off), HookNeed::Needed);
        assert_eq!(hook_need(Hook::VmWrite, &tamper_off), HookNeed::Needed);
        assert_eq!(hook_need(Hook::Ptrace, &tamper_off), HookNeed::Needed);
        // A binary a downloader wrote is a SuspiciousCommand: file_open feeds it.
        let all_but_command: BTreeSet<FindingType> = FindingType::ALL
            .into_iter()
            .filter(|&t| t != FindingType::ExecutionSuspiciousCommand)
            .collect();
        assert_eq!(
            hook_need(Hook::FileOpen, &all_but_command),
            HookNeed::Needed
        );
        assert_ne!(dirents_need(&all_but_command), HookNeed::Needed);
    }

    #[test]
    fn every_type_off_leaves_the_pipeline_hooks_only() {
        let all: BTreeSet<FindingType> = FindingType::ALL.into_iter().collect();
        let needed: Vec<Hook> = Hook::ALL
            .into_iter()
            .filter(|&h| hook_need(h, &all) == HookNeed::Needed)
            .collect();
        assert_eq!(needed, PIPELINE_HOOKS);
    }

    #[test]
    fn hooks_left_off_never_make_an_enabled_type_unreachable() {
        // Each type off alone, and every type off but one.
        let sets = FindingType::ALL.into_iter().flat_map(|t| {
            [
                BTreeSet::from([t]),
                FindingType::ALL.into_iter().filter(|&o| o != t).collect(),
            ]
        });
        for disabled in sets {
            let gone = unreachable(|h| {
                (hook_need(h, &disabled) != HookNeed::Needed).then(|| "off".to_owned())
            });
            for u in gone {
                assert!(
                    disabled.iter().any(|t| t.as_str() == u.finding_type),
                    "{} would be unreachable with {disabled:?} off",
                    u.finding_type
                );
            }
        }
    }
}
