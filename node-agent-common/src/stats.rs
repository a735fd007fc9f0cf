//! Per-hook counters, kept in the per-CPU array map `STATS`.
//!
//! Slot `hook as u32 * StatKind::COUNT + kind as u32` counts one thing for one hook; user space
//! sums the CPUs.

/// Each place a record can come from.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hook {
    /// `sched_process_exec`
    Exec = 0,
    /// `sched_process_fork`
    Fork = 1,
    /// `sched_process_exit`
    Exit = 2,
    /// `connect(2)` entry and exit
    Connect = 3,
    /// `accept(2)`/`accept4(2)` entry and exit
    Accept = 4,
    /// cgroup `connect4`/`connect6`/`sendmsg4`/`sendmsg6`: sockets aimed at port 53
    DnsSocket = 5,
    /// cgroup skb egress: DNS queries
    DnsEgress = 6,
    /// cgroup skb ingress: DNS answers
    DnsIngress = 7,
    /// `open`-family syscalls for writing: sensitive paths and written-file tracking
    FileOpen = 8,
    /// rename, link, symlink, unlink, chmod, chown of sensitive paths
    FileChange = 9,
    /// `memfd_create`
    Memfd = 10,
    /// `ptrace`
    Ptrace = 11,
    /// `process_vm_writev`
    VmWrite = 12,
    /// `userfaultfd`
    Userfaultfd = 13,
    /// `init_module`/`finit_module`
    Module = 14,
    /// `mount`
    Mount = 15,
    /// `unshare`/`setns`
    Namespace = 16,
    /// set*uid/set*gid/capset
    Privilege = 17,
    /// `dup2`/`dup3` of a socket onto stdio
    Dup = 18,
    /// `mmap` with `PROT_EXEC` of a written file
    LibraryLoad = 19,
    /// `bpf(2)` by other processes on the agent's own maps, programs and links
    BpfAgent = 20,
    /// Signals generated for the agent by other processes
    SignalAgent = 21,
    /// cgroup skb egress: the first data segments of TCP connections, sent when one starts
    /// like a JSON object (mining protocols on the wire)
    StreamEgress = 22,
    /// `process_vm_readv`
    VmRead = 23,
    /// `tcp_receive_reset`: a non-blocking connect's handshake refused after the syscall
    ConnectOutcome = 24,
    /// `open_by_handle_at`
    OpenByHandle = 25,
    /// `mknod`/`mknodat` of a block device
    Mknod = 26,
    /// `cgroup/sysctl`: kernel settings written through `/proc/sys`
    Sysctl = 27,
    /// `prctl(PR_SET_NAME)`: a thread renaming itself
    Rename = 28,
    /// `cgroup_mkdir`: a cgroup made in the unified hierarchy (a container starting)
    Cgroup = 29,
    /// The synthetic benchmark program (attached only by the benchmark).
    Synthetic = 31,
}

impl Hook {
    /// Every production hook, in slot order (the synthetic one is attached on request only).
    pub const ALL: [Hook; 30] = [
        Hook::Exec,
        Hook::Fork,
        Hook::Exit,
        Hook::Connect,
        Hook::Accept,
        Hook::DnsSocket,
        Hook::DnsEgress,
        Hook::DnsIngress,
        Hook::FileOpen,
        Hook::FileChange,
        Hook::Memfd,
        Hook::Ptrace,
        Hook::VmWrite,
        Hook::Userfaultfd,
        Hook::Module,
        Hook::Mount,
        Hook::Namespace,
        Hook::Privilege,
        Hook::Dup,
        Hook::LibraryLoad,
        Hook::BpfAgent,
        Hook::SignalAgent,
        Hook::StreamEgress,
        Hook::VmRead,
        Hook::ConnectOutcome,
        Hook::OpenByHandle,
        Hook::Mknod,
        Hook::Sysctl,
        Hook::Rename,
        Hook::Cgroup,
    ];
    /// Room in the map; hooks added later take the next numbers.
    pub const MAX: u32 = 32;

    /// A short stable name, used in logs, metrics and the health summary.
    pub const fn name(self) -> &'static str {
        match self {
            Hook::Exec => "exec",
            Hook::Fork => "fork",
            Hook::Exit => "exit",
            Hook::Connect => "connect",
            Hook::Accept => "accept",
            Hook::DnsSocket => "dns_socket",
            Hook::DnsEgress => "dns_egress",
            Hook::DnsIngress => "dns_ingress",
            Hook::FileOpen => "file_open",
            Hook::FileChange => "file_change",
            Hook::Memfd => "memfd",
            Hook::Ptrace => "ptrace",
            Hook::VmWrite => "vm_write",
            Hook::Userfaultfd => "userfaultfd",
            Hook::Module => "module",
            Hook::Mount => "mount",
            Hook::Namespace => "namespace",
            Hook::Privilege => "privilege",
            Hook::Dup => "dup",
            Hook::LibraryLoad => "library_load",
            Hook::BpfAgent => "bpf_agent",
            Hook::SignalAgent => "signal_agent",
            Hook::StreamEgress => "stream_egress",
            Hook::VmRead => "vm_read",
            Hook::ConnectOutcome => "connect_outcome",
            Hook::OpenByHandle => "open_by_handle",
            Hook::Mknod => "mknod",
            Hook::Sysctl => "sysctl",
            Hook::Rename => "rename",
            Hook::Cgroup => "cgroup",
            Hook::Synthetic => "synthetic",
        }
    }
}

/// What a counter counts.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatKind {
    /// Records written to the ring buffer.
    Sent = 0,
    /// Records lost because the ring buffer was full.
    Dropped = 1,
    /// Records lost or incomplete because a kernel read failed or a map was full.
    Errors = 2,
    /// Events seen and deliberately not reported (the agent's own, or filtered out).
    Filtered = 3,
    /// Repeats of an event already sent, counted in the kernel and carried by the next record
    /// of the same event (connect and accept; see `NetEvent::repeats`).
    Folded = 4,
    /// Paths the kernel could not walk from its objects (a dentry chain deeper or longer than
    /// the walk's bound, or a read that failed): the operation was matched by the string the
    /// process passed, or by the file name only (`file_open`, `file_change`); segments sent
    /// while no task held the socket, whose sender the kernel cannot name (`stream_egress`).
    Unresolved = 5,
}

impl StatKind {
    /// Slots per hook.
    pub const COUNT: u32 = 6;
}

/// Number of slots in the `STATS` map.
pub const STATS_SLOTS: u32 = Hook::MAX * StatKind::COUNT;

/// The slot of one counter.
pub const fn stat_slot(hook: Hook, kind: StatKind) -> u32 {
    hook as u32 * StatKind::COUNT + kind as u32
}
