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
    DnsEvent, NetEvent, TaskIdentity, decode::c_str, direction, dns_flags, exec_flags, family,
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

    /// RFC 3339 UTC text of a kernel boot-time stamp.
    pub fn rfc3339(&self, boot_ns: u64) -> String {
        humantime::format_rfc3339_nanos(self.wall(boot_ns)).to_string()
    }
}

/// Who did it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
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
    pub lineage: Vec<Ancestor>,
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
    /// The socket's fd (the listening one for accept).
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
    /// `accept(2)` returned.
    Accept(NetInfo),
    /// A DNS message.
    Dns(DnsInfo),
}

impl Event {
    /// The acting process.
    pub fn process(&self) -> &ProcessRef {
        match self {
            Event::Exec(e) => &e.process,
            Event::Fork(e) => &e.process,
            Event::Exit(e) => &e.process,
            Event::Connect(e) | Event::Accept(e) => &e.process,
            Event::Dns(e) => &e.process,
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
    let mut path = String::from("/");
    let parts: Vec<&[u8]> = bytes
        .split(|&b| b == 0)
        .filter(|p| !p.is_empty() && *p != b"/")
        .collect();
    for (i, part) in parts.iter().rev().enumerate() {
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

/// The kernel's `dev_t` (`major << 20 | minor`) in the user-space encoding `stat` uses.
pub fn user_dev(kernel_dev: u32) -> u64 {
    let major = (kernel_dev >> 20) as u64;
    let minor = (kernel_dev & 0xfffff) as u64;
    libc::makedev(major as u32, minor as u32)
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
        argv: split_argv(&ev.argv[..argv_len]),
        argv_truncated: ev.flags & exec_flags::ARGV_TRUNCATED != 0,
        cwd,
        cwd_truncated: ev.flags & exec_flags::CWD_TRUNCATED != 0,
        exe_inode: ev.exe_ino,
        exe_dev: user_dev(ev.exe_dev),
        sha256: None,
        sha256_error: None,
        lineage: Vec::new(),
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
        error: (ev.ret < 0).then(|| errno_name(-ev.ret)),
        fd: ev.fd,
        family: family_name(ev.family),
        protocol: protocol_name(ev.protocol, ev.family, ev.sock_type),
        remote: ip_of(ev.family, &ev.addr).map(|ip| SocketAddr::new(ip, ev.port)),
        unix_path,
    }
}

/// The symbolic name of an errno, for the common network ones; `errno N` otherwise.
pub fn errno_name(errno: i32) -> String {
    let name = match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EINTR => "EINTR",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::EACCES => "EACCES",
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn errno_names() {
        assert_eq!(errno_name(libc::ECONNREFUSED), "ECONNREFUSED");
        assert_eq!(errno_name(9999), "errno 9999");
    }

    #[test]
    fn clock_formats_rfc3339() {
        let clock = Clock::with_offset(1_700_000_000_000_000_000);
        assert_eq!(clock.rfc3339(5), "2023-11-14T22:13:20.000000005Z");
    }
}
