//! Kernel-level activity: memfd, ptrace, process_vm_writev and process_vm_readv, userfaultfd,
//! modules, mounts, namespaces, privilege changes, sockets dup'ed onto stdio, executable
//! mappings of files written since the agent started, files opened by handle and block devices
//! made, threads renaming themselves. One record per call, emitted when the call returns.

use aya_ebpf::{
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid,
        generated::{bpf_probe_read_kernel_str, bpf_probe_read_user},
    },
    macros::{btf_tracepoint, map, tracepoint},
    maps::LruHashMap,
    programs::{BtfTracePointContext, TracePointContext},
};
use node_agent_common::{
    ActivityEvent, PATH_LEN, SocketPeer, WriterInfo, activity,
    config::OFFSET_UNKNOWN,
    kind,
    stats::{Hook, StatKind},
};

use crate::{
    files::{FileKey, WRITTEN},
    kernel::{
        Kptr, S_IFBLK, S_IFMT, S_IFSOCK, config, container_init_start_ns, count, current_ids,
        fd_file, file_inode, fill_current, header, inode_key, inode_type, is_agent, read_at,
        read_ptr, read_user_str, reserve, socket_peer, syscall_arg, syscall_ret,
    },
};

#[repr(C)]
#[derive(Clone, Copy)]
struct Pending {
    args: [u64; 6],
    before: [u32; 4],
    op: u16,
    _pad: [u16; 3],
}

#[map]
/// The common LRU list, not one per CPU: see `node_agent_common::maps`.
static PENDING_ACT: LruHashMap<u64, Pending> =
    LruHashMap::with_max_entries(node_agent_common::maps::LRU_ENTRIES, 0);

const PROT_EXEC: u64 = 4;
/// prctl(2)'s option that sets the calling thread's name (`comm`).
const PR_SET_NAME: u64 = 15;

/// The first `n` arguments of the syscall (the rest zero): reading past a syscall's own
/// arguments would make the kernel refuse the program.
#[inline(always)]
fn args(ctx: &TracePointContext, n: usize) -> [u64; 6] {
    let mut a = [0u64; 6];
    for (i, slot) in a.iter_mut().enumerate() {
        if i < n {
            *slot = syscall_arg(ctx, i);
        }
    }
    a
}

/// ptrace requests that change another process or make this one traced, and PEEKUSER (the
/// probe of a tracee that GuardDuty's tester makes). Memory and register reads otherwise are not
/// kept: debuggers make them by the thousand.
#[inline(always)]
fn ptrace_interesting(request: u64) -> bool {
    matches!(request, 0 | 3 | 4 | 5 | 6 | 13 | 16 | 0x4204 | 0x4206)
}

/// Whether a call is worth a record at all, decided at entry.
#[inline(always)]
fn wanted(op: u16, a: &[u64; 6]) -> bool {
    match op {
        activity::PTRACE => ptrace_interesting(a[0]),
        activity::DUP_SOCKET => {
            a[1] <= 2 && {
                let inode = file_inode(fd_file(a[0]));
                inode != 0 && inode_type(inode) == S_IFSOCK
            }
        }
        // Block devices only (a container's way to the host's disk); every other node
        // (FIFOs, sockets, character devices of a runtime's /dev) costs this comparison.
        activity::MKNOD => a[1] as u16 & S_IFMT == S_IFBLK,
        activity::MKNODAT => a[2] as u16 & S_IFMT == S_IFBLK,
        // PR_SET_NAME only: prctl's other options (seccomp, dumpable, capabilities, ...) are
        // called by every runtime and service manager and read by nothing here.
        activity::PRCTL_SET_NAME => a[0] == PR_SET_NAME,
        _ => true,
    }
}

/// The name of the file a descriptor holds into `str1`, its inode into `ino`/`dev`.
#[inline(always)]
unsafe fn file_name_of(ev: &mut ActivityEvent, fd: u64) {
    let file = fd_file(fd);
    let inode = file_inode(file);
    (ev.dev, ev.ino) = inode_key(inode);
    let dentry = read_ptr(
        file + config!(offsets.file_path) as u64,
        config!(offsets.path_dentry),
    );
    let name = read_ptr(dentry, config!(offsets.dentry_name));
    if name != 0 {
        // SAFETY: at most PATH_LEN bytes into str1.
        let n = unsafe {
            bpf_probe_read_kernel_str(
                ev.str1.as_mut_ptr().cast(),
                PATH_LEN as u32,
                name as *const _,
            )
        };
        if n > 0 {
            ev.str1_len = (n - 1) as u32;
        }
    }
}

#[inline(always)]
fn on_enter(ctx: &TracePointContext, op: u16, nargs: usize, hook: Hook) {
    if is_agent() {
        count(hook, StatKind::Filtered);
        return;
    }
    let mut a = args(ctx, nargs);
    if !wanted(op, &a) {
        return;
    }
    if op == activity::PRCTL_SET_NAME {
        // The name before the call, from the kernel (the record's `comm` is the one after).
        let old = bpf_get_current_comm().unwrap_or([0; 16]);
        let mut lo = [0u8; 8];
        let mut hi = [0u8; 8];
        lo.copy_from_slice(&old[..8]);
        hi.copy_from_slice(&old[8..]);
        a[2] = u64::from_le_bytes(lo);
        a[3] = u64::from_le_bytes(hi);
    }
    let pending = Pending {
        args: a,
        before: current_ids(),
        op,
        _pad: [0; 3],
    };
    if PENDING_ACT
        .insert(bpf_get_current_pid_tgid(), pending, 0)
        .is_err()
    {
        count(hook, StatKind::Errors);
    }
}

#[inline(always)]
fn on_exit(ctx: &TracePointContext, hook: Hook) {
    let key = bpf_get_current_pid_tgid();
    // SAFETY: copied out at once.
    let Some(pending) = (unsafe { PENDING_ACT.get(key) }).copied() else {
        return;
    };
    let _ = PENDING_ACT.remove(key);
    emit(&pending, syscall_ret(ctx), hook);
}

#[inline(always)]
fn emit(pending: &Pending, ret: i64, hook: Hook) {
    let Some(mut entry) = reserve::<ActivityEvent>() else {
        count(hook, StatKind::Dropped);
        return;
    };
    // SAFETY: reserved memory of the right size; every field is written (strings up to their
    // lengths).
    let complete = unsafe { fill(&mut *entry.as_mut_ptr(), pending, ret) };
    entry.submit();
    count(hook, StatKind::Sent);
    if !complete {
        count(hook, StatKind::Errors);
    }
}

#[inline(always)]
unsafe fn fill(ev: &mut ActivityEvent, pending: &Pending, ret: i64) -> bool {
    ev.header = header(kind::ACTIVITY, core::mem::size_of::<ActivityEvent>());
    let complete = fill_current(&mut ev.task);
    ev.op = pending.op;
    ev._pad = 0;
    ev.flags = 0;
    ev.ret = ret;
    ev.args = pending.args;
    ev.before_uid = pending.before[0];
    ev.before_euid = pending.before[1];
    ev.before_gid = pending.before[2];
    ev.before_egid = pending.before[3];
    ev.ino = 0;
    ev.dev = 0;
    ev._pad2 = 0;
    ev.writer = WriterInfo::default();
    ev.ns_init_start_ns = 0;
    ev.sock = SocketPeer::default();
    ev.str1_len = 0;
    ev.str2_len = 0;
    ev.str3_len = 0;
    ev._pad3 = 0;
    let a = &pending.args;
    match pending.op {
        activity::MEMFD_CREATE => {
            let (len, cut) = read_user_str(&mut ev.str1, a[0]);
            ev.str1_len = len;
            ev.flags |= cut as u32;
        }
        activity::MOUNT => {
            let (l1, c1) = read_user_str(&mut ev.str1, a[0]);
            let (l2, c2) = read_user_str(&mut ev.str2, a[1]);
            let (l3, c3) = read_user_str(&mut ev.str3, a[2]);
            ev.str1_len = l1;
            ev.str2_len = l2;
            ev.str3_len = l3;
            ev.flags |= c1 as u32 | (c2 as u32) << 1 | (c3 as u32) << 2;
        }
        // The file's name (the module file; `mnt:[...]`-style for a namespace).
        activity::FINIT_MODULE | activity::SETNS => unsafe { file_name_of(ev, a[0]) },
        // The handle as the caller passed it (`struct file_handle`: length, type, then the
        // bytes), and the file it opened.
        activity::OPEN_BY_HANDLE_AT => {
            let mut head = [0u32; 4];
            // SAFETY: 16 bytes into a local array; a failed read leaves zeros.
            let rc = unsafe { bpf_probe_read_user(head.as_mut_ptr().cast(), 16, a[1] as *const _) };
            if rc == 0 {
                ev.args[3] = head[1] as u64;
                ev.args[4] = head[2] as u64 | (head[3] as u64) << 32;
                ev.args[5] = head[0] as u64;
            }
            if ret >= 0 {
                unsafe { file_name_of(ev, ret as u64) };
            }
        }
        activity::MKNOD | activity::MKNODAT => {
            let path = if pending.op == activity::MKNOD {
                a[0]
            } else {
                a[1]
            };
            let (len, cut) = read_user_str(&mut ev.str1, path);
            ev.str1_len = len;
            ev.flags |= cut as u32;
        }
        activity::DUP_SOCKET => {
            ev.sock = socket_peer(fd_file(a[1]), false);
        }
        _ => {}
    }
    complete
}

macro_rules! activity_pair {
    ($enter:ident, $exit:ident, $enter_tp:literal, $exit_tp:literal, $op:expr, $nargs:literal, $hook:expr) => {
        #[tracepoint(category = "syscalls", name = $enter_tp)]
        pub fn $enter(ctx: TracePointContext) -> u32 {
            on_enter(&ctx, $op, $nargs, $hook);
            0
        }

        #[tracepoint(category = "syscalls", name = $exit_tp)]
        pub fn $exit(ctx: TracePointContext) -> u32 {
            on_exit(&ctx, $hook);
            0
        }
    };
}

activity_pair!(
    memfd_enter,
    memfd_exit,
    "sys_enter_memfd_create",
    "sys_exit_memfd_create",
    activity::MEMFD_CREATE,
    2,
    Hook::Memfd
);
activity_pair!(
    ptrace_enter,
    ptrace_exit,
    "sys_enter_ptrace",
    "sys_exit_ptrace",
    activity::PTRACE,
    4,
    Hook::Ptrace
);
activity_pair!(
    vm_writev_enter,
    vm_writev_exit,
    "sys_enter_process_vm_writev",
    "sys_exit_process_vm_writev",
    activity::PROCESS_VM_WRITEV,
    6,
    Hook::VmWrite
);
activity_pair!(
    vm_readv_enter,
    vm_readv_exit,
    "sys_enter_process_vm_readv",
    "sys_exit_process_vm_readv",
    activity::PROCESS_VM_READV,
    6,
    Hook::VmRead
);
activity_pair!(
    userfaultfd_enter,
    userfaultfd_exit,
    "sys_enter_userfaultfd",
    "sys_exit_userfaultfd",
    activity::USERFAULTFD,
    1,
    Hook::Userfaultfd
);
activity_pair!(
    init_module_enter,
    init_module_exit,
    "sys_enter_init_module",
    "sys_exit_init_module",
    activity::INIT_MODULE,
    3,
    Hook::Module
);
activity_pair!(
    finit_module_enter,
    finit_module_exit,
    "sys_enter_finit_module",
    "sys_exit_finit_module",
    activity::FINIT_MODULE,
    3,
    Hook::Module
);
activity_pair!(
    open_by_handle_enter,
    open_by_handle_exit,
    "sys_enter_open_by_handle_at",
    "sys_exit_open_by_handle_at",
    activity::OPEN_BY_HANDLE_AT,
    3,
    Hook::OpenByHandle
);
activity_pair!(
    mknod_enter,
    mknod_exit,
    "sys_enter_mknod",
    "sys_exit_mknod",
    activity::MKNOD,
    3,
    Hook::Mknod
);
activity_pair!(
    mknodat_enter,
    mknodat_exit,
    "sys_enter_mknodat",
    "sys_exit_mknodat",
    activity::MKNODAT,
    4,
    Hook::Mknod
);
activity_pair!(
    mount_enter,
    mount_exit,
    "sys_enter_mount",
    "sys_exit_mount",
    activity::MOUNT,
    5,
    Hook::Mount
);
activity_pair!(
    unshare_enter,
    unshare_exit,
    "sys_enter_unshare",
    "sys_exit_unshare",
    activity::UNSHARE,
    1,
    Hook::Namespace
);
activity_pair!(
    setns_enter,
    setns_exit,
    "sys_enter_setns",
    "sys_exit_setns",
    activity::SETNS,
    2,
    Hook::Namespace
);
activity_pair!(
    setuid_enter,
    setuid_exit,
    "sys_enter_setuid",
    "sys_exit_setuid",
    activity::SETUID,
    1,
    Hook::Privilege
);
activity_pair!(
    setgid_enter,
    setgid_exit,
    "sys_enter_setgid",
    "sys_exit_setgid",
    activity::SETGID,
    1,
    Hook::Privilege
);
activity_pair!(
    setreuid_enter,
    setreuid_exit,
    "sys_enter_setreuid",
    "sys_exit_setreuid",
    activity::SETREUID,
    2,
    Hook::Privilege
);
activity_pair!(
    setregid_enter,
    setregid_exit,
    "sys_enter_setregid",
    "sys_exit_setregid",
    activity::SETREGID,
    2,
    Hook::Privilege
);
activity_pair!(
    setresuid_enter,
    setresuid_exit,
    "sys_enter_setresuid",
    "sys_exit_setresuid",
    activity::SETRESUID,
    3,
    Hook::Privilege
);
activity_pair!(
    setresgid_enter,
    setresgid_exit,
    "sys_enter_setresgid",
    "sys_exit_setresgid",
    activity::SETRESGID,
    3,
    Hook::Privilege
);
activity_pair!(
    capset_enter,
    capset_exit,
    "sys_enter_capset",
    "sys_exit_capset",
    activity::CAPSET,
    2,
    Hook::Privilege
);
activity_pair!(
    dup2_enter,
    dup2_exit,
    "sys_enter_dup2",
    "sys_exit_dup2",
    activity::DUP_SOCKET,
    2,
    Hook::Dup
);
activity_pair!(
    dup3_enter,
    dup3_exit,
    "sys_enter_dup3",
    "sys_exit_dup3",
    activity::DUP_SOCKET,
    3,
    Hook::Dup
);

activity_pair!(
    prctl_enter,
    prctl_exit,
    "sys_enter_prctl",
    "sys_exit_prctl",
    activity::PRCTL_SET_NAME,
    2,
    Hook::Rename
);

/// `PF_KTHREAD` in `task_struct.flags`.
const PF_KTHREAD: u32 = 0x0020_0000;
/// x86-64's execve and execveat: the renames exec makes (to the file's name) are the exec
/// record's business.
const SYS_EXECVE: u64 = 59;
const SYS_EXECVEAT: u64 = 322;

/// Every change of a thread's name outside exec: prctl(PR_SET_NAME), a write to a procfs
/// `comm` file (which prctl's tracepoints never see), `pthread_setname_np` for another thread.
/// The name before is the renamed task's `comm` (the tracepoint fires before the copy), the
/// name after the tracepoint's argument: the kernel's copy, never the caller's buffer. Runs on
/// every exec too (exec renames the task), which costs the syscall-number test only. Where
/// the saved registers' syscall number is unknown (not x86-64), prctl's pair is used instead.
#[btf_tracepoint(function = "task_rename")]
pub fn rename_btf(ctx: BtfTracePointContext) -> i32 {
    let nr = Kptr::current_regs().read::<u64>(config!(offsets.regs_syscall_nr));
    if nr == SYS_EXECVE || nr == SYS_EXECVEAT {
        return 0;
    }
    let task = Kptr::from_btf_arg(ctx.arg::<u64>(0));
    // A kernel thread named by the process whose call created it (`kthread_create`).
    if task.read::<u32>(config!(offsets.task_flags)) & PF_KTHREAD != 0 {
        return 0;
    }
    if is_agent() {
        count(Hook::Rename, StatKind::Filtered);
        return 0;
    }
    let old = read_at::<[u8; 16]>(task.addr(), config!(offsets.task_comm));
    let mut new = [0u8; 16];
    // SAFETY: at most 16 bytes into a local array; the pointer is the kernel's copy.
    unsafe {
        bpf_probe_read_kernel_str(new.as_mut_ptr().cast(), 16, ctx.arg::<u64>(1) as *const _)
    };
    let half = |b: &[u8; 16], i: usize| {
        let mut h = [0u8; 8];
        h.copy_from_slice(&b[i * 8..i * 8 + 8]);
        u64::from_le_bytes(h)
    };
    let pending = Pending {
        args: [
            nr,
            u64::from(task.read::<u32>(config!(offsets.task_pid))),
            half(&old, 0),
            half(&old, 1),
            half(&new, 0),
            half(&new, 1),
        ],
        before: current_ids(),
        op: activity::TASK_RENAME,
        _pad: [0; 3],
    };
    emit(&pending, 0, Hook::Rename);
    0
}

/// A cgroup made in the unified (v2) hierarchy: its id and path, so that a container's
/// processes are known as the container's even when it ran for a moment and its cgroup was
/// removed before the agent read their records. Cgroups of the v1 hierarchies (made beside it on
/// a hybrid host) are left out: their ids are another numbering. Runs only when a cgroup is made.
#[btf_tracepoint(function = "cgroup_mkdir")]
pub fn cgroup_mkdir_btf(ctx: BtfTracePointContext) -> i32 {
    // Without the hierarchy's id, a v1 cgroup could pass for a v2 one.
    if config!(offsets.cgroup_root_hierarchy_id) == OFFSET_UNKNOWN {
        return 0;
    }
    let cgrp = Kptr::from_btf_arg(ctx.arg::<u64>(0));
    let root = cgrp.ptr(config!(offsets.cgroup_root));
    if root.addr() == 0 || root.read::<i32>(config!(offsets.cgroup_root_hierarchy_id)) != 0 {
        return 0;
    }
    let kn = cgrp.ptr(config!(offsets.cgroup_kn));
    if kn.addr() == 0 {
        return 0;
    }
    let id = kn.read::<u64>(config!(offsets.kernfs_node_id));
    if id == 0 {
        return 0;
    }
    let pending = Pending {
        args: [id, 0, 0, 0, 0, 0],
        before: current_ids(),
        op: activity::CGROUP_MKDIR,
        _pad: [0; 3],
    };
    let Some(mut entry) = reserve::<ActivityEvent>() else {
        count(Hook::Cgroup, StatKind::Dropped);
        return 0;
    };
    // SAFETY: reserved memory of the right size; `fill` writes every field.
    unsafe {
        let ev = &mut *entry.as_mut_ptr();
        fill(ev, &pending, 0);
        // SAFETY: at most PATH_LEN bytes into str1; the path is the kernel's string.
        let n = bpf_probe_read_kernel_str(
            ev.str1.as_mut_ptr().cast(),
            PATH_LEN as u32,
            ctx.arg::<u64>(1) as *const _,
        );
        if n > 0 {
            ev.str1_len = (n - 1) as u32;
        }
        if n >= PATH_LEN as i64 {
            // Longer: the bytes after those kept (a container's id is at the end).
            let path = ctx.arg::<u64>(1) + (PATH_LEN as u64 - 1);
            let m = bpf_probe_read_kernel_str(
                ev.str2.as_mut_ptr().cast(),
                PATH_LEN as u32,
                path as *const _,
            );
            if m > 0 {
                ev.str2_len = (m - 1) as u32;
            }
            if m >= PATH_LEN as i64 {
                ev.flags |= 1;
            }
        }
    }
    entry.submit();
    count(Hook::Cgroup, StatKind::Sent);
    0
}

/// An executable mapping of a file written since the agent started (a fresh shared library).
#[tracepoint(category = "syscalls", name = "sys_enter_mmap")]
pub fn mmap_enter(ctx: TracePointContext) -> u32 {
    // Every mmap passes here: test the protection before anything else.
    if syscall_arg(&ctx, 2) & PROT_EXEC == 0 {
        return 0;
    }
    let a = args(&ctx, 6);
    if (a[4] as i64) < 0 {
        return 0;
    }
    if is_agent() {
        count(Hook::LibraryLoad, StatKind::Filtered);
        return 0;
    }
    let inode = file_inode(fd_file(a[4]));
    if inode == 0 {
        return 0;
    }
    let (dev, ino) = inode_key(inode);
    // SAFETY: copied out at once.
    let Some(writer) = (unsafe { WRITTEN.get(FileKey { dev, _pad: 0, ino }) }).copied() else {
        return 0;
    };
    let pending = Pending {
        args: a,
        before: current_ids(),
        op: activity::LIBRARY_LOAD,
        _pad: [0; 3],
    };
    let Some(mut entry) = reserve::<ActivityEvent>() else {
        count(Hook::LibraryLoad, StatKind::Dropped);
        return 0;
    };
    // SAFETY: reserved memory of the right size; `fill` writes every field.
    unsafe {
        let ev = &mut *entry.as_mut_ptr();
        fill(ev, &pending, 0);
        ev.dev = dev;
        ev.ino = ino;
        ev.writer = writer;
        ev.ns_init_start_ns = container_init_start_ns();
        // The library's file name (its directory would need a path walk; the inode identifies it).
        let file = fd_file(a[4]);
        let dentry = read_ptr(
            file + config!(offsets.file_path) as u64,
            config!(offsets.path_dentry),
        );
        let name = read_ptr(dentry, config!(offsets.dentry_name));
        // SAFETY: at most PATH_LEN bytes into str1.
        let n = bpf_probe_read_kernel_str(
            ev.str1.as_mut_ptr().cast(),
            PATH_LEN as u32,
            name as *const _,
        );
        if n > 0 {
            ev.str1_len = (n - 1) as u32;
        }
    }
    entry.submit();
    count(Hook::LibraryLoad, StatKind::Sent);
    0
}
