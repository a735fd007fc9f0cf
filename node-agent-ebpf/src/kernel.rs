//! Shared plumbing: configuration, maps, counters, task identity and safe-ish kernel reads.

use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_uid_gid,
        generated::{
            bpf_get_current_cgroup_id, bpf_get_current_task, bpf_get_current_task_btf,
            bpf_get_smp_processor_id, bpf_ktime_get_boot_ns, bpf_probe_read_kernel,
            bpf_task_pt_regs,
        },
    },
    macros::map,
    maps::{Array, PerCpuArray, RingBuf, ring_buf::RingBufEntry},
};
use node_agent_common::{
    AgentConfig, AgentIdentity, EventHeader, TaskIdentity,
    config::OFFSET_UNKNOWN,
    stats::{Hook, STATS_SLOTS, StatKind, stat_slot},
};

/// Written by user space before load (`EbpfLoader::set_global`).
#[unsafe(no_mangle)]
static VIGIL_CONFIG: AgentConfig = AgentConfig::DEFAULT;

/// The ring buffers, one per group of CPUs (`node_agent_common::maps`): a record goes to
/// `EVENTS<cpu & ring_mask>`. User space sizes each one at load (`ring_bytes`, one page for
/// those not in use); the sizes here are what an object loaded without that gets: one ring.
macro_rules! rings {
    ($($name:ident = $bytes:expr),+ $(,)?) => {
        $(
            #[map]
            static $name: RingBuf = RingBuf::with_byte_size($bytes, 0);
        )+
    };
}
rings!(
    EVENTS0 = 8 * 1024 * 1024,
    EVENTS1 = 4096,
    EVENTS2 = 4096,
    EVENTS3 = 4096,
    EVENTS4 = 4096,
    EVENTS5 = 4096,
    EVENTS6 = 4096,
    EVENTS7 = 4096,
    EVENTS8 = 4096,
    EVENTS9 = 4096,
    EVENTS10 = 4096,
    EVENTS11 = 4096,
    EVENTS12 = 4096,
    EVENTS13 = 4096,
    EVENTS14 = 4096,
    EVENTS15 = 4096,
);

/// Runs `$body` with `$ring` bound to this CPU's ring buffer. One arm per map: a helper takes
/// a map only as a constant, so the ring is chosen by branches, not by an index. The mask comes
/// from .rodata, so the verifier knows it and walks only the arms in use (one when there is
/// one ring). A program does not migrate while it runs, so two calls in one program pick the
/// same ring.
macro_rules! on_ring {
    (|$ring:ident| $body:expr) => {{
        // SAFETY: helper without arguments.
        let cpu = unsafe { bpf_get_smp_processor_id() };
        match cpu & config!(ring_mask) {
            0 => {
                let $ring = &EVENTS0;
                $body
            }
            1 => {
                let $ring = &EVENTS1;
                $body
            }
            2 => {
                let $ring = &EVENTS2;
                $body
            }
            3 => {
                let $ring = &EVENTS3;
                $body
            }
            4 => {
                let $ring = &EVENTS4;
                $body
            }
            5 => {
                let $ring = &EVENTS5;
                $body
            }
            6 => {
                let $ring = &EVENTS6;
                $body
            }
            7 => {
                let $ring = &EVENTS7;
                $body
            }
            8 => {
                let $ring = &EVENTS8;
                $body
            }
            9 => {
                let $ring = &EVENTS9;
                $body
            }
            10 => {
                let $ring = &EVENTS10;
                $body
            }
            11 => {
                let $ring = &EVENTS11;
                $body
            }
            12 => {
                let $ring = &EVENTS12;
                $body
            }
            13 => {
                let $ring = &EVENTS13;
                $body
            }
            14 => {
                let $ring = &EVENTS14;
                $body
            }
            _ => {
                let $ring = &EVENTS15;
                $body
            }
        }
    }};
}

/// A record reserved in this CPU's ring buffer, to fill in place and submit.
pub struct Record<T: 'static>(RingBufEntry<T>);

impl<T: 'static> Record<T> {
    /// The reserved memory (uninitialised until written).
    #[inline(always)]
    pub fn as_mut_ptr(&mut self) -> *mut T {
        self.0.as_mut_ptr()
    }

    /// Hands the record to user space, waking the reader only when enough waits in the ring
    /// the record was reserved in ([`submit_flags`]).
    #[inline(always)]
    pub fn submit(self) {
        let flags = submit_flags();
        self.0.submit(flags);
    }
}

/// The one place records are reserved: a `T` in the ring buffer of this CPU's group. `None`
/// when that ring is full (the caller counts the drop).
#[inline(always)]
pub fn reserve<T: 'static>() -> Option<Record<T>> {
    on_ring!(|ring| ring.reserve::<T>(0)).map(Record)
}

/// Per-hook counters (see `node_agent_common::stats`).
#[map]
static STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(STATS_SLOTS, 0);

/// The agent's identity in the kernel's numbering (see `guard::agent_marker`); zero until the
/// marker call, or, without the marker, what user space wrote (its own pid in the initial pid
/// namespace).
#[map]
pub static AGENT: Array<AgentIdentity> = Array::with_max_entries(1, 0);

/// Reads one field of the configuration without letting the compiler fold the default in.
macro_rules! config {
    ($($field:tt)+) => {
        // SAFETY: VIGIL_CONFIG is a plain static; the volatile read keeps the value that the
        // loader wrote into .rodata instead of the compile-time default.
        {
            #[allow(unused_unsafe)]
            let value = unsafe { core::ptr::read_volatile(&crate::kernel::config_ref().$($field)+) };
            value
        }
    };
}
pub(crate) use config;

#[inline(always)]
pub fn config_ref() -> &'static AgentConfig {
    &VIGIL_CONFIG
}

#[inline(always)]
pub fn count(hook: Hook, kind: StatKind) {
    if let Some(slot) = STATS.get_ptr_mut(stat_slot(hook, kind)) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU while the program runs.
        unsafe { *slot += 1 };
    }
}

/// Flags for `bpf_ringbuf_submit`: wake the reader only when enough is waiting in this CPU's
/// ring, the one [`reserve`] took the record from.
#[inline(always)]
fn submit_flags() -> u64 {
    let threshold = config!(wakeup_bytes) as u64;
    if threshold == 0 {
        return 0;
    }
    if on_ring!(|ring| ring.query(BPF_RB_AVAIL_DATA as u64)) >= threshold {
        BPF_RB_FORCE_WAKEUP as u64
    } else {
        BPF_RB_NO_WAKEUP as u64
    }
}

#[inline(always)]
pub fn current_tgid() -> u32 {
    (bpf_get_current_pid_tgid() >> 32) as u32
}

/// The agent's process id in the kernel's numbering, 0 while unknown.
#[inline(always)]
pub fn agent_tgid() -> u32 {
    match AGENT.get(0) {
        Some(agent) => agent.tgid,
        None => 0,
    }
}

/// True when the current task belongs to the agent itself.
#[inline(always)]
pub fn is_agent() -> bool {
    let agent = agent_tgid();
    agent != 0 && current_tgid() == agent
}

#[inline(always)]
pub fn header(kind: u16, size: usize) -> EventHeader {
    EventHeader {
        kind,
        _pad: 0,
        size: size as u32,
        // SAFETY: helper without arguments.
        ktime_ns: unsafe { bpf_ktime_get_boot_ns() },
    }
}

/// Reads a `T` at `base + offset` in kernel memory: zero for a null base, a failed read, or an
/// offset the kernel's BTF lacked.
///
/// Deliberately branch-free on the base and the read's result (the helper zeroes its
/// destination on failure): every branch here would double the paths the verifier walks in
/// the loops that call it. The offset test is free, the verifier knows .rodata values.
#[inline(always)]
pub fn read_at<T: Copy>(base: u64, offset: u32) -> T {
    let mut value = core::mem::MaybeUninit::<T>::zeroed();
    if offset != OFFSET_UNKNOWN {
        // SAFETY: the helper checks the source address and writes size_of::<T>() bytes (zeros on
        // failure) into our local.
        unsafe {
            bpf_probe_read_kernel(
                value.as_mut_ptr().cast(),
                core::mem::size_of::<T>() as u32,
                (base + offset as u64) as *const core::ffi::c_void,
            )
        };
    }
    // SAFETY: zero-initialised, then either left alone or fully written by the helper; only
    // integer types are read this way.
    unsafe { value.assume_init() }
}

/// Reads a kernel pointer field.
#[inline(always)]
pub fn read_ptr(base: u64, offset: u32) -> u64 {
    read_at::<u64>(base, offset)
}

#[inline(always)]
pub fn current_task() -> u64 {
    // SAFETY: helper without arguments.
    unsafe { bpf_get_current_task() }
}

/// A kernel pointer whose type the verifier knows from BTF (the current task from
/// `bpf_get_current_task_btf`, the registers from `bpf_task_pt_regs`, and the struct pointers
/// read through them). Fields are read with plain loads, which the kernel turns into
/// fault-tolerant loads (a null or bad address reads as zero), instead of a
/// `bpf_probe_read_kernel` call each: about 35 ns per read on this kind of VM, and the task
/// identity alone takes eleven. The offsets come from .rodata, which the verifier reads as
/// constants, so it can check every load against the struct's BTF.
#[derive(Clone, Copy)]
pub struct Kptr(*const u8);

impl Kptr {
    /// The current task.
    #[inline(always)]
    pub fn current_task() -> Kptr {
        // SAFETY: helper without arguments; the verifier types its result.
        Kptr(unsafe { bpf_get_current_task_btf() } as *const u8)
    }

    /// A pointer argument of a `tp_btf` program (`BtfTracePointContext::arg`): the verifier
    /// types it from the tracepoint's BTF. Not for `raw_tp` arguments, which are plain numbers
    /// to the verifier (it refuses loads through them).
    #[inline(always)]
    pub fn from_btf_arg(arg: u64) -> Kptr {
        Kptr(arg as *const u8)
    }

    /// A pointer the verifier typed from BTF (returned by a `bpf_skc_to_*` helper).
    #[inline(always)]
    pub fn from_btf<T>(ptr: *const T) -> Kptr {
        Kptr(ptr.cast())
    }

    /// The current task's saved user registers.
    #[inline(always)]
    pub fn current_regs() -> Kptr {
        // SAFETY: the helper takes the current task, valid for the program's lifetime.
        Kptr(unsafe { bpf_task_pt_regs(bpf_get_current_task_btf()) } as *const u8)
    }

    /// Reads a `T` at `offset`: zero for an offset the kernel's BTF lacked (and, through the
    /// fault-tolerant load, for a null pointer).
    #[inline(always)]
    pub fn read<T: Copy>(self, offset: u32) -> T {
        if offset == OFFSET_UNKNOWN {
            // SAFETY: only integer types (and arrays of them) are read this way.
            return unsafe { core::mem::MaybeUninit::<T>::zeroed().assume_init() };
        }
        // SAFETY: the verifier checks the access against the struct's BTF and the JIT makes
        // it fault-tolerant.
        unsafe { core::ptr::read_volatile(self.0.add(offset as usize).cast::<T>()) }
    }

    /// Follows a pointer field to another BTF-typed struct.
    #[inline(always)]
    pub fn ptr(self, offset: u32) -> Kptr {
        if offset == OFFSET_UNKNOWN {
            return Kptr(core::ptr::null());
        }
        // SAFETY: as for `read`.
        Kptr(unsafe { core::ptr::read_volatile(self.0.add(offset as usize).cast::<*const u8>()) })
    }

    /// The address, for reads the verifier cannot type (then through `read_at`).
    #[inline(always)]
    pub fn addr(self) -> u64 {
        self.0 as u64
    }
}

/// Fills the identity of the current task.
/// Returns false when a field that needs an offset could not be read (the record still goes out).
#[inline(always)]
pub fn fill_current(id: &mut TaskIdentity) -> bool {
    let pid_tgid = bpf_get_current_pid_tgid();
    let uid_gid = bpf_get_current_uid_gid();
    id.pid = pid_tgid as u32;
    id.tgid = (pid_tgid >> 32) as u32;
    id.uid = uid_gid as u32;
    id.gid = (uid_gid >> 32) as u32;
    id._pad = 0;
    // SAFETY: helper without arguments.
    id.cgroup_id = unsafe { bpf_get_current_cgroup_id() };
    id.comm = bpf_get_current_comm().unwrap_or([0; 16]);
    fill_task_fields(id, Kptr::current_task())
}

/// The fields that need kernel struct offsets.
#[inline(always)]
fn fill_task_fields(id: &mut TaskIdentity, task: Kptr) -> bool {
    let mut complete = true;
    let parent = task.ptr(config!(offsets.task_real_parent));
    id.ppid = parent.read::<u32>(config!(offsets.task_tgid));
    complete &= id.ppid != 0 || id.tgid == 1;

    let cred = task.ptr(config!(offsets.task_cred));
    id.euid = cred.read::<u32>(config!(offsets.cred_euid));
    id.egid = cred.read::<u32>(config!(offsets.cred_egid));
    complete &= cred.addr() != 0;

    let nsproxy = task.ptr(config!(offsets.task_nsproxy));
    let mnt_ns = nsproxy.ptr(config!(offsets.nsproxy_mnt_ns));
    let pid_ns = nsproxy.ptr(config!(offsets.nsproxy_pid_ns));
    id.mnt_ns = mnt_ns.read::<u32>(config!(offsets.mnt_ns_inum));
    id.pid_ns = pid_ns.read::<u32>(config!(offsets.pid_ns_inum));
    // A task in the middle of exiting has no nsproxy any more: not an error.
    complete &= nsproxy.addr() == 0 || (id.mnt_ns != 0 && id.pid_ns != 0);

    id.start_time_ns = process_start_ns(task);
    complete &= id.start_time_ns != 0;
    complete
}

/// When a task's process started (its thread-group leader's start), ns since boot; 0 when
/// unknown. With the tgid, it tells a process from a later one that got its pid.
#[inline(always)]
pub fn process_start_ns(task: Kptr) -> u64 {
    task.ptr(config!(offsets.task_group_leader))
        .read::<u64>(config!(offsets.task_start_boottime))
}

/// Pid namespaces walked up from the current task's to its container's: a container in a
/// container in a container (a kind node's pod) needs two steps.
const PID_NS_WALK: usize = 8;

/// When the first process of the current task's container started, ns since boot: the init
/// of the outermost pid namespace below the host's that the task's children go to. 0 on the
/// host (or unknown). A namespace the task made itself inside its container (`unshare -p`) does
/// not count: its init started later, and a file written before that would pass as older than
/// the container.
#[inline(always)]
pub fn container_init_start_ns() -> u64 {
    let mut ns = Kptr::current_task()
        .ptr(config!(offsets.task_nsproxy))
        .ptr(config!(offsets.nsproxy_pid_ns));
    for _ in 0..PID_NS_WALK {
        if ns.addr() == 0 || ns.read::<u32>(config!(offsets.pid_ns_level)) <= 1 {
            break;
        }
        ns = ns.ptr(config!(offsets.pid_ns_parent));
    }
    if ns.addr() == 0 || ns.read::<u32>(config!(offsets.pid_ns_level)) != 1 {
        return 0;
    }
    let reaper = ns.ptr(config!(offsets.pid_ns_child_reaper));
    if reaper.addr() == 0 {
        0
    } else {
        process_start_ns(reaper)
    }
}

/// `S_IFMT` and the file types the sensors test for.
pub const S_IFMT: u16 = 0o170000;
pub const S_IFREG: u16 = 0o100000;
pub const S_IFSOCK: u16 = 0o140000;
pub const S_IFIFO: u16 = 0o010000;
pub const S_IFBLK: u16 = 0o060000;

/// The `struct file *` behind one of the current task's fds, 0 when there is none. The fd
/// array holds untyped pointers, so its slot (and what hangs off the file) is read with
/// `read_at`.
#[inline(always)]
pub fn fd_file(fd: u64) -> u64 {
    let fdt = Kptr::current_task()
        .ptr(config!(offsets.task_files))
        .ptr(config!(offsets.files_fdt));
    let max = fdt.read::<u32>(config!(offsets.fdt_max_fds)) as u64;
    if fd >= max {
        return 0;
    }
    let array = fdt.read::<u64>(config!(offsets.fdt_fd));
    if array == 0 {
        return 0;
    }
    read_ptr(array + fd * 8, 0)
}

/// The inode of a `struct file *`.
#[inline(always)]
pub fn file_inode(file: u64) -> u64 {
    read_ptr(file, config!(offsets.file_inode))
}

/// `(s_dev, i_ino)` of an inode.
#[inline(always)]
pub fn inode_key(inode: u64) -> (u32, u64) {
    let sb = read_ptr(inode, config!(offsets.inode_sb));
    (
        read_at::<u32>(sb, config!(offsets.sb_dev)),
        read_at::<u64>(inode, config!(offsets.inode_ino)),
    )
}

/// The file type bits of an inode.
#[inline(always)]
pub fn inode_type(inode: u64) -> u16 {
    read_at::<u16>(inode, config!(offsets.inode_mode)) & S_IFMT
}

/// A few bytes of kernel memory read with one `bpf_probe_read_kernel` call, for fields that sit
/// close together: the fields are then picked out of the copy for free. A field outside the
/// span (another kernel's layout) is read on its own, so the result never depends on the layout.
pub struct Span<const N: usize> {
    base: u64,
    start: u32,
    bytes: [u8; N],
}

impl<const N: usize> Span<N> {
    /// Reads `N` bytes at `base` from the lowest of `offsets` that the kernel has.
    #[inline(always)]
    pub fn read(base: u64, offsets: &[u32]) -> Self {
        let mut start = OFFSET_UNKNOWN;
        for &offset in offsets {
            if offset < start {
                start = offset;
            }
        }
        let mut bytes = [0u8; N];
        if start != OFFSET_UNKNOWN {
            // SAFETY: the helper checks the source address and writes N bytes (zeros on
            // failure) into our local array.
            unsafe {
                bpf_probe_read_kernel(
                    bytes.as_mut_ptr().cast(),
                    N as u32,
                    (base + start as u64) as *const core::ffi::c_void,
                )
            };
        }
        Self { base, start, bytes }
    }

    /// The `T` at `offset`: zero for an offset the kernel lacks.
    #[inline(always)]
    pub fn get<T: Copy>(&self, offset: u32) -> T {
        let size = core::mem::size_of::<T>() as u32;
        if offset != OFFSET_UNKNOWN
            && offset >= self.start
            && offset - self.start + size <= N as u32
        {
            // SAFETY: the range lies inside `bytes` (checked above, on constants the verifier
            // knows); only integer types and arrays of them are read this way.
            unsafe {
                core::ptr::read_unaligned(
                    self.bytes
                        .as_ptr()
                        .add((offset - self.start) as usize)
                        .cast::<T>(),
                )
            }
        } else {
            read_at::<T>(self.base, offset)
        }
    }
}

/// A socket's `struct socket *` (the file's private data) and its type and `struct sock *`.
#[inline(always)]
fn socket_of(socket: u64) -> (u16, u64) {
    let span = Span::<32>::read(
        socket,
        &[config!(offsets.socket_type), config!(offsets.socket_sk)],
    );
    (
        span.get::<u16>(config!(offsets.socket_type)),
        span.get::<u64>(config!(offsets.socket_sk)),
    )
}

/// The `struct sock *` of the socket behind a `struct file *` (one known to be a socket); 0
/// when unreadable.
#[inline(always)]
pub fn file_sock(file: u64) -> u64 {
    if file == 0 {
        return 0;
    }
    socket_of(read_ptr(file, config!(offsets.file_private_data))).1
}

/// The type and protocol of the socket behind one of the current task's fds (0 when unknown).
#[inline(always)]
pub fn socket_kind(fd: u64) -> (u16, u16) {
    let socket = read_ptr(fd_file(fd), config!(offsets.file_private_data));
    let (sock_type, sk) = socket_of(socket);
    (sock_type, read_at::<u16>(sk, config!(offsets.sk_protocol)))
}

/// The remote end of the socket behind a `struct file *`; family 0 when it is not a socket.
/// `known_socket` skips the inode test for files that can only be sockets (accept's).
#[inline(always)]
pub fn socket_peer(file: u64, known_socket: bool) -> node_agent_common::SocketPeer {
    let mut peer = node_agent_common::SocketPeer::default();
    let file_span = Span::<16>::read(
        file,
        &[
            config!(offsets.file_private_data),
            config!(offsets.file_inode),
        ],
    );
    if !known_socket {
        let inode = file_span.get::<u64>(config!(offsets.file_inode));
        if inode == 0 || inode_type(inode) != S_IFSOCK {
            return peer;
        }
    }
    let socket = file_span.get::<u64>(config!(offsets.file_private_data));
    let (sock_type, sk) = socket_of(socket);
    peer.sock_type = sock_type;
    let common = Span::<24>::read(
        sk,
        &[
            config!(offsets.sk_daddr),
            config!(offsets.sk_dport),
            config!(offsets.sk_family),
        ],
    );
    peer.family = common.get::<u16>(config!(offsets.sk_family));
    peer.port = u16::from_be(common.get::<u16>(config!(offsets.sk_dport)));
    if peer.family == node_agent_common::family::INET6 {
        peer.addr = read_at::<[u8; 16]>(sk, config!(offsets.sk_v6_daddr));
    } else if peer.family == node_agent_common::family::INET {
        let v4 = common.get::<[u8; 4]>(config!(offsets.sk_daddr));
        peer.addr = [
            v4[0], v4[1], v4[2], v4[3], 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
    } else if peer.family == 0 {
        // Still a socket (AF_UNSPEC should not happen): keep a non-zero marker.
        peer.family = u16::MAX;
    }
    peer
}

/// Copies a NUL-terminated user string into `dst` (at most `N` bytes, NUL included); returns
/// the length without the NUL and whether it was cut.
#[inline(always)]
pub fn read_user_str<const N: usize>(dst: &mut [u8; N], src: u64) -> (u32, bool) {
    if src == 0 {
        return (0, false);
    }
    // SAFETY: the helper writes at most N bytes into dst and checks the source.
    let n = unsafe {
        aya_ebpf::helpers::generated::bpf_probe_read_user_str(
            dst.as_mut_ptr().cast(),
            N as u32,
            src as *const core::ffi::c_void,
        )
    };
    if n <= 0 {
        return (0, false);
    }
    ((n - 1) as u32, n as usize == N)
}

/// The identity of the current task's credentials, for "before" values.
#[inline(always)]
pub fn current_ids() -> [u32; 4] {
    let uid_gid = aya_ebpf::helpers::bpf_get_current_uid_gid();
    let cred = Kptr::current_task().ptr(config!(offsets.task_cred));
    [
        uid_gid as u32,
        cred.read::<u32>(config!(offsets.cred_euid)),
        (uid_gid >> 32) as u32,
        cred.read::<u32>(config!(offsets.cred_egid)),
    ]
}

/// Deepest path walked; deeper ones are cut and flagged.
const WALK_MAX_DEPTH: u32 = 32;
/// Longest component read in one step: with the write offset masked to `CWD_LEN / 2 - 1`, a
/// read of this size always ends inside the buffer, which the verifier can see.
const WALK_COMPONENT_MAX: u32 = (node_agent_common::CWD_LEN / 2) as u32;

/// `WALK_COMPONENT_MAX - 1`, read through a volatile load: LLVM would drop a literal mask as
/// redundant with the loop's bounds check, and the verifier needs the mask itself. The value
/// sits in .rodata, which the verifier reads as a known constant.
#[unsafe(no_mangle)]
static WALK_OFFSET_MASK: u32 = WALK_COMPONENT_MAX - 1;

/// How a path walk ended.
pub enum Walk {
    /// Reached the task's root or the global root.
    Done,
    /// Deeper or longer than the buffer.
    Truncated,
    /// A read failed.
    Unreadable,
}

/// Writes the absolute path of a `struct path` (at address `start`) into `out`, components
/// leaf first, each NUL-terminated, walking dentries up to the task's root and crossing mount
/// points. `len` and `depth` must point into ring-buffer memory: the write offset lives there
/// rather than in a register, so every iteration starts from the same abstract state and the
/// verifier prunes instead of exploring each path separately.
#[inline(always)]
pub fn walk_path(
    task: u64,
    start: u64,
    out: &mut [u8; node_agent_common::CWD_LEN],
    len: &mut u32,
    depth: &mut u32,
) -> Walk {
    *len = 0;
    *depth = 0;
    let fs = read_ptr(task, config!(offsets.task_fs));
    let root = fs + config!(offsets.fs_root) as u64;
    let mut dentry = read_ptr(start, config!(offsets.path_dentry));
    let mut vfsmnt = read_ptr(start, config!(offsets.path_mnt));
    let root_dentry = read_ptr(root, config!(offsets.path_dentry));
    let root_mnt = read_ptr(root, config!(offsets.path_mnt));
    let mount_mnt = config!(offsets.mount_mnt) as u64;
    if dentry == 0 || vfsmnt == 0 || mount_mnt == OFFSET_UNKNOWN as u64 {
        return Walk::Unreadable;
    }
    let mut mnt = vfsmnt - mount_mnt;
    let base = out.as_mut_ptr();
    for _ in 0..WALK_MAX_DEPTH {
        if dentry == root_dentry && vfsmnt == root_mnt {
            return Walk::Done;
        }
        let mnt_root = read_ptr(vfsmnt, config!(offsets.vfsmount_root));
        if dentry == mnt_root {
            let parent = read_ptr(mnt, config!(offsets.mount_parent));
            if parent == mnt || parent == 0 {
                return Walk::Done;
            }
            dentry = read_ptr(mnt, config!(offsets.mount_mountpoint));
            mnt = parent;
            vfsmnt = mnt + mount_mnt;
            continue;
        }
        // SAFETY: volatile access to ring-buffer memory (see above).
        let used = unsafe { core::ptr::read_volatile(len) };
        if used >= WALK_COMPONENT_MAX {
            return Walk::Truncated;
        }
        let name = read_ptr(dentry, config!(offsets.dentry_name));
        // SAFETY: a plain static.
        let mask = unsafe { core::ptr::read_volatile(&WALK_OFFSET_MASK) };
        // SAFETY: (used & mask) < WALK_COMPONENT_MAX and the read is at most
        // WALK_COMPONENT_MAX bytes, so it ends inside the CWD_LEN-byte array.
        let n = unsafe {
            aya_ebpf::helpers::generated::bpf_probe_read_kernel_str(
                base.add((used & mask) as usize).cast(),
                WALK_COMPONENT_MAX,
                name as *const core::ffi::c_void,
            )
        };
        if n <= 0 {
            return Walk::Unreadable;
        }
        // SAFETY: as above.
        unsafe { core::ptr::write_volatile(len, used + n as u32) };
        *depth += 1;
        let parent = read_ptr(dentry, config!(offsets.dentry_parent));
        if parent == dentry || parent == 0 {
            return Walk::Done;
        }
        dentry = parent;
    }
    Walk::Truncated
}

/// Where a `struct path` is written root first by [`resolve_path`]: the path ends at
/// `RESOLVED_END` (the NUL is there) and starts at `start`; the bytes from `RESOLVED_END` on are
/// never written and stay zero, so a copy of `PATH_LEN` bytes from `start` is the path followed
/// by zeros. Lives in map memory (a per-CPU scratch), with the walk's position.
#[repr(C)]
pub struct Resolved {
    /// The path in `buf[start..RESOLVED_END]`.
    pub buf: [u8; 2 * node_agent_common::PATH_LEN],
    /// First byte of the path in `buf`: `RESOLVED_END` while nothing is written.
    pub start: u32,
    pub _pad: u32,
    /// The walk's position (dentry, its `struct vfsmount`, the `struct mount` around it, that
    /// mount's root dentry), kept here rather than in registers: every iteration then starts
    /// from the same state for the verifier, which checks the loop body once per iteration
    /// instead of once per way the previous ones went.
    pub at: [u64; 4],
}

/// Where a resolved path ends in [`Resolved::buf`].
pub const RESOLVED_END: u32 = node_agent_common::PATH_LEN as u32;

/// `RESOLVED_END - 1` through a volatile read (see `WALK_OFFSET_MASK`).
#[unsafe(no_mangle)]
static RESOLVED_MASK: u32 = RESOLVED_END - 1;

const AT_DENTRY: usize = 0;
const AT_VFSMNT: usize = 1;
const AT_MNT: usize = 2;
const AT_MNT_ROOT: usize = 3;

#[inline(always)]
fn get(out: &Resolved, i: usize) -> u64 {
    // SAFETY: volatile read of map memory.
    unsafe { core::ptr::read_volatile(&out.at[i]) }
}

#[inline(always)]
fn set(out: &mut Resolved, i: usize, v: u64) {
    // SAFETY: volatile write of map memory.
    unsafe { core::ptr::write_volatile(&mut out.at[i], v) }
}

/// Writes the absolute path of a `struct path` (at address `start`) root first into `out`, the
/// way `d_path` does: components from the leaf up, each put in front of the last, crossing mount
/// points up to the task's root (so a process in a container gets the path as the container
/// sees it, and a bind mount the path it is mounted at). What the kernel opened, not what the
/// process wrote: `.`, `..`, `//`, symbolic links and `/proc/<pid>/root` are gone. `Truncated`
/// leaves the deepest part of a path longer than `RESOLVED_END - 1` bytes or deeper than
/// `WALK_MAX_DEPTH` components.
#[inline(always)]
pub fn resolve_path(task: u64, start: u64, out: &mut Resolved) -> Walk {
    // SAFETY: volatile access to map memory (see `walk_path`).
    unsafe { core::ptr::write_volatile(&mut out.start, RESOLVED_END) };
    let fs = read_ptr(task, config!(offsets.task_fs));
    let root = fs + config!(offsets.fs_root) as u64;
    let dentry = read_ptr(start, config!(offsets.path_dentry));
    let vfsmnt = read_ptr(start, config!(offsets.path_mnt));
    let root_dentry = read_ptr(root, config!(offsets.path_dentry));
    let root_mnt = read_ptr(root, config!(offsets.path_mnt));
    let mount_mnt = config!(offsets.mount_mnt) as u64;
    if dentry == 0 || vfsmnt == 0 || mount_mnt == OFFSET_UNKNOWN as u64 {
        return Walk::Unreadable;
    }
    if config!(offsets.dentry_name_len) == OFFSET_UNKNOWN {
        return Walk::Unreadable;
    }
    set(out, AT_DENTRY, dentry);
    set(out, AT_VFSMNT, vfsmnt);
    set(out, AT_MNT, vfsmnt - mount_mnt);
    set(
        out,
        AT_MNT_ROOT,
        read_ptr(vfsmnt, config!(offsets.vfsmount_root)),
    );
    let buf = out.buf.as_mut_ptr();
    let mut done = false;
    for _ in 0..WALK_MAX_DEPTH {
        let dentry = get(out, AT_DENTRY);
        if dentry == root_dentry && get(out, AT_VFSMNT) == root_mnt {
            done = true;
            break;
        }
        if dentry == get(out, AT_MNT_ROOT) {
            let mnt = get(out, AT_MNT);
            let parent = read_ptr(mnt, config!(offsets.mount_parent));
            if parent == mnt || parent == 0 {
                done = true;
                break;
            }
            set(
                out,
                AT_DENTRY,
                read_ptr(mnt, config!(offsets.mount_mountpoint)),
            );
            set(out, AT_MNT, parent);
            let vfsmnt = parent + mount_mnt;
            set(out, AT_VFSMNT, vfsmnt);
            set(
                out,
                AT_MNT_ROOT,
                read_ptr(vfsmnt, config!(offsets.vfsmount_root)),
            );
            continue;
        }
        let name = read_ptr(dentry, config!(offsets.dentry_name));
        // The name's length from its qstr: the name is copied once, straight into place.
        let len = read_at::<u32>(dentry, config!(offsets.dentry_name_len));
        if len == 0 {
            return Walk::Unreadable;
        }
        // SAFETY: as above.
        let used = unsafe { core::ptr::read_volatile(&out.start) };
        // The path keeps at most RESOLVED_END - 1 bytes, its NUL at RESOLVED_END.
        if len >= RESOLVED_END || len + 2 > used {
            return Walk::Truncated;
        }
        let at = used - len - 1;
        // SAFETY: a plain static.
        let mask = unsafe { core::ptr::read_volatile(&RESOLVED_MASK) };
        // SAFETY: `at & mask` < RESOLVED_END and the copy is at most RESOLVED_END - 1 bytes
        // starting one past it, so it ends inside the 2 * RESOLVED_END-byte buffer.
        let read = unsafe {
            *buf.add((at & mask) as usize) = b'/';
            bpf_probe_read_kernel(
                buf.add(((at & mask) + 1) as usize).cast(),
                len & mask,
                name as *const core::ffi::c_void,
            )
        };
        if read != 0 {
            return Walk::Unreadable;
        }
        // SAFETY: as above.
        unsafe { core::ptr::write_volatile(&mut out.start, at) };
        let parent = read_ptr(dentry, config!(offsets.dentry_parent));
        if parent == dentry || parent == 0 {
            done = true;
            break;
        }
        set(out, AT_DENTRY, parent);
    }
    // SAFETY: as above.
    if unsafe { core::ptr::read_volatile(&out.start) } == RESOLVED_END {
        // The root itself.
        // SAFETY: index RESOLVED_END - 1 of the buffer.
        unsafe {
            *buf.add((RESOLVED_END - 1) as usize) = b'/';
            core::ptr::write_volatile(&mut out.start, RESOLVED_END - 1);
        }
    }
    if done { Walk::Done } else { Walk::Truncated }
}

/// Argument `n` of a `syscalls:sys_enter_*` record, read straight from the context (a load,
/// not a helper call: these run on every matching syscall). Only valid for `n` below the
/// syscall's argument count: the kernel rejects a program that reads past its record.
#[inline(always)]
pub fn syscall_arg(ctx: &aya_ebpf::programs::TracePointContext, n: usize) -> u64 {
    use aya_ebpf::EbpfContext;
    // SAFETY: offset 16 + 8n lies inside the record for n below the argument count; the
    // verifier checks the bound when the program is attached.
    unsafe { core::ptr::read((ctx.as_ptr() as *const u8).add(16 + 8 * n).cast::<u64>()) }
}

/// `ret` of a `syscalls:sys_exit_*` record.
#[inline(always)]
pub fn syscall_ret(ctx: &aya_ebpf::programs::TracePointContext) -> i64 {
    syscall_arg(ctx, 0) as i64
}
