//! Attaching each sensor to the best hook this kernel offers, and reporting what happened.

use std::{fmt, fs::File, path::Path};

use aya::{
    Btf, Ebpf,
    programs::{
        BtfTracePoint, CgroupAttachMode, CgroupSkb, CgroupSkbAttachType, CgroupSockAddr,
        CgroupSysctl, ProgramError, RawTracePoint, TracePoint,
    },
};
use node_agent_common::{KernelOffsets, config::OFFSET_UNKNOWN, stats::Hook};
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
    /// Left off: events are not printed and no enabled finding type reads its records; the
    /// reason names the disabled types that would (`coverage::hook_need`).
    NotNeeded(String),
    /// This kernel has none of the hooks the sensor could use (a syscall it was built without):
    /// nothing to fix on the host; the reason names what is missing.
    Unsupported(String),
    /// Every mechanism was tried and refused; the reasons, one per mechanism.
    Failed(String),
}

/// Why one mechanism did not attach.
enum Refusal {
    /// The kernel does not have the hook at all.
    Absent(String),
    /// The kernel has it and refused (verifier, privilege, a missing map, ...).
    Failed(String),
}

impl From<String> for Refusal {
    fn from(reason: String) -> Self {
        Refusal::Failed(reason)
    }
}

impl From<&str> for Refusal {
    fn from(reason: &str) -> Self {
        Refusal::Failed(reason.to_owned())
    }
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
            HookState::NotNeeded(reason) => write!(f, "{} not needed: {reason}", self.hook),
            HookState::Unsupported(reason) => {
                write!(f, "{} unsupported by this kernel: {reason}", self.hook)
            }
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
    /// A cgroup sysctl program on the cgroup v2 root (every task is in the v2 hierarchy, also
    /// on hosts whose controllers are on v1).
    CgroupSysctl(&'static str),
}

impl Mechanism {
    fn name(&self) -> &'static str {
        match self {
            Mechanism::BtfTracePoint { .. } => "tp_btf",
            Mechanism::RawTracePoint { .. } => "raw_tp",
            Mechanism::TracePoints(_) => "tracepoint",
            Mechanism::CgroupSockAddr(_)
            | Mechanism::CgroupSkb { .. }
            | Mechanism::CgroupSysctl(_) => "cgroup",
        }
    }
}

/// Preference order per hook: the first that loads and attaches wins. fentry, kprobes and
/// BPF-LSM would slot in here first on kernels that allow them; the programs for them come
/// with the sensors that need them.
fn plan(hook: Hook, offsets: &KernelOffsets) -> Vec<Mechanism> {
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
        // The exit alone where the saved registers' offsets are known (one program run per
        // connect instead of two), else the entry/exit pair.
        Hook::Connect => {
            let mut plan = Vec::new();
            if offsets.regs_arg0 != OFFSET_UNKNOWN
                && offsets.regs_arg1 != OFFSET_UNKNOWN
                && offsets.regs_arg2 != OFFSET_UNKNOWN
            {
                plan.push(TracePoints(&[(
                    "connect_exit_regs",
                    "syscalls",
                    "sys_exit_connect",
                )]));
            }
            plan.push(TracePoints(&[
                ("connect_enter", "syscalls", "sys_enter_connect"),
                ("connect_exit", "syscalls", "sys_exit_connect"),
            ]));
            plan
        }
        // A reset that refuses a non-blocking connect's handshake after the syscall returned.
        Hook::ConnectOutcome => vec![
            BtfTracePoint {
                program: "connect_outcome_btf",
                tracepoint: "tcp_receive_reset",
            },
            RawTracePoint {
                program: "connect_outcome_raw",
                tracepoint: "tcp_receive_reset",
            },
        ],
        Hook::Accept => vec![TracePoints(&[
            ("accept_exit", "syscalls", "sys_exit_accept"),
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
        Hook::FileOpen => vec![TracePoints(&[
            ("openat_enter", "syscalls", "sys_enter_openat"),
            ("openat_exit", "syscalls", "sys_exit_openat"),
            ("open_enter", "syscalls", "sys_enter_open"),
            ("open_exit", "syscalls", "sys_exit_open"),
            ("creat_enter", "syscalls", "sys_enter_creat"),
            ("creat_exit", "syscalls", "sys_exit_creat"),
            ("openat2_enter", "syscalls", "sys_enter_openat2"),
            ("openat2_exit", "syscalls", "sys_exit_openat2"),
            // A shell's redirection of a file it opened (data, not a script it sources); the
            // `dup` hook's programs on the same tracepoints look for sockets.
            ("dup2_redirect", "syscalls", "sys_enter_dup2"),
            ("dup3_redirect", "syscalls", "sys_enter_dup3"),
            // bash's `fstat` of a file it opened: it sources it.
            ("newfstatat_script", "syscalls", "sys_enter_newfstatat"),
            ("newfstat_script", "syscalls", "sys_enter_newfstat"),
        ])],
        Hook::FileChange => vec![TracePoints(&[
            ("rename_enter", "syscalls", "sys_enter_rename"),
            ("rename_exit", "syscalls", "sys_exit_rename"),
            ("renameat_enter", "syscalls", "sys_enter_renameat"),
            ("renameat_exit", "syscalls", "sys_exit_renameat"),
            ("renameat2_enter", "syscalls", "sys_enter_renameat2"),
            ("renameat2_exit", "syscalls", "sys_exit_renameat2"),
            ("link_enter", "syscalls", "sys_enter_link"),
            ("link_exit", "syscalls", "sys_exit_link"),
            ("linkat_enter", "syscalls", "sys_enter_linkat"),
            ("linkat_exit", "syscalls", "sys_exit_linkat"),
            ("symlink_enter", "syscalls", "sys_enter_symlink"),
            ("symlink_exit", "syscalls", "sys_exit_symlink"),
            ("symlinkat_enter", "syscalls", "sys_enter_symlinkat"),
            ("symlinkat_exit", "syscalls", "sys_exit_symlinkat"),
            ("unlink_enter", "syscalls", "sys_enter_unlink"),
            ("unlink_exit", "syscalls", "sys_exit_unlink"),
            ("unlinkat_enter", "syscalls", "sys_enter_unlinkat"),
            ("unlinkat_exit", "syscalls", "sys_exit_unlinkat"),
            ("chmod_enter", "syscalls", "sys_enter_chmod"),
            ("chmod_exit", "syscalls", "sys_exit_chmod"),
            ("fchmodat_enter", "syscalls", "sys_enter_fchmodat"),
            ("fchmodat_exit", "syscalls", "sys_exit_fchmodat"),
            ("fchmodat2_enter", "syscalls", "sys_enter_fchmodat2"),
            ("fchmodat2_exit", "syscalls", "sys_exit_fchmodat2"),
            ("fchmod_enter", "syscalls", "sys_enter_fchmod"),
            ("fchmod_exit", "syscalls", "sys_exit_fchmod"),
            ("chown_enter", "syscalls", "sys_enter_chown"),
            ("chown_exit", "syscalls", "sys_exit_chown"),
            ("lchown_enter", "syscalls", "sys_enter_lchown"),
            ("lchown_exit", "syscalls", "sys_exit_lchown"),
            ("fchownat_enter", "syscalls", "sys_enter_fchownat"),
            ("fchownat_exit", "syscalls", "sys_exit_fchownat"),
            ("fchown_enter", "syscalls", "sys_enter_fchown"),
            ("fchown_exit", "syscalls", "sys_exit_fchown"),
            // A file's access ACL set (`setfacl`).
            ("setxattr_enter", "syscalls", "sys_enter_setxattr"),
            ("setxattr_exit", "syscalls", "sys_exit_setxattr"),
            ("lsetxattr_enter", "syscalls", "sys_enter_lsetxattr"),
            ("lsetxattr_exit", "syscalls", "sys_exit_lsetxattr"),
            ("fsetxattr_enter", "syscalls", "sys_enter_fsetxattr"),
            ("fsetxattr_exit", "syscalls", "sys_exit_fsetxattr"),
            ("setxattrat_enter", "syscalls", "sys_enter_setxattrat"),
            ("setxattrat_exit", "syscalls", "sys_exit_setxattrat"),
        ])],
        Hook::Memfd => vec![TracePoints(&[
            ("memfd_enter", "syscalls", "sys_enter_memfd_create"),
            ("memfd_exit", "syscalls", "sys_exit_memfd_create"),
        ])],
        Hook::Ptrace => vec![TracePoints(&[
            ("ptrace_enter", "syscalls", "sys_enter_ptrace"),
            ("ptrace_exit", "syscalls", "sys_exit_ptrace"),
        ])],
        Hook::VmWrite => vec![TracePoints(&[
            ("vm_writev_enter", "syscalls", "sys_enter_process_vm_writev"),
            ("vm_writev_exit", "syscalls", "sys_exit_process_vm_writev"),
        ])],
        Hook::VmRead => vec![TracePoints(&[
            ("vm_readv_enter", "syscalls", "sys_enter_process_vm_readv"),
            ("vm_readv_exit", "syscalls", "sys_exit_process_vm_readv"),
        ])],
        Hook::Userfaultfd => vec![TracePoints(&[
            ("userfaultfd_enter", "syscalls", "sys_enter_userfaultfd"),
            ("userfaultfd_exit", "syscalls", "sys_exit_userfaultfd"),
        ])],
        Hook::Module => vec![TracePoints(&[
            ("init_module_enter", "syscalls", "sys_enter_init_module"),
            ("init_module_exit", "syscalls", "sys_exit_init_module"),
            ("finit_module_enter", "syscalls", "sys_enter_finit_module"),
            ("finit_module_exit", "syscalls", "sys_exit_finit_module"),
        ])],
        Hook::OpenByHandle => vec![TracePoints(&[
            (
                "open_by_handle_enter",
                "syscalls",
                "sys_enter_open_by_handle_at",
            ),
            (
                "open_by_handle_exit",
                "syscalls",
                "sys_exit_open_by_handle_at",
            ),
        ])],
        Hook::Mknod => vec![TracePoints(&[
            ("mknod_enter", "syscalls", "sys_enter_mknod"),
            ("mknod_exit", "syscalls", "sys_exit_mknod"),
            ("mknodat_enter", "syscalls", "sys_enter_mknodat"),
            ("mknodat_exit", "syscalls", "sys_exit_mknodat"),
        ])],
        // Every rename but exec's where the saved registers tell exec apart (x86-64), else
        // prctl's alone (a write to a procfs `comm` file is then not seen).
        Hook::Rename => {
            let mut plan = Vec::new();
            if offsets.regs_syscall_nr != OFFSET_UNKNOWN
                && offsets.task_flags != OFFSET_UNKNOWN
                && offsets.task_comm != OFFSET_UNKNOWN
            {
                plan.push(BtfTracePoint {
                    program: "rename_btf",
                    tracepoint: "task_rename",
                });
            }
            plan.push(TracePoints(&[
                ("prctl_enter", "syscalls", "sys_enter_prctl"),
                ("prctl_exit", "syscalls", "sys_exit_prctl"),
            ]));
            plan
        }
        Hook::Mount => vec![TracePoints(&[
            ("mount_enter", "syscalls", "sys_enter_mount"),
            ("mount_exit", "syscalls", "sys_exit_mount"),
        ])],
        Hook::Namespace => vec![TracePoints(&[
            ("unshare_enter", "syscalls", "sys_enter_unshare"),
            ("unshare_exit", "syscalls", "sys_exit_unshare"),
            ("setns_enter", "syscalls", "sys_enter_setns"),
            ("setns_exit", "syscalls", "sys_exit_setns"),
        ])],
        Hook::Privilege => vec![TracePoints(&[
            ("setuid_enter", "syscalls", "sys_enter_setuid"),
            ("setuid_exit", "syscalls", "sys_exit_setuid"),
            ("setgid_enter", "syscalls", "sys_enter_setgid"),
            ("setgid_exit", "syscalls", "sys_exit_setgid"),
            ("setreuid_enter", "syscalls", "sys_enter_setreuid"),
            ("setreuid_exit", "syscalls", "sys_exit_setreuid"),
            ("setregid_enter", "syscalls", "sys_enter_setregid"),
            ("setregid_exit", "syscalls", "sys_exit_setregid"),
            ("setresuid_enter", "syscalls", "sys_enter_setresuid"),
            ("setresuid_exit", "syscalls", "sys_exit_setresuid"),
            ("setresgid_enter", "syscalls", "sys_enter_setresgid"),
            ("setresgid_exit", "syscalls", "sys_exit_setresgid"),
            ("capset_enter", "syscalls", "sys_enter_capset"),
            ("capset_exit", "syscalls", "sys_exit_capset"),
        ])],
        Hook::Dup => vec![TracePoints(&[
            ("dup2_enter", "syscalls", "sys_enter_dup2"),
            ("dup2_exit", "syscalls", "sys_exit_dup2"),
            ("dup3_enter", "syscalls", "sys_enter_dup3"),
            ("dup3_exit", "syscalls", "sys_exit_dup3"),
        ])],
        Hook::LibraryLoad => vec![TracePoints(&[("mmap_enter", "syscalls", "sys_enter_mmap")])],
        Hook::BpfAgent => vec![TracePoints(&[("bpf_agent", "syscalls", "sys_enter_bpf")])],
        Hook::SignalAgent => vec![BtfTracePoint {
            program: "signal_agent",
            tracepoint: "signal_generate",
        }],
        Hook::Synthetic => vec![TracePoints(&[(
            "synthetic_burst",
            "syscalls",
            "sys_enter_getpgid",
        )])],
        Hook::StreamEgress => vec![CgroupSkb {
            program: "stream_egress",
            attach: CgroupSkbAttachType::Egress,
        }],
        Hook::DnsIngress => vec![CgroupSkb {
            program: "dns_ingress",
            attach: CgroupSkbAttachType::Ingress,
        }],
        Hook::Sysctl => vec![CgroupSysctl("sysctl_write")],
        // Without the offsets it reads (a kernel whose BTF lacks them), the program finds no
        // hierarchy and sends nothing: the resolver then knows the cgroups still there only.
        Hook::Cgroup => vec![BtfTracePoint {
            program: "cgroup_mkdir_btf",
            tracepoint: "cgroup_mkdir",
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
///
/// Every hook's program is loaded (verified) before any is attached: verification takes
/// seconds, and records that arrive before the reader runs wait in the ring buffer, which a
/// busy host (an exec storm) fills in well under a second. Attaching afterwards takes
/// milliseconds.
pub fn attach_all(
    ebpf: &mut Ebpf,
    btf: Option<&Btf>,
    cgroup2_root: Option<&Path>,
    options: &SensorOptions,
    offsets: &KernelOffsets,
) -> Vec<HookStatus> {
    let mut attempts: Vec<Attempt> = wanted(options)
        .into_iter()
        .map(|hook| Attempt {
            hook,
            off: left_off(hook, options),
            plan: plan(hook, offsets),
            next: 0,
            reasons: Vec::new(),
            all_absent: true,
        })
        .collect();
    // The first choice of every hook, verified on every CPU at once; what is refused there is
    // loaded again below, where the refusal is reported and the next choice tried.
    let first: Vec<&Mechanism> = attempts
        .iter()
        .filter(|a| a.off.is_none())
        .filter_map(|a| a.plan.first())
        .collect();
    load_in_parallel(ebpf, &first, btf);
    for attempt in attempts.iter_mut().filter(|a| a.off.is_none()) {
        attempt.advance(ebpf, btf, cgroup2_root, Step::Load);
    }
    attempts
        .into_iter()
        .map(|mut attempt| attempt.finish(ebpf, btf, cgroup2_root))
        .collect()
}

/// Loads the programs of `mechanisms` (the tracepoints among them that this kernel has) on
/// as many threads as there are CPUs, at most [`LOAD_THREADS`]. The kernel verifies programs
/// of a privileged loader concurrently, and verification is nearly all of the agent's start-up
/// (its 115 programs: a median 14.4 s on one CPU of the 2-vCPU test VM, 7.6 s on both;
/// docs/PERFORMANCE.md). The loads are [`prepare`]'s (`load_once!`), which needs the whole
/// `Ebpf` and so cannot run on several threads. Errors are left for [`prepare`], which loads
/// a refused program again and says why.
fn load_in_parallel(ebpf: &mut Ebpf, mechanisms: &[&Mechanism], btf: Option<&Btf>) {
    use aya::programs::Program;
    // Program name -> the BTF tracepoint it is for (`None` for the other kinds).
    let mut wanted: std::collections::HashMap<&str, Option<&str>> = Default::default();
    for mechanism in mechanisms {
        match mechanism {
            Mechanism::BtfTracePoint {
                program,
                tracepoint,
            } => {
                wanted.insert(program, Some(tracepoint));
            }
            Mechanism::RawTracePoint { program, .. }
            | Mechanism::CgroupSkb { program, .. }
            | Mechanism::CgroupSysctl(program) => {
                wanted.insert(program, None);
            }
            Mechanism::CgroupSockAddr(programs) => {
                wanted.extend(programs.iter().map(|p| (*p, None)));
            }
            Mechanism::TracePoints(points) => wanted.extend(
                points
                    .iter()
                    .filter(|(_, category, name)| tracepoint_exists(category, name))
                    .map(|(program, _, _)| (*program, None)),
            ),
        }
    }
    let programs: Vec<(Option<&str>, &mut Program)> = ebpf
        .programs_mut()
        .filter_map(|(name, program)| wanted.get(name).map(|&tp| (tp, program)))
        .collect();
    // Dealt out in turn, in the object's (arbitrary) order: a thread can draw two of the costly
    // ones (exec, the opens), which only makes it finish later.
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, LOAD_THREADS);
    let mut shares: Vec<Vec<(Option<&str>, &mut Program)>> =
        (0..threads).map(|_| Vec::new()).collect();
    for (i, program) in programs.into_iter().enumerate() {
        shares[i % threads].push(program);
    }
    std::thread::scope(|scope| {
        for share in shares {
            scope.spawn(move || {
                for (tracepoint, program) in share {
                    if program.fd().is_ok() {
                        continue;
                    }
                    let _ = match (program, tracepoint, btf) {
                        (Program::BtfTracePoint(p), Some(tp), Some(btf)) => p.load(tp, btf),
                        (Program::BtfTracePoint(_), _, _) => Ok(()),
                        (Program::TracePoint(p), _, _) => p.load(),
                        (Program::RawTracePoint(p), _, _) => p.load(),
                        (Program::CgroupSkb(p), _, _) => p.load(),
                        (Program::CgroupSockAddr(p), _, _) => p.load(),
                        (Program::CgroupSysctl(p), _, _) => p.load(),
                        _ => Ok(()),
                    };
                }
            });
        }
    });
}

/// Threads [`load_in_parallel`] uses at most.
const LOAD_THREADS: usize = 16;

/// Why a hook is not attached at all: switched off by the user, or not needed because events
/// are not printed and no enabled finding type reads its records. `None` to attach it.
fn left_off(hook: Hook, options: &SensorOptions) -> Option<HookState> {
    if options.disabled.iter().any(|d| d == hook.name()) {
        return Some(HookState::Disabled);
    }
    // The benchmark's generator is asked for by name.
    if !options.findings_only || hook == Hook::Synthetic {
        return None;
    }
    crate::detect::coverage::hook_need(hook, &options.disabled_findings)
        .reason()
        .map(HookState::NotNeeded)
}

/// How far `prepare` goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Load the mechanism's programs (the verifier runs), attach nothing.
    Load,
    /// Load what is not loaded yet, then attach.
    Attach,
}

/// One hook's way through its plan.
struct Attempt {
    hook: Hook,
    /// Not attached at all, and why.
    off: Option<HookState>,
    plan: Vec<Mechanism>,
    /// The mechanism to try next.
    next: usize,
    /// Why the mechanisms before `next` were refused.
    reasons: Vec<String>,
    /// Whether every refusal so far said the kernel lacks the hook.
    all_absent: bool,
}

impl Attempt {
    /// Tries mechanisms from `next` on until one gets through `step`; true when one did.
    fn advance(
        &mut self,
        ebpf: &mut Ebpf,
        btf: Option<&Btf>,
        cgroup2_root: Option<&Path>,
        step: Step,
    ) -> bool {
        while let Some(mechanism) = self.plan.get(self.next) {
            match prepare(ebpf, mechanism, btf, cgroup2_root, step) {
                Ok(()) => return true,
                Err(refusal) => {
                    let reason = match refusal {
                        Refusal::Absent(reason) => reason,
                        Refusal::Failed(reason) => {
                            self.all_absent = false;
                            reason
                        }
                    };
                    let name = mechanism.name();
                    tracing::debug!(hook = self.hook.name(), mechanism = name, %reason, "hook refused");
                    self.reasons.push(format!("{name}: {reason}"));
                    self.next += 1;
                }
            }
        }
        false
    }

    /// Attaches the first mechanism that works (from the one already loaded) and says how the
    /// hook ended up.
    fn finish(
        &mut self,
        ebpf: &mut Ebpf,
        btf: Option<&Btf>,
        cgroup2_root: Option<&Path>,
    ) -> HookStatus {
        let hook = self.hook.name();
        if let Some(state) = self.off.take() {
            return HookStatus {
                hook,
                mechanism: "-",
                state,
            };
        }
        if self.advance(ebpf, btf, cgroup2_root, Step::Attach) {
            let mechanism = self.plan[self.next].name();
            tracing::debug!(hook, mechanism, "hook active");
            return HookStatus {
                hook,
                mechanism,
                state: HookState::Active,
            };
        }
        let mechanism = self.plan.last().map_or("-", Mechanism::name);
        let reasons = self.reasons.join(", ");
        let state = if self.all_absent {
            HookState::Unsupported(reasons)
        } else {
            HookState::Failed(reasons)
        };
        HookStatus {
            hook,
            mechanism,
            state,
        }
    }
}

/// Loads a program unless it already is.
macro_rules! load_once {
    ($prog:expr $(, $arg:expr)*) => {
        if $prog.fd().is_err() {
            $prog.load($($arg),*).map_err(describe)?;
        }
    };
}

fn prepare(
    ebpf: &mut Ebpf,
    mechanism: &Mechanism,
    btf: Option<&Btf>,
    cgroup2_root: Option<&Path>,
    step: Step,
) -> Result<(), Refusal> {
    let attach = step == Step::Attach;
    match mechanism {
        Mechanism::BtfTracePoint {
            program,
            tracepoint,
        } => {
            let btf = btf.ok_or("no kernel BTF")?;
            let prog: &mut BtfTracePoint = program_mut(ebpf, program)?;
            load_once!(prog, tracepoint, btf);
            if attach {
                prog.attach().map_err(describe)?;
            }
        }
        Mechanism::RawTracePoint {
            program,
            tracepoint,
        } => {
            let prog: &mut RawTracePoint = program_mut(ebpf, program)?;
            load_once!(prog);
            if attach {
                prog.attach(tracepoint).map_err(describe)?;
            }
        }
        Mechanism::TracePoints(points) => {
            // Syscalls come and go between kernels (open on arm64, fchmodat2 before 6.6,
            // modules on a kernel built without them): attach what exists, fail when nothing does.
            let mut present = 0;
            let mut missing = Vec::new();
            for (program, category, name) in points.iter() {
                if !tracepoint_exists(category, name) {
                    missing.push(format!("{category}/{name}"));
                    continue;
                }
                let prog: &mut TracePoint = program_mut(ebpf, program)?;
                load_once!(prog);
                if attach {
                    prog.attach(category, name).map_err(describe)?;
                }
                present += 1;
            }
            if present == 0 {
                return Err(Refusal::Absent(format!(
                    "this kernel has none of its tracepoints ({})",
                    missing.join(", ")
                )));
            }
            if attach && !missing.is_empty() {
                tracing::debug!(missing = %missing.join(", "), "tracepoints absent on this kernel");
            }
        }
        Mechanism::CgroupSockAddr(programs) => {
            let cgroup = open_cgroup(cgroup2_root)?;
            for program in programs.iter() {
                let prog: &mut CgroupSockAddr = program_mut(ebpf, program)?;
                if prog.fd().is_err() {
                    prog.load().map_err(describe_cgroup)?;
                }
                if attach {
                    prog.attach(&cgroup, CgroupAttachMode::Single)
                        .map_err(describe_cgroup)?;
                }
            }
        }
        Mechanism::CgroupSkb {
            program,
            attach: kind,
        } => {
            let cgroup = open_cgroup(cgroup2_root)?;
            let prog: &mut CgroupSkb = program_mut(ebpf, program)?;
            if prog.fd().is_err() {
                prog.load().map_err(describe_cgroup)?;
            }
            if attach {
                prog.attach(&cgroup, *kind, CgroupAttachMode::Single)
                    .map_err(describe_cgroup)?;
            }
        }
        Mechanism::CgroupSysctl(program) => {
            let cgroup = open_cgroup(cgroup2_root)?;
            let prog: &mut CgroupSysctl = program_mut(ebpf, program)?;
            if prog.fd().is_err() {
                prog.load().map_err(describe_cgroup)?;
            }
            if attach {
                prog.attach(&cgroup, CgroupAttachMode::Single)
                    .map_err(describe_cgroup)?;
            }
        }
    }
    Ok(())
}

/// [`describe`] for the cgroup programs, naming the capability the kernel wants for them: it
/// loads and attaches cgroup network programs only for CAP_NET_ADMIN (or CAP_SYS_ADMIN), which
/// CAP_BPF and CAP_PERFMON do not imply.
fn describe_cgroup(error: ProgramError) -> String {
    with_cgroup_hint(describe(error))
}

fn with_cgroup_hint(reason: String) -> String {
    if reason.contains("Operation not permitted") {
        format!("{reason} (cgroup network programs need CAP_NET_ADMIN)")
    } else {
        reason
    }
}

/// Whether tracefs lists the tracepoint (tracefs is mounted by start-up when it was missing).
fn tracepoint_exists(category: &str, name: &str) -> bool {
    [super::host::TRACEFS, "/sys/kernel/debug/tracing"]
        .iter()
        .any(|root| {
            Path::new(root)
                .join("events")
                .join(category)
                .join(name)
                .is_dir()
        })
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

    #[test]
    fn a_refused_cgroup_program_names_cap_net_admin() {
        let text = describe_cgroup(ProgramError::LoadError {
            io_error: std::io::Error::from_raw_os_error(libc::EPERM),
            verifier_log: aya_obj::VerifierLog::new(String::new()),
        });
        assert!(
            text.ends_with("(cgroup network programs need CAP_NET_ADMIN)"),
            "{text}"
        );
        let other = with_cgroup_hint("cannot open /sys/fs/cgroup: No such file".into());
        assert!(!other.contains("CAP_NET_ADMIN"), "{other}");
    }
}
