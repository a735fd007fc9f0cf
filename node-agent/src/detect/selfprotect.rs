//! Self-protection: what other processes aim at the agent itself. The kernel reports `bpf(2)`
//! calls on the agent's maps, programs and links and signals generated for it (`bpfAgent`,
//! `signalAgent`); ptrace requests and writes to the agent's binary and configuration come from
//! the ptrace and file sensors. Each one that is not the agent's supervisor at work raises
//! `DefenseEvasion:Runtime/SecurityAgentTampered`.

use std::path::{Path, PathBuf};

use vigil_crds::finding::RuntimeContext;
use vigil_detection::FindingType;

use super::{
    Candidate, Detector, ProcessLookup,
    behaviour::{Draft, candidate},
};
use crate::event::{ActivityInfo, FileInfo, ProcessRef};

/// The agent as the detector must know it to see what is aimed at it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentSelf {
    /// The agent's process id in the kernel's numbering (0: unknown).
    pub pid: u32,
    /// Its parent's when it started: the supervisor that started it may stop it.
    pub parent_pid: u32,
    /// Its binary and configuration (files, or directories for everything below them).
    pub files: Vec<PathBuf>,
}

/// Executables that stop and restart agents for a living: the init system, the kubelet and
/// the container runtimes. A signal from one of them, run from a system directory, is a
/// restart or a shutdown, not tampering.
const SUPERVISORS: &[&str] = &[
    "systemd",
    "init",
    "kubelet",
    "containerd",
    "containerd-shim",
    "containerd-shim-runc-v2",
    "runc",
    "crun",
    "conmon",
    "dockerd",
    "docker-init",
    "tini",
    "dumb-init",
    "catatonit",
    "crio",
    "podman",
    "k3s",
];

/// Where supervisors are installed; a copy elsewhere (`/tmp/runc`) does not count.
const SYSTEM_DIRS: &[&str] = &[
    "/usr/bin",
    "/usr/sbin",
    "/bin",
    "/sbin",
    "/usr/lib/systemd",
    "/lib/systemd",
    "/usr/local/bin",
    "/usr/libexec",
];

/// `si_code` values above 0 mean the kernel raised the signal (`SI_KERNEL`, faults, a
/// terminal's Ctrl-C): no process chose to stop the agent.
fn sent_by_a_process(code: i32) -> bool {
    code <= 0
}

/// Whether `exe` is a supervisor installed where the system keeps them.
pub fn is_supervisor(exe: &Path) -> bool {
    let (Some(dir), Some(name)) = (exe.parent(), exe.file_name().and_then(|n| n.to_str())) else {
        return false;
    };
    SUPERVISORS.contains(&name) && SYSTEM_DIRS.iter().any(|d| dir == Path::new(d))
}

/// What a tampering event did, for the finding.
struct Tampering {
    method: &'static str,
    title: &'static str,
    description: String,
    key: String,
    extra: Vec<(&'static str, String)>,
}

/// Findings for an activity record aimed at the agent.
pub(crate) fn check_activity(
    d: &Detector,
    a: &ActivityInfo,
    lookup: &dyn ProcessLookup,
) -> Vec<Candidate> {
    let Some(agent) = d.agent.as_ref().filter(|a| a.pid != 0) else {
        return Vec::new();
    };
    let p = &a.process;
    if p.pid == agent.pid {
        return Vec::new();
    }
    let aimed = a.aimed_at_agent.as_deref().cloned().unwrap_or_default();
    let tampering = match a.operation {
        "bpfAgent" => {
            let command = aimed.bpf_command.unwrap_or_default();
            let object = aimed.bpf_object.unwrap_or_default();
            Tampering {
                method: "bpf",
                title: "A process changed or detached the security agent's eBPF objects",
                description: format!(
                    "Process {} (pid {}) called bpf({command}) on the agent's {object}.",
                    p.comm, p.pid
                ),
                key: format!("bpf\0{command}"),
                extra: vec![("bpfCommand", command), ("bpfObject", object)],
            }
        }
        "signalAgent" => {
            let code = aimed.signal_code.unwrap_or(0);
            if !sent_by_a_process(code) || allowed_sender(d, agent, p, lookup) {
                return Vec::new();
            }
            let signal = aimed.signal.unwrap_or_default();
            Tampering {
                method: "signal",
                title: "A process sent a signal to the security agent",
                description: format!(
                    "Process {} (pid {}) sent {signal} to the agent (pid {}); it is not the \
                     agent's supervisor.",
                    p.comm, p.pid, agent.pid
                ),
                key: format!("signal\0{signal}"),
                extra: vec![("signal", signal), ("signalCode", code.to_string())],
            }
        }
        "ptrace" => {
            let request = a.request.clone().unwrap_or_default();
            if a.target_pid != Some(agent.pid) || request == "PTRACE_TRACEME" {
                return Vec::new();
            }
            Tampering {
                method: "ptrace",
                title: "A process used ptrace on the security agent",
                description: format!(
                    "Process {} (pid {}) called {request} on the agent (pid {}).",
                    p.comm, p.pid, agent.pid
                ),
                key: format!("ptrace\0{request}"),
                extra: vec![("ptraceRequest", request)],
            }
        }
        "processVmWritev" if a.target_pid == Some(agent.pid) => Tampering {
            method: "memoryWrite",
            title: "A process wrote into the security agent's memory",
            description: format!(
                "Process {} (pid {}) called process_vm_writev on the agent (pid {}).",
                p.comm, p.pid, agent.pid
            ),
            key: "memoryWrite".into(),
            extra: Vec::new(),
        },
        _ => return Vec::new(),
    };
    vec![raise(d, p, lookup, tampering)]
}

/// Findings for a file operation on the agent's binary or configuration, or on its memory.
pub(crate) fn check_file(d: &Detector, f: &FileInfo, lookup: &dyn ProcessLookup) -> Vec<Candidate> {
    let Some(agent) = d.agent.as_ref().filter(|a| a.pid != 0) else {
        return Vec::new();
    };
    let p = &f.process;
    if p.pid == agent.pid {
        return Vec::new();
    }
    if f.proc_mem_pid == Some(agent.pid) && f.operation != "openRead" {
        let tampering = Tampering {
            method: "memoryWrite",
            title: "A process wrote into the security agent's memory",
            description: format!(
                "Process {} (pid {}) opened {} for writing.",
                p.comm, p.pid, f.path
            ),
            key: "procMem".into(),
            extra: Vec::new(),
        };
        return vec![raise(d, p, lookup, tampering)];
    }
    let paths = [f.resolved_path.as_deref(), f.resolved_path2.as_deref()];
    let Some(hit) = paths
        .into_iter()
        .flatten()
        .find(|path| is_agent_file(agent, path))
    else {
        return Vec::new();
    };
    let file = hit.display().to_string();
    let tampering = Tampering {
        method: "file",
        title: "A process changed the security agent's binary or configuration",
        description: format!(
            "Process {} (pid {}) changed {file} ({}), a file the agent runs from or reads its \
             configuration from.",
            p.comm, p.pid, f.operation
        ),
        key: format!("file\0{file}"),
        extra: vec![
            ("agentFile", file),
            ("fileOperation", f.operation.to_owned()),
        ],
    };
    vec![raise(d, p, lookup, tampering)]
}

/// Whether `path` is one of the agent's files or lies below one of its directories.
fn is_agent_file(agent: &AgentSelf, path: &Path) -> bool {
    agent.files.iter().any(|f| path == f || path.starts_with(f))
}

/// The agent's parent when it started, the host's init, or a supervisor executable.
fn allowed_sender(
    d: &Detector,
    agent: &AgentSelf,
    p: &ProcessRef,
    lookup: &dyn ProcessLookup,
) -> bool {
    if p.pid == agent.parent_pid || p.pid == 1 {
        return true;
    }
    let exe = d.process_details(p, lookup).executable_path;
    !exe.is_empty() && is_supervisor(Path::new(&exe))
}

fn raise(d: &Detector, p: &ProcessRef, lookup: &dyn ProcessLookup, t: Tampering) -> Candidate {
    let mut context = RuntimeContext::default();
    context
        .additional
        .insert("tamperMethod".into(), t.method.to_owned());
    for (k, v) in t.extra {
        context.additional.insert(k.into(), v);
    }
    candidate(
        d,
        p,
        lookup,
        Draft {
            finding_type: FindingType::DefenseEvasionSecurityAgentTampered,
            title: t.title,
            description: t.description,
            key: t.key,
            context,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supervisors_count_only_from_system_directories() {
        assert!(is_supervisor(Path::new("/usr/lib/systemd/systemd")));
        assert!(is_supervisor(Path::new("/usr/bin/containerd-shim-runc-v2")));
        assert!(is_supervisor(Path::new("/usr/bin/kubelet")));
        assert!(!is_supervisor(Path::new("/tmp/runc")));
        assert!(!is_supervisor(Path::new("/usr/bin/bash")));
        assert!(!is_supervisor(Path::new("runc")));
    }

    #[test]
    fn agent_files_match_exactly_or_below_a_directory() {
        let agent = AgentSelf {
            pid: 10,
            parent_pid: 1,
            files: vec![
                PathBuf::from("/usr/bin/node-agent"),
                PathBuf::from("/etc/vigil"),
            ],
        };
        assert!(is_agent_file(&agent, Path::new("/usr/bin/node-agent")));
        assert!(is_agent_file(&agent, Path::new("/etc/vigil/rules/a.yaml")));
        assert!(!is_agent_file(&agent, Path::new("/usr/bin/node-agent2")));
        assert!(!is_agent_file(&agent, Path::new("/etc/vigilant")));
    }

    #[test]
    fn only_signals_a_process_sent_count() {
        assert!(sent_by_a_process(0)); // kill
        assert!(sent_by_a_process(-6)); // tgkill
        assert!(!sent_by_a_process(0x80)); // the kernel
    }
}
