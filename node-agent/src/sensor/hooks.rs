//! Attaching each sensor to the best hook this kernel offers, and reporting what happened.

use std::{fmt, fs::File, path::Path};

use aya::{
    Btf, Ebpf,
    programs::{
        BtfTracePoint, CgroupAttachMode, CgroupSkb, CgroupSkbAttachType, CgroupSockAddr,
        ProgramError, RawTracePoint, TracePoint,
    },
};
use node_agent_common::stats::Hook;
use serde::Serialize;

use super::SensorOptions;

/// Whether a hook is running.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "state", content = "reason")]
pub enum HookState {
    /// Attached and producing records.
    Active,
    /// Switched off by the user.
    Disabled,
    /// Every mechanism was tried and refused; the reasons, one per mechanism.
    Failed(String),
}

/// One sensor's outcome at start-up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookStatus {
    /// The sensor (`Hook::name`).
    pub hook: &'static str,
    /// The mechanism in use (`tp_btf`, `raw_tp`, `tracepoint`, `cgroup`), or the last one tried.
    pub mechanism: &'static str,
    /// What the kernel said.
    #[serde(flatten)]
    pub state: HookState,
}

impl HookStatus {
    /// True when the failure is a missing privilege rather than a missing kernel feature.
    pub fn is_permission_error(&self) -> bool {
        matches!(&self.state, HookState::Failed(reason) if reason.contains("Operation not permitted") || reason.contains("Permission denied"))
    }
}

impl fmt::Display for HookStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.state {
            HookState::Active => write!(f, "{} active via {}", self.hook, self.mechanism),
            HookState::Disabled => write!(f, "{} disabled", self.hook),
            HookState::Failed(reason) => write!(f, "{} failed: {reason}", self.hook),
        }
    }
}

/// One way to attach a program.
enum Mechanism {
    /// `tp_btf/<name>`: BTF-typed raw tracepoint.
    BtfTracePoint {
        program: &'static str,
        tracepoint: &'static str,
    },
    /// `raw_tp/<name>`.
    RawTracePoint {
        program: &'static str,
        tracepoint: &'static str,
    },
    /// Classic tracepoints, entry and exit pairs, all of which must attach.
    TracePoints(&'static [(&'static str, &'static str, &'static str)]),
    /// cgroup sock_addr programs on the cgroup v2 root.
    CgroupSockAddr(&'static [&'static str]),
    /// A cgroup skb program on the cgroup v2 root.
    CgroupSkb {
        program: &'static str,
        attach: CgroupSkbAttachType,
    },
}

impl Mechanism {
    fn name(&self) -> &'static str {
        match self {
            Mechanism::BtfTracePoint { .. } => "tp_btf",
            Mechanism::RawTracePoint { .. } => "raw_tp",
            Mechanism::TracePoints(_) => "tracepoint",
            Mechanism::CgroupSockAddr(_) | Mechanism::CgroupSkb { .. } => "cgroup",
        }
    }
}

/// Preference order per hook: the first that loads and attaches wins. fentry, kprobes and
/// BPF-LSM would slot in here first on kernels that allow them; the programs for them come
/// with the sensors that need them.
fn plan(hook: Hook) -> Vec<Mechanism> {
    use Mechanism::*;
    match hook {
        Hook::Exec => vec![
            BtfTracePoint {
                program: "exec_btf",
                tracepoint: "sched_process_exec",
            },
            RawTracePoint {
                program: "exec_raw",
                tracepoint: "sched_process_exec",
            },
        ],
        Hook::Fork => vec![
            BtfTracePoint {
                program: "fork_btf",
                tracepoint: "sched_process_fork",
            },
            RawTracePoint {
                program: "fork_raw",
                tracepoint: "sched_process_fork",
            },
        ],
        Hook::Exit => vec![
            BtfTracePoint {
                program: "exit_btf",
                tracepoint: "sched_process_exit",
            },
            RawTracePoint {
                program: "exit_raw",
                tracepoint: "sched_process_exit",
            },
        ],
        Hook::Connect => vec![TracePoints(&[
            ("connect_enter", "syscalls", "sys_enter_connect"),
            ("connect_exit", "syscalls", "sys_exit_connect"),
        ])],
        Hook::Accept => vec![TracePoints(&[
            ("accept_enter", "syscalls", "sys_enter_accept"),
            ("accept_exit", "syscalls", "sys_exit_accept"),
            ("accept4_enter", "syscalls", "sys_enter_accept4"),
            ("accept4_exit", "syscalls", "sys_exit_accept4"),
        ])],
        Hook::DnsSocket => vec![CgroupSockAddr(&[
            "sock_connect4",
            "sock_connect6",
            "sock_sendmsg4",
            "sock_sendmsg6",
        ])],
        Hook::DnsEgress => vec![CgroupSkb {
            program: "dns_egress",
            attach: CgroupSkbAttachType::Egress,
        }],
        Hook::Synthetic => vec![TracePoints(&[(
            "synthetic_burst",
            "syscalls",
            "sys_enter_getpgid",
        )])],
        Hook::DnsIngress => vec![CgroupSkb {
            program: "dns_ingress",
            attach: CgroupSkbAttachType::Ingress,
        }],
    }
}

/// The hooks a sensor with these options runs.
pub fn wanted(options: &SensorOptions) -> Vec<Hook> {
    let mut hooks = Hook::ALL.to_vec();
    if options.synthetic {
        hooks.push(Hook::Synthetic);
    }
    hooks
}

/// Attaches every hook that is not disabled, trying mechanisms in order.
pub fn attach_all(
    ebpf: &mut Ebpf,
    btf: Option<&Btf>,
    cgroup2_root: Option<&Path>,
    options: &SensorOptions,
) -> Vec<HookStatus> {
    wanted(options)
        .iter()
        .map(|&hook| {
            if options.disabled.iter().any(|d| d == hook.name()) {
                return HookStatus { hook: hook.name(), mechanism: "-", state: HookState::Disabled };
            }
            let mut reasons = Vec::new();
            let mut last = "-";
            for mechanism in plan(hook) {
                last = mechanism.name();
                match attach(ebpf, &mechanism, btf, cgroup2_root) {
                    Ok(()) => {
                        tracing::debug!(hook = hook.name(), mechanism = last, "hook active");
                        return HookStatus { hook: hook.name(), mechanism: last, state: HookState::Active };
                    }
                    Err(reason) => {
                        tracing::debug!(hook = hook.name(), mechanism = last, %reason, "hook refused");
                        reasons.push(format!("{last}: {reason}"));
                    }
                }
            }
            HookStatus { hook: hook.name(), mechanism: last, state: HookState::Failed(reasons.join(", ")) }
        })
        .collect()
}

fn attach(
    ebpf: &mut Ebpf,
    mechanism: &Mechanism,
    btf: Option<&Btf>,
    cgroup2_root: Option<&Path>,
) -> Result<(), String> {
    match mechanism {
        Mechanism::BtfTracePoint {
            program,
            tracepoint,
        } => {
            let btf = btf.ok_or("no kernel BTF")?;
            let prog: &mut BtfTracePoint = program_mut(ebpf, program)?;
            prog.load(tracepoint, btf).map_err(describe)?;
            prog.attach().map_err(describe)?;
        }
        Mechanism::RawTracePoint {
            program,
            tracepoint,
        } => {
            let prog: &mut RawTracePoint = program_mut(ebpf, program)?;
            prog.load().map_err(describe)?;
            prog.attach(tracepoint).map_err(describe)?;
        }
        Mechanism::TracePoints(points) => {
            for (program, category, name) in points.iter() {
                let prog: &mut TracePoint = program_mut(ebpf, program)?;
                prog.load().map_err(describe)?;
                prog.attach(category, name).map_err(describe)?;
            }
        }
        Mechanism::CgroupSockAddr(programs) => {
            let cgroup = open_cgroup(cgroup2_root)?;
            for program in programs.iter() {
                let prog: &mut CgroupSockAddr = program_mut(ebpf, program)?;
                prog.load().map_err(describe)?;
                prog.attach(&cgroup, CgroupAttachMode::Single)
                    .map_err(describe)?;
            }
        }
        Mechanism::CgroupSkb { program, attach } => {
            let cgroup = open_cgroup(cgroup2_root)?;
            let prog: &mut CgroupSkb = program_mut(ebpf, program)?;
            prog.load().map_err(describe)?;
            prog.attach(&cgroup, *attach, CgroupAttachMode::Single)
                .map_err(describe)?;
        }
    }
    Ok(())
}

fn program_mut<'a, T>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut T, String>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
{
    let program = ebpf
        .program_mut(name)
        .ok_or_else(|| format!("program {name} is missing from the eBPF object"))?;
    program.try_into().map_err(describe)
}

fn open_cgroup(root: Option<&Path>) -> Result<File, String> {
    let root = root.ok_or("no cgroup v2 hierarchy is mounted")?;
    File::open(root).map_err(|e| format!("cannot open {}: {e}", root.display()))
}

/// One line for an aya error; for a verifier rejection, the last lines of the verifier log.
fn describe(error: ProgramError) -> String {
    match error {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            let log = verifier_log.to_string();
            if std::env::var_os("VIGIL_VERIFIER_LOG").is_some() {
                eprintln!("{log}");
            }
            let tail: Vec<&str> = log
                .lines()
                .rev()
                .take(6)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            if tail.is_empty() {
                format!("the kernel refused the program: {io_error}")
            } else {
                format!(
                    "the verifier rejected the program ({io_error}): {}",
                    tail.join(" | ")
                )
            }
        }
        other => {
            // aya puts the kernel's answer (the errno) in the source chain.
            let mut text = other.to_string();
            let mut source = std::error::Error::source(&other);
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verifier_rejection_shows_the_end_of_the_log() {
        let log = (1..=20)
            .map(|i| format!("{i}: insn"))
            .collect::<Vec<_>>()
            .join("\n")
            + "\ninvalid access to memory, mem_size=2936 off=2936 size=256";
        let text = describe(ProgramError::LoadError {
            io_error: std::io::Error::from_raw_os_error(libc::EACCES),
            verifier_log: aya_obj::VerifierLog::new(log),
        });
        assert!(
            text.starts_with("the verifier rejected the program"),
            "{text}"
        );
        assert!(text.contains("invalid access to memory"), "{text}");
        assert!(text.contains("16: insn"), "the last lines are kept: {text}");
        assert!(
            !text.contains("| 3: insn"),
            "the early lines are not: {text}"
        );
    }

    #[test]
    fn a_refusal_without_log_names_the_errno() {
        let text = describe(ProgramError::LoadError {
            io_error: std::io::Error::from_raw_os_error(libc::EPERM),
            verifier_log: aya_obj::VerifierLog::new(String::new()),
        });
        assert!(text.contains("Operation not permitted"), "{text}");
        let status = HookStatus {
            hook: "exec",
            mechanism: "tp_btf",
            state: HookState::Failed(text),
        };
        assert!(status.is_permission_error());
        assert!(status.to_string().starts_with("exec failed: "));
    }
}
