//! Scripts a running shell reads as code (`. x.sh`, `source x.sh`): no exec shows them, only
//! the shell's own read-only open.
//!
//! Read-only opens are the most common syscall, so the cost stays with shells: the exec
//! program marks a process whose executable's name (the name of the file the kernel runs, not
//! `comm`) is in `SHELL_NAMES`, a fork copies the mark to the child, and only a marked process's
//! read-only opens of regular files are looked at, at syscall exit: a file the written-files
//! map holds with another writer, or one on a memory-backed file system (tmpfs, ramfs), is a
//! candidate. Everything else costs one hash lookup per read-only open.
//!
//! A shell opens the same way for `. x.sh` and for `< x` (data); what follows differs:
//! - bash sources with `open`, `fstat` of the new fd, `read`, `close`; its redirections `dup2`
//!   the fd, `$(< x)` and `exec 3< x; read -u 3` read it without `fstat`. A bash candidate is
//!   kept per thread (`FSTAT_CANDIDATES`) and sent (`file_op::OPEN_SCRIPT`) only when the shell
//!   `fstat`s that fd and it still holds that file: positive evidence, so no data read raises.
//!   `newfstatat`/`fstat` run on every stat, so their programs first read one counter
//!   (`ARMED`, candidates waiting) and leave at once while it is zero.
//! - Other shells (dash, ash, zsh, ...) are sent at once; a `dup2`/`dup3` by the same thread of
//!   an fd holding the last file sent sends `file_op::REDIRECT`, and user space drops the open
//!   (dash sources with `open`, `fcntl(F_DUPFD, 10)`, `read`; its redirections `dup2`).
//! - perl is the other way round: `do FILE`, `require` and `use` open and read without an
//!   `fstat` of the fd, `open(my $f, '<', ...)`, `-n`/`-p` and the script itself `fstat` it. A
//!   perl candidate is sent at once and kept; its `fstat` sends `file_op::REDIRECT`.

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, generated::bpf_probe_read_kernel_str},
    macros::{map, tracepoint},
    maps::{Array, HashMap, LruHashMap},
    programs::TracePointContext,
};
use node_agent_common::{
    FileEvent, FileKey, file_flags, file_op, kind,
    stats::{Hook, StatKind},
};

use crate::kernel::{
    config, count, current_tgid, fd_file, file_inode, fill_current, header, inode_key, is_agent,
    read_at, read_ptr, reserve, syscall_arg,
};

/// Bytes of an executable's file name compared (NUL-padded; longer names cannot be
/// configured).
pub const SHELL_NAME_LEN: usize = 16;

/// `TMPFS_MAGIC` (shared memory, `/dev/shm`, `/run`, a tmpfs `/tmp`).
const TMPFS_MAGIC: u64 = 0x0102_1994;
/// `RAMFS_MAGIC`.
const RAMFS_MAGIC: u64 = 0x8584_58f6;

/// Executable file names of shells, from user space; the value says how the shell sources
/// (`node_agent_common::shell_kind`).
#[map]
static SHELL_NAMES: HashMap<[u8; SHELL_NAME_LEN], u32> = HashMap::with_max_entries(64, 0);

/// Processes (tgid) running a shell, with its `shell_kind`. An evicted entry only means that
/// process's sourcing goes unseen.
#[map]
static SHELL_TASKS: LruHashMap<u32, u32> = LruHashMap::with_max_entries(16_384, 0);

/// A candidate of a program whose `fstat` of the new fd decides (bash: sourced; perl: data).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Candidate {
    /// The file.
    pub file: FileKey,
    /// The fd the open returned.
    pub fd: i64,
    /// `file_flags::WRITTEN_BY_OTHER`, `MEMORY_FS`.
    pub flags: u32,
    pub _pad: u32,
    /// The path the process passed, for the record.
    pub path: u64,
    /// The directory fd it was relative to.
    pub dirfd: i64,
    /// The program's `shell_kind`.
    pub kind: u32,
    pub _pad2: u32,
}

/// Per thread (pid_tgid): bash's or perl's last candidate.
#[map]
static FSTAT_CANDIDATES: LruHashMap<u64, Candidate> = LruHashMap::with_max_entries(4_096, 0);

/// Slot 0: entries added to `FSTAT_CANDIDATES` less those taken out (not those the LRU evicted:
/// then it stays above zero, which only costs the stat programs a lookup).
#[map]
static ARMED: Array<u64> = Array::with_max_entries(1, 0);

/// Per thread (pid_tgid): the file the last `OPEN_SCRIPT` returned. By identity, not fd: the
/// shell closes the fd after sourcing and the next open (`> /dev/null`) gets its number.
#[map]
static SCRIPT_FILES: LruHashMap<u64, FileKey> = LruHashMap::with_max_entries(4_096, 0);

/// At exec (the current task, its new image's `file`): marks the process when its executable
/// is a shell, clears the mark otherwise.
#[inline(always)]
pub fn on_exec(exe_file: u64) {
    let dentry = read_ptr(
        exe_file + config!(offsets.file_path) as u64,
        config!(offsets.path_dentry),
    );
    let name = read_ptr(dentry, config!(offsets.dentry_name));
    let mut key = [0u8; SHELL_NAME_LEN];
    if name != 0 {
        // SAFETY: at most SHELL_NAME_LEN bytes into a local of that size.
        unsafe {
            bpf_probe_read_kernel_str(
                key.as_mut_ptr().cast(),
                SHELL_NAME_LEN as u32,
                name as *const _,
            )
        };
    }
    let tgid = current_tgid();
    // SAFETY: copied out at once.
    match unsafe { SHELL_NAMES.get(&key) }.copied() {
        Some(kind) => {
            let _ = SHELL_TASKS.insert(&tgid, &kind, 0);
        }
        None => {
            let _ = SHELL_TASKS.remove(&tgid);
        }
    }
}

/// At fork: the child runs its parent's image until it execs.
#[inline(always)]
pub fn on_fork(child_tgid: u32) {
    match shell_kind() {
        0 => {
            let _ = SHELL_TASKS.remove(&child_tgid);
        }
        kind => {
            let _ = SHELL_TASKS.insert(&child_tgid, &kind, 0);
        }
    }
}

/// The current process's `shell_kind`, 0 when it runs no shell: the only test every read-only
/// open pays.
#[inline(always)]
pub fn shell_kind() -> u32 {
    // SAFETY: copied out at once.
    unsafe { SHELL_TASKS.get(&current_tgid()) }
        .copied()
        .unwrap_or(0)
}

/// Keeps bash's or perl's candidate until its `fstat` ([`take_fstat_candidate`]).
#[inline(always)]
pub fn keep_fstat_candidate(c: &Candidate) {
    let key = bpf_get_current_pid_tgid();
    // SAFETY: only tested for presence.
    let new = unsafe { FSTAT_CANDIDATES.get(&key) }.is_none();
    if FSTAT_CANDIDATES.insert(&key, c, 0).is_ok() && new {
        armed_add(1);
    }
}

/// At an `fstat(fd)`: the thread's candidate when `fd` is the candidate's fd and still holds its
/// file (bash sources it; perl reads it as data). The candidate is taken out of the map either
/// way.
#[inline(always)]
pub fn take_fstat_candidate(fd: u64) -> Option<Candidate> {
    // SAFETY: a plain read of map memory.
    if ARMED.get(0).copied().unwrap_or(0) == 0 {
        return None;
    }
    let key = bpf_get_current_pid_tgid();
    // SAFETY: copied out at once.
    let c = (unsafe { FSTAT_CANDIDATES.get(&key) }).copied()?;
    // Sourcing `fstat`s the new fd first thing: any other fd-`fstat` of this thread first
    // (`bash x.sh` moves its script to fd 255 and `fstat`s that) means it was not sourced.
    if FSTAT_CANDIDATES.remove(&key).is_ok() {
        armed_add(u64::MAX);
    }
    if c.fd as u64 != fd {
        return None;
    }
    let inode = file_inode(fd_file(fd));
    if inode == 0 {
        return None;
    }
    let (dev, ino) = inode_key(inode);
    (dev == c.file.dev && ino == c.file.ino).then_some(c)
}

/// A thread that exits leaves no candidate behind.
#[inline(always)]
pub fn on_thread_exit() {
    // SAFETY: a plain read of map memory.
    if ARMED.get(0).copied().unwrap_or(0) != 0
        && FSTAT_CANDIDATES.remove(&bpf_get_current_pid_tgid()).is_ok()
    {
        armed_add(u64::MAX);
    }
}

/// Adds to `ARMED` atomically (`u64::MAX` takes one away).
#[inline(always)]
fn armed_add(v: u64) {
    if let Some(slot) = ARMED.get_ptr_mut(0) {
        // SAFETY: a valid map value; the result is unused, so this is a plain atomic add.
        unsafe {
            core::intrinsics::atomic_xadd::<u64, u64, { core::intrinsics::AtomicOrdering::Relaxed }>(
                slot, v,
            )
        };
    }
}

/// Why a regular file a shell opened read-only is worth sending (`file_flags::WRITTEN_BY_OTHER`,
/// `MEMORY_FS`), 0 when it is not. `writer`: the tgid the written-files map holds for it.
#[inline(always)]
pub fn script_flags(inode: u64, writer: Option<u32>) -> u32 {
    let mut flags = 0;
    if writer.is_some_and(|w| w != current_tgid()) {
        flags |= file_flags::WRITTEN_BY_OTHER;
    }
    let sb = read_ptr(inode, config!(offsets.inode_sb));
    let magic = read_at::<u64>(sb, config!(offsets.sb_magic));
    if magic == TMPFS_MAGIC || magic == RAMFS_MAGIC {
        flags |= file_flags::MEMORY_FS;
    }
    flags
}

/// After an `OPEN_SCRIPT` was sent: its file, for [`on_dup`].
#[inline(always)]
pub fn sent(dev: u32, ino: u64) {
    let _ = SCRIPT_FILES.insert(
        &bpf_get_current_pid_tgid(),
        &FileKey { dev, _pad: 0, ino },
        0,
    );
}

/// `dup2(oldfd, newfd)`/`dup3`: the file last sent redirected, data rather than code.
#[inline(always)]
fn on_dup(oldfd: u64, newfd: u64) {
    let key = bpf_get_current_pid_tgid();
    // SAFETY: copied out at once.
    let Some(sent) = (unsafe { SCRIPT_FILES.get(&key) }).copied() else {
        return;
    };
    let inode = file_inode(fd_file(oldfd));
    if inode == 0 {
        return;
    }
    let (dev, ino) = inode_key(inode);
    if dev != sent.dev || ino != sent.ino {
        return;
    }
    let _ = SCRIPT_FILES.remove(&key);
    emit_redirect(oldfd, newfd, dev, ino);
}

/// Sends `file_op::REDIRECT`: the file (`dev`, `ino`) the thread's last candidate returned, on
/// `fd`, is data (a `dup2` onto `newfd`; for perl, an `fstat` of it: `newfd` is `fd`).
#[inline(always)]
pub fn emit_redirect(fd: u64, newfd: u64, dev: u32, ino: u64) {
    if is_agent() {
        return;
    }
    let Some(mut entry) = reserve::<FileEvent>() else {
        count(Hook::FileOpen, StatKind::Dropped);
        return;
    };
    // SAFETY: reserved memory of the right size; every field user space reads is written (the
    // paths are empty: their lengths are 0).
    unsafe {
        let ev = &mut *entry.as_mut_ptr();
        ev.header = header(kind::FILE, core::mem::size_of::<FileEvent>());
        fill_current(&mut ev.task);
        ev.op = file_op::REDIRECT;
        ev._pad = 0;
        ev.match_flags = 0;
        ev.ret = fd as i64;
        ev.dirfd = newfd as i32;
        ev.dirfd2 = 0;
        ev.open_flags = 0;
        ev.mode = 0;
        ev.uid = u32::MAX;
        ev.gid = u32::MAX;
        ev.ino = ino;
        ev.dev = dev;
        ev.target_tgid = 0;
        ev.path_len = 0;
        ev.path2_len = 0;
        ev.base_len = 0;
        ev.base_depth = 0;
    }
    entry.submit();
    count(Hook::FileOpen, StatKind::Sent);
}

#[tracepoint(category = "syscalls", name = "sys_enter_dup2")]
pub fn dup2_redirect(ctx: TracePointContext) -> u32 {
    on_dup(syscall_arg(&ctx, 0), syscall_arg(&ctx, 1));
    0
}

#[tracepoint(category = "syscalls", name = "sys_enter_dup3")]
pub fn dup3_redirect(ctx: TracePointContext) -> u32 {
    on_dup(syscall_arg(&ctx, 0), syscall_arg(&ctx, 1));
    0
}
