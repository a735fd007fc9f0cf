//! SHA-256 of executables, computed once per file version.
//!
//! Findings name the executable by hash so a renamed or copied binary is still recognised.
//! Hashing is costly (a few hundred MB/s), and a host execs the same few binaries over and
//! over, so results are cached by the identity of the file version: device, inode,
//! modification time in nanoseconds and size, taken from the *open* file (`fstat` after
//! `open`), so the key always describes the bytes that were hashed, even if the path is
//! replaced meanwhile. The key also holds the inode change time: `utimensat` can put the
//! modification time back after an in-place edit of the same size, the change time cannot be
//! set from user space, so a tampered binary is never answered from the cache.
//!
//! The reader thread must never stall on a file: a file larger than [`SYNC_HASH_SIZE`], or one
//! on a network or FUSE filesystem (whose server can take any time to answer, or none), is
//! handed to a background hasher thread instead; the exec goes out at once without its hash
//! ([`ExeHashError::Deferred`]) and a later exec of the same file version finds it cached. The
//! filesystem is told from the open handle's mount id (`/proc/self/fdinfo`) and the mount table,
//! neither of which asks the filesystem itself.

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
    fs::File,
    io::{self, Read},
    os::{
        fd::AsRawFd,
        unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt},
    },
    path::{Path, PathBuf},
    sync::mpsc,
};

use serde::{Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// Files larger than this are not hashed (512 MiB): reading them would stall the agent for
/// seconds, and executables that large are rare enough to be worth a finding of their own.
pub const MAX_HASH_SIZE: u64 = 512 * 1024 * 1024;

/// Files up to this size are hashed on the reader thread (tens of milliseconds at most); larger
/// ones by the background hasher.
pub const SYNC_HASH_SIZE: u64 = 16 * 1024 * 1024;
/// Jobs waiting for the background hasher; past it a job is dropped and counted.
pub const BACKGROUND_QUEUE: usize = 64;
/// Filesystem types whose reads may wait on another machine or a user-space server.
const REMOTE_OR_FUSE: &[&str] = &[
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "9p",
    "ceph",
    "glusterfs",
    "afs",
    "lustre",
    "gpfs",
    "ncpfs",
    "coda",
    "fuse",
    "fuseblk",
    "virtiofs",
    "davfs",
];

/// Read buffer size: large enough for few syscalls, small enough to stay in cache.
const CHUNK: usize = 64 * 1024;

/// A SHA-256 digest. Displays and serialises as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The SHA-256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Digest {
    /// 64 lowercase hex digits, written at once (every exec event prints one).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut hex = [0u8; 64];
        for (pair, b) in hex.chunks_exact_mut(2).zip(self.0) {
            pair[0] = HEX[usize::from(b >> 4)];
            pair[1] = HEX[usize::from(b & 0x0f)];
        }
        // Only ASCII hex digits were written.
        f.write_str(std::str::from_utf8(&hex).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Why a file could not be hashed. Every variant names the path.
#[derive(Debug, thiserror::Error)]
pub enum ExeHashError {
    /// The file could not be opened.
    #[error("cannot open {} to hash it: {source}", path.display())]
    Open {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// `fstat` on the open file failed.
    #[error("cannot stat {}: {source}", path.display())]
    Stat {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The path is not a regular file.
    #[error("{} is a {kind}, not a regular file; only regular files are hashed", path.display())]
    NotRegular {
        /// The path.
        path: PathBuf,
        /// What it is instead (`directory`, `fifo`, ...).
        kind: &'static str,
    },
    /// The file is larger than [`MAX_HASH_SIZE`].
    #[error("{} is {size} bytes, over the {limit}-byte hashing limit", path.display())]
    TooLarge {
        /// The path.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Reading the file failed part way.
    #[error("cannot read {} to hash it: {source}", path.display())]
    Read {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file was modified while it was being read: the digest would describe no version
    /// of it, so none is returned (the next exec will hash the new version).
    #[error("{} changed while it was being hashed", path.display())]
    Changed {
        /// The path.
        path: PathBuf,
    },
    /// Handed to the background hasher (or dropped because its queue was full): a later exec
    /// of the same file version finds the digest cached.
    #[error("{} {why}: not hashed on the reader thread", path.display())]
    Deferred {
        /// The path.
        path: PathBuf,
        /// Why, e.g. `is on a FUSE filesystem (fuse.sshfs)`.
        why: String,
    },
}

/// Counters for the agent's health summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExeHashStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that had to read the file (successful or not).
    pub misses: u64,
    /// Bytes read and hashed.
    pub bytes_hashed: u64,
    /// Entries dropped to stay within capacity.
    pub evictions: u64,
    /// Failed hashes.
    pub errors: u64,
    /// Files handed to the background hasher.
    pub deferred: u64,
    /// Files not hashed because the background hasher's queue was full.
    pub background_dropped: u64,
    /// Digests the background hasher delivered into this cache.
    pub background_done: u64,
}

/// What the background hasher is asked to do: hash the file an `O_PATH` handle refers to.
struct Job {
    handle: File,
    path: PathBuf,
}

/// The background hasher: a thread with a bounded queue, and its results.
struct Background {
    jobs: mpsc::SyncSender<Job>,
    done: mpsc::Receiver<(FileKey, Digest)>,
}

impl Background {
    fn start() -> io::Result<Self> {
        let (jobs, queue) = mpsc::sync_channel::<Job>(BACKGROUND_QUEUE);
        let (results, done) = mpsc::channel();
        std::thread::Builder::new()
            .name("vigil-hasher".into())
            .spawn(move || {
                // Its own small cache: files that stay slow (a FUSE binary run again and again)
                // are hashed once per version here too.
                let mut cache = ExeHashCache::new(256);
                for job in queue {
                    match cache.hash_handle(job.handle, &job.path) {
                        Ok((key, digest)) => {
                            if results.send((key, digest)).is_err() {
                                return;
                            }
                        }
                        Err(error) => tracing::debug!(%error, "background hash failed"),
                    }
                }
            })?;
        Ok(Self { jobs, done })
    }
}

/// Mount id to filesystem type, from `/proc/self/mountinfo`, read again when an unknown mount
/// id shows up.
#[derive(Default)]
struct Mounts {
    types: HashMap<u64, String>,
}

impl Mounts {
    /// The filesystem type of the file `handle` is open on, without asking that filesystem.
    fn fs_type(&mut self, handle: &File) -> Option<String> {
        let mnt_id = mount_id(handle)?;
        if !self.types.contains_key(&mnt_id) {
            let table = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
            self.types = parse_mountinfo(&table);
        }
        self.types.get(&mnt_id).cloned()
    }
}

/// The id of the mount `handle` is open on: one `statx` (Linux 5.8 and later) on the hot path
/// of every exec, else `/proc/self/fdinfo` (an open, a read and a parse).
fn mount_id(handle: &File) -> Option<u64> {
    // SAFETY: a zeroed statx is valid; the kernel fills it or fails.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: the fd is open, the path is an empty C string (AT_EMPTY_PATH: the fd itself) and
    // stx is valid to fill.
    let rc = unsafe {
        libc::statx(
            handle.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_MNT_ID,
            &mut stx,
        )
    };
    if rc == 0 && stx.stx_mask & libc::STATX_MNT_ID != 0 {
        return Some(stx.stx_mnt_id);
    }
    let fdinfo =
        std::fs::read_to_string(format!("/proc/self/fdinfo/{}", handle.as_raw_fd())).ok()?;
    fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("mnt_id:"))?
        .trim()
        .parse()
        .ok()
}

/// Mount id to filesystem type, from the text of a `mountinfo` file.
fn parse_mountinfo(text: &str) -> HashMap<u64, String> {
    text.lines()
        .filter_map(|line| {
            let id = line.split_whitespace().next()?.parse().ok()?;
            let (_, after) = line.split_once(" - ")?;
            Some((id, after.split_whitespace().next()?.to_owned()))
        })
        .collect()
}

/// Whether reads on a filesystem of this type can wait on a network or a user-space server.
pub fn is_remote_or_fuse(fs_type: &str) -> bool {
    let base = fs_type.split('.').next().unwrap_or(fs_type);
    REMOTE_OR_FUSE.contains(&base)
}

/// The identity of one version of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct FileKey {
    dev: u64,
    ino: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    size: u64,
}

impl FileKey {
    fn of(meta: &std::fs::Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
            size: meta.size(),
        }
    }
}

struct Entry {
    digest: Digest,
    /// Position in `ExeHashCache::by_use`.
    last_used: u64,
}

/// A bounded cache of executable digests, least recently used evicted first.
pub struct ExeHashCache {
    capacity: usize,
    /// The background hasher, started at the first file that needs it; `None` inside it.
    background: Option<Background>,
    /// Whether this cache may hand work to a background hasher.
    defers: bool,
    mounts: Mounts,
    entries: HashMap<FileKey, Entry>,
    /// Use order: tick -> key; the first entry is the least recently used.
    by_use: BTreeMap<u64, FileKey>,
    tick: u64,
    stats: ExeHashStats,
}

impl ExeHashCache {
    /// A cache holding at most `capacity` digests (0 caches nothing: every call hashes), that
    /// hashes every file itself, however large or slow.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            background: None,
            defers: false,
            mounts: Mounts::default(),
            entries: HashMap::with_capacity(capacity.min(4096)),
            by_use: BTreeMap::new(),
            tick: 0,
            stats: ExeHashStats::default(),
        }
    }

    /// The same cache, handing large files and files on network or FUSE filesystems to a
    /// background hasher instead of reading them itself (the agent's reader thread).
    pub fn deferring(mut self) -> Self {
        self.defers = true;
        self
    }

    /// The SHA-256 of the file at `path`, from the cache when this version of the file was
    /// hashed before.
    pub fn hash_file(&mut self, path: &Path) -> Result<Digest, ExeHashError> {
        self.collect_background();
        let result = self.hash_file_inner(path);
        match &result {
            Err(ExeHashError::Deferred { .. }) | Ok(_) => {}
            Err(_) => self.stats.errors += 1,
        }
        result
    }

    /// The inode `path` names now, from an `O_PATH` handle, or `None` when it cannot be opened
    /// or sits on a network or FUSE filesystem (whose answer could take any time).
    pub fn inode_of(&mut self, path: &Path) -> Option<u64> {
        self.identity_of(path).map(|(_, ino)| ino)
    }

    /// Device (user-space encoding, as `stat` gives it) and inode number of a file, with the
    /// same care as [`Self::inode_of`].
    pub fn identity_of(&mut self, path: &Path) -> Option<(u64, u64)> {
        self.metadata_of(path).map(|m| (m.dev(), m.ino()))
    }

    /// Device, inode number and mode of the file `path` leads to, with the same care as
    /// [`Self::inode_of`].
    pub fn mode_of(&mut self, path: &Path) -> Option<(u64, u64, u32)> {
        self.metadata_of(path).map(|m| (m.dev(), m.ino(), m.mode()))
    }

    /// Inode number and link count of the file `path` leads to (`/proc/<pid>/exe`: the inode a
    /// process runs), with the same care as [`Self::inode_of`].
    pub fn links_of(&mut self, path: &Path) -> Option<(u64, u64)> {
        self.metadata_of(path).map(|m| (m.ino(), m.nlink()))
    }

    /// The inode number of the named FIFO `path` leads to, when it is one (through an `O_PATH`
    /// handle: the FIFO is not opened, so nothing blocks).
    pub fn fifo_inode_of(&mut self, path: &Path) -> Option<u64> {
        use std::os::unix::fs::FileTypeExt;
        self.metadata_of(path)
            .filter(|m| m.file_type().is_fifo())
            .map(|m| m.ino())
    }

    /// The metadata of the file `path` leads to, from an `O_PATH` handle; `None` on a network
    /// or FUSE filesystem when deferring.
    fn metadata_of(&mut self, path: &Path) -> Option<std::fs::Metadata> {
        let handle = open_path(path).ok()?;
        if self.defers
            && self
                .mounts
                .fs_type(&handle)
                .is_some_and(|t| is_remote_or_fuse(&t))
        {
            return None;
        }
        handle.metadata().ok()
    }

    /// Takes in what the background hasher finished.
    fn collect_background(&mut self) {
        let Some(background) = &self.background else {
            return;
        };
        let done: Vec<(FileKey, Digest)> = background.done.try_iter().collect();
        for (key, digest) in done {
            self.stats.background_done += 1;
            self.insert(key, digest);
        }
    }

    /// Hands the file to the background hasher.
    fn defer(&mut self, handle: File, path: &Path, why: String) -> ExeHashError {
        if self.background.is_none() {
            match Background::start() {
                Ok(b) => self.background = Some(b),
                Err(error) => tracing::warn!(%error, "cannot start the background hasher"),
            }
        }
        let job = Job {
            handle,
            path: path.to_path_buf(),
        };
        let queued = self
            .background
            .as_ref()
            .is_some_and(|b| b.jobs.try_send(job).is_ok());
        if queued {
            self.stats.deferred += 1;
            ExeHashError::Deferred {
                path: path.to_path_buf(),
                why,
            }
        } else {
            self.stats.background_dropped += 1;
            ExeHashError::Deferred {
                path: path.to_path_buf(),
                why: format!("{why}, and the background hasher is busy"),
            }
        }
    }

    /// The SHA-256 of the executable of process `pid`, through `/proc/<pid>/exe` (which
    /// opens the file the process runs, even when it was deleted or replaced on disk).
    pub fn hash_process_exe(&mut self, pid: u32) -> Result<Digest, ExeHashError> {
        self.hash_file(&PathBuf::from(format!("/proc/{pid}/exe")))
    }

    /// The cache against its bound, for the health summary.
    pub fn tracked(&self) -> crate::tracked::TrackedTable {
        crate::tracked::TrackedTable::by_entries(
            "exeHashes",
            self.entries.len() as u64,
            self.capacity as u64,
            self.stats.evictions,
        )
    }

    /// Counters so far.
    pub fn stats(&self) -> ExeHashStats {
        self.stats
    }

    /// Digests currently cached.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The most digests kept.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn hash_file_inner(&mut self, path: &Path) -> Result<Digest, ExeHashError> {
        // Open with O_PATH first: it neither reads nor triggers anything, so a path swapped
        // for a FIFO (which would block) or a device (whose open can have effects, think
        // /dev/watchdog) is stat'ed and refused without ever being opened for reading.
        let handle = open_path(path).map_err(|source| ExeHashError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        if self.defers
            && let Some(fs) = self.mounts.fs_type(&handle)
            && is_remote_or_fuse(&fs)
        {
            return Err(self.defer(handle, path, format!("is on a {fs} filesystem")));
        }
        self.hash_open(handle, path).map(|(_, digest)| digest)
    }

    /// Hashes the file an `O_PATH` handle refers to, through the cache; the background hasher's
    /// entry point.
    fn hash_handle(
        &mut self,
        handle: File,
        path: &Path,
    ) -> Result<(FileKey, Digest), ExeHashError> {
        self.hash_open(handle, path)
    }

    fn hash_open(&mut self, handle: File, path: &Path) -> Result<(FileKey, Digest), ExeHashError> {
        let meta = handle.metadata().map_err(|source| ExeHashError::Stat {
            path: path.to_path_buf(),
            source,
        })?;
        let file_type = meta.file_type();
        if !file_type.is_file() {
            return Err(ExeHashError::NotRegular {
                path: path.to_path_buf(),
                kind: kind_name(&file_type),
            });
        }
        if meta.size() > MAX_HASH_SIZE {
            return Err(ExeHashError::TooLarge {
                path: path.to_path_buf(),
                size: meta.size(),
                limit: MAX_HASH_SIZE,
            });
        }
        let key = FileKey::of(&meta);
        if let Some(digest) = self.touch(&key) {
            self.stats.hits += 1;
            return Ok((key, digest));
        }
        if self.defers && meta.size() > SYNC_HASH_SIZE {
            let why = format!("is {} bytes, over {SYNC_HASH_SIZE}", meta.size());
            return Err(self.defer(handle, path, why));
        }
        self.stats.misses += 1;

        // Reopen the very inode the handle refers to (works for deleted files too), so the
        // bytes read belong to the file whose metadata made the key.
        let mut file =
            File::open(format!("/proc/self/fd/{}", handle.as_raw_fd())).map_err(|source| {
                ExeHashError::Open {
                    path: path.to_path_buf(),
                    source,
                }
            })?;
        let digest = self.read_and_hash(&mut file, path, meta.size())?;

        // A writer may have changed the file while it was read (same inode, new mtime or
        // size); then the bytes match no single version and must not be cached under `key`.
        let after = file.metadata().map_err(|source| ExeHashError::Stat {
            path: path.to_path_buf(),
            source,
        })?;
        if FileKey::of(&after) != key {
            return Err(ExeHashError::Changed {
                path: path.to_path_buf(),
            });
        }
        self.insert(key, digest);
        Ok((key, digest))
    }

    /// Reads the whole file from the start, hashing as it goes.
    fn read_and_hash(
        &mut self,
        file: &mut File,
        path: &Path,
        size: u64,
    ) -> Result<Digest, ExeHashError> {
        let mut hasher = Sha256::new();
        // Small files get a small buffer; the rest read in CHUNK pieces.
        let mut buf = vec![0u8; usize::try_from(size).map_or(CHUNK, |s| s.clamp(1, CHUNK))];
        let mut total: u64 = 0;
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(ExeHashError::Read {
                        path: path.to_path_buf(),
                        source,
                    });
                }
            };
            hasher.update(&buf[..n]);
            total += n as u64;
            self.stats.bytes_hashed += n as u64;
            // The file grew past the limit after the size check.
            if total > MAX_HASH_SIZE {
                return Err(ExeHashError::Changed {
                    path: path.to_path_buf(),
                });
            }
        }
        Ok(Digest(hasher.finalize().into()))
    }

    /// Looks `key` up and marks it most recently used.
    fn touch(&mut self, key: &FileKey) -> Option<Digest> {
        let entry = self.entries.get_mut(key)?;
        self.by_use.remove(&entry.last_used);
        self.tick += 1;
        entry.last_used = self.tick;
        self.by_use.insert(self.tick, *key);
        Some(entry.digest)
    }

    fn insert(&mut self, key: FileKey, digest: Digest) {
        if self.capacity == 0 {
            return;
        }
        while self.entries.len() >= self.capacity {
            let Some((_, oldest)) = self.by_use.pop_first() else {
                break;
            };
            self.entries.remove(&oldest);
            self.stats.evictions += 1;
        }
        self.tick += 1;
        self.by_use.insert(self.tick, key);
        if let Some(previous) = self.entries.insert(
            key,
            Entry {
                digest,
                last_used: self.tick,
            },
        ) {
            self.by_use.remove(&previous.last_used);
        }
    }
}

/// An `O_PATH` handle: names the file without reading it or asking its filesystem for data.
fn open_path(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(path)
}

fn kind_name(file_type: &std::fs::FileType) -> &'static str {
    if file_type.is_dir() {
        "directory"
    } else if file_type.is_symlink() {
        "symbolic link"
    } else if file_type.is_fifo() {
        "fifo"
    } else if file_type.is_socket() {
        "socket"
    } else if file_type.is_block_device() {
        "block device"
    } else if file_type.is_char_device() {
        "character device"
    } else {
        "special file"
    }
}

#[cfg(test)]
mod tests {
    use std::{
        fs,
        time::{Duration, SystemTime},
    };

    use super::*;

    /// A scratch directory removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("vigil-exe-hash-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).expect("mkdir");
            Self(dir)
        }

        fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
            let path = self.0.join(name);
            fs::write(&path, bytes).expect("write");
            path
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_large_file_is_hashed_in_the_background_and_found_by_the_next_exec() {
        let dir = Scratch::new("background");
        let bytes = vec![7u8; SYNC_HASH_SIZE as usize + 4096];
        let big = dir.file("big", &bytes);
        let want = Digest::of(&bytes);
        let mut cache = ExeHashCache::new(8).deferring();
        match cache.hash_file(&big) {
            Err(ExeHashError::Deferred { why, .. }) => assert!(why.contains("bytes"), "{why}"),
            other => panic!("expected a deferral, got {other:?}"),
        }
        assert_eq!(cache.stats().deferred, 1);
        // The background hasher delivers; a later lookup of the same version is a cache hit.
        let deadline = std::time::Instant::now() + Duration::from_secs(300);
        loop {
            cache.collect_background();
            if cache.stats().background_done > 0 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the background hasher never finished"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(cache.hash_file(&big).unwrap(), want);
        assert_eq!(cache.stats().hits, 1);
        // A cache that does not defer hashes it itself, to the same digest.
        assert_eq!(ExeHashCache::new(8).hash_file(&big).unwrap(), want);
    }

    #[test]
    fn the_filesystem_is_told_without_asking_it() {
        let table = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
                     95 22 0:48 / /mnt/remote rw,nosuid - fuse.sshfs user@host:/ rw\n\
                     96 22 0:49 / /mnt/nfs rw - nfs4 srv:/export rw,vers=4.2\n";
        let types = parse_mountinfo(table);
        assert_eq!(types[&22], "ext4");
        assert_eq!(types[&95], "fuse.sshfs");
        assert!(is_remote_or_fuse(&types[&95]));
        assert!(is_remote_or_fuse(&types[&96]));
        assert!(
            !is_remote_or_fuse("ext4")
                && !is_remote_or_fuse("tmpfs")
                && !is_remote_or_fuse("overlay")
        );
        let mut mounts = Mounts::default();
        let handle = open_path(Path::new("/proc/self/status")).unwrap();
        assert_eq!(mounts.fs_type(&handle).as_deref(), Some("proc"));
        // statx's mount id is the one /proc/self/fdinfo shows.
        let fdinfo =
            std::fs::read_to_string(format!("/proc/self/fdinfo/{}", handle.as_raw_fd())).unwrap();
        let shown: u64 = fdinfo
            .lines()
            .find_map(|l| l.strip_prefix("mnt_id:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(mount_id(&handle), Some(shown));
    }

    #[test]
    fn known_digests() {
        let dir = Scratch::new("known");
        let mut cache = ExeHashCache::new(8);
        let abc = dir.file("abc", b"abc");
        assert_eq!(
            cache.hash_file(&abc).expect("hash").to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let empty = dir.file("empty", b"");
        assert_eq!(
            cache.hash_file(&empty).expect("hash").to_string(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // Larger than one read chunk: the chunks add up to the one-shot digest.
        let big: Vec<u8> = (0..(3 * CHUNK + 17)).map(|i| (i % 251) as u8).collect();
        let big_path = dir.file("big", &big);
        assert_eq!(cache.hash_file(&big_path).expect("hash"), Digest::of(&big));
    }

    #[test]
    fn same_file_twice_hashes_once() {
        let dir = Scratch::new("twice");
        let path = dir.file("bin", b"#!/bin/sh\necho hi\n");
        let mut cache = ExeHashCache::new(8);
        let first = cache.hash_file(&path).expect("hash");
        let second = cache.hash_file(&path).expect("hash");
        assert_eq!(first, second);
        let stats = cache.stats();
        assert_eq!(stats.misses, 1);
        assert_eq!(stats.hits, 1);
        assert_eq!(stats.bytes_hashed, 18);
        // A hard link is the same inode and the same bytes.
        let link = dir.0.join("link");
        fs::hard_link(&path, &link).expect("link");
        assert_eq!(cache.hash_file(&link).expect("hash"), first);
    }

    #[test]
    fn a_modified_file_is_hashed_again() {
        let dir = Scratch::new("modified");
        let path = dir.file("bin", b"version one");
        let mut cache = ExeHashCache::new(8);
        let before = cache.hash_file(&path).expect("hash");
        fs::write(&path, b"version two").expect("rewrite");
        // Same size; move the mtime explicitly so the test does not depend on timestamp
        // granularity.
        let file = fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open");
        file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000))
            .expect("set mtime");
        drop(file);
        let after = cache.hash_file(&path).expect("hash");
        assert_ne!(before, after);
        assert_eq!(after, Digest::of(b"version two"));
        assert_eq!(cache.stats().misses, 2);
        assert_eq!(cache.stats().hits, 0);
    }

    #[test]
    fn restoring_the_mtime_does_not_fool_the_cache() {
        let dir = Scratch::new("restore");
        let path = dir.file("bin", b"genuine");
        let stamp = SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000);
        let set = |p: &Path| {
            fs::OpenOptions::new()
                .write(true)
                .open(p)
                .expect("open")
                .set_modified(stamp)
                .expect("set mtime");
        };
        set(&path);
        let mut cache = ExeHashCache::new(8);
        let genuine = cache.hash_file(&path).expect("hash");
        // Same size, same mtime after the edit: only the ctime tells them apart. Kernels
        // without fine-grained timestamps stamp ctime per clock tick: wait past one.
        std::thread::sleep(Duration::from_millis(20));
        fs::write(&path, b"trojan!").expect("rewrite");
        set(&path);
        let tampered = cache.hash_file(&path).expect("hash");
        assert_ne!(genuine, tampered);
        assert_eq!(tampered, Digest::of(b"trojan!"));
    }

    #[test]
    fn least_recently_used_is_evicted() {
        let dir = Scratch::new("evict");
        let a = dir.file("a", b"a");
        let b = dir.file("b", b"b");
        let c = dir.file("c", b"c");
        let mut cache = ExeHashCache::new(2);
        cache.hash_file(&a).expect("a");
        cache.hash_file(&b).expect("b");
        // Touch a, so b is the least recently used when c comes in.
        cache.hash_file(&a).expect("a again");
        cache.hash_file(&c).expect("c");
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.stats().evictions, 1);
        let misses = cache.stats().misses;
        cache.hash_file(&a).expect("a cached");
        cache.hash_file(&c).expect("c cached");
        assert_eq!(cache.stats().misses, misses, "a and c stayed");
        cache.hash_file(&b).expect("b rehashed");
        assert_eq!(cache.stats().misses, misses + 1, "b was evicted");
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn zero_capacity_caches_nothing() {
        let dir = Scratch::new("zero");
        let a = dir.file("a", b"a");
        let mut cache = ExeHashCache::new(0);
        cache.hash_file(&a).expect("a");
        cache.hash_file(&a).expect("a");
        assert_eq!(cache.stats().misses, 2);
        assert!(cache.is_empty());
    }

    #[test]
    fn own_executable_through_proc() {
        let mut cache = ExeHashCache::new(4);
        let via_proc = cache
            .hash_process_exe(std::process::id())
            .expect("/proc/self/exe");
        let exe = std::env::current_exe().expect("current exe");
        let direct = Digest::of(&fs::read(exe).expect("read exe"));
        assert_eq!(via_proc, direct);
        // The same inode through its real path: a cache hit.
        let path = fs::read_link("/proc/self/exe").expect("readlink");
        assert_eq!(cache.hash_file(&path).expect("hash"), direct);
        assert_eq!(cache.stats().hits, 1);
    }

    #[test]
    fn deleted_executable_still_hashes_through_proc() {
        let dir = Scratch::new("deleted");
        let path = dir.file("gone", b"soon deleted");
        // Hold the file open and find it through /proc/self/fd, as /proc/<pid>/exe would be.
        let held = File::open(&path).expect("open");
        fs::remove_file(&path).expect("unlink");
        let fd_path = PathBuf::from(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&held)
        ));
        let mut cache = ExeHashCache::new(4);
        assert_eq!(
            cache.hash_file(&fd_path).expect("hash"),
            Digest::of(b"soon deleted")
        );
    }

    #[test]
    fn errors_name_the_path() {
        let dir = Scratch::new("errors");
        let mut cache = ExeHashCache::new(4);
        let err = cache.hash_file(&dir.0).expect_err("a directory");
        assert!(
            matches!(
                err,
                ExeHashError::NotRegular {
                    kind: "directory",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains(&dir.0.display().to_string()));

        let missing = dir.0.join("missing-binary");
        let err = cache.hash_file(&missing).expect_err("missing");
        assert!(matches!(err, ExeHashError::Open { .. }), "{err:?}");
        assert!(err.to_string().contains("missing-binary"), "{err}");

        let err = cache.hash_file(Path::new("/dev/null")).expect_err("device");
        assert!(
            matches!(
                err,
                ExeHashError::NotRegular {
                    kind: "character device",
                    ..
                }
            ),
            "{err:?}"
        );
        // A path swapped for a link to a device is refused too.
        let link = dir.0.join("swapped");
        std::os::unix::fs::symlink("/dev/null", &link).expect("symlink");
        let err = cache.hash_file(&link).expect_err("link to device");
        assert!(
            matches!(
                err,
                ExeHashError::NotRegular {
                    kind: "character device",
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(cache.stats().errors, 4);
        assert_eq!(cache.stats().bytes_hashed, 0);
    }

    #[test]
    fn fifo_does_not_block() {
        let dir = Scratch::new("fifo");
        let fifo = dir.0.join("pipe");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("cstr");
        // SAFETY: a valid NUL-terminated path and a plain mode.
        let rc = unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) };
        assert_eq!(rc, 0, "mkfifo");
        let mut cache = ExeHashCache::new(4);
        let err = cache.hash_file(&fifo).expect_err("fifo");
        assert!(
            matches!(err, ExeHashError::NotRegular { kind: "fifo", .. }),
            "{err:?}"
        );
    }

    #[test]
    fn too_large_files_are_refused() {
        let dir = Scratch::new("large");
        let path = dir.file("huge", b"");
        // A sparse file: no disk used, but its size is over the limit.
        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open")
            .set_len(MAX_HASH_SIZE + 1)
            .expect("truncate");
        let mut cache = ExeHashCache::new(4);
        let err = cache.hash_file(&path).expect_err("too large");
        assert!(
            matches!(err, ExeHashError::TooLarge { size, limit, .. }
                if size == MAX_HASH_SIZE + 1 && limit == MAX_HASH_SIZE),
            "{err:?}"
        );
        assert!(err.to_string().contains("huge"));
        assert_eq!(cache.stats().bytes_hashed, 0);
    }

    #[test]
    fn digest_formats() {
        let d = Digest::of(b"abc");
        assert_eq!(
            serde_json::to_string(&d).expect("json"),
            "\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\""
        );
        assert!(format!("{d:?}").starts_with("Digest(ba7816bf"));
    }
}
