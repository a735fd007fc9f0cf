//! Self-protection: who the agent is in the kernel's numbering, and what other processes aim
//! at it (`bpf(2)` on its maps, programs and links; signals).
//!
//! The agent's own pid means nothing in a pid namespace (a pod without hostPID), so the agent
//! learns its identity from the kernel: at start it calls `bpf(MARKER_BPF_CMD, nonce, 0)`,
//! which the kernel refuses with `EINVAL`, and `agent_marker` records the caller in `AGENT`
//! when the nonce is the one user space wrote into the configuration.

use aya_ebpf::{
    helpers::generated::bpf_probe_read_user,
    macros::{btf_tracepoint, map, tracepoint},
    maps::HashMap,
    programs::{BtfTracePointContext, TracePointContext},
};
use node_agent_common::{
    ActivityEvent, AgentIdentity, GUARDED_MAX, SocketPeer, WriterInfo, activity, agent_object,
    config::MARKER_BPF_CMD,
    guarded, kind,
    stats::{Hook, StatKind},
};

use crate::kernel::{
    AGENT, Kptr, agent_tgid, config, count, current_ids, current_tgid, fd_file, fill_current,
    header, process_start_ns, read_at, read_ptr, reserve, syscall_arg,
};

/// The agent's own maps, programs and links, keyed `kind << 32 | id` (`agent_object`), filled
/// by user space once everything is attached.
#[map]
pub static AGENT_OBJECTS: HashMap<u64, u32> = HashMap::with_max_entries(1024, 0);

#[tracepoint(category = "syscalls", name = "sys_enter_bpf")]
pub fn agent_marker(ctx: TracePointContext) -> u32 {
    let nonce = config!(marker_nonce);
    if nonce == 0
        || syscall_arg(&ctx, 0) & 0xffff_ffff != MARKER_BPF_CMD
        || syscall_arg(&ctx, 1) != nonce
    {
        return 0;
    }
    let Some(slot) = AGENT.get_ptr_mut(0) else {
        return 0;
    };
    let task = Kptr::current_task();
    let identity = AgentIdentity {
        tgid: current_tgid(),
        ppid: task
            .ptr(config!(offsets.task_real_parent))
            .read::<u32>(config!(offsets.task_tgid)),
        start_time_ns: process_start_ns(task),
    };
    // SAFETY: the map's one value; only the first marker call writes it.
    unsafe {
        if (*slot).tgid == 0 {
            *slot = identity;
        }
    }
    0
}

/// `bpf(2)` commands (uapi `enum bpf_cmd`) that change or detach an object given by fd.
const BPF_MAP_UPDATE_ELEM: u32 = 2;
const BPF_MAP_DELETE_ELEM: u32 = 3;
const BPF_PROG_DETACH: u32 = 9;
const BPF_MAP_LOOKUP_AND_DELETE_ELEM: u32 = 21;
const BPF_MAP_FREEZE: u32 = 22;
const BPF_MAP_LOOKUP_AND_DELETE_BATCH: u32 = 25;
const BPF_MAP_UPDATE_BATCH: u32 = 26;
const BPF_MAP_DELETE_BATCH: u32 = 27;
const BPF_LINK_UPDATE: u32 = 29;
const BPF_LINK_DETACH: u32 = 34;

/// The name the kernel gives the anonymous file of each object kind (`anon_inode:bpf-map`), as
/// one word: compared with one instruction (an array comparison would call `memcmp`, which
/// eBPF lacks).
const MAP_FILE: u64 = u64::from_ne_bytes(*b"bpf-map\0");
const PROG_FILE: u64 = u64::from_ne_bytes(*b"bpf-prog");
const LINK_FILE: u64 = u64::from_ne_bytes(*b"bpf_link");

#[tracepoint(category = "syscalls", name = "sys_enter_bpf")]
pub fn bpf_agent(ctx: TracePointContext) -> u32 {
    let agent = agent_tgid();
    if agent == 0 {
        return 0;
    }
    if current_tgid() == agent {
        count(Hook::BpfAgent, StatKind::Filtered);
        return 0;
    }
    let cmd = syscall_arg(&ctx, 0) as u32;
    // Where the object's fd sits in `union bpf_attr`, and what kind it is. Reading and
    // enumerating (GET_NEXT_ID, GET_FD_BY_ID, OBJ_GET_INFO_BY_FD, LOOKUP_ELEM) is left alone:
    // `bpftool prog show` does all of that to every object.
    let (fd_offset, object, file_name) = match cmd {
        BPF_MAP_UPDATE_ELEM
        | BPF_MAP_DELETE_ELEM
        | BPF_MAP_LOOKUP_AND_DELETE_ELEM
        | BPF_MAP_FREEZE => (0u64, agent_object::MAP, MAP_FILE),
        // `batch.map_fd`, after four pointers and `count`.
        BPF_MAP_LOOKUP_AND_DELETE_BATCH | BPF_MAP_UPDATE_BATCH | BPF_MAP_DELETE_BATCH => {
            (36, agent_object::MAP, MAP_FILE)
        }
        // `attach_bpf_fd`, after `target_fd`.
        BPF_PROG_DETACH => (4, agent_object::PROG, PROG_FILE),
        BPF_LINK_UPDATE | BPF_LINK_DETACH => (0, agent_object::LINK, LINK_FILE),
        _ => return 0,
    };
    let attr = syscall_arg(&ctx, 1);
    let mut fd: u32 = 0;
    // SAFETY: the helper writes 4 bytes into `fd` and checks the user address.
    let rc = unsafe {
        bpf_probe_read_user(
            (&mut fd as *mut u32).cast(),
            4,
            (attr + fd_offset) as *const core::ffi::c_void,
        )
    };
    if rc != 0 {
        return 0;
    }
    let file = fd_file(fd as u64);
    if file == 0 {
        return 0;
    }
    // Only a file of the right kind: its private data is then that kind of object.
    let dentry = read_ptr(
        file + config!(offsets.file_path) as u64,
        config!(offsets.path_dentry),
    );
    let name = read_at::<u64>(read_ptr(dentry, config!(offsets.dentry_name)), 0);
    if name != file_name {
        return 0;
    }
    let object_ptr = read_ptr(file, config!(offsets.file_private_data));
    let id = match object {
        agent_object::MAP => read_at::<u32>(object_ptr, config!(offsets.bpf_map_id)),
        agent_object::PROG => read_at::<u32>(
            read_ptr(object_ptr, config!(offsets.bpf_prog_aux)),
            config!(offsets.bpf_prog_aux_id),
        ),
        _ => read_at::<u32>(object_ptr, config!(offsets.bpf_link_id)),
    };
    if id == 0 {
        count(Hook::BpfAgent, StatKind::Errors);
        return 0;
    }
    let key = object << 32 | id as u64;
    if AGENT_OBJECTS.get_ptr(&key).is_none() {
        return 0;
    }
    emit(
        activity::BPF_AGENT,
        [cmd as u64, object, id as u64, fd as u64, 0, 0],
        Hook::BpfAgent,
    );
    0
}

/// The host's other security agents and programs named like miners (tgid -> what it is,
/// `guarded::*`), kept by user space from the executables it sees exec and seeds from
/// `/proc`: their stopping signals are reported too.
#[map]
pub static GUARDED: HashMap<u32, u32> = HashMap::with_max_entries(GUARDED_MAX, 0);

/// Signals that stop a process (or ask it to stop): what killing an agent takes. A reload
/// (`SIGHUP`, `SIGUSR1`: logrotate's) does not count.
const SIGINT: u64 = 2;
const SIGQUIT: u64 = 3;
const SIGKILL: u64 = 9;
const SIGTERM: u64 = 15;
const SIGSTOP: u64 = 19;

/// Signals that say nothing about the agent's fate: a child's exit, a resumed stop, urgent
/// socket data, a terminal resize.
const SIGCHLD: u64 = 17;
const SIGCONT: u64 = 18;
const SIGURG: u64 = 23;
const SIGWINCH: u64 = 28;
/// `si_code` of a signal the kernel raised itself (`SEND_SIG_PRIV`).
const SI_KERNEL: u64 = 0x80;

#[btf_tracepoint(function = "signal_generate")]
pub fn signal_agent(ctx: BtfTracePointContext) -> i32 {
    // signal_generate(int sig, struct kernel_siginfo *info, struct task_struct *task,
    //                 int group, int result)
    let task: u64 = ctx.arg(2);
    let target = read_at::<u32>(task, config!(offsets.task_tgid));
    let sig = ctx.arg::<u64>(0) & 0xffff_ffff;
    let agent = agent_tgid();
    let op = if agent != 0 && target == agent {
        if matches!(sig, SIGCHLD | SIGCONT | SIGURG | SIGWINCH) {
            count(Hook::SignalAgent, StatKind::Filtered);
            return 0;
        }
        activity::SIGNAL_AGENT
    } else {
        // Every exit's SIGCHLD passes here: the signal first, the map only for a stop.
        if !matches!(sig, SIGINT | SIGQUIT | SIGKILL | SIGTERM | SIGSTOP) {
            return 0;
        }
        // SAFETY: the value is copied out at once.
        match unsafe { GUARDED.get(&target) }.copied() {
            None => return 0,
            Some(guarded::MINER) => activity::SIGNAL_MINER,
            Some(_) => activity::SIGNAL_GUARDED,
        }
    };
    // A process stopping its own threads or itself.
    if current_tgid() == target {
        count(Hook::SignalAgent, StatKind::Filtered);
        return 0;
    }
    // `info` may be one of the kernel's markers instead of a pointer: SEND_SIG_NOINFO (0,
    // sent by a process, SI_USER) and SEND_SIG_PRIV (1, by the kernel).
    let info: u64 = ctx.arg(1);
    let code = match info {
        0 => 0,
        1 => SI_KERNEL,
        // `si_code` follows `si_signo` and `si_errno`.
        _ => read_at::<i32>(info, 8) as i64 as u64,
    };
    let tid = read_at::<u32>(task, config!(offsets.task_pid));
    let group = ctx.arg::<u64>(3) & 0xffff_ffff;
    let result = ctx.arg::<u64>(4) & 0xffff_ffff;
    emit(
        op,
        [sig, code, tid as u64, target as u64, group, result],
        Hook::SignalAgent,
    );
    0
}

#[inline(always)]
fn emit(op: u16, args: [u64; 6], hook: Hook) {
    let Some(mut entry) = reserve::<ActivityEvent>() else {
        count(hook, StatKind::Dropped);
        return;
    };
    // SAFETY: reserved memory of the right size; every field is written (the strings are
    // empty, their lengths zero).
    let complete = unsafe {
        let ev = &mut *entry.as_mut_ptr();
        ev.header = header(kind::ACTIVITY, core::mem::size_of::<ActivityEvent>());
        let complete = fill_current(&mut ev.task);
        let before = current_ids();
        ev.op = op;
        ev._pad = 0;
        ev.flags = 0;
        ev.ret = 0;
        ev.args = args;
        ev.before_uid = before[0];
        ev.before_euid = before[1];
        ev.before_gid = before[2];
        ev.before_egid = before[3];
        ev.ino = 0;
        ev.dev = 0;
        ev._pad2 = 0;
        ev.writer = WriterInfo::default();
        ev.sock = SocketPeer::default();
        ev.str1_len = 0;
        ev.str2_len = 0;
        ev.str3_len = 0;
        ev._pad3 = 0;
        complete
    };
    entry.submit();
    count(hook, StatKind::Sent);
    if !complete {
        count(hook, StatKind::Errors);
    }
}
