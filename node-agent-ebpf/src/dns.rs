//! DNS sensor: messages on sockets that a process aimed at port 53, in both directions.
//!
//! The cgroup `connect4/6` and `sendmsg4/6` hooks run in the process's context and remember the
//! socket (by cookie) with its owner; the cgroup skb hooks then copy the DNS payload of every
//! packet on such a socket. cgroup hooks see loopback traffic and every network namespace, so a
//! resolver on 127.0.0.53 inside a container is covered too.
//!
//! The table of sockets is bounded (an LRU map): a process can open thousands of sockets aimed
//! at port 53 to push its own out of it. A packet to or from port 53 on a socket the table does
//! not hold is therefore still reported, marked [`dns_flags::UNTRACKED`], with the task that
//! sent it or, when none can be named, only the socket's cgroup (`untracked_owner`).

use aya_ebpf::{
    bindings::bpf_sock_addr,
    helpers::generated::{bpf_get_socket_cookie, bpf_skb_cgroup_id, bpf_skb_load_bytes},
    macros::{cgroup_skb, cgroup_sock_addr, map},
    maps::LruHashMap,
    programs::{SkBuffContext, SockAddrContext},
};
use node_agent_common::{
    DNS_PAYLOAD_LEN, DnsEvent, TaskIdentity, direction, dns_flags, family, kind,
    stats::{Hook, StatKind},
};

use crate::{
    kernel::{count, fill_current, header, is_agent, reserve},
    stream::locked_by_current,
};

const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const DNS_PORT: u16 = 53;

/// Sockets aimed at port 53, by socket cookie, with the process that aimed them.
#[map]
/// One LRU list per CPU, sized from the CPU count at load (`node_agent_common::maps`).
static DNS_SOCKETS: LruHashMap<u64, TaskIdentity> = LruHashMap::with_max_entries(
    node_agent_common::maps::LRU_ENTRIES,
    aya_ebpf::bindings::BPF_F_NO_COMMON_LRU,
);

#[cgroup_sock_addr(sendmsg4)]
pub fn sock_sendmsg4(ctx: SockAddrContext) -> i32 {
    on_sendmsg(&ctx);
    1
}

#[cgroup_sock_addr(sendmsg6)]
pub fn sock_sendmsg6(ctx: SockAddrContext) -> i32 {
    on_sendmsg(&ctx);
    1
}

#[cgroup_skb]
pub fn dns_egress(ctx: SkBuffContext) -> i32 {
    on_packet(&ctx, direction::EGRESS);
    1
}

#[cgroup_skb]
pub fn dns_ingress(ctx: SkBuffContext) -> i32 {
    on_packet(&ctx, direction::INGRESS);
    1
}

#[inline(always)]
fn on_sendmsg(ctx: &SockAddrContext) {
    if is_agent() {
        return;
    }
    // SAFETY: the context pointer is valid for the program's lifetime.
    let sa: &bpf_sock_addr = unsafe { &*ctx.sock_addr };
    if u16::from_be(sa.user_port as u16) == DNS_PORT {
        watch_socket(ctx);
    }
}

/// Remembers the socket of a `connect`/`sendmsg` towards port 53 and its owner.
#[inline(always)]
pub fn watch_socket(ctx: &SockAddrContext) {
    // SAFETY: sock_addr programs may call bpf_get_socket_cookie on their context.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.sock_addr.cast()) };
    if DNS_SOCKETS.get_ptr(cookie).is_some() {
        return;
    }
    let mut owner = TaskIdentity {
        pid: 0,
        tgid: 0,
        ppid: 0,
        uid: 0,
        gid: 0,
        euid: 0,
        egid: 0,
        pid_ns: 0,
        mnt_ns: 0,
        _pad: 0,
        cgroup_id: 0,
        start_time_ns: 0,
        comm: [0; 16],
    };
    let complete = fill_current(&mut owner);
    if DNS_SOCKETS.insert(cookie, owner, 0).is_err() || !complete {
        count(Hook::DnsSocket, StatKind::Errors);
    }
    count(Hook::DnsSocket, StatKind::Sent);
}

#[inline(always)]
fn on_packet(ctx: &SkBuffContext, dir: u16) {
    // Every packet of the host passes here: leave at once unless the socket could be a watched
    // one. Watched sockets were connected to port 53, or are unconnected UDP (remote port 0)
    // that sent to it; one the table no longer holds is known by the packet's port below.
    // `remote_port` is a context field (a plain load, no helper call): the
    // socket's destination port in network order, in the upper half on little-endian targets.
    // SAFETY: the context pointer is valid for the program's lifetime.
    let remote = unsafe { (*ctx.skb.skb).remote_port };
    let remote = if cfg!(target_endian = "little") {
        (remote >> 16) as u16
    } else {
        remote as u16
    };
    if remote != 0 && remote != DNS_PORT.to_be() {
        return;
    }
    // SAFETY: cgroup skb programs may call bpf_get_socket_cookie on their skb.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.skb.skb.cast()) };
    // SAFETY: an all-zero TaskIdentity is valid (plain integers).
    let mut owner: TaskIdentity = unsafe { core::mem::zeroed() };
    // SAFETY: the value is copied before any other map operation.
    let known = match unsafe { DNS_SOCKETS.get(cookie) } {
        Some(found) => {
            owner = *found;
            true
        }
        None => false,
    };
    if !known && remote == 0 && !unconnected_udp(ctx) {
        // A socket with no peer that the table does not hold: only UDP can carry a DNS message
        // to or from a port it names per datagram (a TCP one is a listener: a connect storm's
        // every SYN comes here). Decided from the packet in place, before any helper call.
        return;
    }
    let hook = if dir == direction::EGRESS {
        Hook::DnsEgress
    } else {
        Hook::DnsIngress
    };

    // Network header first: cgroup skb data starts at the IP header.
    let Ok(first) = ctx.load::<u8>(0) else {
        count(hook, StatKind::Errors);
        return;
    };
    let mut addr = [0u8; 16];
    let (fam, proto, l4) = match first >> 4 {
        4 => {
            let ihl = ((first & 0x0f) as usize) * 4;
            let proto = ctx.load::<u8>(9).unwrap_or(0);
            // Remote end: destination for egress, source for ingress.
            let at = if dir == direction::EGRESS { 16 } else { 12 };
            let Ok(ip) = ctx.load::<[u8; 4]>(at) else {
                count(hook, StatKind::Errors);
                return;
            };
            addr[..4].copy_from_slice(&ip);
            (family::INET, proto, ihl)
        }
        6 => {
            let proto = ctx.load::<u8>(6).unwrap_or(0);
            let at = if dir == direction::EGRESS { 24 } else { 8 };
            let Ok(ip) = ctx.load::<[u8; 16]>(at) else {
                count(hook, StatKind::Errors);
                return;
            };
            addr = ip;
            (family::INET6, proto, 40)
        }
        _ => return,
    };
    let port_at = if dir == direction::EGRESS { l4 + 2 } else { l4 };
    let port = u16::from_be(ctx.load::<u16>(port_at).unwrap_or(0));
    if !known && port != DNS_PORT {
        return;
    }
    let payload_at = match proto {
        IPPROTO_UDP => l4 + 8,
        IPPROTO_TCP => {
            let Ok(doff) = ctx.load::<u8>(l4 + 12) else {
                count(hook, StatKind::Errors);
                return;
            };
            l4 + ((doff >> 4) as usize) * 4
        }
        _ => return,
    };
    let total = ctx.len() as usize;
    if payload_at >= total {
        // A bare TCP segment (handshake, ACK): nothing to report.
        return;
    }
    let mut flags = 0;
    if !known {
        // A socket the table does not hold (its entry was evicted by a flood of others, or it
        // was never seen): a message to or from port 53 is still reported.
        match untracked_owner(ctx, dir, proto, cookie, &mut owner) {
            Some(how) => flags |= how,
            None => return,
        }
    }
    let mut len = total - payload_at;
    if len > DNS_PAYLOAD_LEN {
        len = DNS_PAYLOAD_LEN;
        flags |= dns_flags::TRUNCATED;
    }

    let Some(mut entry) = reserve::<DnsEvent>() else {
        count(hook, StatKind::Dropped);
        return;
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: reserved memory of the right size; every field is written (payload up to len).
    let ok = unsafe {
        let ev = &mut *ev;
        ev.header = header(kind::DNS, core::mem::size_of::<DnsEvent>());
        ev.task = owner;
        ev.direction = dir;
        ev.protocol = proto as u16;
        ev.family = fam;
        ev.port = port;
        ev.addr = addr;
        ev.flags = flags;
        // len is in 1..=DNS_PAYLOAD_LEN; the mask keeps that visible to the verifier.
        let n = ((len - 1) & (DNS_PAYLOAD_LEN - 1)) + 1;
        let rc = bpf_skb_load_bytes(
            ctx.skb.skb.cast(),
            payload_at as u32,
            ev.payload.as_mut_ptr().cast(),
            n as u32,
        );
        ev.payload_len = if rc == 0 { n as u32 } else { 0 };
        rc == 0
    };
    entry.submit();
    count(hook, StatKind::Sent);
    if !ok {
        count(hook, StatKind::Errors);
    }
}

/// Whether the packet is UDP, read in place from its network header (a plain load where the
/// header is in the linear part, as it is for what a socket sends and receives); false when it
/// is not there.
#[inline(always)]
fn unconnected_udp(ctx: &SkBuffContext) -> bool {
    let skb = ctx.skb.skb;
    // SAFETY: context reads, which the verifier turns into packet pointers.
    let (data, end) = unsafe { ((*skb).data as usize, (*skb).data_end as usize) };
    if data + 10 > end {
        return false;
    }
    // SAFETY: within [data, end), checked above.
    let proto = unsafe {
        match *(data as *const u8) >> 4 {
            4 => *((data + 9) as *const u8),
            6 => *((data + 6) as *const u8),
            _ => 0,
        }
    };
    proto == IPPROTO_UDP
}

/// Fills `owner` (all zero) for a DNS message on a socket the table does not hold; returns the
/// [`dns_flags`] bits that say how it is known, `None` for the agent's own.
///
/// Going out, the sender is the current task when the packet leaves in its context: a UDP
/// datagram always does (the egress hook runs inside `sendmsg`), a TCP segment when the task
/// holds the socket's lock (`stream::locked_by_current`). The socket is then put back in the
/// table with that owner, so its answer is attributed too. Otherwise (an answer coming in, a
/// segment sent from softirq) no task is known: the record carries the socket's cgroup only.
#[inline(always)]
fn untracked_owner(
    ctx: &SkBuffContext,
    dir: u16,
    proto: u8,
    cookie: u64,
    owner: &mut TaskIdentity,
) -> Option<u32> {
    let skb = ctx.skb.skb;
    let sender = dir == direction::EGRESS
        && (proto == IPPROTO_UDP || {
            // SAFETY: a context field read; the helper checks the pointer.
            let sk = unsafe { (*skb).__bindgen_anon_2.sk };
            !sk.is_null() && locked_by_current(sk)
        });
    if sender {
        if is_agent() {
            return None;
        }
        let complete = fill_current(owner);
        if DNS_SOCKETS.insert(cookie, *owner, 0).is_err() || !complete {
            count(Hook::DnsSocket, StatKind::Errors);
        }
        count(Hook::DnsSocket, StatKind::Sent);
        return Some(dns_flags::UNTRACKED);
    }
    // SAFETY: cgroup skb programs may ask for the cgroup of their skb's socket.
    owner.cgroup_id = unsafe { bpf_skb_cgroup_id(skb.cast()) };
    count(
        if dir == direction::EGRESS {
            Hook::DnsEgress
        } else {
            Hook::DnsIngress
        },
        StatKind::Unresolved,
    );
    Some(dns_flags::UNTRACKED | dns_flags::OWNER_UNKNOWN)
}
