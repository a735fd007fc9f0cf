//! Network sensors: `connect(2)` and `accept(2)`/`accept4(2)` with their results.
//!
//! connect: the syscall entry saves the user's sockaddr pointer per thread; the cgroup
//! `connect4/6` hook, which runs inside the syscall, adds the socket type and protocol (and marks
//! sockets aimed at port 53 for the DNS sensor); the syscall exit emits one record with the
//! return value.
//!
//! accept: the syscall exit alone. The new connection's socket, found through the returned fd,
//! names the peer, so no entry program, no pending entry and no read of user memory is needed;
//! `EAGAIN` (a non-blocking listener with nothing to accept) is dropped in the kernel.

use aya_ebpf::{
    bindings::bpf_sock_addr,
    helpers::{
        bpf_get_current_pid_tgid,
        generated::{bpf_get_current_task_btf, bpf_probe_read_user, bpf_task_pt_regs},
    },
    macros::{cgroup_sock_addr, map, tracepoint},
    maps::LruHashMap,
    programs::{SockAddrContext, TracePointContext},
};
use node_agent_common::{
    NetEvent, UNIX_PATH_LEN, family, kind,
    stats::{Hook, StatKind},
};

use crate::{
    dns,
    kernel::{
        EVENTS, config, count, current_task, fd_file, fill_current, header, is_agent, read_at,
        read_ptr, socket_peer, submit_flags, syscall_arg, syscall_ret,
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
    sock_type: u16,
    protocol: u16,
}

#[map]
static PENDING: LruHashMap<u64, Pending> = LruHashMap::with_max_entries(16384, 0);

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
    on_sock_connect(&ctx);
    1
}

#[cgroup_sock_addr(connect6)]
pub fn sock_connect6(ctx: SockAddrContext) -> i32 {
    on_sock_connect(&ctx);
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
        sock_type: 0,
        protocol: 0,
    };
    if PENDING
        .insert(bpf_get_current_pid_tgid(), pending, 0)
        .is_err()
    {
        count(hook, StatKind::Errors);
    }
}

#[inline(always)]
fn on_sock_connect(ctx: &SockAddrContext) {
    if is_agent() {
        return;
    }
    // SAFETY: the context pointer is valid for the program's lifetime.
    let sa: &bpf_sock_addr = unsafe { &*ctx.sock_addr };
    let key = bpf_get_current_pid_tgid();
    if let Some(pending) = PENDING.get_ptr_mut(key) {
        // SAFETY: map value pointer valid until the program ends; only this thread uses the key.
        unsafe {
            (*pending).sock_type = sa.type_ as u16;
            (*pending).protocol = sa.protocol as u16;
        }
    }
    if u16::from_be(sa.user_port as u16) == 53 {
        dns::watch_socket(ctx);
    }
}

#[inline(always)]
fn on_connect_exit_regs(ctx: &TracePointContext) {
    let hook = Hook::Connect;
    if is_agent() {
        count(hook, StatKind::Filtered);
        return;
    }
    // SAFETY: the helpers take the current task, which is valid for the program's lifetime.
    let regs = unsafe { bpf_task_pt_regs(bpf_get_current_task_btf()) } as u64;
    if regs == 0 {
        count(hook, StatKind::Errors);
        return;
    }
    let fd = read_at::<u64>(regs, config!(offsets.regs_arg0)) as i32;
    let task = current_task();
    let socket = read_ptr(fd_file(task, fd as u64), config!(offsets.file_private_data));
    let sk = read_ptr(socket, config!(offsets.socket_sk));
    let pending = Pending {
        sockaddr: read_at::<u64>(regs, config!(offsets.regs_arg1)),
        addrlen: read_at::<u64>(regs, config!(offsets.regs_arg2)),
        fd,
        sock_type: read_at::<u16>(socket, config!(offsets.socket_type)),
        protocol: read_at::<u16>(sk, config!(offsets.sk_protocol)),
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
    let Some(mut entry) = EVENTS.reserve::<NetEvent>(0) else {
        count(hook, StatKind::Dropped);
        return;
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: reserved memory of the right size; every field is written.
    let complete = unsafe {
        let ev = &mut *ev;
        ev.header = header(kind::ACCEPT, core::mem::size_of::<NetEvent>());
        let task = current_task();
        let complete = fill_current(&mut ev.task, task);
        ev.ret = ret as i32;
        ev.fd = ret as i32;
        ev.protocol = 0;
        ev._pad = 0;
        ev._pad2 = [0; 4];
        ev.family = 0;
        ev.port = 0;
        ev.addr = [0; 16];
        ev.unix_path_len = 0;
        // accept only returns connected stream sockets.
        ev.sock_type = 1;
        if ret >= 0 {
            let peer = socket_peer(fd_file(task, ret as u64));
            if peer.family != u16::MAX {
                ev.family = peer.family;
            }
            if peer.sock_type != 0 {
                ev.sock_type = peer.sock_type;
            }
            ev.port = peer.port;
            ev.addr = peer.addr;
        }
        complete
    };
    entry.submit(submit_flags());
    count(hook, StatKind::Sent);
    if !complete {
        count(hook, StatKind::Errors);
    }
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

/// One record for a finished syscall.
#[inline(always)]
fn emit(ctx: &TracePointContext, hook: Hook, record_kind: u16, pending: &Pending) {
    let ret = syscall_ret(ctx);

    let Some(mut entry) = EVENTS.reserve::<NetEvent>(0) else {
        count(hook, StatKind::Dropped);
        return;
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: reserved memory of the right size; every field is written.
    let complete = unsafe {
        let ev = &mut *ev;
        ev.header = header(record_kind, core::mem::size_of::<NetEvent>());
        let mut complete = fill_current(&mut ev.task, current_task());
        ev.ret = ret as i32;
        ev.fd = pending.fd;
        ev.sock_type = pending.sock_type;
        ev.protocol = pending.protocol;
        ev._pad = 0;
        ev._pad2 = [0; 4];
        complete &= fill_peer(ev, pending);
        complete
    };
    entry.submit(submit_flags());
    count(hook, StatKind::Sent);
    if !complete {
        count(hook, StatKind::Errors);
    }
}

/// Copies the remote address out of the connect's sockaddr. Returns false when it was
/// unreadable.
#[inline(always)]
unsafe fn fill_peer(ev: &mut NetEvent, pending: &Pending) -> bool {
    ev.family = 0;
    ev.port = 0;
    ev.addr = [0; 16];
    ev.unix_path_len = 0;
    let sockaddr = pending.sockaddr;
    if sockaddr == 0 {
        return true;
    }
    let addrlen = pending.addrlen;
    let mut head = [0u8; 28];
    // SAFETY: reads the first bytes of a sockaddr (family, port, IPv4 or IPv6 address).
    let rc = unsafe { bpf_probe_read_user(head.as_mut_ptr().cast(), 28, sockaddr as *const _) };
    if rc != 0 {
        // The buffer may be shorter than 28 bytes (sockaddr_in is 16): retry with 16.
        // SAFETY: as above, 16 bytes.
        let rc = unsafe { bpf_probe_read_user(head.as_mut_ptr().cast(), 16, sockaddr as *const _) };
        if rc != 0 {
            return false;
        }
    }
    let fam = u16::from_ne_bytes([head[0], head[1]]);
    match fam {
        family::INET => {
            ev.family = fam;
            ev.port = u16::from_be_bytes([head[2], head[3]]);
            ev.addr[..4].copy_from_slice(&head[4..8]);
        }
        family::INET6 => {
            ev.family = fam;
            ev.port = u16::from_be_bytes([head[2], head[3]]);
            ev.addr.copy_from_slice(&head[8..24]);
        }
        family::UNIX => {
            ev.family = fam;
            let mut len = addrlen.saturating_sub(2);
            if len > UNIX_PATH_LEN as u64 {
                len = UNIX_PATH_LEN as u64;
            }
            // SAFETY: len <= UNIX_PATH_LEN, the size of the destination.
            let rc = unsafe {
                bpf_probe_read_user(
                    ev.unix_path.as_mut_ptr().cast(),
                    len as u32,
                    (sockaddr + 2) as *const _,
                )
            };
            if rc != 0 {
                return false;
            }
            ev.unix_path_len = len as u32;
        }
        _ => {}
    }
    true
}
