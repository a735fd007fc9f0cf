//! Ring-buffer record layouts.

use core::mem::{offset_of, size_of};

/// Version of the record layouts; bumped on any change to a struct in this module.
pub const ABI_VERSION: u32 = 1;

/// Bytes of `comm` (the kernel's `TASK_COMM_LEN`).
pub const COMM_LEN: usize = 16;
/// Bytes kept of the path given to `execve` (`bprm->filename`).
pub const FILENAME_LEN: usize = 256;
/// Bytes kept of the working directory, built in the kernel from the dentry chain.
pub const CWD_LEN: usize = 512;
/// Bytes kept of the NUL-separated argument vector.
pub const ARGV_LEN: usize = 2048;
/// Bytes kept of a unix socket path (`sizeof(sun_path)`).
pub const UNIX_PATH_LEN: usize = 108;
/// Bytes kept of a DNS message.
pub const DNS_PAYLOAD_LEN: usize = 512;

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
    /// A DNS message left or reached a process ([`super::DnsEvent`]).
    pub const DNS: u16 = 0x0300;
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
    /// The path given to exec (`bprm->filename`), relative to `cwd` when not absolute.
    pub filename: [u8; FILENAME_LEN],
    /// The working directory, leaf first (see `cwd_len`).
    pub cwd: [u8; CWD_LEN],
    /// The argument vector, NUL-separated.
    pub argv: [u8; ARGV_LEN],
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
    /// `kind::CONNECT` or `kind::ACCEPT`.
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
    /// Explicit padding; always zero.
    pub _pad: u32,
    /// The unix socket path.
    pub unix_path: [u8; UNIX_PATH_LEN],
    /// Explicit padding to a multiple of 8; always zero.
    pub _pad2: [u8; 4],
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
}

/// A DNS message on a socket that a process pointed at port 53.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnsEvent {
    /// `kind::DNS`.
    pub header: EventHeader,
    /// The process that owns the socket (recorded when it connected or sent to port 53).
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
    assert!(offset_of!(ExecEvent, filename) == 120);
    assert!(size_of::<ExecEvent>() == 120 + FILENAME_LEN + CWD_LEN + ARGV_LEN);
    assert!(size_of::<ForkEvent>() == 104);
    assert!(size_of::<ExitEvent>() == 96);
    assert!(offset_of!(NetEvent, addr) == 104);
    assert!(offset_of!(NetEvent, unix_path) == 128);
    assert!(size_of::<NetEvent>() == 240);
    assert!(offset_of!(DnsEvent, payload) == 120);
    assert!(size_of::<DnsEvent>() == 120 + DNS_PAYLOAD_LEN);
};
