//! Network sensors: `connect(2)` and `accept(2)`/`accept4(2)` with their results.
//!
//! connect: on x86-64 the syscall exit alone, which finds the arguments in the caller's saved
//! user registers; elsewhere the syscall entry saves them per thread for the exit. The exit
//! emits one record with the return value. For IPv4 and IPv6 the cgroup `connect4/6` hook, which
//! runs inside the syscall, has already seen the address, type and protocol: it leaves them in a
//! per-CPU slot with the thread and its context-switch count, and the exit takes them from there
//! when both still match (the thread has not left the CPU since, so no other connect came in
//! between). Otherwise (unix sockets, a connect that slept or moved, no `dns_socket` hook) the
//! exit reads the socket behind the fd: for IPv4 and IPv6 its destination is the peer (a
//! blocking connect sleeps in the handshake, and another thread could rewrite the sockaddr in
//! user memory meanwhile), the user's sockaddr only fills in what the socket lacks (a unix
//! path; the port of a connect that failed after sleeping, which the kernel clears). The cgroup
//! hook also marks sockets aimed at port 53 for the DNS sensor.
//!
//! accept: the syscall exit alone. The new connection's socket, found through the returned fd,
//! names the peer, so no entry program, no pending entry and no read of user memory is needed;
//! `EAGAIN` (a non-blocking listener with nothing to accept) is dropped in the kernel.
//!
//! Outcome: a non-blocking TCP connect returns `EINPROGRESS` with its handshake under way, so
//! its result is not the syscall's (a scan with a connect timeout: python's `settimeout`,
//! nmap's `-sT`). The exit puts the socket in `HANDSHAKES` with the caller's identity, then reads
//! the socket's state: an answer from this host may have closed it already, and then the record
//! carries the error the kernel left (`NetEvent::outcome`). Otherwise the `tcp_receive_reset`
//! program, when a reset answers the socket in `SYN_SENT` (refused), takes the entry and sends a
//! `kind::CONNECT_OUTCOME` record in the caller's name (the answer arrives in softirq). Whoever
//! removes the entry reports, so each outcome is reported once.
//!
//! Repeats: a process that makes the same connection again (the same peer, port, protocol and
//! result; for accept the same peer address from any port) within `repeat_window_ms` of the
//! last record sent for it is counted in the kernel, not sent; the next record of that
//! connection carries the count (`NetEvent::repeats`). A connect storm thus costs a map lookup
//! per connection instead of a record, and nothing is lost: the per-hook `Folded` counter holds
//! every repeat too.

use aya_ebpf::{
    bindings::bpf_sock_addr,
    helpers::{
        bpf_get_current_pid_tgid,
        generated::{bpf_ktime_get_boot_ns, bpf_probe_read_user},
    },
    macros::{btf_tracepoint, cgroup_sock_addr, map, raw_tracepoint, tracepoint},
    maps::{LruHashMap, PerCpuArray},
    programs::{BtfTracePointContext, RawTracePointContext, SockAddrContext, TracePointContext},
};
use node_agent_common::{
    NetEvent, TaskIdentity, UNIX_PATH_LEN,
    config::OFFSET_UNKNOWN,
    family, kind,
    stats::{Hook, StatKind},
};

use crate::{
    dns,
    kernel::{
        Kptr, config, count, current_tgid, fd_file, file_sock, fill_current, header, is_agent,
        process_start_ns, read_at, reserve, socket_kind, socket_peer, syscall_arg, syscall_ret,
    },
};

/// A connect in flight on one thread.
#[repr(C)]
#[derive(Clone, Copy)]
struct Pending {
    /// The sockaddr in user memory.
    sockaddr: u64,
    /// Its length.
    addrlen: u64,
    fd: i32,
    _pad: u32,
}

#[map]
/// The common LRU list, not one per CPU: see `node_agent_common::maps`.
static PENDING: LruHashMap<u64, Pending> =
    LruHashMap::with_max_entries(node_agent_common::maps::LRU_ENTRIES, 0);

/// One connection, as the repeat filter tells them apart.
#[repr(C)]
#[derive(Clone, Copy)]
struct RepeatKey {
    /// The process's start time: a recycled pid is another process.
    start_time_ns: u64,
    tgid: u32,
    ret: i32,
    kind: u16,
    family: u16,
    /// The remote port for connect; 0 for accept (every peer port is one connection).
    port: u16,
    sock_type: u16,
    protocol: u16,
    /// Explicit padding, zero: the whole key is hashed.
    _pad: u16,
    addr: [u8; 16],
    _pad2: u32,
}

/// The last record sent for a connection and the repeats counted since.
#[repr(C)]
#[derive(Clone, Copy)]
struct Seen {
    sent_ns: u64,
    folded: u32,
    _pad: u32,
}

#[map]
/// One LRU list per CPU, sized from the CPU count at load (`node_agent_common::maps`).
static REPEATS: LruHashMap<RepeatKey, Seen> = LruHashMap::with_max_entries(
    node_agent_common::maps::LRU_ENTRIES,
    aya_ebpf::bindings::BPF_F_NO_COMMON_LRU,
);

/// What the cgroup connect hook saw of the connect under way on this CPU.
#[repr(C)]
#[derive(Clone, Copy)]
struct HookSaw {
    /// The thread; 0 once the exit has taken the slot.
    pid_tgid: u64,
    /// Its context switches when the hook ran.
    switches: u64,
    sock_type: u16,
    protocol: u16,
    peer_family: u16,
    peer_port: u16,
    peer_addr: [u8; 16],
}

#[map]
static HOOK_SAW: PerCpuArray<HookSaw> = PerCpuArray::with_max_entries(1, 0);

/// A non-blocking TCP connect whose handshake was under way when the syscall returned.
#[repr(C)]
#[derive(Clone, Copy)]
struct Handshake {
    /// The caller, recorded at the syscall's exit.
    task: TaskIdentity,
    fd: i32,
    sock_type: u16,
    protocol: u16,
    peer: Peer,
}

/// Sockets in handshake, by `struct sock *`. An entry leaves when its outcome is reported, or
/// when the exit found the handshake over already; the others (handshakes that succeed later)
/// are dropped least recently used first, as is a handshake still under way when 4,096 newer
/// ones came after it (its outcome then goes unreported).
#[map]
static HANDSHAKES: LruHashMap<u64, Handshake> = LruHashMap::with_max_entries(HANDSHAKES_MAX, 0);

/// Handshakes followed at once.
const HANDSHAKES_MAX: u32 = 4096;
/// `-EINPROGRESS`.
const EINPROGRESS: i64 = -115;
/// `ECONNREFUSED`: what `tcp_reset` makes of a reset in `SYN_SENT`.
const ECONNREFUSED: i32 = 111;
/// `TCP_SYN_SENT` and `TCP_CLOSE` (`include/net/tcp_states.h`).
const TCP_SYN_SENT: i32 = 2;
const TCP_CLOSE: i32 = 7;

/// The current thread's context switches so far, or `None` where the kernel's BTF lacks them.
#[inline(always)]
fn context_switches() -> Option<u64> {
    let (voluntary, involuntary) = (config!(offsets.task_nvcsw), config!(offsets.task_nivcsw));
    if voluntary == OFFSET_UNKNOWN || involuntary == OFFSET_UNKNOWN {
        return None;
    }
    let task = Kptr::current_task();
    Some(task.read::<u64>(voluntary) + task.read::<u64>(involuntary))
}

/// Where a connection goes (connect) or comes from (accept).
#[derive(Clone, Copy)]
struct Peer {
    family: u16,
    port: u16,
    addr: [u8; 16],
}

#[tracepoint(category = "syscalls", name = "sys_enter_connect")]
pub fn connect_enter(ctx: TracePointContext) -> u32 {
    on_enter(&ctx, Hook::Connect);
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_connect")]
pub fn connect_exit(ctx: TracePointContext) -> u32 {
    on_exit(&ctx, Hook::Connect, kind::CONNECT);
    0
}

/// connect from its exit alone: the arguments are still in the caller's saved user registers,
/// and the socket (found through the fd) gives its type and protocol. Preferred over the
/// entry/exit pair where the registers' offsets are known (x86-64).
#[tracepoint(category = "syscalls", name = "sys_exit_connect")]
pub fn connect_exit_regs(ctx: TracePointContext) -> u32 {
    on_connect_exit_regs(&ctx);
    0
}

// A TCP socket received a reset, before the kernel closes it (`tcp_reset`):
// `tcp_receive_reset(const struct sock *sk)`. Resets are rare on ordinary traffic (a refused
// connect, a peer aborting), so, unlike a program on every state change
// (`inet_sock_set_state`: about ten per loopback connection), this costs nothing on the
// connections that succeed. The BTF-typed and raw forms hand the argument over as it is.
#[btf_tracepoint(function = "tcp_receive_reset")]
pub fn connect_outcome_btf(ctx: BtfTracePointContext) -> i32 {
    on_reset(ctx.arg::<u64>(0));
    0
}

#[raw_tracepoint(tracepoint = "tcp_receive_reset")]
pub fn connect_outcome_raw(ctx: RawTracePointContext) -> i32 {
    on_reset(ctx.arg::<u64>(0));
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_accept")]
pub fn accept_exit(ctx: TracePointContext) -> u32 {
    on_accept_exit(&ctx);
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_accept4")]
pub fn accept4_exit(ctx: TracePointContext) -> u32 {
    on_accept_exit(&ctx);
    0
}

#[cgroup_sock_addr(connect4)]
pub fn sock_connect4(ctx: SockAddrContext) -> i32 {
    on_sock_connect(&ctx, false);
    1
}

#[cgroup_sock_addr(connect6)]
pub fn sock_connect6(ctx: SockAddrContext) -> i32 {
    on_sock_connect(&ctx, true);
    1
}

#[inline(always)]
fn on_enter(ctx: &TracePointContext, hook: Hook) {
    if is_agent() {
        count(hook, StatKind::Filtered);
        return;
    }
    let (fd, sockaddr, addrlen) = (
        syscall_arg(ctx, 0) as i32,
        syscall_arg(ctx, 1),
        syscall_arg(ctx, 2),
    );
    let pending = Pending {
        sockaddr,
        addrlen,
        fd,
        _pad: 0,
    };
    if PENDING
        .insert(bpf_get_current_pid_tgid(), pending, 0)
        .is_err()
    {
        count(hook, StatKind::Errors);
    }
}

/// `v6`: a `connect6` program (only those may read the IPv6 address fields).
#[inline(always)]
fn on_sock_connect(ctx: &SockAddrContext, v6: bool) {
    // SAFETY: the context pointer is valid for the program's lifetime.
    let sa: &bpf_sock_addr = unsafe { &*ctx.sock_addr };
    if is_agent() {
        return;
    }
    let port = u16::from_be(sa.user_port as u16);
    if let (Some(switches), Some(slot)) = (context_switches(), HOOK_SAW.get_ptr_mut(0)) {
        let mut addr = [0u8; 16];
        if v6 {
            for (i, word) in sa.user_ip6.iter().enumerate() {
                addr[i * 4..i * 4 + 4].copy_from_slice(&word.to_ne_bytes());
            }
        } else {
            addr[..4].copy_from_slice(&sa.user_ip4.to_ne_bytes());
        }
        // SAFETY: this CPU's slot; nothing else runs on this CPU while the program does.
        unsafe {
            *slot = HookSaw {
                pid_tgid: bpf_get_current_pid_tgid(),
                switches,
                sock_type: sa.type_ as u16,
                protocol: sa.protocol as u16,
                peer_family: if v6 { family::INET6 } else { family::INET },
                peer_port: port,
                peer_addr: addr,
            }
        };
    }
    if port == 53 {
        dns::watch_socket(ctx);
    }
}

/// What the cgroup hook saw of this thread's connect, when it is still this connect's: taken
/// from the slot (once) if the thread is the same and has not been switched out since.
#[inline(always)]
fn hook_saw() -> Option<HookSaw> {
    let switches = context_switches()?;
    let slot = HOOK_SAW.get_ptr_mut(0)?;
    // SAFETY: this CPU's slot; nothing else runs on this CPU while the program does.
    let saw = unsafe { &mut *slot };
    if saw.pid_tgid != bpf_get_current_pid_tgid() || saw.switches != switches {
        return None;
    }
    saw.pid_tgid = 0;
    Some(*saw)
}

#[inline(always)]
fn on_connect_exit_regs(ctx: &TracePointContext) {
    let hook = Hook::Connect;
    if is_agent() {
        count(hook, StatKind::Filtered);
        return;
    }
    let regs = Kptr::current_regs();
    let pending = Pending {
        sockaddr: regs.read::<u64>(config!(offsets.regs_arg1)),
        addrlen: regs.read::<u64>(config!(offsets.regs_arg2)),
        fd: regs.read::<u64>(config!(offsets.regs_arg0)) as i32,
        _pad: 0,
    };
    emit(ctx, hook, kind::CONNECT, &pending);
}

/// `-EAGAIN`: nothing to accept on a non-blocking listener.
const EAGAIN: i64 = -11;

#[inline(always)]
fn on_accept_exit(ctx: &TracePointContext) {
    let hook = Hook::Accept;
    let ret = syscall_ret(ctx);
    if ret == EAGAIN {
        return;
    }
    if is_agent() {
        count(hook, StatKind::Filtered);
        return;
    }
    // accept only returns connected stream sockets.
    let mut sock_type = 1;
    let mut peer = Peer {
        family: 0,
        port: 0,
        addr: [0; 16],
    };
    if ret >= 0 {
        let found = socket_peer(fd_file(ret as u64), true);
        if found.family != u16::MAX {
            peer.family = found.family;
        }
        if found.sock_type != 0 {
            sock_type = found.sock_type;
        }
        peer.port = found.port;
        peer.addr = found.addr;
    }
    let Some(repeats) = repeats_to_send(hook, kind::ACCEPT, ret, &peer, 0, sock_type, 0) else {
        return;
    };
    let conn = Conn {
        ret,
        fd: ret as i32,
        sock_type,
        protocol: 0,
        peer,
        repeats,
        outcome: 0,
        readable: true,
    };
    send(hook, kind::ACCEPT, &conn, None, None);
}

/// What a connect or accept record says besides the task.
struct Conn {
    ret: i64,
    fd: i32,
    sock_type: u16,
    protocol: u16,
    peer: Peer,
    repeats: u32,
    /// `NetEvent::outcome`.
    outcome: i32,
    /// False when the address could not be read (the record is counted as an error).
    readable: bool,
}

/// Sends one connect or accept record in the current task's name, or in `owner`'s. A unix
/// peer's path is copied from `sockaddr`'s.
#[inline(always)]
fn send(
    hook: Hook,
    record_kind: u16,
    conn: &Conn,
    sockaddr: Option<&Pending>,
    owner: Option<&TaskIdentity>,
) {
    let Some(mut entry) = reserve::<NetEvent>() else {
        count(hook, StatKind::Dropped);
        return;
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: reserved memory of the right size; every field is written (the path up to its
    // length).
    let complete = unsafe {
        let ev = &mut *ev;
        ev.header = header(record_kind, core::mem::size_of::<NetEvent>());
        let mut complete = conn.readable
            && match owner {
                Some(task) => {
                    ev.task = *task;
                    true
                }
                None => fill_current(&mut ev.task),
            };
        ev.ret = conn.ret as i32;
        ev.fd = conn.fd;
        ev.sock_type = conn.sock_type;
        ev.protocol = conn.protocol;
        ev.outcome = conn.outcome;
        ev.family = conn.peer.family;
        ev.port = conn.peer.port;
        ev.addr = conn.peer.addr;
        ev.repeats = conn.repeats;
        ev.unix_path_len = 0;
        if let Some(pending) = sockaddr
            && conn.peer.family == family::UNIX
        {
            complete &= read_unix_path(ev, pending);
        }
        complete
    };
    entry.submit();
    count(hook, StatKind::Sent);
    if !complete {
        count(hook, StatKind::Errors);
    }
}

/// The repeat filter: `None` when this event repeats one sent less than `repeat_window_ms`
/// ago (it is counted instead), otherwise the repeats to report with it. `port` 0 for accept.
#[inline(always)]
fn repeats_to_send(
    hook: Hook,
    record_kind: u16,
    ret: i64,
    peer: &Peer,
    port: u16,
    sock_type: u16,
    protocol: u16,
) -> Option<u32> {
    let window_ms = config!(repeat_window_ms);
    // Unix sockets are told apart by their path, which the key does not hold: never folded.
    if window_ms == 0 || peer.family == family::UNIX {
        return Some(0);
    }
    let key = RepeatKey {
        start_time_ns: process_start_ns(Kptr::current_task()),
        tgid: current_tgid(),
        ret: ret as i32,
        kind: record_kind,
        family: peer.family,
        port,
        sock_type,
        protocol,
        _pad: 0,
        addr: peer.addr,
        _pad2: 0,
    };
    // SAFETY: helper without arguments.
    let now = unsafe { bpf_ktime_get_boot_ns() };
    if let Some(seen) = REPEATS.get_ptr_mut(&key) {
        // SAFETY: a valid map value for the program's lifetime.
        let seen = unsafe { &mut *seen };
        // A time after now was not written by this program (another process rewrote the
        // map: `sent_ns = u64::MAX` would fold this connection forever): not trusted, the
        // record goes out and the entry is reset below.
        if seen.sent_ns <= now && now - seen.sent_ns < window_ms as u64 * 1_000_000 {
            // SAFETY: a valid map value; the result is unused, so this is a plain atomic add.
            unsafe {
                core::intrinsics::atomic_xadd::<
                    u32,
                    u32,
                    { core::intrinsics::AtomicOrdering::Relaxed },
                >(&mut seen.folded, 1)
            };
            count(hook, StatKind::Folded);
            return None;
        }
        // A fold racing with this on another CPU can be missed here (the counter has it).
        let folded = seen.folded;
        seen.folded = 0;
        seen.sent_ns = now;
        return Some(folded);
    }
    let seen = Seen {
        sent_ns: now,
        folded: 0,
        _pad: 0,
    };
    if REPEATS.insert(&key, &seen, 0).is_err() {
        count(hook, StatKind::Errors);
    }
    Some(0)
}

#[inline(always)]
fn on_exit(ctx: &TracePointContext, hook: Hook, record_kind: u16) {
    let key = bpf_get_current_pid_tgid();
    // SAFETY: the pointer is copied out at once, then the entry is removed.
    let Some(pending) = (unsafe { PENDING.get(key) }).copied() else {
        return;
    };
    let _ = PENDING.remove(key);
    emit(ctx, hook, record_kind, &pending);
}

/// One record for a finished connect, unless it repeats one just sent.
#[inline(always)]
fn emit(ctx: &TracePointContext, hook: Hook, record_kind: u16, pending: &Pending) {
    let ret = syscall_ret(ctx);
    let (peer, readable, sock_type, protocol) = match hook_saw() {
        Some(saw) => (
            Peer {
                family: saw.peer_family,
                port: saw.peer_port,
                addr: saw.peer_addr,
            },
            true,
            saw.sock_type,
            saw.protocol,
        ),
        None => {
            let (mut peer, mut readable) = read_peer(pending);
            let (sock_type, protocol) = socket_kind(pending.fd as u64);
            // The connect slept (a TCP handshake) or no hook ran: user memory may have been
            // rewritten meanwhile by another thread, so the kernel's socket decides where
            // the connection went. A connect that failed after sleeping may have had its
            // port cleared by the kernel: then the address still comes from the socket.
            let found = socket_peer(fd_file(pending.fd as u64), false);
            if (found.family == family::INET || found.family == family::INET6)
                && found.addr.iter().any(|&b| b != 0)
            {
                if found.family != peer.family || found.port != 0 {
                    peer.port = found.port;
                }
                peer.family = found.family;
                peer.addr = found.addr;
                readable = true;
            }
            (peer, readable, sock_type, protocol)
        }
    };
    let outcome =
        if ret == EINPROGRESS && (peer.family == family::INET || peer.family == family::INET6) {
            handshake_started(pending.fd, &peer, sock_type, protocol)
        } else {
            0
        };
    let Some(repeats) = repeats_to_send(
        hook,
        record_kind,
        ret,
        &peer,
        peer.port,
        sock_type,
        protocol,
    ) else {
        return;
    };
    let conn = Conn {
        ret,
        fd: pending.fd,
        sock_type,
        protocol,
        peer,
        repeats,
        outcome,
        readable,
    };
    send(hook, record_kind, &conn, Some(pending), None);
}

/// Follows the handshake of a connect that returned `EINPROGRESS`: `-errno` when it already
/// failed (an answer from this host came before the syscall returned), else 0 and the state
/// program reports how it ends.
#[inline(always)]
fn handshake_started(fd: i32, peer: &Peer, sock_type: u16, protocol: u16) -> i32 {
    let sk = file_sock(fd_file(fd as u64));
    if sk == 0 || config!(offsets.sk_state) == OFFSET_UNKNOWN {
        return 0;
    }
    // SAFETY: an all-zero TaskIdentity is valid (plain integers).
    let mut task: TaskIdentity = unsafe { core::mem::zeroed() };
    fill_current(&mut task);
    let entry = Handshake {
        task,
        fd,
        sock_type,
        protocol,
        peer: *peer,
    };
    if HANDSHAKES.insert(&sk, &entry, 0).is_err() {
        count(Hook::Connect, StatKind::Errors);
        return 0;
    }
    // Read after the insert: a state change from now on finds the entry, and an earlier one
    // shows here.
    let state = read_at::<u8>(sk, config!(offsets.sk_state)) as i32;
    if state == TCP_SYN_SENT || HANDSHAKES.remove(&sk).is_err() {
        // Still under way, or the state program took the entry and reports.
        return 0;
    }
    if state == TCP_CLOSE {
        -read_at::<i32>(sk, config!(offsets.sk_err))
    } else {
        0
    }
}

/// `tcp_receive_reset`: a socket this sensor follows, still in `SYN_SENT`, was answered with a
/// reset: its handshake was refused (the kernel sets `ECONNREFUSED` right after), reported in
/// the caller's name. Handshakes that succeed leave their entry for the LRU to drop; the peer
/// port, read from the socket, must match the entry's, so a stale entry of a freed socket whose
/// memory a new socket reuses is never taken for it.
#[inline(always)]
fn on_reset(sk: u64) {
    if config!(offsets.sk_state) == OFFSET_UNKNOWN
        || read_at::<u8>(sk, config!(offsets.sk_state)) as i32 != TCP_SYN_SENT
    {
        return;
    }
    // SAFETY: the value is copied out at once.
    let Some(entry) = (unsafe { HANDSHAKES.get(&sk) }).copied() else {
        return;
    };
    let port = u16::from_be(read_at::<u16>(sk, config!(offsets.sk_dport)));
    if port != entry.peer.port || HANDSHAKES.remove(&sk).is_err() {
        return;
    }
    let conn = Conn {
        ret: EINPROGRESS,
        fd: entry.fd,
        sock_type: entry.sock_type,
        protocol: entry.protocol,
        peer: entry.peer,
        repeats: 0,
        outcome: -ECONNREFUSED,
        readable: true,
    };
    send(
        Hook::ConnectOutcome,
        kind::CONNECT_OUTCOME,
        &conn,
        None,
        Some(&entry.task),
    );
}

/// The remote address from the connect's sockaddr in user memory, and whether it was readable.
#[inline(always)]
fn read_peer(pending: &Pending) -> (Peer, bool) {
    let mut peer = Peer {
        family: 0,
        port: 0,
        addr: [0; 16],
    };
    let sockaddr = pending.sockaddr;
    if sockaddr == 0 {
        return (peer, true);
    }
    let mut head = [0u8; 28];
    // SAFETY: reads the first bytes of a sockaddr (family, port, IPv4 or IPv6 address).
    let rc = unsafe { bpf_probe_read_user(head.as_mut_ptr().cast(), 28, sockaddr as *const _) };
    if rc != 0 {
        // The buffer may be shorter than 28 bytes (sockaddr_in is 16): retry with 16.
        // SAFETY: as above, 16 bytes.
        let rc = unsafe { bpf_probe_read_user(head.as_mut_ptr().cast(), 16, sockaddr as *const _) };
        if rc != 0 {
            return (peer, false);
        }
    }
    let fam = u16::from_ne_bytes([head[0], head[1]]);
    match fam {
        family::INET => {
            peer.family = fam;
            peer.port = u16::from_be_bytes([head[2], head[3]]);
            peer.addr[..4].copy_from_slice(&head[4..8]);
        }
        family::INET6 => {
            peer.family = fam;
            peer.port = u16::from_be_bytes([head[2], head[3]]);
            peer.addr.copy_from_slice(&head[8..24]);
        }
        family::UNIX => peer.family = fam,
        _ => {}
    }
    (peer, true)
}

/// Copies a unix socket's path out of the connect's sockaddr. Returns false when it was
/// unreadable.
#[inline(always)]
unsafe fn read_unix_path(ev: &mut NetEvent, pending: &Pending) -> bool {
    let mut len = pending.addrlen.saturating_sub(2);
    if len > UNIX_PATH_LEN as u64 {
        len = UNIX_PATH_LEN as u64;
    }
    // SAFETY: len <= UNIX_PATH_LEN, the size of the destination.
    let rc = unsafe {
        bpf_probe_read_user(
            ev.unix_path.as_mut_ptr().cast(),
            len as u32,
            (pending.sockaddr + 2) as *const _,
        )
    };
    if rc != 0 {
        return false;
    }
    ev.unix_path_len = len as u32;
    true
}
