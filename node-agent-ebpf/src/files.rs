//! File sensor: writes, creates and truncations of any regular file are remembered (for
//! written-then-executed); operations on sensitive paths are reported.
//!
//! The sensitive set comes from user space: absolute prefixes and exact paths in an LPM trie
//! (an exact path carries its NUL), and file names (`authorized_keys`, `.bashrc`, ...) in a
//! hash set. Read-only opens cost one short read of the path and nothing more unless it may
//! lead to a process's memory file (another process's memory being dumped): then the file the
//! open returned is looked at (procfs, named `mem`, whose) at its exit; and one lookup (is the
//! process a shell, whose reads may be scripts it sources: `crate::sourced`). That keeps a
//! storm of ordinary opens nearly free.
//!
//! Paths are matched as the kernel holds them, not as the process wrote them: a successful
//! write-open is matched on the path of the file it returned, walked from its dentry across
//! mount points at syscall exit (`kernel::resolve_path`), so `.`, `..`, `//`, a relative path,
//! a directory fd, a symbolic link and `/proc/self/root` all end at the same name. The other
//! operations (rename, link, symlink, unlink, chmod, chown) may name something that does not
//! exist yet: a relative path is joined to the directory the kernel holds for the directory fd
//! or the working directory; a path with `.`, `..` or `//` components, one through `/proc`, or
//! one longer than the read bound is sent to user space (flag `UNRESOLVED`), which normalises
//! it and matches again.

use aya_ebpf::{
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_uid_gid,
        generated::bpf_probe_read_kernel,
    },
    macros::{map, tracepoint},
    maps::{
        HashMap, LruHashMap, PerCpuArray,
        lpm_trie::{Key, LpmTrie},
    },
    programs::TracePointContext,
};
use node_agent_common::{
    FileEvent, PATH_LEN, WriterInfo, file_flags, file_op, kind, shell_kind,
    stats::{Hook, StatKind},
};

use crate::kernel::{
    RESOLVED_END, Resolved, S_IFIFO, S_IFREG, Walk, config, count, current_task, fd_file,
    file_inode, fill_current, header, inode_key, inode_type, is_agent, read_at, read_ptr,
    read_user_str, reserve, resolve_path, syscall_arg, syscall_ret, walk_path,
};

/// Bytes of a path compared against prefixes (longer prefixes cannot be configured).
pub const PREFIX_KEY_LEN: usize = 128;
/// Bytes of a file name key, NUL included (longer names cannot be configured).
pub const NAME_KEY_LEN: usize = 32;

const AT_FDCWD: i32 = -100;
const O_ACCMODE: u32 = 0o3;
const O_CREAT: u32 = 0o100;
const O_TRUNC: u32 = 0o1000;
/// x86-64's (arm64's is 0o40000: there the test below skips `O_DIRECT` opens instead, which
/// `/proc/<pid>/mem` refuses anyway).
const O_DIRECTORY: u32 = 0o200000;
const O_PATH: u32 = 0o10000000;
const WRITE_INTENT: u32 = O_CREAT | O_TRUNC;
const EXEC_OR_ID_BITS: u32 = 0o6111;
/// `S_ISUID | S_ISGID`: a mode with one of them is reported wherever the file is.
const SET_ID_BITS: u32 = 0o6000;
/// `S_IROTH | S_IWOTH`: a sensitive file given to every account (`chmod 0644 /etc/shadow`).
/// User space keeps these chmods for the password hashes alone (`pipeline.rs`); elsewhere in
/// the set only execute and set-id bits are news.
const OTHERS_READ_OR_WRITE: u32 = 0o006;

/// Identity of a file: super block device and inode number (shared with user space, which
/// reads `WRITTEN` for a script's writer).
pub use node_agent_common::FileKey;

/// Sensitive absolute prefixes and exact paths (value: unused, 1).
#[map]
static SENSITIVE_PREFIXES: LpmTrie<[u8; PREFIX_KEY_LEN], u32> = LpmTrie::with_max_entries(1024, 0);

/// Sensitive file names, NUL-padded to `NAME_KEY_LEN`.
#[map]
static SENSITIVE_NAMES: HashMap<[u8; NAME_KEY_LEN], u32> = HashMap::with_max_entries(1024, 0);

/// Regular files opened for writing since the agent started, with who did it.
#[map]
pub static WRITTEN: LruHashMap<FileKey, WriterInfo> =
    LruHashMap::with_max_entries(node_agent_common::WRITTEN_FILES_MAX, 0);

/// Files added to `WRITTEN` (per CPU; user space sums): past the map's size, the LRU has
/// evicted older entries. Slot 0 only.
#[map]
pub static WRITTEN_ADDED: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

#[repr(C)]
#[derive(Clone, Copy)]
struct Pending {
    path: u64,
    path2: u64,
    op: u16,
    _pad: u16,
    match_flags: u32,
    dirfd: i32,
    dirfd2: i32,
    open_flags: u32,
    mode: u32,
    uid: u32,
    gid: u32,
    /// The process whose memory file an open returned ([`proc_memory_of`]), 0 otherwise.
    target_tgid: u32,
    _pad2: u32,
}

#[map]
/// The common LRU list, not one per CPU: see `node_agent_common::maps`.
static PENDING_FILE: LruHashMap<u64, Pending> =
    LruHashMap::with_max_entries(node_agent_common::maps::LRU_ENTRIES, 0);

/// Per-CPU room for path matching (too big for the stack).
#[repr(C)]
struct Scratch {
    key: Key<[u8; PREFIX_KEY_LEN]>,
    /// The path, then zeros: a name is read as the NAME_KEY_LEN bytes after the last '/'.
    path: [u8; PATH_LEN + NAME_KEY_LEN],
    name: [u8; NAME_KEY_LEN],
    /// Bytes of `path` read, its NUL included (0 when unreadable).
    len: u32,
    /// See [`opaque`].
    opaque: u32,
    /// See [`opaque64`].
    opaque64: u64,
    /// A kernel object's path, root first.
    resolved: Resolved,
    /// A directory's path joined with a relative path.
    joined: [u8; 2 * PATH_LEN],
}

#[map]
static FILE_SCRATCH: PerCpuArray<Scratch> = PerCpuArray::with_max_entries(1, 0);

/// Zeros to clear the scratch path with one copy.
static ZEROS: [u8; PATH_LEN + NAME_KEY_LEN] = [0; PATH_LEN + NAME_KEY_LEN];

/// `PATH_LEN - 1` through a volatile read, so LLVM keeps the mask the verifier needs.
#[unsafe(no_mangle)]
static PATH_INDEX_MASK: u32 = (PATH_LEN - 1) as u32;

#[inline(always)]
fn arg(ctx: &TracePointContext, n: usize) -> u64 {
    syscall_arg(ctx, n)
}

#[inline(always)]
fn exit_ret(ctx: &TracePointContext) -> i64 {
    syscall_ret(ctx)
}

#[inline(always)]
fn scratch() -> Option<&'static mut Scratch> {
    let s = FILE_SCRATCH.get_ptr_mut(0)?;
    // SAFETY: per-CPU scratch, this program's alone while it runs.
    Some(unsafe { &mut *s })
}

/// `v` passed through map memory, so the verifier sees a value it knows nothing about instead
/// of each constant it could be: what follows (the next match, the record) is verified once
/// rather than once per combination of match flags or per `./` prefix length.
#[inline(always)]
fn opaque(s: &mut Scratch, v: u32) -> u32 {
    // SAFETY: volatile access to map memory.
    unsafe {
        core::ptr::write_volatile(&mut s.opaque, v);
        core::ptr::read_volatile(&s.opaque)
    }
}

/// What makes a path string sensitive: `file_flags::MATCH_*` and `PROC_MEM`, 0 for an ordinary
/// path.
#[inline(always)]
fn classify(path: u64) -> u32 {
    let Some(s) = scratch() else {
        return 0;
    };
    load_user(s, path);
    classify_loaded(s, true)
}

/// Reads a user path string into the scratch (`s.len`: bytes read, NUL included).
#[inline(always)]
fn load_user(s: &mut Scratch, path: u64) {
    // SAFETY: copies ZEROS (same size) over the scratch path.
    unsafe {
        bpf_probe_read_kernel(
            s.path.as_mut_ptr().cast(),
            s.path.len() as u32,
            ZEROS.as_ptr().cast(),
        )
    };
    // SAFETY: reads at most PATH_LEN bytes into the scratch path.
    let n = unsafe {
        aya_ebpf::helpers::generated::bpf_probe_read_user_str(
            s.path.as_mut_ptr().cast(),
            PATH_LEN as u32,
            path as *const _,
        )
    };
    s.len = if n > 0 { n as u32 } else { 0 };
}

/// [`opaque`] for a 64-bit value.
#[inline(always)]
fn opaque64(s: &mut Scratch, v: u64) -> u64 {
    // SAFETY: volatile access to map memory.
    unsafe {
        core::ptr::write_volatile(&mut s.opaque64, v);
        core::ptr::read_volatile(&s.opaque64)
    }
}

/// Classifies the path in the scratch: by prefix (when `prefixes` and it is absolute) and by
/// its last component's name.
#[inline(always)]
fn classify_loaded(s: &mut Scratch, prefixes: bool) -> u32 {
    let n = s.len; // bytes including the NUL
    if n <= 1 || n > PATH_LEN as u32 {
        return 0;
    }
    let mut flags = 0;
    if prefixes && s.path[0] == b'/' {
        let key_len = if n > PREFIX_KEY_LEN as u32 {
            PREFIX_KEY_LEN as u32
        } else {
            n
        };
        // SAFETY: fixed-size copy between two parts of the scratch.
        unsafe {
            bpf_probe_read_kernel(
                s.key.data.as_mut_ptr().cast(),
                PREFIX_KEY_LEN as u32,
                s.path.as_ptr().cast(),
            )
        };
        s.key.prefix_len = key_len * 8;
        if SENSITIVE_PREFIXES.get(&s.key).is_some() {
            flags |= file_flags::MATCH_PREFIX;
        }
        let head = u64::from_le_bytes([
            s.path[0], s.path[1], s.path[2], s.path[3], s.path[4], s.path[5], 0, 0,
        ]);
        if head == u64::from_le_bytes(*b"/proc/\0\0") && n >= 11 {
            // SAFETY: a plain static.
            let mask = unsafe { core::ptr::read_volatile(&PATH_INDEX_MASK) };
            let at = ((n - 5) & mask) as usize;
            // SAFETY: reads 4 bytes inside the scratch path (at <= PATH_LEN - 1, buffer has
            // NAME_KEY_LEN spare bytes).
            let tail: [u8; 4] = unsafe {
                aya_ebpf::helpers::bpf_probe_read_kernel(s.path.as_ptr().add(at).cast::<[u8; 4]>())
            }
            .unwrap_or([0; 4]);
            if u32::from_le_bytes(tail) == u32::from_le_bytes(*b"/mem") {
                flags |= file_flags::PROC_MEM;
            }
        }
    }
    // The last component: scan back at most NAME_KEY_LEN bytes from the NUL for a '/'.
    let end = n - 1;
    let mut start = 0u32;
    let mut found = end < NAME_KEY_LEN as u32;
    for i in 1..=NAME_KEY_LEN as u32 {
        if i > end {
            break;
        }
        // SAFETY: a plain static.
        let mask = unsafe { core::ptr::read_volatile(&PATH_INDEX_MASK) };
        let at = ((end - i) & mask) as usize;
        if s.path[at] == b'/' {
            start = end - i + 1;
            found = true;
            break;
        }
    }
    if found && end > start {
        // SAFETY: a plain static.
        let mask = unsafe { core::ptr::read_volatile(&PATH_INDEX_MASK) };
        let at = (start & mask) as usize;
        // SAFETY: at <= PATH_LEN - 1 and the buffer has NAME_KEY_LEN bytes past PATH_LEN.
        unsafe {
            bpf_probe_read_kernel(
                s.name.as_mut_ptr().cast(),
                NAME_KEY_LEN as u32,
                s.path.as_ptr().add(at).cast(),
            )
        };
        if SENSITIVE_NAMES.get_ptr(&s.name).is_some() {
            flags |= file_flags::MATCH_NAME;
        }
    }
    opaque(s, flags)
}

/// Whether the path [`classify`] last read names a systemd journal file (`*.journal`,
/// `*.journal~`), wherever it is: `journalctl --vacuum-*` removes them by name relative to a
/// directory fd, which the prefixes cannot see. Asked for removals and renames only.
#[inline(always)]
fn journal_name() -> bool {
    let Some(s) = FILE_SCRATCH.get_ptr(0) else {
        return false;
    };
    // SAFETY: per-CPU scratch, this program's alone while it runs.
    let s = unsafe { &*s };
    // `x.journal` and its NUL is the shortest.
    if s.len < 10 || s.len > PATH_LEN as u32 {
        return false;
    }
    // SAFETY: a plain static.
    let mask = unsafe { core::ptr::read_volatile(&PATH_INDEX_MASK) };
    let at = ((s.len - 10) & mask) as usize;
    // SAFETY: 9 bytes at at <= PATH_LEN - 1 of a buffer with NAME_KEY_LEN spare bytes.
    let tail: [u8; 9] = unsafe {
        aya_ebpf::helpers::bpf_probe_read_kernel(s.path.as_ptr().add(at).cast::<[u8; 9]>())
    }
    .unwrap_or([0; 9]);
    let word = |b: &[u8]| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    let journal = u64::from_le_bytes(*b".journal");
    word(&tail[1..]) == journal || (word(&tail[..8]) == journal && tail[8] == b'~')
}

/// Classifies the path of an open file, walked from its dentry (`file`: a `struct file *`);
/// `None` when it could not be walked. A path too long or too deep to walk whole is matched by
/// its name, and by the string the process passed (`path`), as before paths were walked. The
/// flag says whether the whole path is in `Scratch::resolved`, for the record.
#[inline(always)]
fn classify_file(file: u64, path: u64) -> Option<(u32, bool)> {
    let s = scratch()?;
    let whole = match resolve_path(
        current_task(),
        file + config!(offsets.file_path) as u64,
        &mut s.resolved,
    ) {
        Walk::Done => true,
        Walk::Truncated => {
            count(Hook::FileOpen, StatKind::Unresolved);
            false
        }
        Walk::Unreadable => {
            count(Hook::FileOpen, StatKind::Unresolved);
            return None;
        }
    };
    // SAFETY: a plain static.
    let mask = unsafe { core::ptr::read_volatile(&PATH_INDEX_MASK) };
    // SAFETY: map memory written by resolve_path.
    let start = unsafe { core::ptr::read_volatile(&s.resolved.start) } & mask;
    // SAFETY: PATH_LEN bytes from `start` < PATH_LEN of a 2 * PATH_LEN buffer into the scratch
    // path: the path, its NUL and zeros (resolve_path never writes past its end).
    unsafe {
        bpf_probe_read_kernel(
            s.path.as_mut_ptr().cast(),
            PATH_LEN as u32,
            s.resolved.buf.as_ptr().add(start as usize).cast(),
        )
    };
    s.len = RESOLVED_END - start + 1;
    let flags = classify_loaded(s, whole);
    if whole {
        Some((flags, true))
    } else {
        let flags = flags | classify(path);
        Some((opaque(s, flags), false))
    }
}

/// Whether the path in the scratch, from byte `from` (past the leading `./` pairs the join
/// skips), has a `.` or `..` component or an empty one (`//`): the kernel leaves those to user
/// space, which normalises them. `from` is never compared inside the loop: a comparison there
/// would split the verifier's knowledge of it at every byte.
#[inline(always)]
fn not_canonical(s: &Scratch, from: u32) -> bool {
    let from = (from & 31) as usize;
    let (c0, c1, c2) = (s.path[from], s.path[from + 1], s.path[from + 2]);
    if c0 == b'.' && (c1 == 0 || c1 == b'/' || (c1 == b'.' && (c2 == b'/' || c2 == 0))) {
        return true;
    }
    // `.//x`: the empty component right after the skipped prefix.
    if from > 0 && c0 == b'/' {
        return true;
    }
    // i + from + 3 < PATH_LEN + NAME_KEY_LEN.
    for i in 0..PATH_LEN - 4 {
        let at = i + from;
        let c = s.path[at];
        if c == 0 {
            break;
        }
        if c != b'/' {
            continue;
        }
        let c1 = s.path[at + 1];
        if c1 == b'/' {
            return true;
        }
        if c1 == b'.' {
            let c2 = s.path[at + 2];
            if c2 == b'/' || c2 == 0 {
                return true;
            }
            if c2 == b'.' {
                let c3 = s.path[at + 3];
                if c3 == b'/' || c3 == 0 {
                    return true;
                }
            }
        }
    }
    false
}

/// Leading `./` pairs skipped before a relative path is joined to its directory.
const DOT_SLASH_SKIP: usize = 8;

/// Classifies the path of a rename, link, symlink, unlink, chmod or chown, which may not exist
/// yet: the string as given (prefix when absolute, name always) and, for a relative one, the
/// directory the kernel holds (`dirfd`, or the working directory) joined with it. A path the
/// kernel cannot match as written (`.`, `..`, `//`, through `/proc`, cut at the read bound, or
/// its directory not walked whole) is flagged `UNRESOLVED` for user space.
#[inline(always)]
fn classify_change(path: u64, dirfd: i32) -> u32 {
    let Some(s) = scratch() else {
        return 0;
    };
    load_user(s, path);
    let mut flags = classify_loaded(s, true);
    let n = s.len;
    if n <= 1 {
        return flags;
    }
    if n >= PATH_LEN as u32 {
        return flags | file_flags::UNRESOLVED;
    }
    let mut skip = 0;
    for _ in 0..DOT_SLASH_SKIP {
        if s.path[skip] == b'.' && s.path[skip + 1] == b'/' {
            skip += 2;
        } else {
            break;
        }
    }
    let head = u64::from_le_bytes([
        s.path[0], s.path[1], s.path[2], s.path[3], s.path[4], s.path[5], 0, 0,
    ]);
    let skip = opaque(s, skip as u32) & 31;
    if not_canonical(s, skip) || head == u64::from_le_bytes(*b"/proc/\0\0") {
        flags |= file_flags::UNRESOLVED;
    }
    let flags = opaque(s, flags);
    if s.path[0] != b'/' {
        let joined = classify_joined(s, dirfd, skip);
        return opaque(s, flags | joined);
    }
    flags
}

/// The prefix match of a relative path (in the scratch, `skip` bytes of `./` left out) joined
/// to its directory: `MATCH_PREFIX`, `UNRESOLVED` when the directory could not be walked whole.
#[inline(always)]
fn classify_joined(s: &mut Scratch, dirfd: i32, skip: u32) -> u32 {
    let task = current_task();
    let start = if dirfd == AT_FDCWD {
        let fs = read_ptr(task, config!(offsets.task_fs));
        if fs == 0 {
            return file_flags::UNRESOLVED;
        }
        fs + config!(offsets.fs_pwd) as u64
    } else {
        let file = fd_file(dirfd as u64);
        if file == 0 {
            return file_flags::UNRESOLVED;
        }
        file + config!(offsets.file_path) as u64
    };
    if !matches!(resolve_path(task, start, &mut s.resolved), Walk::Done) {
        count(Hook::FileChange, StatKind::Unresolved);
        return file_flags::UNRESOLVED;
    }
    // SAFETY: a plain static.
    let mask = unsafe { core::ptr::read_volatile(&PATH_INDEX_MASK) };
    // SAFETY: map memory written by resolve_path.
    let dir_start = unsafe { core::ptr::read_volatile(&s.resolved.start) } & mask;
    let dir_len = RESOLVED_END - dir_start;
    let joined = s.joined.as_mut_ptr();
    // SAFETY: PATH_LEN bytes from `dir_start` < PATH_LEN of a 2 * PATH_LEN buffer (the
    // directory, its NUL, zeros) into the first half of `joined`.
    unsafe {
        bpf_probe_read_kernel(
            joined.cast(),
            PATH_LEN as u32,
            s.resolved.buf.as_ptr().add(dir_start as usize).cast(),
        )
    };
    let at = if dir_len == 1 {
        1
    } else {
        // SAFETY: dir_len < PATH_LEN, inside `joined`.
        unsafe { *joined.add((dir_len & mask) as usize) = b'/' };
        dir_len + 1
    };
    // SAFETY: PATH_LEN bytes to `at & mask` < PATH_LEN of the 2 * PATH_LEN-byte `joined`, from
    // `skip & 31` < NAME_KEY_LEN of the PATH_LEN + NAME_KEY_LEN-byte scratch path.
    unsafe {
        bpf_probe_read_kernel(
            joined.add((at & mask) as usize).cast(),
            PATH_LEN as u32,
            s.path.as_ptr().add((skip & 31) as usize).cast(),
        )
    };
    let total = at + s.len - skip;
    let key_len = if total > PREFIX_KEY_LEN as u32 {
        PREFIX_KEY_LEN as u32
    } else {
        total
    };
    // SAFETY: fixed-size copy between two parts of the scratch.
    unsafe {
        bpf_probe_read_kernel(
            s.key.data.as_mut_ptr().cast(),
            PREFIX_KEY_LEN as u32,
            joined.cast(),
        )
    };
    s.key.prefix_len = key_len * 8;
    if SENSITIVE_PREFIXES.get(&s.key).is_some() {
        file_flags::MATCH_PREFIX
    } else {
        0
    }
}

#[inline(always)]
fn remember(pending: Pending, hook: Hook) {
    if PENDING_FILE
        .insert(bpf_get_current_pid_tgid(), pending, 0)
        .is_err()
    {
        count(hook, StatKind::Errors);
    }
}

/// Read-only opens, the common case, need at most [`proc_mem_of_pid`].
#[inline(always)]
fn writes(open_flags: u32) -> bool {
    open_flags & O_ACCMODE != 0 || open_flags & WRITE_INTENT != 0
}

/// `PROC_SUPER_MAGIC`: `super_block.s_magic` of procfs.
const PROC_SUPER_MAGIC: u64 = 0x9fa0;

/// Whether a read-only open may return a process's memory file, from one read of its path
/// (up to `PATH_LEN` bytes, into the scratch): `Some(PROC_MEM)` when its last component is
/// `mem` (whatever the directory, a directory fd or a symbolic link to `/proc/<pid>` included;
/// reported even when the open fails: an attempt counts), `Some(0)` when only the file the
/// open returns can tell (`fd/N`, a link to a file some process holds, or a path too long to
/// see whole), `None` for the rest: those reach a memory file only through a symbolic link to
/// the file itself. `/proc/self/stat` and the like cost no more than any other path. Every read-only open of the host passes here:
/// the read is most of the cost (about 160 ns on the test VM; it stops at the NUL, so a short
/// path costs no more for the longer bound) and the rest is constant-index compares.
#[inline(always)]
fn read_open_candidate(path: u64) -> Option<u32> {
    let s = scratch()?;
    // SAFETY: at most PATH_LEN bytes into the scratch path (PATH_LEN + NAME_KEY_LEN bytes).
    let n = unsafe {
        aya_ebpf::helpers::generated::bpf_probe_read_user_str(
            s.path.as_mut_ptr().cast(),
            PATH_LEN as u32,
            path as *const _,
        )
    };
    if n <= 1 {
        return None;
    }
    let n = n as u32;
    // Seen whole (a longer path fills the buffer).
    if n >= PATH_LEN as u32 {
        return Some(0);
    }
    // SAFETY: a plain static.
    let mask = unsafe { core::ptr::read_volatile(&PATH_INDEX_MASK) };
    // `mem` and its NUL end the path, after a '/' or at its start. Bytes past the NUL are
    // whatever an earlier path left: only those before it are looked at.
    if n >= 4 {
        let at = ((n - 4) & mask) as usize;
        let before = if n == 4 {
            b'/'
        } else {
            s.path[((n - 5) & mask) as usize]
        };
        if s.path[at] == b'm' && s.path[at + 1] == b'e' && s.path[at + 2] == b'm' && before == b'/'
        {
            return Some(file_flags::PROC_MEM);
        }
    }
    if credentials_name(s, n, mask) {
        return Some(file_flags::CREDENTIALS);
    }
    // `fd/<digits>`: a link to a file a process holds (`/proc/<pid>/fd/N`, `/dev/fd/N`).
    let mut at = n - 1;
    for _ in 0..FD_DIGITS {
        if at == 0 || !s.path[((at - 1) & mask) as usize].is_ascii_digit() {
            break;
        }
        at -= 1;
    }
    if at + 1 < n && at >= 4 {
        let b = |back: u32| s.path[((at - back) & mask) as usize];
        if b(4) == b'/' && b(3) == b'f' && b(2) == b'd' && b(1) == b'/' {
            return Some(0);
        }
    }
    None
}

/// Digits of the largest fd number.
const FD_DIGITS: usize = 10;

/// Whether the path in the scratch (`n` bytes with its NUL, fewer than `PATH_LEN`) ends in a
/// component named `shadow` or `gshadow`, or their `-` backups: a candidate read of the
/// password hashes, whatever directory (relative, through a directory fd or a link to a
/// directory) leads there. Which file it is, the open's exit decides from the file it returned.
#[inline(always)]
fn credentials_name(s: &Scratch, n: u32, mask: u32) -> bool {
    let at = |i: u32| s.path[(i & mask) as usize];
    // The NUL's index, then the name's end: before an optional '-'.
    let mut end = n - 1;
    if end >= 1 && at(end - 1) == b'-' {
        end -= 1;
    }
    if end < 6 {
        return false;
    }
    let start = end - 6;
    if !(at(start) == b's'
        && at(start + 1) == b'h'
        && at(start + 2) == b'a'
        && at(start + 3) == b'd'
        && at(start + 4) == b'o'
        && at(start + 5) == b'w')
    {
        return false;
    }
    if start == 0 || at(start - 1) == b'/' {
        return true;
    }
    at(start - 1) == b'g' && (start == 1 || at(start - 2) == b'/')
}

/// What an open returned, as a process's memory.
enum Memory {
    /// `/proc/<pid>/mem` or `/proc/<pid>/task/<tid>/mem` of this process (its tgid, in the
    /// kernel's initial pid namespace; the thread id when the task has gone).
    Of(u32),
    /// Not a memory file.
    Not,
    /// The kernel's BTF lacked a field needed to tell, or a read failed.
    Unknown,
}

/// Whether `file` (a `struct file *`) is a process's memory file, from kernel objects only:
/// a procfs inode (its super block's magic), named `mem`, about a process (`proc_inode.pid`);
/// the process from that `struct pid`, whatever path led to the file.
#[inline(always)]
fn proc_memory_of(file: u64) -> Memory {
    let unknown = node_agent_common::config::OFFSET_UNKNOWN;
    if file == 0
        || config!(offsets.sb_magic) == unknown
        || config!(offsets.proc_inode_pid) == unknown
        || config!(offsets.proc_inode_vfs_inode) == unknown
        || config!(offsets.pid_tasks) == unknown
        || config!(offsets.pid_numbers) == unknown
        || config!(offsets.task_pid_links) == unknown
    {
        return Memory::Unknown;
    }
    let inode = file_inode(file);
    let sb = read_ptr(inode, config!(offsets.inode_sb));
    if sb == 0 {
        return Memory::Unknown;
    }
    if read_at::<u64>(sb, config!(offsets.sb_magic)) != PROC_SUPER_MAGIC {
        return Memory::Not;
    }
    let dentry = read_ptr(
        file + config!(offsets.file_path) as u64,
        config!(offsets.path_dentry),
    );
    if read_at::<u32>(dentry, config!(offsets.dentry_name_len)) != 3 {
        return Memory::Not;
    }
    let name = read_ptr(dentry, config!(offsets.dentry_name));
    if read_at::<[u8; 4]>(name, 0) != *b"mem\0" {
        return Memory::Not;
    }
    // procfs's inode around the VFS one; its pid is null for the files not about a process.
    let proc_inode = inode - config!(offsets.proc_inode_vfs_inode) as u64;
    let pid = read_ptr(proc_inode, config!(offsets.proc_inode_pid));
    if pid == 0 {
        return Memory::Not;
    }
    // `pid->tasks[PIDTYPE_PID].first` is the task's `pid_links[PIDTYPE_PID]`: its thread group
    // decides whose memory it is (a thread's `task/<tid>/mem` is its process's).
    let link = read_ptr(pid, config!(offsets.pid_tasks));
    let tgid = if link == 0 {
        0
    } else {
        read_at::<u32>(
            link - config!(offsets.task_pid_links) as u64,
            config!(offsets.task_tgid),
        )
    };
    if tgid != 0 {
        return Memory::Of(tgid);
    }
    // Gone: `numbers[0].nr`, its id in the initial namespace.
    match read_at::<u32>(pid, config!(offsets.pid_numbers)) {
        0 => Memory::Unknown,
        nr => Memory::Of(nr),
    }
}

/// A read-only open that may return a process's memory ([`read_open_candidate`]): remembered,
/// and at its exit reported as `OPEN_READ` when it did (or, failed, when its last component is
/// `mem`). Nothing else read-only is.
#[inline(always)]
fn on_read_open_enter(dirfd: i32, path: u64, open_flags: u32) {
    // A directory is never a process's memory: `ls` and `find` open many. An `O_PATH` open
    // reads nothing (the kernel checks no access): its reopen through `fd/N` is the read.
    if open_flags & (O_DIRECTORY | O_PATH) != 0 {
        return;
    }
    let Some(match_flags) = read_open_candidate(path) else {
        on_shell_read_open_enter(dirfd, path, open_flags);
        return;
    };
    if is_agent() {
        count(Hook::FileOpen, StatKind::Filtered);
        return;
    }
    remember(
        Pending {
            path,
            path2: 0,
            op: file_op::OPEN_READ,
            _pad: 0,
            match_flags,
            dirfd,
            dirfd2: AT_FDCWD,
            open_flags,
            mode: 0,
            uid: 0,
            gid: 0,
            target_tgid: 0,
            _pad2: 0,
        },
        Hook::FileOpen,
    );
}

/// The exit of a read-only open [`on_read_open_enter`] kept: the file it returned decides;
/// a failed one (or one the kernel's objects cannot tell) goes by its name. True when the open
/// returned a file that is not a memory file: a shell's open of it is looked at as any other
/// (`source /dev/fd/63` reads a pipe).
#[inline(always)]
fn on_read_open_exit(pending: &Pending, ret: i64) -> bool {
    let mut flags = pending.match_flags;
    let mut target_tgid = 0;
    if ret >= 0 {
        match proc_memory_of(fd_file(ret as u64)) {
            Memory::Of(tgid) => {
                flags = file_flags::PROC_MEM;
                target_tgid = tgid;
            }
            Memory::Not => return true,
            Memory::Unknown => {}
        }
    }
    if flags == 0 {
        return false;
    }
    // Nothing was written: the written-files map is not touched.
    emit(
        &Pending {
            match_flags: flags,
            target_tgid,
            ..*pending
        },
        ret,
        0,
        0,
        false,
        Hook::FileOpen,
    );
    false
}

/// A read-only open by a shell (`crate::sourced`): remembered for its exit, where the file it
/// returned is looked at. Other processes' cost one lookup here.
#[inline(always)]
fn on_shell_read_open_enter(dirfd: i32, path: u64, open_flags: u32) {
    let kind = crate::sourced::shell_kind();
    if kind == 0 || is_agent() {
        return;
    }
    remember(
        Pending {
            path,
            path2: 0,
            op: file_op::OPEN_SCRIPT,
            // The shell's kind (`shell_kind`), for the exit.
            _pad: kind as u16,
            match_flags: 0,
            dirfd,
            dirfd2: AT_FDCWD,
            open_flags,
            mode: 0,
            uid: 0,
            gid: 0,
            target_tgid: 0,
            _pad2: 0,
        },
        Hook::FileOpen,
    );
}

/// A shell's read-only open returned: a regular file that another process wrote since the
/// agent started, one on a memory-backed file system, or a pipe (`source <(curl URL)`: the
/// exec records name its writer), is a candidate. bash's is kept until
/// bash `fstat`s it (`on_shell_fstat`); other shells' is sent (`OPEN_SCRIPT`) at once with the
/// path the kernel holds for it, user space dropping it if the shell then `dup2`s it.
#[inline(always)]
fn on_shell_read_open_exit(pending: &Pending, ret: i64) {
    let file = if ret >= 0 { fd_file(ret as u64) } else { 0 };
    let inode = file_inode(file);
    if file == 0 || inode == 0 {
        return;
    }
    let kind_of_file = inode_type(inode);
    if kind_of_file != S_IFREG && kind_of_file != S_IFIFO {
        return;
    }
    let (dev, ino) = inode_key(inode);
    let flags = if kind_of_file == S_IFIFO {
        file_flags::PIPE
    } else {
        // SAFETY: read at once.
        let writer = unsafe { WRITTEN.get(FileKey { dev, _pad: 0, ino }) }.map(|w| w.tgid);
        crate::sourced::script_flags(inode, writer)
    };
    if flags == 0 {
        return;
    }
    let kind = u32::from(pending._pad);
    if kind == shell_kind::BASH || kind == shell_kind::PERL {
        // bash's is sent when bash `fstat`s it (`on_shell_fstat`): sourcing, not data. perl's
        // is sent now, and its `fstat` says it was data.
        crate::sourced::keep_fstat_candidate(&crate::sourced::Candidate {
            file: FileKey { dev, _pad: 0, ino },
            fd: ret,
            flags,
            _pad: 0,
            path: pending.path,
            dirfd: i64::from(pending.dirfd),
            kind,
            _pad2: 0,
        });
        if kind == shell_kind::BASH {
            return;
        }
    }
    emit_script(pending, file, ret, dev, ino, flags);
    crate::sourced::sent(dev, ino);
}

/// Sends a shell's `OPEN_SCRIPT` with the path the kernel holds for the file.
#[inline(always)]
fn emit_script(pending: &Pending, file: u64, ret: i64, dev: u32, ino: u64, flags: u32) {
    let Some(s) = scratch() else {
        return;
    };
    let object = matches!(
        resolve_path(
            current_task(),
            file + config!(offsets.file_path) as u64,
            &mut s.resolved,
        ),
        Walk::Done
    );
    emit(
        &Pending {
            match_flags: flags,
            _pad: 0,
            ..*pending
        },
        ret,
        dev,
        ino,
        object,
        Hook::FileOpen,
    );
}

/// `fstat(fd)` (or `newfstatat(fd, "", AT_EMPTY_PATH)`) of the file the thread's last candidate
/// open returned: bash sources it, perl reads it as data. Every stat of the host passes here; it leaves after one array
/// read while no bash candidate waits.
#[inline(always)]
fn on_shell_fstat(fd: u64) {
    let Some(c) = crate::sourced::take_fstat_candidate(fd) else {
        return;
    };
    if c.kind == shell_kind::PERL {
        crate::sourced::emit_redirect(fd, fd, c.file.dev, c.file.ino);
        return;
    }
    let file = fd_file(fd);
    if file == 0 {
        return;
    }
    let pending = Pending {
        path: c.path,
        path2: 0,
        op: file_op::OPEN_SCRIPT,
        _pad: 0,
        match_flags: 0,
        dirfd: c.dirfd as i32,
        dirfd2: AT_FDCWD,
        open_flags: 0,
        mode: 0,
        uid: 0,
        gid: 0,
        target_tgid: 0,
        _pad2: 0,
    };
    emit_script(&pending, file, c.fd, c.file.dev, c.file.ino, c.flags);
}

/// `AT_EMPTY_PATH`: a `newfstatat` of the fd itself.
const AT_EMPTY_PATH: u64 = 0x1000;

#[tracepoint(category = "syscalls", name = "sys_enter_newfstatat")]
pub fn newfstatat_script(ctx: TracePointContext) -> u32 {
    if arg(&ctx, 3) & AT_EMPTY_PATH != 0 {
        on_shell_fstat(arg(&ctx, 0));
    }
    0
}

#[tracepoint(category = "syscalls", name = "sys_enter_newfstat")]
pub fn newfstat_script(ctx: TracePointContext) -> u32 {
    on_shell_fstat(arg(&ctx, 0));
    0
}

/// A write-open is only remembered here: what it opened is known, and matched, at its exit.
#[inline(always)]
fn on_open_enter(dirfd: i32, path: u64, open_flags: u32, mode: u32) {
    // The agent's own writes are not reported, but they still clear the file's writer: a file
    // the agent rewrites (or an inode it gets after a deletion) must not carry someone else's.
    let agent = is_agent();
    if agent {
        count(Hook::FileOpen, StatKind::Filtered);
    }
    let match_flags = 0;
    remember(
        Pending {
            path,
            path2: 0,
            op: file_op::OPEN_WRITE,
            _pad: agent as u16,
            match_flags,
            dirfd,
            dirfd2: AT_FDCWD,
            open_flags,
            mode,
            uid: 0,
            gid: 0,
            target_tgid: 0,
            _pad2: 0,
        },
        Hook::FileOpen,
    );
}

#[inline(always)]
fn on_open_exit(ctx: &TracePointContext) {
    let key = bpf_get_current_pid_tgid();
    // SAFETY: copied out at once.
    let Some(pending) = (unsafe { PENDING_FILE.get(key) }).copied() else {
        return;
    };
    let _ = PENDING_FILE.remove(key);
    let ret = exit_ret(ctx);
    // A read of the password hashes is classified below, from the file it returned, as a write
    // is; other read-only opens kept here are memory files.
    let credentials =
        pending.op == file_op::OPEN_READ && pending.match_flags & file_flags::CREDENTIALS != 0;
    let mut pending = pending;
    if pending.op == file_op::OPEN_READ && !credentials {
        if !on_read_open_exit(&pending, ret) {
            return;
        }
        // Not a memory file: a shell's open through an fd link is looked at as its other
        // opens are (`source /dev/fd/63`, `. /proc/self/fd/3`).
        let kind = crate::sourced::shell_kind();
        if kind == 0 {
            return;
        }
        pending.op = file_op::OPEN_SCRIPT;
        pending._pad = kind as u16;
        pending.match_flags = 0;
    }
    if pending.op == file_op::OPEN_SCRIPT {
        on_shell_read_open_exit(&pending, ret);
        return;
    }
    let agent = pending._pad != 0;
    let (mut dev, mut ino) = (0, 0);
    let mut regular = false;
    let file = if ret >= 0 { fd_file(ret as u64) } else { 0 };
    if file != 0 {
        let inode = file_inode(file);
        if inode != 0 && inode_type(inode) == S_IFREG {
            regular = true;
            (dev, ino) = inode_key(inode);
            // A read writes nothing: the written-files map is not touched.
            if !credentials {
                if agent {
                    let _ = WRITTEN.remove(FileKey { dev, _pad: 0, ino });
                    return;
                }
                remember_written(key, dev, ino);
            }
        }
    }
    if agent {
        return;
    }
    // What was opened, from its dentry; a failed open (or a file that could not be walked) by
    // the path as given: the attempt is reported too.
    let resolved = if file != 0 {
        classify_file(file, pending.path)
    } else {
        None
    };
    let (flags, object) = match resolved {
        Some(matched) => matched,
        None => (classify(pending.path), false),
    };
    // A regular file opened to be created with a setuid or setgid mode, wherever it is.
    let flags = if regular
        && !credentials
        && pending.open_flags & O_CREAT != 0
        && pending.mode & SET_ID_BITS != 0
    {
        flags | file_flags::SET_ID
    } else {
        flags
    };
    // A file named `shadow` is the hashes only where the sensitive paths hold it (`/etc/shadow`,
    // not a project's `shadow` directory entry).
    if flags == 0
        || (credentials && flags & (file_flags::MATCH_PREFIX | file_flags::UNRESOLVED) == 0)
    {
        return;
    }
    let flags = if credentials {
        (flags & !file_flags::PROC_MEM) | file_flags::CREDENTIALS
    } else {
        flags
    };
    // Whose memory, when the path says it is a memory file.
    let target_tgid = if flags & file_flags::PROC_MEM != 0 {
        match proc_memory_of(file) {
            Memory::Of(tgid) => tgid,
            _ => 0,
        }
    } else {
        0
    };
    let Some(s) = scratch() else {
        return;
    };
    // One state into `emit` whatever the paths here were (regular file or not, walked or not).
    let object = opaque(s, object as u32) != 0;
    let dev = opaque(s, dev);
    let ino = opaque64(s, ino);
    let target_tgid = opaque(s, target_tgid);
    emit(
        &Pending {
            match_flags: flags,
            target_tgid,
            ..pending
        },
        ret,
        dev,
        ino,
        object,
        Hook::FileOpen,
    );
}

/// A regular file on the standard output of a program being exec'd: when the parent opened it
/// for writing (a vforking shell's `cmd > file`: dash opens the file, then the child execs
/// `cmd` with it), the program is its writer. A file someone else wrote is left as it is.
#[inline(always)]
pub fn claim_output(dev: u32, ino: u64, parent: u32) {
    if parent == 0 {
        return;
    }
    // SAFETY: read at once.
    let writer = unsafe { WRITTEN.get(FileKey { dev, _pad: 0, ino }) }.map(|w| w.tgid);
    if writer == Some(parent) {
        remember_written(bpf_get_current_pid_tgid(), dev, ino);
    }
}

/// Records the current process as the writer of a regular file, unless it already is.
#[inline(always)]
fn remember_written(key: u64, dev: u32, ino: u64) {
    let file_key = FileKey { dev, _pad: 0, ino };
    let tgid = (key >> 32) as u32;
    // SAFETY: read at once. The same process rewriting the same file (a log, a storm) needs no
    // update: the first write is the one that made it new.
    let known = unsafe { WRITTEN.get(file_key) }.map(|w| w.tgid);
    if known == Some(tgid) {
        return;
    }
    let uid_gid = bpf_get_current_uid_gid();
    let writer = WriterInfo {
        tgid,
        uid: uid_gid as u32,
        // SAFETY: helper without arguments.
        time_ns: unsafe { aya_ebpf::helpers::generated::bpf_ktime_get_boot_ns() },
        comm: bpf_get_current_comm().unwrap_or([0; 16]),
    };
    if WRITTEN.insert(file_key, writer, 0).is_err() {
        count(Hook::FileOpen, StatKind::Errors);
    } else if known.is_none()
        && let Some(added) = WRITTEN_ADDED.get_ptr_mut(0)
    {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU while the program runs.
        unsafe { *added += 1 };
    }
}

#[inline(always)]
fn on_change_enter(pending: Pending) {
    if is_agent() {
        count(Hook::FileChange, StatKind::Filtered);
        return;
    }
    // A set-id chmod comes flagged already: kept wherever its file is.
    let mut flags = pending.match_flags | classify_change(pending.path, pending.dirfd);
    if matches!(pending.op, file_op::UNLINK | file_op::RENAME) && journal_name() {
        flags |= file_flags::MATCH_JOURNAL;
    }
    if pending.path2 != 0 {
        flags |= classify_change(pending.path2, pending.dirfd2);
    }
    if flags == 0 {
        return;
    }
    remember(
        Pending {
            match_flags: flags,
            ..pending
        },
        Hook::FileChange,
    );
}

#[inline(always)]
fn on_change_exit(ctx: &TracePointContext) {
    let key = bpf_get_current_pid_tgid();
    // SAFETY: copied out at once.
    let Some(pending) = (unsafe { PENDING_FILE.get(key) }).copied() else {
        return;
    };
    let _ = PENDING_FILE.remove(key);
    emit(&pending, exit_ret(ctx), 0, 0, false, Hook::FileChange);
}

#[inline(always)]
/// Sends a record. `object`: the path of the file an open returned is whole in
/// `Scratch::resolved` and goes in `base` (`OBJECT_PATH`); for the others `base` is a relative
/// path's directory.
fn emit(pending: &Pending, ret: i64, dev: u32, ino: u64, object: bool, hook: Hook) {
    let Some(mut entry) = reserve::<FileEvent>() else {
        count(hook, StatKind::Dropped);
        return;
    };
    // SAFETY: reserved memory of the right size; every field is written (paths up to their
    // lengths).
    let complete = unsafe {
        let ev = &mut *entry.as_mut_ptr();
        ev.header = header(kind::FILE, core::mem::size_of::<FileEvent>());
        let complete = fill_current(&mut ev.task);
        ev.op = pending.op;
        ev._pad = 0;
        ev.ret = ret;
        ev.dirfd = pending.dirfd;
        ev.dirfd2 = pending.dirfd2;
        ev.open_flags = pending.open_flags;
        ev.mode = pending.mode;
        ev.uid = pending.uid;
        ev.gid = pending.gid;
        ev.ino = ino;
        ev.dev = dev;
        ev.target_tgid = pending.target_tgid;
        let mut flags = pending.match_flags;
        let (len, cut) = read_user_str(&mut ev.path, pending.path);
        ev.path_len = len;
        if cut {
            flags |= file_flags::PATH_TRUNCATED;
        }
        let (len2, cut2) = read_user_str(&mut ev.path2, pending.path2);
        ev.path2_len = len2;
        if cut2 {
            flags |= file_flags::PATH2_TRUNCATED;
        }
        ev.base_len = 0;
        ev.base_depth = 0;
        if object && let Some(s) = FILE_SCRATCH.get_ptr(0) {
            // The file the open returned, wherever the path the process gave led: as walked
            // for the match, root first.
            let mask = core::ptr::read_volatile(&PATH_INDEX_MASK);
            let start = core::ptr::read_volatile(&(*s).resolved.start) & mask;
            // PATH_LEN bytes from `start` < PATH_LEN of a 2 * PATH_LEN buffer (the path, its
            // NUL, zeros) into the CWD_LEN-byte base.
            bpf_probe_read_kernel(
                ev.base.as_mut_ptr().cast(),
                PATH_LEN as u32,
                (*s).resolved.buf.as_ptr().add(start as usize).cast(),
            );
            ev.base_len = RESOLVED_END - start;
            flags |= file_flags::OBJECT_PATH;
        }
        // A relative path: record the directory it starts from while it still exists. For an
        // absolute `path` and a relative `path2` (`mv /tmp/x job`), `path2`'s directory.
        let dirfd = if len > 0 && ev.path[0] != b'/' {
            Some(pending.dirfd)
        } else if len2 > 0 && ev.path2[0] != b'/' {
            Some(pending.dirfd2)
        } else {
            None
        };
        if flags & file_flags::OBJECT_PATH == 0
            && let Some(dirfd) = dirfd
        {
            let task = current_task();
            let start = if dirfd == AT_FDCWD {
                let fs = read_ptr(task, config!(offsets.task_fs));
                if fs == 0 {
                    0
                } else {
                    fs + config!(offsets.fs_pwd) as u64
                }
            } else {
                let file = fd_file(dirfd as u64);
                if file == 0 {
                    0
                } else {
                    file + config!(offsets.file_path) as u64
                }
            };
            if start != 0 {
                match walk_path(
                    task,
                    start,
                    &mut ev.base,
                    &mut ev.base_len,
                    &mut ev.base_depth,
                ) {
                    Walk::Done => flags |= file_flags::HAS_BASE,
                    Walk::Truncated => flags |= file_flags::HAS_BASE | file_flags::BASE_TRUNCATED,
                    Walk::Unreadable => {}
                }
            }
        }
        ev.match_flags = flags;
        complete
    };
    entry.submit();
    count(hook, StatKind::Sent);
    if !complete {
        count(hook, StatKind::Errors);
    }
}

fn change(op: u16, dirfd: i32, path: u64, dirfd2: i32, path2: u64) -> Pending {
    Pending {
        path,
        path2,
        op,
        _pad: 0,
        match_flags: 0,
        dirfd,
        dirfd2,
        open_flags: 0,
        mode: 0,
        uid: u32::MAX,
        gid: u32::MAX,
        target_tgid: 0,
        _pad2: 0,
    }
}

// --- open family -------------------------------------------------------------------------

#[tracepoint(category = "syscalls", name = "sys_enter_openat")]
pub fn openat_enter(ctx: TracePointContext) -> u32 {
    let flags = arg(&ctx, 2) as u32;
    if writes(flags) {
        on_open_enter(
            arg(&ctx, 0) as i32,
            arg(&ctx, 1),
            flags,
            arg(&ctx, 3) as u32,
        );
    } else {
        on_read_open_enter(arg(&ctx, 0) as i32, arg(&ctx, 1), flags);
    }
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_openat")]
pub fn openat_exit(ctx: TracePointContext) -> u32 {
    on_open_exit(&ctx);
    0
}

#[tracepoint(category = "syscalls", name = "sys_enter_open")]
pub fn open_enter(ctx: TracePointContext) -> u32 {
    let flags = arg(&ctx, 1) as u32;
    if writes(flags) {
        on_open_enter(AT_FDCWD, arg(&ctx, 0), flags, arg(&ctx, 2) as u32);
    } else {
        on_read_open_enter(AT_FDCWD, arg(&ctx, 0), flags);
    }
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_open")]
pub fn open_exit(ctx: TracePointContext) -> u32 {
    on_open_exit(&ctx);
    0
}

#[tracepoint(category = "syscalls", name = "sys_enter_creat")]
pub fn creat_enter(ctx: TracePointContext) -> u32 {
    on_open_enter(
        AT_FDCWD,
        arg(&ctx, 0),
        O_CREAT | O_TRUNC | 1,
        arg(&ctx, 1) as u32,
    );
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_creat")]
pub fn creat_exit(ctx: TracePointContext) -> u32 {
    on_open_exit(&ctx);
    0
}

#[tracepoint(category = "syscalls", name = "sys_enter_openat2")]
pub fn openat2_enter(ctx: TracePointContext) -> u32 {
    // struct open_how starts with the u64 flags, then the u64 mode.
    let how = arg(&ctx, 2);
    let mut flags = [0u64; 2];
    // SAFETY: 16 bytes of user memory into a local.
    unsafe {
        aya_ebpf::helpers::generated::bpf_probe_read_user(
            flags.as_mut_ptr().cast(),
            16,
            how as *const _,
        )
    };
    if writes(flags[0] as u32) {
        on_open_enter(
            arg(&ctx, 0) as i32,
            arg(&ctx, 1),
            flags[0] as u32,
            flags[1] as u32,
        );
    } else {
        on_read_open_enter(arg(&ctx, 0) as i32, arg(&ctx, 1), flags[0] as u32);
    }
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_openat2")]
pub fn openat2_exit(ctx: TracePointContext) -> u32 {
    on_open_exit(&ctx);
    0
}

// --- rename, link, symlink, unlink, chmod, chown -------------------------------------------

macro_rules! change_exit {
    ($name:ident, $tp:literal) => {
        #[tracepoint(category = "syscalls", name = $tp)]
        pub fn $name(ctx: TracePointContext) -> u32 {
            on_change_exit(&ctx);
            0
        }
    };
}

#[tracepoint(category = "syscalls", name = "sys_enter_rename")]
pub fn rename_enter(ctx: TracePointContext) -> u32 {
    on_change_enter(change(
        file_op::RENAME,
        AT_FDCWD,
        arg(&ctx, 0),
        AT_FDCWD,
        arg(&ctx, 1),
    ));
    0
}
change_exit!(rename_exit, "sys_exit_rename");

#[tracepoint(category = "syscalls", name = "sys_enter_renameat")]
pub fn renameat_enter(ctx: TracePointContext) -> u32 {
    on_change_enter(change(
        file_op::RENAME,
        arg(&ctx, 0) as i32,
        arg(&ctx, 1),
        arg(&ctx, 2) as i32,
        arg(&ctx, 3),
    ));
    0
}
change_exit!(renameat_exit, "sys_exit_renameat");

#[tracepoint(category = "syscalls", name = "sys_enter_renameat2")]
pub fn renameat2_enter(ctx: TracePointContext) -> u32 {
    on_change_enter(change(
        file_op::RENAME,
        arg(&ctx, 0) as i32,
        arg(&ctx, 1),
        arg(&ctx, 2) as i32,
        arg(&ctx, 3),
    ));
    0
}
change_exit!(renameat2_exit, "sys_exit_renameat2");

#[tracepoint(category = "syscalls", name = "sys_enter_link")]
pub fn link_enter(ctx: TracePointContext) -> u32 {
    on_change_enter(change(
        file_op::LINK,
        AT_FDCWD,
        arg(&ctx, 0),
        AT_FDCWD,
        arg(&ctx, 1),
    ));
    0
}
change_exit!(link_exit, "sys_exit_link");

#[tracepoint(category = "syscalls", name = "sys_enter_linkat")]
pub fn linkat_enter(ctx: TracePointContext) -> u32 {
    on_change_enter(change(
        file_op::LINK,
        arg(&ctx, 0) as i32,
        arg(&ctx, 1),
        arg(&ctx, 2) as i32,
        arg(&ctx, 3),
    ));
    0
}
change_exit!(linkat_exit, "sys_exit_linkat");

#[tracepoint(category = "syscalls", name = "sys_enter_symlink")]
pub fn symlink_enter(ctx: TracePointContext) -> u32 {
    // Only the new link's location decides: the target may be anything.
    let mut p = change(file_op::SYMLINK, AT_FDCWD, arg(&ctx, 1), AT_FDCWD, 0);
    p.path2 = arg(&ctx, 0);
    on_symlink(p);
    0
}
change_exit!(symlink_exit, "sys_exit_symlink");

#[tracepoint(category = "syscalls", name = "sys_enter_symlinkat")]
pub fn symlinkat_enter(ctx: TracePointContext) -> u32 {
    let mut p = change(
        file_op::SYMLINK,
        arg(&ctx, 1) as i32,
        arg(&ctx, 2),
        AT_FDCWD,
        0,
    );
    p.path2 = arg(&ctx, 0);
    on_symlink(p);
    0
}
change_exit!(symlinkat_exit, "sys_exit_symlinkat");

/// symlink: classify the link's path (`path`); `path2` carries the target for the record.
#[inline(always)]
fn on_symlink(pending: Pending) {
    if is_agent() {
        count(Hook::FileChange, StatKind::Filtered);
        return;
    }
    let flags = classify_change(pending.path, pending.dirfd);
    if flags != 0 {
        remember(
            Pending {
                match_flags: flags,
                ..pending
            },
            Hook::FileChange,
        );
    }
}

#[tracepoint(category = "syscalls", name = "sys_enter_unlink")]
pub fn unlink_enter(ctx: TracePointContext) -> u32 {
    on_change_enter(change(file_op::UNLINK, AT_FDCWD, arg(&ctx, 0), AT_FDCWD, 0));
    0
}
change_exit!(unlink_exit, "sys_exit_unlink");

#[tracepoint(category = "syscalls", name = "sys_enter_unlinkat")]
pub fn unlinkat_enter(ctx: TracePointContext) -> u32 {
    on_change_enter(change(
        file_op::UNLINK,
        arg(&ctx, 0) as i32,
        arg(&ctx, 1),
        AT_FDCWD,
        0,
    ));
    0
}
change_exit!(unlinkat_exit, "sys_exit_unlinkat");

#[inline(always)]
fn chmod(dirfd: i32, path: u64, mode: u32) {
    if mode & (EXEC_OR_ID_BITS | OTHERS_READ_OR_WRITE) == 0 {
        return;
    }
    let mut p = change(file_op::CHMOD, dirfd, path, AT_FDCWD, 0);
    p.mode = mode;
    if mode & SET_ID_BITS != 0 {
        p.match_flags = file_flags::SET_ID;
    }
    on_change_enter(p);
}

#[tracepoint(category = "syscalls", name = "sys_enter_chmod")]
pub fn chmod_enter(ctx: TracePointContext) -> u32 {
    chmod(AT_FDCWD, arg(&ctx, 0), arg(&ctx, 1) as u32);
    0
}
change_exit!(chmod_exit, "sys_exit_chmod");

#[tracepoint(category = "syscalls", name = "sys_enter_fchmodat")]
pub fn fchmodat_enter(ctx: TracePointContext) -> u32 {
    chmod(arg(&ctx, 0) as i32, arg(&ctx, 1), arg(&ctx, 2) as u32);
    0
}
change_exit!(fchmodat_exit, "sys_exit_fchmodat");

#[tracepoint(category = "syscalls", name = "sys_enter_fchmodat2")]
pub fn fchmodat2_enter(ctx: TracePointContext) -> u32 {
    chmod(arg(&ctx, 0) as i32, arg(&ctx, 1), arg(&ctx, 2) as u32);
    0
}
change_exit!(fchmodat2_exit, "sys_exit_fchmodat2");

/// `fchmod(fd, mode)` adding a setuid or setgid bit (`cp -p` and `tar -xp` of a set-id file, an
/// `install` or a program that chmods the descriptor it wrote through), or execute bits or
/// others' read or write as [`chmod`] keeps them (python's `os.fchmod` of an open
/// `/etc/shadow`). Nothing but the mode is looked at on entry; the file is the one the
/// descriptor holds, walked at the exit.
#[tracepoint(category = "syscalls", name = "sys_enter_fchmod")]
pub fn fchmod_enter(ctx: TracePointContext) -> u32 {
    let mode = arg(&ctx, 1) as u32;
    if mode & (EXEC_OR_ID_BITS | OTHERS_READ_OR_WRITE) == 0 {
        return 0;
    }
    let mut p = change(file_op::CHMOD, arg(&ctx, 0) as i32, 0, AT_FDCWD, 0);
    p.mode = mode;
    if mode & SET_ID_BITS != 0 {
        p.match_flags = file_flags::SET_ID;
    }
    fd_change_enter(p);
    0
}

/// A successful `fchmod` of a regular file, set-id anywhere or of a sensitive file
/// ([`fd_change_exit`]).
#[tracepoint(category = "syscalls", name = "sys_exit_fchmod")]
pub fn fchmod_exit(ctx: TracePointContext) -> u32 {
    fd_change_exit(&ctx);
    0
}

/// Records a descriptor's change (`fchmod`, `fchown`, `fsetxattr`) on entry, to be walked at
/// the exit ([`fd_change_exit`]).
#[inline(always)]
fn fd_change_enter(p: Pending) {
    if is_agent() {
        count(Hook::FileChange, StatKind::Filtered);
        return;
    }
    remember(p, Hook::FileChange);
}

/// A successful change through a descriptor of a regular file, kept when the file is sensitive
/// or the record comes flagged (a set-id mode): sent with the file's path as the kernel walks
/// it from the descriptor (there is no path string), its device and inode.
#[inline(always)]
fn fd_change_exit(ctx: &TracePointContext) {
    let key = bpf_get_current_pid_tgid();
    // SAFETY: copied out at once.
    let Some(pending) = (unsafe { PENDING_FILE.get(key) }).copied() else {
        return;
    };
    let _ = PENDING_FILE.remove(key);
    let ret = exit_ret(ctx);
    if ret != 0 || pending.dirfd < 0 {
        return;
    }
    let file = fd_file(pending.dirfd as u64);
    if file == 0 {
        return;
    }
    let inode = file_inode(file);
    if inode == 0 || inode_type(inode) != S_IFREG {
        return;
    }
    let (dev, ino) = inode_key(inode);
    let Some((flags, object)) = classify_file(file, 0) else {
        return;
    };
    let flags = flags | pending.match_flags;
    if flags == 0 {
        return;
    }
    let Some(s) = scratch() else {
        return;
    };
    let object = opaque(s, object as u32) != 0;
    emit(
        &Pending {
            match_flags: flags,
            ..pending
        },
        ret,
        dev,
        ino,
        object,
        Hook::FileChange,
    );
}

/// `fchown(fd, uid, gid)`: python's `os.fchown` of an open `/etc/shadow`. Kept at the exit for
/// a sensitive file only; a call that changes neither id (`-1`, `-1`) returns at once.
#[tracepoint(category = "syscalls", name = "sys_enter_fchown")]
pub fn fchown_enter(ctx: TracePointContext) -> u32 {
    let (uid, gid) = (arg(&ctx, 1) as u32, arg(&ctx, 2) as u32);
    if uid == u32::MAX && gid == u32::MAX {
        return 0;
    }
    let mut p = change(file_op::CHOWN, arg(&ctx, 0) as i32, 0, AT_FDCWD, 0);
    p.uid = uid;
    p.gid = gid;
    fd_change_enter(p);
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_fchown")]
pub fn fchown_exit(ctx: TracePointContext) -> u32 {
    fd_change_exit(&ctx);
    0
}

/// `system.posix_acl_access` with its NUL: the extended attribute that holds a file's access
/// ACL.
const POSIX_ACL_ACCESS: &[u8; 24] = b"system.posix_acl_access\0";

/// Whether the user string at `name` is [`POSIX_ACL_ACCESS`]: one bounded read, then three
/// word compares. Every other attribute (`user.*`, `security.*` that package managers and
/// container engines set) returns here.
#[inline(always)]
fn is_access_acl(name: u64) -> bool {
    let mut buf = [0u8; 24];
    let (len, _) = read_user_str(&mut buf, name);
    if len != 23 {
        return false;
    }
    let word = |b: &[u8; 24], i: usize| {
        u64::from_le_bytes([
            b[i],
            b[i + 1],
            b[i + 2],
            b[i + 3],
            b[i + 4],
            b[i + 5],
            b[i + 6],
            b[i + 7],
        ])
    };
    word(&buf, 0) == word(POSIX_ACL_ACCESS, 0)
        && word(&buf, 8) == word(POSIX_ACL_ACCESS, 8)
        && word(&buf, 16) == word(POSIX_ACL_ACCESS, 16)
}

/// `setxattr(path, name, ...)` and `lsetxattr` of a file's access ACL (`setfacl -m u:x:r
/// /etc/shadow`): kept for a sensitive path, as a chmod is.
#[inline(always)]
fn set_acl(path: u64, name: u64) {
    if !is_access_acl(name) {
        return;
    }
    on_change_enter(change(file_op::SET_ACL, AT_FDCWD, path, AT_FDCWD, 0));
}

#[tracepoint(category = "syscalls", name = "sys_enter_setxattr")]
pub fn setxattr_enter(ctx: TracePointContext) -> u32 {
    set_acl(arg(&ctx, 0), arg(&ctx, 1));
    0
}
change_exit!(setxattr_exit, "sys_exit_setxattr");

#[tracepoint(category = "syscalls", name = "sys_enter_lsetxattr")]
pub fn lsetxattr_enter(ctx: TracePointContext) -> u32 {
    set_acl(arg(&ctx, 0), arg(&ctx, 1));
    0
}
change_exit!(lsetxattr_exit, "sys_exit_lsetxattr");

/// `fsetxattr(fd, name, ...)` of a file's access ACL: the file is the descriptor's, walked at
/// the exit.
#[tracepoint(category = "syscalls", name = "sys_enter_fsetxattr")]
pub fn fsetxattr_enter(ctx: TracePointContext) -> u32 {
    if is_access_acl(arg(&ctx, 1)) {
        fd_change_enter(change(
            file_op::SET_ACL,
            arg(&ctx, 0) as i32,
            0,
            AT_FDCWD,
            0,
        ));
    }
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_fsetxattr")]
pub fn fsetxattr_exit(ctx: TracePointContext) -> u32 {
    fd_change_exit(&ctx);
    0
}

/// `setxattrat(dirfd, path, at_flags, name, args, size)` (Linux 6.13) of a file's access ACL:
/// the path from `dirfd` as `setxattr`'s, or, with `AT_EMPTY_PATH` and an empty path, the
/// descriptor's file as `fsetxattr`'s.
#[tracepoint(category = "syscalls", name = "sys_enter_setxattrat")]
pub fn setxattrat_enter(ctx: TracePointContext) -> u32 {
    if !is_access_acl(arg(&ctx, 3)) {
        return 0;
    }
    let (dirfd, path) = (arg(&ctx, 0) as i32, arg(&ctx, 1));
    let mut first = [0u8; 1];
    // SAFETY: one byte into a local array; a failed read leaves it zero (an fd change).
    let _ = unsafe {
        aya_ebpf::helpers::generated::bpf_probe_read_user(
            first.as_mut_ptr().cast(),
            1,
            path as *const _,
        )
    };
    if arg(&ctx, 2) & AT_EMPTY_PATH != 0 && first[0] == 0 {
        fd_change_enter(change(file_op::SET_ACL, dirfd, 0, AT_FDCWD, 0));
    } else {
        on_change_enter(change(file_op::SET_ACL, dirfd, path, AT_FDCWD, 0));
    }
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_setxattrat")]
pub fn setxattrat_exit(ctx: TracePointContext) -> u32 {
    // SAFETY: read at once.
    let by_fd =
        unsafe { PENDING_FILE.get(bpf_get_current_pid_tgid()) }.is_some_and(|p| p.path == 0);
    if by_fd {
        fd_change_exit(&ctx);
    } else {
        on_change_exit(&ctx);
    }
    0
}

#[inline(always)]
fn chown(dirfd: i32, path: u64, uid: u32, gid: u32) {
    let mut p = change(file_op::CHOWN, dirfd, path, AT_FDCWD, 0);
    p.uid = uid;
    p.gid = gid;
    on_change_enter(p);
}

#[tracepoint(category = "syscalls", name = "sys_enter_chown")]
pub fn chown_enter(ctx: TracePointContext) -> u32 {
    chown(
        AT_FDCWD,
        arg(&ctx, 0),
        arg(&ctx, 1) as u32,
        arg(&ctx, 2) as u32,
    );
    0
}
change_exit!(chown_exit, "sys_exit_chown");

#[tracepoint(category = "syscalls", name = "sys_enter_lchown")]
pub fn lchown_enter(ctx: TracePointContext) -> u32 {
    chown(
        AT_FDCWD,
        arg(&ctx, 0),
        arg(&ctx, 1) as u32,
        arg(&ctx, 2) as u32,
    );
    0
}
change_exit!(lchown_exit, "sys_exit_lchown");

#[tracepoint(category = "syscalls", name = "sys_enter_fchownat")]
pub fn fchownat_enter(ctx: TracePointContext) -> u32 {
    chown(
        arg(&ctx, 0) as i32,
        arg(&ctx, 1),
        arg(&ctx, 2) as u32,
        arg(&ctx, 3) as u32,
    );
    0
}
change_exit!(fchownat_exit, "sys_exit_fchownat");
