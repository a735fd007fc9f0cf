//! Process sensors: exec, fork and exit, from the scheduler tracepoints.
//!
//! Each has a `tp_btf` entry (preferred) and a `raw_tp` entry (kernels without BTF-typed
//! tracepoints); both hand the same u64 argument array to one body, which reads a `tp_btf`
//! argument with plain loads (the verifier knows its type) and a `raw_tp` one with helper calls.

use aya_ebpf::{
    helpers::{
        bpf_get_current_pid_tgid,
        generated::{
            bpf_probe_read_kernel, bpf_probe_read_kernel_str, bpf_probe_read_user,
            bpf_probe_read_user_str,
        },
    },
    macros::{btf_tracepoint, map, raw_tracepoint},
    maps::PerCpuArray,
    programs::{BtfTracePointContext, RawTracePointContext},
};
use node_agent_common::{
    ARGV_HEAD_LEN, ARGV_LEN, ARGV_TAIL_LEN, ENV_VALUE_LEN, ExeObject, ExecEvent, ExitEvent,
    FILENAME_LEN, FdPipe, ForkEvent, WriterInfo,
    config::OFFSET_UNKNOWN,
    exec_flags, kind,
    stats::{Hook, StatKind},
};

use crate::{
    files::{FileKey, WRITTEN},
    kernel::{
        Kptr, S_IFIFO, S_IFREG, S_IFSOCK, Walk, config, container_init_start_ns, count, fd_file,
        file_inode, fill_current, header, inode_key, inode_type, is_agent, read_at, read_ptr,
        reserve, socket_peer, walk_path,
    },
};

#[btf_tracepoint(function = "sched_process_exec")]
pub fn exec_btf(ctx: BtfTracePointContext) -> i32 {
    on_exec(ctx.arg::<u64>(0), ctx.arg::<u64>(2));
    0
}

#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn exec_raw(ctx: RawTracePointContext) -> i32 {
    on_exec(ctx.arg::<u64>(0), ctx.arg::<u64>(2));
    0
}

#[btf_tracepoint(function = "sched_process_fork")]
pub fn fork_btf(ctx: BtfTracePointContext) -> i32 {
    // The child is a BTF-typed pointer here: its fields are plain loads.
    on_fork(ctx.arg::<u64>(1), true);
    0
}

#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn fork_raw(ctx: RawTracePointContext) -> i32 {
    on_fork(ctx.arg::<u64>(1), false);
    0
}

// The exiting task is the current one (`do_exit`): the programs need no argument.
#[btf_tracepoint(function = "sched_process_exit")]
pub fn exit_btf(_ctx: BtfTracePointContext) -> i32 {
    on_exit();
    0
}

#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn exit_raw(_ctx: RawTracePointContext) -> i32 {
    on_exit();
    0
}

#[inline(always)]
fn on_exec(task: u64, bprm: u64) {
    if is_agent() {
        count(Hook::Exec, StatKind::Filtered);
        return;
    }
    // Whether the new image is a shell, even when its record is dropped below.
    crate::sourced::on_exec(read_ptr(
        read_ptr(task, config!(offsets.task_mm)),
        config!(offsets.mm_exe_file),
    ));
    let Some(mut entry) = reserve::<ExecEvent>() else {
        count(Hook::Exec, StatKind::Dropped);
        return;
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: `ev` points at reserved ring-buffer memory of size_of::<ExecEvent>(); every field
    // is written below before submit (arrays only up to their *_len, which user space honours).
    let complete = unsafe { fill_exec(&mut *ev, task, bprm) };
    entry.submit();
    count(Hook::Exec, StatKind::Sent);
    if !complete {
        count(Hook::Exec, StatKind::Errors);
    }
}

#[inline(always)]
unsafe fn fill_exec(ev: &mut ExecEvent, task: u64, bprm: u64) -> bool {
    ev.header = header(kind::EXEC, core::mem::size_of::<ExecEvent>());
    let mut complete = fill_current(&mut ev.task);
    ev.flags = 0;

    let mm = read_ptr(task, config!(offsets.task_mm));
    let exe_file = read_ptr(mm, config!(offsets.mm_exe_file));
    let inode = read_ptr(exe_file, config!(offsets.file_inode));
    ev.exe_ino = read_at::<u64>(inode, config!(offsets.inode_ino));
    let sb = read_ptr(inode, config!(offsets.inode_sb));
    ev.exe_dev = read_at::<u32>(sb, config!(offsets.sb_dev));
    complete &= ev.exe_ino != 0;

    // The path given to exec.
    let filename = read_ptr(bprm, config!(offsets.bprm_filename));
    ev.filename_len = 0;
    if filename != 0 {
        // SAFETY: destination is the event's filename array, of exactly FILENAME_LEN bytes.
        let n = unsafe {
            bpf_probe_read_kernel_str(
                ev.filename.as_mut_ptr().cast(),
                FILENAME_LEN as u32,
                filename as *const _,
            )
        };
        if n > 0 {
            ev.filename_len = (n - 1) as u32;
            if n as usize == FILENAME_LEN {
                ev.flags |= exec_flags::FILENAME_TRUNCATED;
            }
        }
    }
    complete &= ev.filename_len != 0;

    // The argument vector, straight from the new image's stack.
    ev.argv_len = 0;
    let arg_start = read_at::<u64>(mm, config!(offsets.mm_arg_start));
    let arg_end = read_at::<u64>(mm, config!(offsets.mm_arg_end));
    if arg_start != 0 && arg_end > arg_start && arg_end - arg_start > ARGV_LEN as u64 {
        // Longer than the record holds: its start and its end, so that padding in the middle
        // cannot hide what follows it.
        ev.flags |= exec_flags::ARGV_TRUNCATED | exec_flags::ARGV_TAIL;
        // SAFETY: ARGV_HEAD_LEN + ARGV_TAIL_LEN == ARGV_LEN, the size of the destination; the
        // helper checks the user addresses.
        let rc = unsafe {
            let head = bpf_probe_read_user(
                ev.argv.as_mut_ptr().cast(),
                ARGV_HEAD_LEN as u32,
                arg_start as *const _,
            );
            let tail = bpf_probe_read_user(
                ev.argv.as_mut_ptr().add(ARGV_HEAD_LEN).cast(),
                ARGV_TAIL_LEN as u32,
                (arg_end - ARGV_TAIL_LEN as u64) as *const _,
            );
            head | tail
        };
        if rc == 0 {
            ev.argv_len = ARGV_LEN as u32;
        } else {
            ev.flags |= exec_flags::ARGV_UNREADABLE;
        }
    } else if arg_start != 0 && arg_end > arg_start {
        let mut len = arg_end - arg_start;
        if len > ARGV_LEN as u64 {
            // Not reached (the branch above); keeps the bound in sight of the verifier.
            len = ARGV_LEN as u64;
        }
        // SAFETY: len <= ARGV_LEN, the size of the destination array.
        let rc = unsafe {
            bpf_probe_read_user(
                ev.argv.as_mut_ptr().cast(),
                len as u32,
                arg_start as *const _,
            )
        };
        if rc == 0 {
            ev.argv_len = len as u32;
        } else {
            ev.flags |= exec_flags::ARGV_UNREADABLE;
        }
    } else {
        ev.flags |= exec_flags::ARGV_UNREADABLE;
    }

    // SAFETY: forwards the same event.
    unsafe { fill_cwd(ev, task) };
    fill_root(ev);
    fill_exe_origin(ev, exe_file, inode);
    fill_stdio(ev);
    // SAFETY: forwards the same event.
    unsafe { fill_env(ev, mm) };
    if ev.task.euid != ev.task.uid {
        ev.flags |= exec_flags::EUID_CHANGED;
    }
    complete
}

/// The bits of `inode->i_ctime_nsec` that hold nanoseconds (below 10^9 < 2^30).
const CTIME_NSEC_MASK: u32 = (1 << 30) - 1;

/// Fileless and fresh executables: a memfd, a file with no link left, a file written since
/// the agent started (and by whom).
#[inline(always)]
fn fill_exe_origin(ev: &mut ExecEvent, exe_file: u64, inode: u64) {
    ev.exe_nlink = read_at::<u32>(inode, config!(offsets.inode_nlink));
    if inode != 0 && ev.exe_nlink == 0 {
        ev.flags |= exec_flags::EXE_DELETED;
    }
    let dentry = read_ptr(
        exe_file + config!(offsets.file_path) as u64,
        config!(offsets.path_dentry),
    );
    let name = read_ptr(dentry, config!(offsets.dentry_name));
    let head = read_at::<[u8; 8]>(name, 0);
    let memfd = u64::from_le_bytes(*b"memfd:\0\0");
    if u64::from_le_bytes(head) & 0xffff_ffff_ffff == memfd {
        ev.flags |= exec_flags::EXE_MEMFD;
    }
    let ctime_sec = read_at::<i64>(inode, config!(offsets.inode_ctime_sec));
    ev.exe_object = ExeObject {
        mnt: read_ptr(
            exe_file + config!(offsets.file_path) as u64,
            config!(offsets.path_mnt),
        ),
        dentry,
        ctime_sec,
        // Since Linux 6.13 the top bit says whether the change time was queried (multigrain
        // timestamps): not part of the time.
        ctime_nsec: read_at::<u32>(inode, config!(offsets.inode_ctime_nsec)) & CTIME_NSEC_MASK,
        _pad: 0,
    };
    let key = FileKey {
        dev: ev.exe_dev,
        _pad: 0,
        ino: ev.exe_ino,
    };
    // Every exec: user space judges the writers of scripts by it as well.
    ev.ns_init_start_ns = container_init_start_ns();
    // SAFETY: copied out at once.
    ev.exe_ctime_sec = 0;
    ev.exe_ctime_nsec = 0;
    match unsafe { WRITTEN.get(key) } {
        Some(writer) => {
            ev.writer = *writer;
            ev.flags |= exec_flags::EXE_WRITTEN;
        }
        None => {
            ev.writer = WriterInfo::default();
            fill_exe_changed(ev, inode, ctime_sec);
        }
    }
}

/// An executable the written-files map does not hold, changed since the agent started: its
/// change time and when the init of its pid namespace started (user space decides whether
/// the map may have lost it: a flood of written files evicts the oldest entries).
#[inline(always)]
fn fill_exe_changed(ev: &mut ExecEvent, inode: u64, ctime: i64) {
    let since = config!(start_realtime_sec) as i64;
    if since == 0 || inode == 0 || ctime < since {
        return;
    }
    ev.exe_ctime_sec = ctime;
    ev.exe_ctime_nsec = ev.exe_object.ctime_nsec;
}

/// What the standard streams are (a terminal, a pipe, a file, a socket) and, for sockets, their
/// peers: the reverse-shell signal, and whether a shell reads commands from a pipe or a person.
/// For pipes on standard input and output, the pipe itself (its inode, shared by both ends):
/// who writes what a shell reads.
#[inline(always)]
fn fill_stdio(ev: &mut ExecEvent) {
    let mut types = 0u32;
    let mut stdio = [(0u64, 0u16); 2];
    for fd in 0..3usize {
        let file = fd_file(fd as u64);
        let inode = if file == 0 {
            0
        } else {
            read_ptr(file, config!(offsets.file_inode))
        };
        let mode = if inode == 0 { 0 } else { inode_type(inode) };
        ev.stdio[fd] = if mode == S_IFSOCK {
            socket_peer(file, true)
        } else {
            node_agent_common::SocketPeer::default()
        };
        if fd < 2 {
            stdio[fd] = (inode, mode);
        }
        types |= u32::from(mode >> 12) << (8 * fd);
    }
    // A shell reading its program from a file on standard input (`sh < x.sh`): which file.
    (ev.stdin_dev, ev.stdin_ino) = if stdio[0].1 == S_IFREG {
        inode_key(stdio[0].0)
    } else {
        (0, 0)
    };
    // `cmd > file` from a shell that opens the file itself before it vforks (dash): the
    // program writing on its standard output is the file's writer, not the shell.
    if stdio[1].1 == S_IFREG {
        let (dev, ino) = inode_key(stdio[1].0);
        crate::files::claim_output(dev, ino, ev.task.ppid);
    }
    ev.stdio_types = types;
    ev.stdio_pipes = [
        pipe_ino(stdio[0].0, stdio[0].1),
        pipe_ino(stdio[1].0, stdio[1].1),
    ];
    fill_fd_pipes(ev);
}

/// The inode number of a pipe (or FIFO), 0 for any other file. One read, and no branch: a
/// branch here would multiply the paths the verifier walks through the rest of the program.
#[inline(always)]
fn pipe_ino(inode: u64, mode: u16) -> u64 {
    let ino = read_at::<u64>(inode, config!(offsets.inode_ino));
    // All ones for a FIFO, zero otherwise: `other` is 0 exactly for a FIFO.
    let other = u64::from(mode ^ S_IFIFO);
    let not_fifo = (other | other.wrapping_neg()) >> 63;
    ino & not_fifo.wrapping_sub(1)
}

/// Pipes inherited on file descriptors 3 to 63: process substitution hands the program a pipe
/// as `/dev/fd/63` (bash counts down from 63; zsh and ksh use 10 and up). Descriptors opened
/// close-on-exec are already closed here, so most programs have none: one read of the open-fd
/// bitmap is then the whole cost. Otherwise the two highest open ones are looked at.
#[inline(always)]
fn fill_fd_pipes(ev: &mut ExecEvent) {
    ev.fd_pipes = [FdPipe::default(); node_agent_common::FD_PIPES];
    let bitmap = Kptr::current_task()
        .ptr(config!(offsets.task_files))
        .ptr(config!(offsets.files_fdt))
        .read::<u64>(config!(offsets.fdt_open_fds));
    let open = read_at::<u64>(bitmap, 0) & !0b111;
    if open == 0 {
        return;
    }
    // Branch-free picks (the verifier then sees one unknown fd, not one state per value): the
    // highest open descriptor, then the highest below it. With nothing left the pick is 63,
    // whose empty slot reads as no file.
    let (first, rest) = highest(open);
    let (second, _) = highest(rest);
    ev.fd_pipes[0] = fd_pipe(first);
    ev.fd_pipes[1] = fd_pipe(second);
}

/// The pipe on one of the current task's descriptors; an empty slot when it is not a pipe.
#[inline(always)]
fn fd_pipe(fd: u64) -> FdPipe {
    let inode = file_inode(fd_file(fd));
    let ino = pipe_ino(inode, inode_type(inode));
    FdPipe {
        fd: fd as u32,
        _pad: 0,
        ino,
    }
}

/// The index of the highest set bit of `x` (63 for 0) and `x` without that bit, computed
/// without branches (BPF has no count-leading-zeros): smear the top bit down, count the ones.
#[inline(always)]
fn highest(x: u64) -> (u64, u64) {
    let mut s = x;
    s |= s >> 1;
    s |= s >> 2;
    s |= s >> 4;
    s |= s >> 8;
    s |= s >> 16;
    s |= s >> 32;
    let top = s ^ (s >> 1);
    let mut c = s - ((s >> 1) & 0x5555_5555_5555_5555);
    c = (c & 0x3333_3333_3333_3333) + ((c >> 2) & 0x3333_3333_3333_3333);
    c = (c + (c >> 4)) & 0x0f0f_0f0f_0f0f_0f0f;
    let ones = c.wrapping_mul(0x0101_0101_0101_0101) >> 56;
    (ones.wrapping_sub(1) & 63, x & !top)
}

/// Variables scanned for `LD_PRELOAD`/`LD_AUDIT`/`LD_LIBRARY_PATH`; more are flagged, not read.
const ENV_MAX_VARS: u32 = 64;
/// Bytes read per step: the longest prefix plus the value.
const ENV_CHUNK: usize = 16 + ENV_VALUE_LEN;

/// Loop state and buffer of the environment scan, per CPU. Kept in map memory, which the
/// verifier does not track, so every iteration starts from the same abstract state.
#[repr(C)]
struct EnvScan {
    cursor: u64,
    end: u64,
    /// The previous chunk ended without a NUL: the next one is the middle of a variable.
    mid: u32,
    _pad: u32,
    buf: [u8; ENV_CHUNK + 16],
}

#[map]
static ENV_SCAN: PerCpuArray<EnvScan> = PerCpuArray::with_max_entries(1, 0);

#[inline(always)]
unsafe fn fill_env(ev: &mut ExecEvent, mm: u64) {
    ev.ld_preload_len = 0;
    ev.ld_library_path_len = 0;
    let Some(scan) = ENV_SCAN.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: per-CPU scratch, this program's alone while it runs.
    let scan = unsafe { &mut *scan };
    scan.cursor = read_at::<u64>(mm, config!(offsets.mm_env_start));
    scan.end = read_at::<u64>(mm, config!(offsets.mm_env_end));
    scan.mid = 0;
    if scan.cursor == 0 || scan.end <= scan.cursor {
        return;
    }
    let preload = u64::from_le_bytes(*b"LD_PRELO");
    let audit = u64::from_le_bytes(*b"LD_AUDIT");
    let library = u64::from_le_bytes(*b"LD_LIBRA");
    let library_tail = u64::from_le_bytes(*b"RY_PATH=");
    let tunables = u64::from_le_bytes(*b"GLIBC_TU");
    for _ in 0..ENV_MAX_VARS {
        // SAFETY: volatile reads of map memory keep the loop state out of the verifier's view.
        let cursor = unsafe { core::ptr::read_volatile(&scan.cursor) };
        if cursor >= scan.end {
            return;
        }
        // SAFETY: reads at most ENV_CHUNK bytes into the scan buffer.
        let n = unsafe {
            bpf_probe_read_user_str(
                scan.buf.as_mut_ptr().cast(),
                ENV_CHUNK as u32,
                cursor as *const _,
            )
        };
        if n <= 0 {
            return;
        }
        let whole = (n as usize) < ENV_CHUNK;
        let starts_var = unsafe { core::ptr::read_volatile(&scan.mid) } == 0;
        if starts_var {
            let b = &scan.buf;
            let head = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
            if head == preload && b[8] == b'A' && b[9] == b'D' && b[10] == b'=' && n > 12 {
                // LD_PRELOAD keeps the buffer it shares with LD_AUDIT (as before LD_AUDIT was
                // read); an LD_AUDIT stored before it is only flagged.
                if ev.flags & exec_flags::ENV_LD_AUDIT != 0 {
                    ev.flags =
                        (ev.flags & !exec_flags::ENV_LD_AUDIT) | exec_flags::ENV_LD_AUDIT_UNREAD;
                }
                // SAFETY: a fixed-size copy inside the scan buffer's bounds into the event.
                unsafe {
                    bpf_probe_read_kernel(
                        ev.ld_preload.as_mut_ptr().cast(),
                        ENV_VALUE_LEN as u32,
                        b.as_ptr().add(11).cast(),
                    )
                };
                ev.ld_preload_len = (n as u32).saturating_sub(12);
            } else if head == audit && b[8] == b'=' && n > 10 {
                if ev.ld_preload_len != 0 {
                    // The buffer holds LD_PRELOAD's value.
                    ev.flags |= exec_flags::ENV_LD_AUDIT_UNREAD;
                } else {
                    // SAFETY: as above.
                    unsafe {
                        bpf_probe_read_kernel(
                            ev.ld_preload.as_mut_ptr().cast(),
                            ENV_VALUE_LEN as u32,
                            b.as_ptr().add(9).cast(),
                        )
                    };
                    ev.ld_preload_len = (n as u32).saturating_sub(10);
                    ev.flags |= exec_flags::ENV_LD_AUDIT;
                }
            } else if head == library
                && u64::from_le_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]])
                    == library_tail
            {
                // SAFETY: as above.
                unsafe {
                    bpf_probe_read_kernel(
                        ev.ld_library_path.as_mut_ptr().cast(),
                        ENV_VALUE_LEN as u32,
                        b.as_ptr().add(16).cast(),
                    )
                };
                ev.ld_library_path_len = (n as u32).saturating_sub(17);
            } else if head == tunables
                && b[8] == b'N'
                && b[9] == b'A'
                && b[10] == b'B'
                && b[11] == b'L'
                && b[12] == b'E'
                && b[13] == b'S'
                && b[14] == b'='
            {
                // Only that it is set: glibc's tunables, the way into CVE-2023-4911.
                ev.flags |= exec_flags::ENV_GLIBC_TUNABLES;
            }
        }
        // A cut chunk ends in the NUL the helper added, not one from the string.
        let advance = if whole { n as u64 } else { n as u64 - 1 };
        // SAFETY: as above.
        unsafe {
            core::ptr::write_volatile(&mut scan.cursor, cursor + advance);
            core::ptr::write_volatile(&mut scan.mid, if whole { 0 } else { 1 });
        }
    }
    // SAFETY: as above.
    if unsafe { core::ptr::read_volatile(&scan.cursor) } < scan.end {
        ev.flags |= exec_flags::ENV_TRUNCATED;
    }
}

/// The working directory, from `task->fs->pwd` up to the task's root.
#[inline(always)]
unsafe fn fill_cwd(ev: &mut ExecEvent, task: u64) {
    let fs = read_ptr(task, config!(offsets.task_fs));
    if fs == 0 {
        ev.cwd_len = 0;
        ev.cwd_depth = 0;
        ev.flags |= exec_flags::CWD_UNREADABLE;
        return;
    }
    let pwd = fs + config!(offsets.fs_pwd) as u64;
    match walk_path(task, pwd, &mut ev.cwd, &mut ev.cwd_len, &mut ev.cwd_depth) {
        Walk::Done => {}
        Walk::Truncated => ev.flags |= exec_flags::CWD_TRUNCATED,
        Walk::Unreadable => ev.flags |= exec_flags::CWD_UNREADABLE,
    }
}

/// The root directory the new image runs under (`fs->root`, which a chroot moves): its inode
/// and device, with typed loads from the current task (the exec'ing one). User space compares
/// them with the host's root, without a race against the process's exit.
#[inline(always)]
fn fill_root(ev: &mut ExecEvent) {
    ev._pad_root = 0;
    let (root, dentry, mnt) = (
        config!(offsets.fs_root),
        config!(offsets.path_dentry),
        config!(offsets.path_mnt),
    );
    if root == OFFSET_UNKNOWN || dentry == OFFSET_UNKNOWN || mnt == OFFSET_UNKNOWN {
        ev.root_ino = 0;
        ev.root_dev = 0;
        return;
    }
    let fs = Kptr::current_task().ptr(config!(offsets.task_fs));
    ev.root_ino = fs
        .ptr(root + dentry)
        .ptr(config!(offsets.dentry_inode))
        .read::<u64>(config!(offsets.inode_ino));
    ev.root_dev = fs
        .ptr(root + mnt)
        .ptr(config!(offsets.vfsmount_sb))
        .read::<u32>(config!(offsets.sb_dev));
}

#[inline(always)]
/// A new process. `typed`: `child` came from a `tp_btf` argument, which the verifier types, so
/// its fields are read with plain loads (a `bpf_probe_read_kernel` call each otherwise): most
/// forks on a busy host are new threads, dropped after the first two reads.
fn on_fork(child: u64, typed: bool) {
    if is_agent() {
        count(Hook::Fork, StatKind::Filtered);
        return;
    }
    let read_u32 = |offset: u32| {
        if typed {
            Kptr::from_btf_arg(child).read::<u32>(offset)
        } else {
            read_at::<u32>(child, offset)
        }
    };
    let child_pid = read_u32(config!(offsets.task_pid));
    let child_tgid = read_u32(config!(offsets.task_tgid));
    if child_tgid == 0 {
        count(Hook::Fork, StatKind::Errors);
        return;
    }
    if child_pid != child_tgid {
        // A new thread, not a new process.
        count(Hook::Fork, StatKind::Filtered);
        return;
    }
    crate::sourced::on_fork(child_tgid);
    let Some(mut entry) = reserve::<ForkEvent>() else {
        count(Hook::Fork, StatKind::Dropped);
        return;
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: reserved memory of the right size; every field is written.
    let complete = unsafe {
        let ev = &mut *ev;
        ev.header = header(kind::FORK, core::mem::size_of::<ForkEvent>());
        let complete = fill_current(&mut ev.task);
        ev.child_tgid = child_tgid;
        ev._pad = 0;
        ev.child_start_time_ns = if typed {
            Kptr::from_btf_arg(child).read::<u64>(config!(offsets.task_start_boottime))
        } else {
            read_at::<u64>(child, config!(offsets.task_start_boottime))
        };
        complete
    };
    entry.submit();
    count(Hook::Fork, StatKind::Sent);
    if !complete {
        count(Hook::Fork, StatKind::Errors);
    }
}

#[inline(always)]
fn on_exit() {
    if is_agent() {
        count(Hook::Exit, StatKind::Filtered);
        return;
    }
    crate::sourced::on_thread_exit();
    // A helper, not two reads of the task: most exits on a busy host are threads'.
    let pid_tgid = bpf_get_current_pid_tgid();
    if pid_tgid as u32 != (pid_tgid >> 32) as u32 {
        // A thread ended; the process goes on.
        count(Hook::Exit, StatKind::Filtered);
        return;
    }
    let Some(mut entry) = reserve::<ExitEvent>() else {
        count(Hook::Exit, StatKind::Dropped);
        return;
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: reserved memory of the right size; every field is written.
    unsafe {
        let ev = &mut *ev;
        ev.header = header(kind::EXIT, core::mem::size_of::<ExitEvent>());
        fill_current(&mut ev.task);
        ev.exit_code = Kptr::current_task().read::<u32>(config!(offsets.task_exit_code));
        ev._pad = 0;
    }
    entry.submit();
    count(Hook::Exit, StatKind::Sent);
}
