//! Ring-buffer record layouts.

use core::mem::{offset_of, size_of};

/// Version of the record layouts; bumped on any change to a struct in this module.
pub const ABI_VERSION: u32 = 7;

/// Bytes of `comm` (the kernel's `TASK_COMM_LEN`).
pub const COMM_LEN: usize = 16;
/// Bytes kept of the path given to `execve` (`bprm->filename`).
pub const FILENAME_LEN: usize = 256;
/// Bytes kept of the working directory, built in the kernel from the dentry chain.
pub const CWD_LEN: usize = 512;
/// Bytes kept of the NUL-separated argument vector.
pub const ARGV_LEN: usize = 2048;
/// Bytes of a longer argument vector kept from its end (after [`ARGV_HEAD_LEN`] from its
/// start, [`exec_flags::ARGV_TAIL`]): padding cannot push what follows it out of sight.
pub const ARGV_TAIL_LEN: usize = 768;
/// Bytes of a longer argument vector kept from its start.
pub const ARGV_HEAD_LEN: usize = ARGV_LEN - ARGV_TAIL_LEN;
/// Bytes kept of a unix socket path (`sizeof(sun_path)`).
pub const UNIX_PATH_LEN: usize = 108;
/// Bytes kept of a DNS message.
pub const DNS_PAYLOAD_LEN: usize = 512;
/// Bytes kept of the payload of a TCP segment in a [`StreamEvent`].
pub const STREAM_HEAD_LEN: usize = 512;
/// The data segments at the start of each TCP connection that the stream sensor looks at; later
/// ones leave the program after two context reads.
pub const STREAM_SEGMENTS: u32 = 4;
/// Bytes kept of a path in file and activity records.
pub const PATH_LEN: usize = 256;
/// Bytes kept of an `LD_PRELOAD`, `LD_AUDIT` or `LD_LIBRARY_PATH` value.
pub const ENV_VALUE_LEN: usize = 256;
/// Bytes kept of a short string (a file system type).
pub const SHORT_STR_LEN: usize = 64;

/// Record kinds. See the crate documentation for the ranges.
pub mod kind {
    /// A process replaced its image ([`super::ExecEvent`]).
    pub const EXEC: u16 = 0x0100;
    /// A new process (not a thread) was created ([`super::ForkEvent`]).
    pub const FORK: u16 = 0x0101;
    /// A process ended ([`super::ExitEvent`]).
    pub const EXIT: u16 = 0x0102;
    /// `connect(2)` returned ([`super::NetEvent`]).
    pub const CONNECT: u16 = 0x0200;
    /// `accept(2)`/`accept4(2)` returned ([`super::NetEvent`]).
    pub const ACCEPT: u16 = 0x0201;
    /// One of the first data segments of an outgoing TCP connection started like a JSON
    /// object ([`super::StreamEvent`]).
    pub const STREAM: u16 = 0x0202;
    /// The handshake of a non-blocking TCP connect that returned `EINPROGRESS` failed after the
    /// syscall returned ([`super::NetEvent`]; the task is the one that called connect,
    /// recorded then, since the answer arrives in softirq).
    pub const CONNECT_OUTCOME: u16 = 0x0203;
    /// A DNS message left or reached a process ([`super::DnsEvent`]).
    pub const DNS: u16 = 0x0300;
    /// A file operation on a sensitive path ([`super::FileEvent`]).
    pub const FILE: u16 = 0x0400;
    /// Kernel-level activity: memfd, ptrace, modules, mounts, namespaces, privileges
    /// ([`super::ActivityEvent`]).
    pub const ACTIVITY: u16 = 0x0500;
    /// Benchmark records from the synthetic program ([`super::SyntheticEvent`]); range
    /// `0x7f00-0x7fff` is for test and benchmark records only.
    pub const SYNTHETIC: u16 = 0x7f00;
}

/// The first 16 bytes of every record.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventHeader {
    /// One of the constants in [`kind`].
    pub kind: u16,
    /// Explicit padding; always zero.
    pub _pad: u16,
    /// Size of the whole record in bytes, header included.
    pub size: u32,
    /// `bpf_ktime_get_boot_ns()` when the record was made (boot time, includes suspend).
    pub ktime_ns: u64,
}

/// Who did something: the identity of the task that caused a record.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskIdentity {
    /// Thread id (the kernel's `pid`).
    pub pid: u32,
    /// Process id (the kernel's `tgid`).
    pub tgid: u32,
    /// Process id of the parent (`real_parent->tgid`); 0 when unknown.
    pub ppid: u32,
    /// Real user id.
    pub uid: u32,
    /// Real group id.
    pub gid: u32,
    /// Effective user id.
    pub euid: u32,
    /// Effective group id.
    pub egid: u32,
    /// Inode number of the pid namespace; 0 when unknown.
    pub pid_ns: u32,
    /// Inode number of the mount namespace; 0 when unknown.
    pub mnt_ns: u32,
    /// Explicit padding; always zero.
    pub _pad: u32,
    /// cgroup v2 id (the inode number of the cgroup's directory).
    pub cgroup_id: u64,
    /// Process start time in ns since boot (`group_leader->start_boottime`); 0 when unknown.
    pub start_time_ns: u64,
    /// The task's `comm`, NUL-padded.
    pub comm: [u8; COMM_LEN],
}

/// Flags of [`ExecEvent::flags`].
pub mod exec_flags {
    /// The argument vector was longer than [`super::ARGV_LEN`] bytes.
    pub const ARGV_TRUNCATED: u32 = 1 << 0;
    /// The argument vector could not be read from the new image.
    pub const ARGV_UNREADABLE: u32 = 1 << 1;
    /// The filename was longer than [`super::FILENAME_LEN`] bytes.
    pub const FILENAME_TRUNCATED: u32 = 1 << 2;
    /// The working directory was deeper or longer than the kernel walk keeps.
    pub const CWD_TRUNCATED: u32 = 1 << 3;
    /// The working directory could not be read.
    pub const CWD_UNREADABLE: u32 = 1 << 4;
    /// The executable is a memfd (`memfd:` file): fileless execution.
    pub const EXE_MEMFD: u32 = 1 << 5;
    /// The executable has no link left on disk (deleted, or an `O_TMPFILE`).
    pub const EXE_DELETED: u32 = 1 << 6;
    /// The executable was written or created after the agent started ([`super::ExecEvent::writer`]).
    pub const EXE_WRITTEN: u32 = 1 << 7;
    /// The environment had more variables than the kernel scans for `LD_*`.
    pub const ENV_TRUNCATED: u32 = 1 << 8;
    /// The effective uid differs from the real one after the exec (a setuid binary).
    pub const EUID_CHANGED: u32 = 1 << 9;
    /// With [`ARGV_TRUNCATED`]: `argv` holds the first [`super::ARGV_HEAD_LEN`] bytes of the
    /// argument vector, then its last [`super::ARGV_TAIL_LEN`]; the middle is left out.
    pub const ARGV_TAIL: u32 = 1 << 10;
    /// `GLIBC_TUNABLES` is set in the environment (among the variables scanned for `LD_*`).
    pub const ENV_GLIBC_TUNABLES: u32 = 1 << 11;
    /// `LD_AUDIT` is set and `LD_PRELOAD` is not: [`super::ExecEvent::ld_preload`] holds
    /// `LD_AUDIT`'s value. The two share one buffer (the record is on the exec path);
    /// `LD_PRELOAD` keeps it when both are set, and [`ENV_LD_AUDIT_UNREAD`] says so.
    pub const ENV_LD_AUDIT: u32 = 1 << 12;
    /// `LD_AUDIT` was set beside `LD_PRELOAD`, and its value was not kept.
    pub const ENV_LD_AUDIT_UNREAD: u32 = 1 << 13;
}

/// Entries of the kernel's written-files map (`WRITTEN`, an LRU): past this many files
/// written since the agent started, the oldest are evicted.
pub const WRITTEN_FILES_MAX: u32 = 65_536;

/// Entries of the kernel's `GUARDED` map: the processes (by tgid) whose stopping signals the
/// kernel reports, the host's security agents (`activity::SIGNAL_GUARDED`) and programs named
/// like miners (`activity::SIGNAL_MINER`).
pub const GUARDED_MAX: u32 = 256;

/// What a process in the `GUARDED` map is (the map's value).
pub mod guarded {
    /// Another security agent on the host.
    pub const SECURITY_AGENT: u32 = 1;
    /// A program named like a cryptocurrency miner: another miner killing it is a competitor
    /// cleared away.
    pub const MINER: u32 = 2;
}

/// Identity of a file as the kernel's written-files map (`WRITTEN`) keys it: the super block's
/// device (kernel encoding, `major << 20 | minor`) and the inode number.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FileKey {
    /// `s_dev` of the file's super block.
    pub dev: u32,
    /// Explicit padding; always zero.
    pub _pad: u32,
    /// Inode number.
    pub ino: u64,
}

// SAFETY: #[repr(C)] of integers with the padding explicit, every bit pattern valid.
#[cfg(feature = "user")]
unsafe impl aya::Pod for FileKey {}

// SAFETY: as above.
#[cfg(feature = "user")]
unsafe impl aya::Pod for WriterInfo {}

/// Who wrote a file, remembered in the kernel from the write until an exec or library load.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterInfo {
    /// Process id of the writer; 0 when nobody is recorded.
    pub tgid: u32,
    /// Its real uid.
    pub uid: u32,
    /// When the file was opened for writing, boot-time ns.
    pub time_ns: u64,
    /// Its `comm`.
    pub comm: [u8; COMM_LEN],
}

/// A socket standing in for one of the standard streams (or the peer of a dup'ed socket).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SocketPeer {
    /// [`family`] of the socket, 0 when the fd is not a socket.
    pub family: u16,
    /// `SOCK_STREAM` (1), `SOCK_DGRAM` (2), ...
    pub sock_type: u16,
    /// Remote port, host byte order.
    pub port: u16,
    /// Explicit padding; always zero.
    pub _pad: u16,
    /// Remote address (4 or 16 bytes used), network byte order.
    pub addr: [u8; 16],
}

/// Inherited pipe file descriptors beyond the standard streams kept in an exec record.
pub const FD_PIPES: usize = 2;

/// A pipe the new program inherited on a file descriptor above 2: what process substitution
/// (`bash <(curl ...)` runs `bash /dev/fd/63`) hands over.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FdPipe {
    /// The file descriptor; meaningful only when `ino` is not 0.
    pub fd: u32,
    /// Explicit padding; always zero.
    pub _pad: u32,
    /// Inode number of the pipe (see [`ExecEvent::stdio_pipes`]); 0 for an unused slot.
    pub ino: u64,
}

/// The executable's file object as the kernel holds it (`mm->exe_file`): its mount and dentry
/// (kernel addresses, used by user space as an opaque identity and never output), and its
/// inode's change time. The change time moves on every write, chmod, chown, link, unlink and
/// rename of the file, and a process cannot set it back; a different name for the same inode
/// (a hard link, a bind mount) is a different dentry or mount.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ExeObject {
    /// `exe_file->f_path.mnt`; 0 when unreadable.
    pub mnt: u64,
    /// `exe_file->f_path.dentry`; 0 when unreadable.
    pub dentry: u64,
    /// The inode's change time, seconds (real-time clock).
    pub ctime_sec: i64,
    /// Its nanoseconds.
    pub ctime_nsec: u32,
    /// Explicit padding; always zero.
    pub _pad: u32,
}

/// A successful exec, emitted once per exec from `sched_process_exec`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecEvent {
    /// `kind::EXEC`.
    pub header: EventHeader,
    /// The process after the exec (its `comm` is the new one).
    pub task: TaskIdentity,
    /// Inode number of the executable (`mm->exe_file`); 0 when unknown.
    pub exe_ino: u64,
    /// Device of the executable's super block (`s_dev`, kernel encoding); 0 when unknown.
    pub exe_dev: u32,
    /// [`exec_flags`].
    pub flags: u32,
    /// Bytes used in `argv` (NUL-separated arguments, the last one NUL-terminated).
    pub argv_len: u32,
    /// Bytes used in `filename`, without the terminating NUL.
    pub filename_len: u32,
    /// Bytes used in `cwd`. The kernel writes the path components leaf first, each followed by
    /// a NUL (`"b\0a\0"` for `/a/b`); [`crate::decode`] turns it around.
    pub cwd_len: u32,
    /// Number of components in `cwd`.
    pub cwd_depth: u32,
    /// File types of file descriptors 0, 1 and 2, one byte each (byte `n` for fd `n`): the
    /// inode's `S_IFMT` bits shifted down 12 (`0x1` pipe, `0x2` character device, `0x8` regular
    /// file, `0xc` socket, ...), 0 when the fd is closed. The top byte is zero.
    pub stdio_types: u32,
    /// Link count of the executable.
    pub exe_nlink: u32,
    /// Who wrote the executable since the agent started (with [`exec_flags::EXE_WRITTEN`]).
    pub writer: WriterInfo,
    /// Without [`exec_flags::EXE_WRITTEN`]: the seconds of the executable's change time
    /// (`ctime`, real-time clock) when it is at or after the agent's start
    /// (`AgentConfig::start_realtime_sec`), else 0. The kernel sets `ctime` on every write,
    /// chmod, chown, rename and link; a process cannot set it back. It shows a binary written
    /// since the agent started that the written-files map no longer holds.
    pub exe_ctime_sec: i64,
    /// With `exe_ctime_sec`: its nanoseconds.
    pub exe_ctime_nsec: u32,
    /// When standard input is a regular file (`sh < x.sh`): its device (`s_dev`, kernel
    /// encoding), else 0.
    pub stdin_dev: u32,
    /// When the first process of the process's container started (ns since boot; the init of
    /// its outermost pid namespace below the host's), 0 on the host: a file written or changed
    /// before that came with the container.
    pub ns_init_start_ns: u64,
    /// When standard input is a regular file: its inode number, else 0.
    pub stdin_ino: u64,
    /// File descriptors 0, 1 and 2 when they are sockets (family 0 otherwise).
    pub stdio: [SocketPeer; 3],
    /// Inode numbers of the pipes on file descriptors 0 and 1, 0 when the fd is not a pipe
    /// (or a FIFO). Both ends of a pipe share its inode: the writer's standard output and the
    /// reader's standard input show the same number.
    pub stdio_pipes: [u64; 2],
    /// Pipes on inherited file descriptors from 3 to 63, highest first, at most [`FD_PIPES`]
    /// (the kernel looks at the three highest open ones).
    pub fd_pipes: [FdPipe; FD_PIPES],
    /// Bytes used in `ld_preload`; 0 when neither `LD_PRELOAD` nor `LD_AUDIT` was set.
    pub ld_preload_len: u32,
    /// Bytes used in `ld_library_path`; 0 when `LD_LIBRARY_PATH` was not set.
    pub ld_library_path_len: u32,
    /// Inode number of the root directory the new image runs under (`fs->root`, which a
    /// chroot moves); 0 when unknown.
    pub root_ino: u64,
    /// Device of that root directory's super block (`s_dev`, kernel encoding); 0 when unknown.
    pub root_dev: u32,
    /// Explicit padding; always zero.
    pub _pad_root: u32,
    /// Which file object the process runs, and which version of it: what lets user space
    /// answer a repeated exec of the same binary from its cache without opening anything.
    pub exe_object: ExeObject,
    /// The path given to exec (`bprm->filename`), relative to `cwd` when not absolute.
    pub filename: [u8; FILENAME_LEN],
    /// The working directory, leaf first (see `cwd_len`).
    pub cwd: [u8; CWD_LEN],
    /// The argument vector, NUL-separated.
    pub argv: [u8; ARGV_LEN],
    /// The value of `LD_PRELOAD`, or of `LD_AUDIT` with [`exec_flags::ENV_LD_AUDIT`]: the
    /// libraries the loader maps before the program's own.
    pub ld_preload: [u8; ENV_VALUE_LEN],
    /// The value of `LD_LIBRARY_PATH`.
    pub ld_library_path: [u8; ENV_VALUE_LEN],
}

/// A new process, emitted from `sched_process_fork` when the child is a thread-group leader.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ForkEvent {
    /// `kind::FORK`.
    pub header: EventHeader,
    /// The parent (the forking task).
    pub task: TaskIdentity,
    /// Process id of the child.
    pub child_tgid: u32,
    /// Explicit padding; always zero.
    pub _pad: u32,
    /// Start time of the child in ns since boot.
    pub child_start_time_ns: u64,
}

/// A process ended, emitted from `sched_process_exit` for the thread-group leader.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitEvent {
    /// `kind::EXIT`.
    pub header: EventHeader,
    /// The exiting process.
    pub task: TaskIdentity,
    /// The kernel's `exit_code`: `(status << 8) | termsig`, as `wait(2)` reports it.
    pub exit_code: u32,
    /// Explicit padding; always zero.
    pub _pad: u32,
}

/// Address families used in [`NetEvent::family`] and [`DnsEvent::family`].
pub mod family {
    /// `AF_UNIX`.
    pub const UNIX: u16 = 1;
    /// `AF_INET`.
    pub const INET: u16 = 2;
    /// `AF_INET6`.
    pub const INET6: u16 = 10;
}

/// A `connect(2)` or `accept(2)` that returned, with the remote end.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetEvent {
    /// `kind::CONNECT`, `kind::CONNECT_OUTCOME` or `kind::ACCEPT`.
    pub header: EventHeader,
    /// The calling process.
    pub task: TaskIdentity,
    /// The syscall's return: 0 or the new fd on success, `-errno` on failure.
    pub ret: i32,
    /// The socket's file descriptor (the listening one for accept).
    pub fd: i32,
    /// One of [`family`], 0 when the address was not given or unreadable.
    pub family: u16,
    /// `SOCK_STREAM` (1), `SOCK_DGRAM` (2), or 0 when unknown.
    pub sock_type: u16,
    /// `IPPROTO_TCP` (6), `IPPROTO_UDP` (17), or 0 when unknown.
    pub protocol: u16,
    /// Remote port in host byte order.
    pub port: u16,
    /// Remote address: 4 bytes for IPv4, 16 for IPv6, network byte order.
    pub addr: [u8; 16],
    /// Bytes used in `unix_path` (for `AF_UNIX`; an abstract name starts with a NUL).
    pub unix_path_len: u32,
    /// How many identical events (the same process, kind, peer address, port, protocol and
    /// result; for accept any peer port) were counted in the kernel, not sent, since the last
    /// record of this event: each was folded into the next record (`AgentConfig::repeat_window_ms`).
    pub repeats: u32,
    /// The unix socket path.
    pub unix_path: [u8; UNIX_PATH_LEN],
    /// For a TCP connect that returned `EINPROGRESS`: `-errno` of how its handshake failed
    /// (`-ECONNREFUSED`, `-ETIMEDOUT`), when that was known at the syscall's exit (an answer from
    /// this host) or, in a `kind::CONNECT_OUTCOME` record, when it came later; in such a record 0
    /// means the process closed the socket before any answer. 0 otherwise.
    pub outcome: i32,
}

/// Values of [`DnsEvent::direction`].
pub mod direction {
    /// A message sent by the process (a query).
    pub const EGRESS: u16 = 1;
    /// A message received by the process (an answer).
    pub const INGRESS: u16 = 2;
}

/// Flags of [`DnsEvent::flags`].
pub mod dns_flags {
    /// The message was longer than [`super::DNS_PAYLOAD_LEN`] bytes.
    pub const TRUNCATED: u32 = 1 << 0;
    /// The socket was not in the kernel's table of DNS sockets (its entry evicted by a flood of
    /// other sockets aimed at port 53, or never seen); the message was reported because it is to
    /// or from port 53. `task` is the task that sent it, unless [`OWNER_UNKNOWN`] is set.
    pub const UNTRACKED: u32 = 1 << 1;
    /// With [`UNTRACKED`]: no task is known (an answer coming in, a segment sent from softirq);
    /// `task` is all zero but for `cgroup_id`, the socket's cgroup.
    pub const OWNER_UNKNOWN: u32 = 1 << 2;
}

/// A DNS message on a socket that a process pointed at port 53.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnsEvent {
    /// `kind::DNS`.
    pub header: EventHeader,
    /// The process that owns the socket (recorded when it connected or sent to port 53; see
    /// [`dns_flags::UNTRACKED`] for a socket the table no longer held).
    pub task: TaskIdentity,
    /// One of [`direction`].
    pub direction: u16,
    /// `IPPROTO_UDP` (17) or `IPPROTO_TCP` (6).
    pub protocol: u16,
    /// [`family::INET`] or [`family::INET6`].
    pub family: u16,
    /// The resolver's port in host byte order.
    pub port: u16,
    /// The resolver's address (4 or 16 bytes used, network byte order).
    pub addr: [u8; 16],
    /// Bytes used in `payload`. For TCP the two-byte length prefix is included.
    pub payload_len: u32,
    /// [`dns_flags`].
    pub flags: u32,
    /// The DNS message as it was on the wire.
    pub payload: [u8; DNS_PAYLOAD_LEN],
}

/// Flags of [`StreamEvent::flags`].
pub mod stream_flags {
    /// The payload was longer than [`super::STREAM_HEAD_LEN`] bytes.
    pub const TRUNCATED: u32 = 1 << 0;
    /// The segment left while no task held the socket's lock (softirq: a retransmission, data
    /// queued until the window opened): the sender is not known and `task` is all zero.
    pub const OWNER_UNKNOWN: u32 = 1 << 1;
}

/// One of the first [`STREAM_SEGMENTS`] data segments of an outgoing TCP connection, sent when its
/// payload starts (after at most 15 bytes of white space) with `{`: what a JSON-RPC client such
/// as a stratum miner sends first. User space decides what the message is.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamEvent {
    /// `kind::STREAM`.
    pub header: EventHeader,
    /// The process that sent the segment: the task holding the socket's lock (see
    /// [`stream_flags::OWNER_UNKNOWN`]).
    pub task: TaskIdentity,
    /// The socket's cookie (`bpf_get_socket_cookie`): the same for every segment of one
    /// connection.
    pub cookie: u64,
    /// [`family::INET`] or [`family::INET6`].
    pub family: u16,
    /// Local port, host byte order.
    pub local_port: u16,
    /// Remote port, host byte order.
    pub remote_port: u16,
    /// Explicit padding; always zero.
    pub _pad: u16,
    /// Remote address (4 or 16 bytes used, network byte order).
    pub addr: [u8; 16],
    /// Data segments the connection sent before this one (0 for the first).
    pub segment: u32,
    /// [`stream_flags`].
    pub flags: u32,
    /// Bytes of payload in the segment.
    pub payload_len: u32,
    /// Bytes used in `head`.
    pub head_len: u32,
    /// The first bytes of the payload.
    pub head: [u8; STREAM_HEAD_LEN],
}

/// Operations in [`FileEvent::op`].
pub mod file_op {
    /// `open`/`openat`/`openat2`/`creat` for writing, creating or truncating.
    pub const OPEN_WRITE: u16 = 1;
    /// `rename`/`renameat`/`renameat2` (`path` old, `path2` new).
    pub const RENAME: u16 = 2;
    /// `link`/`linkat` (`path` existing, `path2` new).
    pub const LINK: u16 = 3;
    /// `symlink`/`symlinkat` (`path` the new link, `path2` its target).
    pub const SYMLINK: u16 = 4;
    /// `unlink`/`unlinkat`.
    pub const UNLINK: u16 = 5;
    /// `chmod`/`fchmodat` adding execute, setuid or setgid bits.
    pub const CHMOD: u16 = 6;
    /// `chown`/`fchownat`/`lchown`.
    pub const CHOWN: u16 = 7;
    /// `open`/`openat`/`openat2` read-only of `/proc/<pid>/mem` (another process's memory read:
    /// a memory dump).
    pub const OPEN_READ: u16 = 8;
    /// `open`/`openat`/`openat2` read-only by a shell of a regular file that another process
    /// wrote since the agent started ([`super::file_flags::WRITTEN_BY_OTHER`]) or that lives on a
    /// memory-backed file system ([`super::file_flags::MEMORY_FS`]): maybe a script the running
    /// shell reads as code (`. x.sh`), maybe data; `ret` is the fd.
    pub const OPEN_SCRIPT: u16 = 9;
    /// `dup2`/`dup3` by the same thread of an fd holding the file its last [`OPEN_SCRIPT`]
    /// returned (`dev`, `ino`): a redirection (`< file`), so that file was data, not code; or
    /// perl's `fstat` of it (a data `open`). `ret` is the fd, `dirfd` the new one (the same for
    /// perl); no paths.
    pub const REDIRECT: u16 = 10;
    /// `setxattr`/`lsetxattr`/`fsetxattr` of `system.posix_acl_access` (a file's access ACL:
    /// `setfacl -m u:NAME:r FILE`); the ACL itself is read back in user space.
    pub const SET_ACL: u16 = 11;
}

/// How a shell (or perl) reads a script it sources, which decides what the kernel takes as proof
/// that a file it opened was sourced (the values of the eBPF `SHELL_NAMES` map).
pub mod shell_kind {
    /// bash: `fstat` of the new fd, then one `read` of the whole file, `close`.
    pub const BASH: u32 = 1;
    /// Any other shell: sent at once, dropped by user space when the shell then `dup2`s it.
    pub const OTHER: u32 = 2;
    /// perl: `do FILE`, `require` and `use` read a file without an `fstat` of the fd, a data
    /// `open` `fstat`s it: sent at once, dropped by user space when perl then `fstat`s it.
    pub const PERL: u32 = 3;
}

/// Why the kernel kept a file record ([`FileEvent::match_flags`]) and what was cut.
pub mod file_flags {
    /// An absolute path matched a configured prefix or exact path.
    pub const MATCH_PREFIX: u32 = 1 << 0;
    /// The last path component matched a configured file name.
    pub const MATCH_NAME: u32 = 1 << 1;
    /// `path` was longer than [`super::PATH_LEN`].
    pub const PATH_TRUNCATED: u32 = 1 << 2;
    /// `path2` was longer than [`super::PATH_LEN`].
    pub const PATH2_TRUNCATED: u32 = 1 << 3;
    /// A process's memory file (`/proc/<pid>/mem`, `/proc/<pid>/task/<tid>/mem`) opened: known
    /// from the procfs inode the open returned ([`super::FileEvent::target_tgid`]), or, for a
    /// failed open, from the path the process passed.
    pub const PROC_MEM: u32 = 1 << 4;
    /// `base` holds the directory a relative `path` starts from.
    pub const HAS_BASE: u32 = 1 << 5;
    /// `base` was deeper or longer than the kernel walks.
    pub const BASE_TRUNCATED: u32 = 1 << 6;
    /// A systemd journal file (`*.journal`, `*.journal~`) removed or renamed, wherever it is.
    pub const MATCH_JOURNAL: u32 = 1 << 7;
    /// `base` holds the path of the file an open returned (walked from its dentry in the
    /// kernel), root first and NUL-terminated, not a directory: the path the open resolved
    /// to, whatever string led there.
    pub const OBJECT_PATH: u32 = 1 << 8;
    /// The kernel could not match the path as written (`.`, `..` or empty components, a path
    /// through `/proc`, one cut at the read bound, or a directory it could not walk whole): sent
    /// for user space to normalise and match.
    pub const UNRESOLVED: u32 = 1 << 9;
    /// [`super::file_op::OPEN_SCRIPT`]: the written-files map holds the file, with a writer
    /// other than the process opening it.
    pub const WRITTEN_BY_OTHER: u32 = 1 << 10;
    /// [`super::file_op::OPEN_SCRIPT`]: the file's super block is a tmpfs or ramfs one.
    pub const MEMORY_FS: u32 = 1 << 11;
    /// [`super::file_op::OPEN_READ`] of a file named `shadow` or `gshadow` (or their `-`
    /// backups), kept when the file the open returned, walked from its dentry, is a sensitive
    /// path ([`OBJECT_PATH`]); a failed open by the path as passed. The password hashes read.
    pub const CREDENTIALS: u32 = 1 << 12;
    /// [`super::file_op::OPEN_SCRIPT`]: the file is a pipe (`source <(curl URL)` opens
    /// `/dev/fd/63`); [`super::FileEvent::ino`] is the pipe's inode, whose writer the exec
    /// records name.
    pub const PIPE: u32 = 1 << 13;
    /// A setuid or setgid bit asked for, wherever the file is: a `chmod` family call whose mode
    /// has one, or an open that may create a regular file (`O_CREAT`) with one in its mode
    /// (`install -m 4755`, `os.chmod(p, 0o4755)`, `open(p, O_CREAT, 04755)`). User space reads
    /// the file's mode back.
    pub const SET_ID: u32 = 1 << 14;
}

/// A file operation that passed the kernel's sensitive-path filter, with its result.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileEvent {
    /// `kind::FILE`.
    pub header: EventHeader,
    /// The calling process.
    pub task: TaskIdentity,
    /// One of [`file_op`].
    pub op: u16,
    /// Explicit padding; always zero.
    pub _pad: u16,
    /// [`file_flags`].
    pub match_flags: u32,
    /// The syscall's return (an fd for open, 0, or `-errno`).
    pub ret: i64,
    /// Directory fd `path` is relative to (`AT_FDCWD` is -100).
    pub dirfd: i32,
    /// Directory fd `path2` is relative to.
    pub dirfd2: i32,
    /// `open` flags.
    pub open_flags: u32,
    /// The mode argument (open with `O_CREAT`, chmod).
    pub mode: u32,
    /// chown's new owner (`u32::MAX` for unchanged).
    pub uid: u32,
    /// chown's new group.
    pub gid: u32,
    /// Inode of the file opened (successful open only).
    pub ino: u64,
    /// Device of that inode (kernel encoding).
    pub dev: u32,
    /// For [`file_flags::PROC_MEM`] when the open returned the memory file: the process whose
    /// memory it is (its thread group, in the kernel's initial pid namespace), found from the
    /// procfs inode, whatever path led there. 0 when unknown (a failed open).
    pub target_tgid: u32,
    /// Bytes used in `path`.
    pub path_len: u32,
    /// Bytes used in `path2`.
    pub path2_len: u32,
    /// The path as the caller gave it.
    pub path: [u8; PATH_LEN],
    /// The second path (rename, link, symlink).
    pub path2: [u8; PATH_LEN],
    /// Bytes used in `base`.
    pub base_len: u32,
    /// Components in `base`.
    pub base_depth: u32,
    /// For a successful open ([`file_flags::OBJECT_PATH`]): the path of the file opened, root
    /// first, `base_len` bytes. Otherwise, for a relative `path`: the directory it starts from
    /// (the working directory, or the directory fd); for an absolute `path` and a relative
    /// `path2`: `path2`'s directory; leaf first like [`ExecEvent::cwd`].
    pub base: [u8; CWD_LEN],
}

/// Operations in [`ActivityEvent::op`].
pub mod activity {
    /// `memfd_create(name, flags)`: `str1` name, `args[1]` flags.
    pub const MEMFD_CREATE: u16 = 1;
    /// `ptrace(request, pid, ...)`: `args[0]` request, `args[1]` target pid. Kept: TRACEME,
    /// PEEKUSER, POKE*, SETREGS(ET), ATTACH, SEIZE, whatever their result.
    pub const PTRACE: u16 = 2;
    /// `process_vm_writev(pid, ...)`: `args[0]` target pid.
    pub const PROCESS_VM_WRITEV: u16 = 3;
    /// `userfaultfd(flags)`.
    pub const USERFAULTFD: u16 = 4;
    /// `init_module(image, len, params)`: `args[1]` size.
    pub const INIT_MODULE: u16 = 5;
    /// `finit_module(fd, params, flags)`: `str1` the module file, `ino`/`dev` its inode.
    pub const FINIT_MODULE: u16 = 6;
    /// `mount(source, target, fstype, flags)`: `str1`, `str2`, `str3`, `args[3]` flags.
    pub const MOUNT: u16 = 7;
    /// `unshare(flags)`.
    pub const UNSHARE: u16 = 8;
    /// `setns(fd, nstype)`: `ino` the namespace joined.
    pub const SETNS: u16 = 9;
    /// `setuid(uid)`.
    pub const SETUID: u16 = 10;
    /// `setgid(gid)`.
    pub const SETGID: u16 = 11;
    /// `setreuid(ruid, euid)`.
    pub const SETREUID: u16 = 12;
    /// `setregid(rgid, egid)`.
    pub const SETREGID: u16 = 13;
    /// `setresuid(ruid, euid, suid)`.
    pub const SETRESUID: u16 = 14;
    /// `setresgid(rgid, egid, sgid)`.
    pub const SETRESGID: u16 = 15;
    /// `capset(header, data)`.
    pub const CAPSET: u16 = 16;
    /// `dup2`/`dup3` of a socket onto fd 0, 1 or 2: `args[0]` old fd, `args[1]` new fd, `sock` the peer.
    pub const DUP_SOCKET: u16 = 17;
    /// `mmap` with `PROT_EXEC` of a file written since the agent started: `ino`/`dev`, `writer`.
    pub const LIBRARY_LOAD: u16 = 18;
    /// `bpf(cmd, attr, size)` by another process on one of the agent's own maps, programs or
    /// links (self-protection): `args[0]` the command, `args[1]` the object kind
    /// ([`super::agent_object`]), `args[2]` its id. Recorded at entry; `ret` is 0.
    pub const BPF_AGENT: u16 = 19;
    /// A signal generated for the agent by another process (self-protection): `args[0]` the
    /// signal, `args[1]` `si_code`, `args[2]` the target thread, `args[3]` the target process,
    /// `args[4]` whether it was for the whole group, `args[5]` the kernel's result
    /// (`TRACE_SIGNAL_*`: 0 delivered, 1 ignored, 2 already pending, ...).
    pub const SIGNAL_AGENT: u16 = 20;
    /// `process_vm_readv(pid, ...)`: `args[0]` target pid (in the caller's pid namespace).
    pub const PROCESS_VM_READV: u16 = 21;
    /// A stopping signal (`SIGKILL`, `SIGTERM`, `SIGSTOP`, `SIGINT`, `SIGQUIT`) generated by
    /// another process for a process in the `GUARDED` map (another security agent on the
    /// host, which user space puts there by its executable, [`crate::guarded::SECURITY_AGENT`]):
    /// the arguments as for [`SIGNAL_AGENT`].
    pub const SIGNAL_GUARDED: u16 = 22;
    /// `open_by_handle_at(mount_fd, handle, flags)`: `args[2]` flags; at the exit `args[3]` is
    /// overwritten with the handle's type, `args[4]` with its first eight bytes and `args[5]`
    /// with its length, as the caller passed them; for an open that succeeded, `str1` is the
    /// name of the file opened and `ino`/`dev` its inode.
    pub const OPEN_BY_HANDLE_AT: u16 = 23;
    /// `mknod(path, mode, dev)` of a block device (kept at entry only for `S_IFBLK`): `str1`
    /// the path as given, `args[1]` the mode, `args[2]` the device number.
    pub const MKNOD: u16 = 24;
    /// `mknodat(dirfd, path, mode, dev)` of a block device: `str1` the path as given,
    /// `args[2]` the mode, `args[3]` the device number.
    pub const MKNODAT: u16 = 25;
    /// A kernel setting written through `/proc/sys` (any procfs mount), seen by the
    /// `cgroup/sysctl` program as the write reaches the setting's handler, before the handler
    /// parses it: `str1` the setting's name (`kernel/randomize_va_space`), `str2` the bytes
    /// written, `args[0]` the file position written at. The value is the one written, whatever
    /// the setting reads a moment later (a value switched off and put back at once is seen).
    /// The writer passed the kernel's permission check; the handler may still refuse a value
    /// it cannot parse.
    pub const SYSCTL_WRITE: u16 = 26;
    /// `prctl(PR_SET_NAME, name)` (kept at entry only for that option): the task's `comm` in
    /// the record is the name the kernel holds after the call; `args[2]` and `args[3]` hold the
    /// 16 bytes of the name it had before (little-endian), `args[1]` the caller's pointer.
    pub const PRCTL_SET_NAME: u16 = 27;
    /// A thread's `comm` changed outside exec (`task_rename`, where the kernel can tell exec's
    /// own renames apart): prctl(PR_SET_NAME), a write to `/proc/<pid>/task/<tid>/comm` (or
    /// `/proc/self/comm`, `/proc/thread-self/comm`), `pthread_setname_np`. `args[0]` is the
    /// syscall the caller was in, `args[1]` the renamed thread's id (a thread may rename
    /// another of its process), `args[2..4]` the 16 bytes of its name before, `args[4..6]` after
    /// (little-endian). Kernel threads are left out (a process that makes one names it).
    pub const TASK_RENAME: u16 = 28;
    /// A stopping signal generated by another process for a process in the `GUARDED` map as a
    /// miner ([`crate::guarded::MINER`]): the arguments as for [`SIGNAL_AGENT`].
    pub const SIGNAL_MINER: u16 = 29;
    /// A cgroup made in the unified (v2) hierarchy (`cgroup_mkdir`): `args[0]` its id (the
    /// `cgroup_id` of every record from a process in it), `str1` its path from the hierarchy's
    /// root (`/system.slice/docker-<id>.scope`) and, where it is longer, `str2` what follows
    /// (flag bit 0 when even that was cut). The agent learns from it where a container's
    /// processes run before the cgroup can be gone: a container that runs for a moment and is
    /// removed with its cgroup before the agent reads its records is still known as one.
    pub const CGROUP_MKDIR: u16 = 30;
}

/// The kinds of the agent's own BPF objects (keys of the `AGENT_OBJECTS` map: kind << 32 | id).
pub mod agent_object {
    /// A map.
    pub const MAP: u64 = 1;
    /// A program.
    pub const PROG: u64 = 2;
    /// A link.
    pub const LINK: u64 = 3;
}

/// Kernel-level activity, one record per call (emitted when the call returns).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActivityEvent {
    /// `kind::ACTIVITY`.
    pub header: EventHeader,
    /// The calling process, as it is after the call.
    pub task: TaskIdentity,
    /// One of [`activity`].
    pub op: u16,
    /// Explicit padding; always zero.
    pub _pad: u16,
    /// Truncation flags: bit n set when `str{n+1}` was cut.
    pub flags: u32,
    /// The syscall's return.
    pub ret: i64,
    /// The syscall's arguments.
    pub args: [u64; 6],
    /// Real uid before the call.
    pub before_uid: u32,
    /// Effective uid before the call.
    pub before_euid: u32,
    /// Real gid before the call.
    pub before_gid: u32,
    /// Effective gid before the call.
    pub before_egid: u32,
    /// Inode of the file involved (module, library, namespace), 0 if none.
    pub ino: u64,
    /// Its device (kernel encoding).
    pub dev: u32,
    /// Explicit padding; always zero.
    pub _pad2: u32,
    /// Who wrote the file involved, for a library load.
    pub writer: WriterInfo,
    /// With a writer: when the first process of the caller's container started (ns since
    /// boot), 0 on the host (as [`ExecEvent::ns_init_start_ns`]).
    pub ns_init_start_ns: u64,
    /// The peer of a socket involved (dup of a socket onto stdio).
    pub sock: SocketPeer,
    /// Bytes used in `str1`.
    pub str1_len: u32,
    /// Bytes used in `str2`.
    pub str2_len: u32,
    /// Bytes used in `str3`.
    pub str3_len: u32,
    /// Explicit padding; always zero.
    pub _pad3: u32,
    /// First string argument (see [`activity`]).
    pub str1: [u8; PATH_LEN],
    /// Second string argument.
    pub str2: [u8; PATH_LEN],
    /// Third, short, string argument.
    pub str3: [u8; SHORT_STR_LEN],
}

/// Records of this many bytes come out of the synthetic program: the size of a small real event.
pub const SYNTHETIC_PAYLOAD_LEN: usize = 104;

/// A benchmark record (see [`kind::SYNTHETIC`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyntheticEvent {
    /// `kind::SYNTHETIC`.
    pub header: EventHeader,
    /// Position in the burst.
    pub seq: u64,
    /// Filler, zero.
    pub payload: [u8; SYNTHETIC_PAYLOAD_LEN],
}

const _: () = {
    assert!(size_of::<SyntheticEvent>() == 128);
    assert!(size_of::<EventHeader>() == 16);
    assert!(size_of::<TaskIdentity>() == 72);
    assert!(offset_of!(TaskIdentity, cgroup_id) == 40);
    assert!(offset_of!(TaskIdentity, comm) == 56);
    assert!(offset_of!(ExecEvent, task) == 16);
    assert!(size_of::<WriterInfo>() == 32);
    assert!(size_of::<FileKey>() == 16);
    assert!(size_of::<SocketPeer>() == 24);
    assert!(offset_of!(ExecEvent, writer) == 128);
    assert!(size_of::<FdPipe>() == 16);
    assert!(offset_of!(ExecEvent, stdio_pipes) == 264);
    assert!(size_of::<ExeObject>() == 32);
    assert!(offset_of!(ExecEvent, filename) == 368);
    assert!(size_of::<ExecEvent>() == 368 + FILENAME_LEN + CWD_LEN + ARGV_LEN + 2 * ENV_VALUE_LEN);
    assert!(offset_of!(FileEvent, path) == 152);
    assert!(size_of::<FileEvent>() == 152 + 2 * PATH_LEN + 8 + CWD_LEN);
    assert!(offset_of!(ActivityEvent, str1) == 264);
    assert!(size_of::<ActivityEvent>() == 264 + 2 * PATH_LEN + SHORT_STR_LEN);
    assert!(size_of::<ForkEvent>() == 104);
    assert!(size_of::<ExitEvent>() == 96);
    assert!(offset_of!(NetEvent, addr) == 104);
    assert!(offset_of!(NetEvent, unix_path) == 128);
    assert!(size_of::<NetEvent>() == 240);
    assert!(offset_of!(DnsEvent, payload) == 120);
    assert!(size_of::<DnsEvent>() == 120 + DNS_PAYLOAD_LEN);
    assert!(offset_of!(StreamEvent, cookie) == 88);
    assert!(offset_of!(StreamEvent, addr) == 104);
    assert!(offset_of!(StreamEvent, head) == 136);
    assert!(size_of::<StreamEvent>() == 136 + STREAM_HEAD_LEN);
};
