//! Process sensors: exec, fork and exit, from the scheduler tracepoints.
//!
//! Each has a `tp_btf` entry (preferred) and a `raw_tp` entry (kernels without BTF-typed
//! tracepoints); both hand the same u64 argument array to one body.

use aya_ebpf::{
    helpers::generated::{
        bpf_probe_read_kernel, bpf_probe_read_kernel_str, bpf_probe_read_user,
        bpf_probe_read_user_str,
    },
    macros::{btf_tracepoint, map, raw_tracepoint},
    maps::PerCpuArray,
    programs::{BtfTracePointContext, RawTracePointContext},
};
use node_agent_common::{
    ARGV_HEAD_LEN, ARGV_LEN, ARGV_TAIL_LEN, ENV_VALUE_LEN, ExecEvent, ExitEvent, FILENAME_LEN,
    ForkEvent, WriterInfo, exec_flags, kind,
    stats::{Hook, StatKind},
};

use crate::{
    files::{FileKey, WRITTEN},
    kernel::{
        EVENTS, S_IFSOCK, Walk, config, count, fd_file, fill_current, header, inode_type, is_agent,
        read_at, read_ptr, socket_peer, submit_flags, walk_path,
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
    on_fork(ctx.arg::<u64>(1));
    0
}

#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn fork_raw(ctx: RawTracePointContext) -> i32 {
    on_fork(ctx.arg::<u64>(1));
    0
}

#[btf_tracepoint(function = "sched_process_exit")]
pub fn exit_btf(ctx: BtfTracePointContext) -> i32 {
    on_exit(ctx.arg::<u64>(0));
    0
}

#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn exit_raw(ctx: RawTracePointContext) -> i32 {
    on_exit(ctx.arg::<u64>(0));
    0
}

#[inline(always)]
fn on_exec(task: u64, bprm: u64) {
    if is_agent() {
        count(Hook::Exec, StatKind::Filtered);
        return;
    }
    let Some(mut entry) = EVENTS.reserve::<ExecEvent>(0) else {
        count(Hook::Exec, StatKind::Dropped);
        return;
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: `ev` points at reserved ring-buffer memory of size_of::<ExecEvent>(); every field
    // is written below before submit (arrays only up to their *_len, which user space honours).
    let complete = unsafe { fill_exec(&mut *ev, task, bprm) };
    entry.submit(submit_flags());
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
    fill_exe_origin(ev, exe_file, inode);
    fill_stdio(ev);
    // SAFETY: forwards the same event.
    unsafe { fill_env(ev, mm) };
    if ev.task.euid != ev.task.uid {
        ev.flags |= exec_flags::EUID_CHANGED;
    }
    complete
}

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
    let key = FileKey {
        dev: ev.exe_dev,
        _pad: 0,
        ino: ev.exe_ino,
    };
    // SAFETY: copied out at once.
    match unsafe { WRITTEN.get(key) } {
        Some(writer) => {
            ev.writer = *writer;
            ev.flags |= exec_flags::EXE_WRITTEN;
        }
        None => ev.writer = WriterInfo::default(),
    }
}

/// What the standard streams are (a terminal, a pipe, a file, a socket) and, for sockets, their
/// peers: the reverse-shell signal, and whether a shell reads commands from a pipe or a person.
#[inline(always)]
fn fill_stdio(ev: &mut ExecEvent) {
    let mut types = 0u32;
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
        types |= u32::from(mode >> 12) << (8 * fd);
    }
    ev.stdio_types = types;
}

/// Variables scanned for `LD_PRELOAD`/`LD_LIBRARY_PATH`; more are flagged, not read.
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
    let library = u64::from_le_bytes(*b"LD_LIBRA");
    let library_tail = u64::from_le_bytes(*b"RY_PATH=");
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
            if head == preload && b[8] == b'A' && b[9] == b'D' && b[10] == b'=' {
                // SAFETY: a fixed-size copy inside the scan buffer's bounds into the event.
                unsafe {
                    bpf_probe_read_kernel(
                        ev.ld_preload.as_mut_ptr().cast(),
                        ENV_VALUE_LEN as u32,
                        b.as_ptr().add(11).cast(),
                    )
                };
                ev.ld_preload_len = (n as u32).saturating_sub(12);
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

#[inline(always)]
fn on_fork(child: u64) {
    if is_agent() {
        count(Hook::Fork, StatKind::Filtered);
        return;
    }
    let child_pid = read_at::<u32>(child, config!(offsets.task_pid));
    let child_tgid = read_at::<u32>(child, config!(offsets.task_tgid));
    if child_tgid == 0 {
        count(Hook::Fork, StatKind::Errors);
        return;
    }
    if child_pid != child_tgid {
        // A new thread, not a new process.
        count(Hook::Fork, StatKind::Filtered);
        return;
    }
    let Some(mut entry) = EVENTS.reserve::<ForkEvent>(0) else {
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
        ev.child_start_time_ns = read_at::<u64>(child, config!(offsets.task_start_boottime));
        complete
    };
    entry.submit(submit_flags());
    count(Hook::Fork, StatKind::Sent);
    if !complete {
        count(Hook::Fork, StatKind::Errors);
    }
}

#[inline(always)]
fn on_exit(task: u64) {
    if is_agent() {
        count(Hook::Exit, StatKind::Filtered);
        return;
    }
    let pid = read_at::<u32>(task, config!(offsets.task_pid));
    let tgid = read_at::<u32>(task, config!(offsets.task_tgid));
    if pid != tgid {
        // A thread ended; the process goes on.
        count(Hook::Exit, StatKind::Filtered);
        return;
    }
    let Some(mut entry) = EVENTS.reserve::<ExitEvent>(0) else {
        count(Hook::Exit, StatKind::Dropped);
        return;
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: reserved memory of the right size; every field is written.
    unsafe {
        let ev = &mut *ev;
        ev.header = header(kind::EXIT, core::mem::size_of::<ExitEvent>());
        fill_current(&mut ev.task);
        ev.exit_code = read_at::<u32>(task, config!(offsets.task_exit_code));
        ev._pad = 0;
    }
    entry.submit(submit_flags());
    count(Hook::Exit, StatKind::Sent);
}
