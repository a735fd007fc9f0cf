//! Directory-entry changes in the sensitive directories, from fanotify (`file_dirents`).
//!
//! The `file_change` tracepoints see a rename, link, symlink or unlink as the path string the
//! process passed: a tracepoint cannot look a name up, so `mv job /tmp/link-to-cron.d/job`,
//! or a path through `/proc/<pid>/cwd`, names a directory the kernel's prefix filter never
//! matches. fanotify reports the change on the directory that really changed, whatever path
//! reached it: the directory's file handle and the entry's name (`FAN_REPORT_DFID_NAME`), and
//! the acting process's pid. Each sensitive directory (the absolute prefixes of the
//! sensitive-path set, their subdirectories, and the parent directories of its exact paths) is
//! marked for creations, removals, renames and attribute changes of its entries (a chmod or
//! chown told from the other attribute changes by the mode and owner known before); the
//! directory a record names is found by its
//! handle among the directories opened at mark time, and its path is read from that open
//! directory when the record is read, so a path is the real one.
//!
//! Bounded: at most [`MAX_MARKS`] directories are marked (the rest are counted), the kernel's
//! queue is fanotify's own (16,384 events by default) and its overflow (`FAN_Q_OVERFLOW`) is
//! counted and reported in the health summary.

use std::{
    collections::HashMap,
    ffi::{CStr, CString, OsStr},
    io,
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
        unix::ffi::OsStrExt,
    },
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use serde::Serialize;

use crate::{
    container::boot_ns,
    sensitive::{MatchKind, SensitivePaths},
};

/// The sensor's name in the hook list and the counters.
pub const HOOK_NAME: &str = "file_dirents";

/// Directories marked at most (each holds an open descriptor).
pub const MAX_MARKS: usize = 1_024;

/// How deep below each sensitive prefix directory subdirectories are marked at start.
const SUBDIR_DEPTH: usize = 4;

/// Files whose mode and owner are remembered at most (to tell a chmod or chown from the other
/// attribute changes fanotify reports alike: times, extended attributes).
pub const MAX_ATTRS: usize = 16_384;

/// Execute, set-user-ID and set-group-ID bits: a chmod that leaves one of them set is reported,
/// as the `file_change` sensor reports one that asks for one.
const EXEC_OR_ID_BITS: u32 = 0o6111;

/// The events asked for on each directory: entries created (files, hard links, symbolic links,
/// directories), removed, and renamed (one event that names the old and the new directory and
/// name, each when that directory is marked).
/// And attribute changes of the entries (`FAN_ATTRIB` on children).
const MASK: u64 = libc::FAN_CREATE
    | libc::FAN_DELETE
    | libc::FAN_RENAME
    | libc::FAN_ATTRIB
    | libc::FAN_EVENT_ON_CHILD
    | libc::FAN_ONDIR;

/// What a directory-entry record says happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum DirentOp {
    /// A new name for an existing file (`link(2)`): a regular file with more than one link.
    Linked,
    /// A symbolic link was created.
    Symlinked,
    /// A name was removed.
    Removed,
    /// A name was moved (within or between marked directories, or into or out of one).
    Renamed,
    /// The mode changed and has an execute, set-user-ID or set-group-ID bit.
    Chmod,
    /// The owner or group changed.
    Chown,
}

/// One change, as fanotify reported it, its directories resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirentChange {
    /// The acting process (thread group id; 0 when it is in a pid namespace the agent cannot
    /// see).
    pub pid: u32,
    /// What happened.
    pub op: DirentOp,
    /// The name created or removed, or the name a rename made (when its directory is marked).
    pub path: Option<PathBuf>,
    /// A rename's old name (when its directory is marked).
    pub old_path: Option<PathBuf>,
    /// A symbolic link's target.
    pub target: Option<String>,
    /// The inode of the file created, when it could be opened.
    pub inode: Option<u64>,
    /// The mode after a chmod.
    pub mode: Option<u32>,
    /// The owner and group after a chown.
    pub owner: Option<(u32, u32)>,
    /// The entry is a directory.
    pub is_dir: bool,
    /// `CLOCK_BOOTTIME` when the record was read (fanotify has no time stamp).
    pub boot_ns: u64,
}

/// Why the sensor could not start.
#[derive(Debug, thiserror::Error)]
pub enum DirentError {
    /// `fanotify_init` failed (an old kernel, no `CONFIG_FANOTIFY`, no `CAP_SYS_ADMIN`).
    #[error(
        "fanotify_init with FAN_REPORT_DFID_NAME failed ({0}): Linux 5.17 or later with \
         CONFIG_FANOTIFY and CAP_SYS_ADMIN are needed; renames and links are matched by the \
         path string only"
    )]
    Init(#[source] io::Error),
    /// The process lacks CAP_SYS_ADMIN: fanotify would start as an unprivileged listener,
    /// which is told the acting pid of no other process.
    #[error(
        "no CAP_SYS_ADMIN: fanotify gives an unprivileged listener no acting pid (each change \
         would read as pid 0 and could not be paired with the tracepoints' record of it); \
         renames and links are matched by the path string only"
    )]
    Unprivileged,
    /// No sensitive directory could be marked.
    #[error("no sensitive directory could be marked: {0}")]
    NoMarks(String),
}

/// The sensor's counters (shared with the [`super::Sensor`] that reports them).
#[derive(Debug, Default)]
pub struct DirentCounters {
    /// Records read.
    pub events: AtomicU64,
    /// Changes reported on (sensitive by path).
    pub reported: AtomicU64,
    /// Queue overflows (`FAN_Q_OVERFLOW`): the kernel dropped events.
    pub overflows: AtomicU64,
    /// Records whose directory could not be resolved, or that did not decode.
    pub unresolved: AtomicU64,
    /// Directories marked now (a removed directory's mark goes with it).
    pub marks: AtomicU64,
    /// Directories not marked: the bound was reached or the kernel refused.
    pub unmarked: AtomicU64,
    /// The agent's own changes, not reported.
    pub own: AtomicU64,
    /// Attribute changes of files whose mode and owner before were not known (not reported).
    pub attr_unknown: AtomicU64,
}

/// A snapshot of [`DirentCounters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DirentStats {
    /// Records read.
    pub events: u64,
    /// Changes reported on.
    pub reported: u64,
    /// Queue overflows: events the kernel dropped.
    pub overflows: u64,
    /// Records not resolved or not decoded.
    pub unresolved: u64,
    /// Directories marked now.
    pub marks: u64,
    /// Directories left unmarked (bound or refusal).
    pub unmarked: u64,
    /// The agent's own changes, not reported.
    pub own: u64,
    /// Attribute changes of files whose mode and owner before were not known.
    pub attr_unknown: u64,
}

impl DirentCounters {
    /// The counters now.
    pub fn snapshot(&self) -> DirentStats {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DirentStats {
            events: r(&self.events),
            reported: r(&self.reported),
            overflows: r(&self.overflows),
            unresolved: r(&self.unresolved),
            marks: r(&self.marks),
            unmarked: r(&self.unmarked),
            own: r(&self.own),
            attr_unknown: r(&self.attr_unknown),
        }
    }
}

/// A marked directory.
struct Marked {
    /// Open (read-only: `open_by_handle_at` takes no `O_PATH` descriptor as its mount): its
    /// path is read from `/proc/self/fd` when a record names it.
    fd: OwnedFd,
    /// Changes in its subtree are reported whatever their name (a prefix directory or below).
    whole: bool,
}

/// The running sensor.
pub struct DirentWatch {
    fan: OwnedFd,
    /// Where the host's files are reached from: `/` on the host, `<proc-root>/1/root` for an
    /// agent in a container of its own (a pod with the host's pid namespace). Paths kept and
    /// reported are the host's; only opens, listings and `stat`s go through this.
    root: PathBuf,
    /// Marked directories by file handle (`fsid`, handle type, handle bytes).
    dirs: HashMap<Vec<u8>, Marked>,
    sensitive: SensitivePaths,
    own_pid: u32,
    counters: Arc<DirentCounters>,
    /// Each marked directory's path as the sensitive-path set names it, with its real path
    /// where the two differ (`/lib/systemd/system` is `/usr/lib/systemd/system`).
    aliases: Vec<(PathBuf, PathBuf)>,
    /// Mode, owner and group of the reported files in the marked directories, by real path:
    /// read when a directory is marked, kept up to date by its records.
    attrs: HashMap<PathBuf, Attrs>,
    /// The read buffer, kept between reads.
    buf: Vec<u8>,
}

/// What a chmod or chown changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Attrs {
    mode: u32,
    uid: u32,
    gid: u32,
}

impl Attrs {
    fn of(path: &Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        std::fs::symlink_metadata(path).ok().map(|m| Self {
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
        })
    }
}

impl std::fmt::Debug for DirentWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirentWatch")
            .field("marks", &self.dirs.len())
            .finish_non_exhaustive()
    }
}

/// The host's `path` as reached through `root`, the host's root directory as this process
/// sees it.
pub fn host_path_through(root: &Path, path: &Path) -> PathBuf {
    if root == Path::new("/") {
        return path.to_owned();
    }
    root.join(path.strip_prefix("/").unwrap_or(path))
}

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))
}

/// The real path of an open descriptor.
fn fd_path(fd: RawFd) -> Option<PathBuf> {
    let path = std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
    // A directory removed since (a runtime deleting a container's log directory right after
    // its files) reads as `<path> (deleted)`: the change happened at `<path>`. Only a directory
    // with no link left gets the suffix cut, so a live one named `x (deleted)` keeps its name.
    // SAFETY: a zeroed stat is valid; fstat fills it or fails.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd is open (the caller holds it) and st is valid to fill.
    let removed = unsafe { libc::fstat(fd, &mut st) } == 0 && st.st_nlink == 0;
    match path.as_os_str().as_bytes().strip_suffix(b" (deleted)") {
        Some(live) if removed => Some(PathBuf::from(OsStr::from_bytes(live))),
        _ => Some(path),
    }
}

/// The key of a directory: its filesystem id and file handle, as fanotify reports them.
fn handle_key(fd: RawFd) -> io::Result<Vec<u8>> {
    // struct file_handle { u32 handle_bytes; i32 handle_type; u8 f_handle[]; }, MAX_HANDLE_SZ 128.
    let mut buf = [0u8; 8 + 128];
    buf[..4].copy_from_slice(&128u32.to_ne_bytes());
    let mut mount_id: libc::c_int = 0;
    let empty = c"";
    // SAFETY: buf is large enough for MAX_HANDLE_SZ and starts with its size; the path is a
    // valid C string; AT_EMPTY_PATH names fd itself.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_name_to_handle_at,
            fd,
            empty.as_ptr(),
            buf.as_mut_ptr(),
            &mut mount_id,
            libc::AT_EMPTY_PATH,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a zeroed statfs is valid; fd is open.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid statfs to fill.
    if unsafe { libc::fstatfs(fd, &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fsid_t is two i32s, plain data.
    let fsid: [u8; 8] = unsafe { std::mem::transmute(st.f_fsid) };
    let bytes = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    let mut key = fsid.to_vec();
    key.extend_from_slice(&buf[4..8]);
    key.extend_from_slice(&buf[8..8 + bytes.min(128)]);
    Ok(key)
}

/// One info record of a fanotify event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InfoRecord {
    /// `FAN_EVENT_INFO_TYPE_*`.
    pub info_type: u8,
    /// `fsid`, handle type and handle bytes: the key [`handle_key`] makes.
    pub key: Vec<u8>,
    /// The handle as `struct file_handle` (for `open_by_handle_at`).
    pub handle: Vec<u8>,
    /// The entry's name (DFID_NAME records).
    pub name: Option<Vec<u8>>,
}

/// One decoded fanotify event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawEvent {
    /// The event mask.
    pub mask: u64,
    /// The acting process.
    pub pid: i32,
    /// Its info records.
    pub infos: Vec<InfoRecord>,
}

/// Bytes read from the queue at a time.
const READ_BYTES: usize = 64 * 1024;

/// Size of `struct fanotify_event_metadata`.
const METADATA_LEN: usize = 24;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Decodes what one `read(2)` of a fanotify descriptor returned. A record that does not decode
/// ends the buffer (the count of those is the second value).
pub fn decode(buf: &[u8]) -> (Vec<RawEvent>, u64) {
    let mut out = Vec::new();
    let mut at = 0;
    while at + METADATA_LEN <= buf.len() {
        let (Some(len), Some(meta_len), Some(mask), Some(pid)) = (
            u32_at(buf, at).map(|l| l as usize),
            u16_at(buf, at + 6).map(usize::from),
            u64_at(buf, at + 8),
            u32_at(buf, at + 20).map(|p| p as i32),
        ) else {
            return (out, 1);
        };
        if len < METADATA_LEN || meta_len < METADATA_LEN || at + len > buf.len() || meta_len > len {
            return (out, 1);
        }
        let event = &buf[at..at + len];
        let mut infos = Vec::new();
        let mut i = meta_len;
        while i + 4 <= event.len() {
            let info_type = event[i];
            let Some(info_len) = u16_at(event, i + 2).map(usize::from) else {
                break;
            };
            if info_len < 4 || i + info_len > event.len() {
                return (out, 1);
            }
            let body = &event[i + 4..i + info_len];
            // fsid (8), handle_bytes (4), handle_type (4), handle, then a NUL-ended name.
            if let (Some(fsid), Some(bytes)) = (body.get(..8), u32_at(body, 8).map(|b| b as usize))
                && let Some(handle) = body.get(8..16 + bytes)
            {
                let mut key = fsid.to_vec();
                key.extend_from_slice(&handle[4..]);
                let name = matches!(
                    info_type,
                    libc::FAN_EVENT_INFO_TYPE_DFID_NAME
                        | libc::FAN_EVENT_INFO_TYPE_OLD_DFID_NAME
                        | libc::FAN_EVENT_INFO_TYPE_NEW_DFID_NAME
                )
                .then(|| {
                    let rest = &body[16 + bytes..];
                    let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
                    rest[..end].to_vec()
                });
                infos.push(InfoRecord {
                    info_type,
                    key,
                    handle: handle.to_vec(),
                    name,
                });
            }
            i += info_len;
        }
        out.push(RawEvent { mask, pid, infos });
        at += len;
    }
    (out, 0)
}

impl DirentWatch {
    /// Marks the directories of `sensitive` (see the module's description), reached through
    /// `root` (the host's root directory as this process sees it: `/` on the host). Changes by
    /// `own_pid` are not reported.
    pub fn start(
        sensitive: &SensitivePaths,
        own_pid: u32,
        root: &Path,
    ) -> Result<Self, DirentError> {
        if !super::host::has_capability(super::host::CAP_SYS_ADMIN) {
            return Err(DirentError::Unprivileged);
        }
        // SAFETY: plain flags.
        let fd = unsafe {
            libc::fanotify_init(
                libc::FAN_CLASS_NOTIF
                    | libc::FAN_CLOEXEC
                    | libc::FAN_NONBLOCK
                    | libc::FAN_REPORT_DFID_NAME
                    | libc::FAN_REPORT_FID
                    | libc::FAN_REPORT_TARGET_FID,
                (libc::O_RDONLY | libc::O_LARGEFILE | libc::O_CLOEXEC) as libc::c_uint,
            )
        };
        if fd < 0 {
            return Err(DirentError::Init(io::Error::last_os_error()));
        }
        // SAFETY: fanotify_init returned a new descriptor that nothing else owns.
        let fan = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut watch = Self {
            fan,
            root: root.to_owned(),
            dirs: HashMap::new(),
            sensitive: sensitive.clone(),
            own_pid,
            counters: Arc::new(DirentCounters::default()),
            aliases: Vec::new(),
            attrs: HashMap::new(),
            buf: Vec::new(),
        };
        let mut last_error = String::from("no sensitive directory exists on this host");
        for entry in &sensitive.entries {
            let (dir, whole) = match entry.kind {
                MatchKind::Prefix if entry.pattern.ends_with('/') => {
                    (PathBuf::from(entry.pattern.trim_end_matches('/')), true)
                }
                // An exact path, or a prefix of names (`/usr/bin/containerd-shim`): its
                // directory, where only the names the set matches are reported.
                MatchKind::Exact | MatchKind::Prefix => match Path::new(&entry.pattern).parent() {
                    Some(parent) => (parent.to_owned(), false),
                    None => continue,
                },
                MatchKind::Name => continue,
            };
            if dir.as_os_str().is_empty() {
                continue;
            }
            match watch.mark(&dir, whole, if whole { SUBDIR_DEPTH } else { 0 }) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => last_error = format!("{}: {e}", dir.display()),
            }
        }
        if watch.dirs.is_empty() {
            return Err(DirentError::NoMarks(last_error));
        }
        Ok(watch)
    }

    /// The counters, shared.
    pub fn counters(&self) -> Arc<DirentCounters> {
        Arc::clone(&self.counters)
    }

    /// Each marked directory as the sensitive-path set names it, with its real path, where the
    /// two differ: what a path string made absolute must be read as to name the same file.
    pub fn aliases(&self) -> &[(PathBuf, PathBuf)] {
        &self.aliases
    }

    /// Marks `dir` (and its subdirectories `depth` levels down). `whole`: every change in it is
    /// reported, else only those the sensitive-path set names.
    fn mark(&mut self, dir: &Path, whole: bool, depth: usize) -> io::Result<()> {
        if self.dirs.len() >= MAX_MARKS {
            self.counters.unmarked.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let c = cstring(&self.reach(dir))?;
        // SAFETY: a valid C string.
        let raw = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: open returned a new descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let key = handle_key(fd.as_raw_fd())?;
        if let Some(real) = self.fd_path(fd.as_raw_fd())
            && real != dir
            && !self.aliases.iter().any(|(a, _)| a == dir)
        {
            self.aliases.push((dir.to_owned(), real));
        }
        if let Some(existing) = self.dirs.get_mut(&key) {
            existing.whole |= whole;
        } else {
            let dot = c".";
            // SAFETY: both descriptors are open and "." is a valid C string: the directory
            // opened is the one marked, whatever its path names by now.
            let rc = unsafe {
                libc::fanotify_mark(
                    self.fan.as_raw_fd(),
                    libc::FAN_MARK_ADD | libc::FAN_MARK_ONLYDIR,
                    MASK,
                    fd.as_raw_fd(),
                    dot.as_ptr(),
                )
            };
            if rc != 0 {
                self.counters.unmarked.fetch_add(1, Ordering::Relaxed);
                return Err(io::Error::last_os_error());
            }
            self.counters.marks.fetch_add(1, Ordering::Relaxed);
            let real = self
                .fd_path(fd.as_raw_fd())
                .unwrap_or_else(|| dir.to_owned());
            self.dirs.insert(key, Marked { fd, whole });
            if let Ok(entries) = std::fs::read_dir(self.reach(&real)) {
                for entry in entries.flatten() {
                    let path = real.join(entry.file_name());
                    if self.sensitive.classify(&path).is_some() {
                        self.remember(&path);
                    }
                }
            }
        }
        if depth > 0
            && let Ok(entries) = std::fs::read_dir(self.reach(dir))
        {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    let _ = self.mark(&dir.join(entry.file_name()), whole, depth - 1);
                }
            }
        }
        Ok(())
    }

    /// Where this process reaches the host's `path`.
    fn reach(&self, path: &Path) -> PathBuf {
        host_path_through(&self.root, path)
    }

    /// The host's path of an open descriptor: the kernel names a directory reached through
    /// `<proc-root>/1/root` by its path in the host's mount namespace already (it is outside
    /// this process's root); one under this process's root is named with `root` in front,
    /// which is cut.
    fn fd_path(&self, fd: RawFd) -> Option<PathBuf> {
        let path = fd_path(fd)?;
        if self.root == Path::new("/") {
            return Some(path);
        }
        match path.strip_prefix(&self.root) {
            Ok(rest) => Some(Path::new("/").join(rest)),
            Err(_) => Some(path),
        }
    }

    /// Reads and keeps a file's mode and owner (within [`MAX_ATTRS`]); returns what was kept
    /// before.
    fn remember(&mut self, path: &Path) -> Option<Attrs> {
        let Some(now) = Attrs::of(&self.reach(path)) else {
            return self.attrs.remove(path);
        };
        if self.attrs.len() >= MAX_ATTRS && !self.attrs.contains_key(path) {
            return None;
        }
        self.attrs.insert(path.to_owned(), now)
    }

    /// What a `FAN_ATTRIB` record of `path` changed, as the `file_change` sensor would report it:
    /// a chmod that leaves an execute or ID bit set, a chown. Time and extended-attribute
    /// changes, and files whose attributes before are unknown, are not reported.
    fn attribute_changes(&mut self, path: &Path) -> Vec<(DirentOp, Attrs)> {
        let before = self.remember(path);
        let (Some(before), Some(now)) = (before, self.attrs.get(path).copied()) else {
            self.counters.attr_unknown.fetch_add(1, Ordering::Relaxed);
            return Vec::new();
        };
        let mut out = Vec::new();
        if now.mode != before.mode && now.mode & EXEC_OR_ID_BITS != 0 {
            out.push((DirentOp::Chmod, now));
        }
        if (now.uid, now.gid) != (before.uid, before.gid) {
            out.push((DirentOp::Chown, now));
        }
        out
    }

    /// Reads every record waiting (without blocking) and hands the sensitive changes to `each`.
    /// Returns how many records were read.
    pub fn read_ready(&mut self, mut each: impl FnMut(DirentChange)) -> usize {
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(READ_BYTES, 0);
        let mut total = 0;
        // Bounded per call, like the ring buffer's drain: a flood cannot hold the loop here.
        for _ in 0..64 {
            // SAFETY: buf is valid for its length.
            let n = unsafe { libc::read(self.fan.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break;
            }
            let (events, bad) = decode(&buf[..n as usize]);
            self.counters.unresolved.fetch_add(bad, Ordering::Relaxed);
            total += events.len();
            for event in events {
                self.counters.events.fetch_add(1, Ordering::Relaxed);
                for change in self.resolve(&event) {
                    self.counters.reported.fetch_add(1, Ordering::Relaxed);
                    each(change);
                }
            }
        }
        self.buf = buf;
        total
    }

    /// The path of `name` in the directory a record names, and whether the directory is a
    /// prefix directory of the set or below one (its new subdirectories are marked).
    fn locate(&self, info: &InfoRecord) -> Option<(PathBuf, bool)> {
        let marked = self.dirs.get(&info.key)?;
        let dir = self.fd_path(marked.fd.as_raw_fd())?;
        let name = info.name.as_deref()?;
        if name.is_empty() || name == b"." {
            return Some((dir, marked.whole));
        }
        Some((dir.join(OsStr::from_bytes(name)), marked.whole))
    }

    fn resolve(&mut self, event: &RawEvent) -> Vec<DirentChange> {
        if event.mask & libc::FAN_Q_OVERFLOW != 0 {
            self.counters.overflows.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                "fanotify queue overflow: directory-entry changes were lost (file_dirents)"
            );
            return Vec::new();
        }
        let pid = u32::try_from(event.pid).unwrap_or(0);
        // The agent's own changes update what is known of the files, and are not reported.
        let changes = self.changes(event, pid);
        if pid == self.own_pid {
            if !changes.is_empty() {
                self.counters.own.fetch_add(1, Ordering::Relaxed);
            }
            return Vec::new();
        }
        changes
    }

    fn changes(&mut self, event: &RawEvent, pid: u32) -> Vec<DirentChange> {
        let is_dir = event.mask & libc::FAN_ONDIR != 0;
        let find = |t: u8| event.infos.iter().find(|i| i.info_type == t);
        let target = find(libc::FAN_EVENT_INFO_TYPE_FID);
        let mut out = Vec::new();
        let change = |op, path: Option<PathBuf>, old_path: Option<PathBuf>| DirentChange {
            pid,
            op,
            path,
            old_path,
            target: None,
            inode: None,
            mode: None,
            owner: None,
            is_dir,
            boot_ns: boot_ns(),
        };
        if event.mask & libc::FAN_RENAME != 0 {
            let new = find(libc::FAN_EVENT_INFO_TYPE_NEW_DFID_NAME).and_then(|i| self.locate(i));
            let old = find(libc::FAN_EVENT_INFO_TYPE_OLD_DFID_NAME).and_then(|i| self.locate(i));
            if new.is_none() && old.is_none() {
                self.counters.unresolved.fetch_add(1, Ordering::Relaxed);
                return out;
            }
            if let Some((p, _)) = &old {
                self.attrs.remove(p);
            }
            if let Some((p, _)) = &new {
                self.remember(p);
            }
            // A directory moved into a watched one is watched from now on.
            if is_dir && let Some((p, true)) = &new {
                let _ = self.mark(p, true, SUBDIR_DEPTH);
            }
            // What the set names counts (a directory moved out of the set keeps its mark, and
            // its changes elsewhere are not reported).
            let counts = |p: &Option<(PathBuf, bool)>| {
                p.as_ref()
                    .is_some_and(|(p, _)| self.sensitive.classify(p).is_some())
            };
            if counts(&new) || counts(&old) {
                out.push(change(
                    DirentOp::Renamed,
                    new.map(|n| n.0),
                    old.map(|o| o.0),
                ));
            }
            return out;
        }
        let Some((path, whole)) =
            find(libc::FAN_EVENT_INFO_TYPE_DFID_NAME).and_then(|i| self.locate(i))
        else {
            self.counters.unresolved.fetch_add(1, Ordering::Relaxed);
            return out;
        };
        if self.sensitive.classify(&path).is_none() {
            return out;
        }
        if event.mask & libc::FAN_ATTRIB != 0 && !is_dir {
            for (op, now) in self.attribute_changes(&path) {
                let mut c = change(op, Some(path.clone()), None);
                match op {
                    DirentOp::Chmod => c.mode = Some(now.mode),
                    _ => c.owner = Some((now.uid, now.gid)),
                }
                out.push(c);
            }
        }
        if event.mask & libc::FAN_DELETE != 0 {
            self.attrs.remove(&path);
            // A directory removed: its mark (and the descriptor that held it) goes, so that
            // directories made and removed cannot use the marks up.
            if is_dir
                && let Some(t) = target
                && self.dirs.remove(&t.key).is_some()
            {
                self.counters.marks.fetch_sub(1, Ordering::Relaxed);
            }
            out.push(change(DirentOp::Removed, Some(path.clone()), None));
        }
        if event.mask & libc::FAN_CREATE != 0 {
            self.remember(&path);
            if is_dir {
                if whole {
                    let _ = self.mark(&path, true, SUBDIR_DEPTH);
                }
                return out;
            }
            // What was created: a hard link (more than one name), a symbolic link, or a new
            // file (open with O_CREAT, mknod), which the open sensor reports from the file it
            // opened, and is left to it.
            let Some((kind, nlink, ino, link_target)) = target.and_then(|t| self.inspect(t)) else {
                return out;
            };
            let op = match kind {
                libc::S_IFLNK => DirentOp::Symlinked,
                libc::S_IFREG if nlink > 1 => DirentOp::Linked,
                _ => return out,
            };
            let mut c = change(op, Some(path), None);
            c.inode = Some(ino);
            c.target = link_target;
            out.push(c);
        }
        out
    }

    /// The type, link count and inode of the file a handle names, and a symbolic link's target.
    fn inspect(&self, info: &InfoRecord) -> Option<(u32, u64, u64, Option<String>)> {
        // Any marked directory on the same filesystem serves as the mount to open it on.
        let mount = self
            .dirs
            .iter()
            .find(|(k, _)| k.get(..8) == info.key.get(..8))
            .map(|(_, m)| m.fd.as_raw_fd())?;
        let mut handle = info.handle.clone();
        // SAFETY: handle is a struct file_handle (size, type, bytes) as fanotify wrote it;
        // open_by_handle_at reads it and returns a new descriptor or -1.
        let raw = unsafe {
            libc::syscall(
                libc::SYS_open_by_handle_at,
                mount,
                handle.as_mut_ptr(),
                libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        };
        if raw < 0 {
            return None;
        }
        // SAFETY: a new descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(raw as RawFd) };
        // SAFETY: a zeroed stat is valid; fd is open.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: st is valid to fill.
        if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
            return None;
        }
        let kind = st.st_mode & libc::S_IFMT;
        let target = (kind == libc::S_IFLNK).then(|| {
            let mut buf = [0u8; 4096];
            let empty: &CStr = c"";
            // SAFETY: buf is valid for its length; an empty path reads the link fd itself.
            let n = unsafe {
                libc::readlinkat(
                    fd.as_raw_fd(),
                    empty.as_ptr(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            };
            String::from_utf8_lossy(&buf[..n.max(0) as usize]).into_owned()
        });
        Some((kind, st.st_nlink, st.st_ino, target))
    }
}

impl AsRawFd for DirentWatch {
    fn as_raw_fd(&self) -> RawFd {
        self.fan.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removed_directory_is_named_by_the_path_it_had() {
        let base = std::env::temp_dir().join(format!("vigil-dirents-{}", std::process::id()));
        let live = base.join("x (deleted)");
        let gone = base.join("logs");
        std::fs::create_dir_all(&live).unwrap();
        std::fs::create_dir_all(&gone).unwrap();
        let open = |p: &Path| std::fs::File::open(p).unwrap();
        let (live_fd, gone_fd) = (open(&live), open(&gone));
        std::fs::remove_dir(&gone).unwrap();
        // Removed: the kernel's " (deleted)" is cut. Live, with that suffix in its name: kept.
        assert_eq!(fd_path(gone_fd.as_raw_fd()), Some(gone.clone()));
        assert_eq!(fd_path(live_fd.as_raw_fd()), Some(live.clone()));
        let _ = std::fs::remove_dir_all(&base);
    }

    /// An info record to lay out: type, handle bytes, name.
    type Info<'a> = (u8, &'a [u8], Option<&'a [u8]>);

    /// One event as the kernel lays it out: metadata, then info records.
    fn event(mask: u64, pid: i32, infos: &[Info<'_>]) -> Vec<u8> {
        let mut body = Vec::new();
        for (t, handle, name) in infos {
            let mut rec = vec![*t, 0, 0, 0];
            rec.extend_from_slice(&[7u8; 8]); // fsid
            rec.extend_from_slice(&(handle.len() as u32).to_ne_bytes());
            rec.extend_from_slice(&1i32.to_ne_bytes());
            rec.extend_from_slice(handle);
            if let Some(n) = name {
                rec.extend_from_slice(n);
                rec.push(0);
            }
            while rec.len() % 4 != 0 {
                rec.push(0);
            }
            let len = rec.len() as u16;
            rec[2..4].copy_from_slice(&len.to_ne_bytes());
            body.extend(rec);
        }
        let len = (METADATA_LEN + body.len()) as u32;
        let mut out = Vec::new();
        out.extend_from_slice(&len.to_ne_bytes());
        out.extend_from_slice(&[3, 0]);
        out.extend_from_slice(&(METADATA_LEN as u16).to_ne_bytes());
        out.extend_from_slice(&mask.to_ne_bytes());
        out.extend_from_slice(&(-1i32).to_ne_bytes());
        out.extend_from_slice(&pid.to_ne_bytes());
        out.extend(body);
        out
    }

    #[test]
    fn records_decode_with_their_handles_and_names() {
        let mut buf = event(
            libc::FAN_RENAME,
            42,
            &[
                (libc::FAN_EVENT_INFO_TYPE_OLD_DFID_NAME, &[1; 8], Some(b"a")),
                (
                    libc::FAN_EVENT_INFO_TYPE_NEW_DFID_NAME,
                    &[2; 8],
                    Some(b"job"),
                ),
                (libc::FAN_EVENT_INFO_TYPE_FID, &[3; 8], None),
            ],
        );
        buf.extend(event(libc::FAN_Q_OVERFLOW, -1, &[]));
        let (events, bad) = decode(&buf);
        assert_eq!(bad, 0);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].pid, 42);
        assert_eq!(events[0].infos.len(), 3);
        let new = &events[0].infos[1];
        assert_eq!(new.name.as_deref(), Some(&b"job"[..]));
        let mut key = vec![7u8; 8];
        key.extend_from_slice(&1i32.to_ne_bytes());
        key.extend_from_slice(&[2; 8]);
        assert_eq!(new.key, key, "fsid, handle type, handle bytes");
        assert_eq!(events[0].infos[2].name, None);
        assert_eq!(events[1].mask, libc::FAN_Q_OVERFLOW);
    }

    #[test]
    fn a_truncated_or_lying_record_ends_the_buffer_and_is_counted() {
        let buf = event(
            libc::FAN_CREATE,
            1,
            &[(libc::FAN_EVENT_INFO_TYPE_DFID_NAME, &[1; 8], Some(b"x"))],
        );
        let (events, bad) = decode(&buf[..buf.len() - 3]);
        assert!(events.is_empty());
        assert_eq!(bad, 1);
        let mut lying = buf.clone();
        lying[..4].copy_from_slice(&4u32.to_ne_bytes());
        assert_eq!(decode(&lying), (Vec::new(), 1));
        let mut huge_info = buf;
        huge_info[METADATA_LEN + 2..METADATA_LEN + 4].copy_from_slice(&u16::MAX.to_ne_bytes());
        assert_eq!(decode(&huge_info).1, 1);
        assert_eq!(decode(&[]), (Vec::new(), 0));
    }
}
