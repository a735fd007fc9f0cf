//! Stream sensor: the first data segments of outgoing TCP connections, for protocols that give a
//! program away on the wire whatever it is called and wherever it connects (a stratum miner's
//! JSON-RPC `mining.subscribe` or `login`).
//!
//! The cgroup skb egress program looks at every outgoing packet as cheaply as it can: it leaves
//! after two context reads and one helper unless the packet is TCP, its connection has sent data
//! (the handshake and a connection that only receives leave here) and it is among the first
//! [`STREAM_SEGMENTS`] data segments of its connection (the kernel's own `data_segs_out` counter,
//! so no per-flow state); then the header lengths, read in place, tell a pure ACK; of a data
//! segment it reads 16 payload bytes, and copies the head of the payload to user space only when
//! it starts like a JSON object. What the message says is
//! decided in user space (`detect::stratum`).
//!
//! Who sent it: cgroup skb programs also run in softirq context (retransmissions, data queued
//! until the window opened, TCP small-queue and autocork flushes), where the current task is
//! whoever was interrupted. The kernel transmits from process context with the socket locked by
//! the task (`sk_lock.owned`), and every softirq path defers to the lock's owner while it is
//! held; so the current task is the sender exactly when the socket's lock is owned, and only then
//! is it recorded. A segment sent with the lock free goes out with no task
//! ([`stream_flags::OWNER_UNKNOWN`], counted as `unresolved`); user space names it from an earlier
//! segment of the same socket when it can. Nothing is done at connect time: recording an owner
//! per connection (socket-local storage) was measured at about 0.9 us per connect.

use aya_ebpf::{
    helpers::generated::{
        bpf_get_socket_cookie, bpf_skb_load_bytes, bpf_skc_to_tcp_sock, bpf_tcp_sock,
    },
    macros::cgroup_skb,
    programs::SkBuffContext,
};
use node_agent_common::{
    STREAM_HEAD_LEN, STREAM_SEGMENTS, StreamEvent, family, kind,
    stats::{Hook, StatKind},
    stream_flags,
};

use crate::kernel::{Kptr, config, count, fill_current, header, is_agent, reserve};

const AF_INET: u32 = 2;
const AF_INET6: u32 = 10;
const IPPROTO_TCP: u8 = 6;
/// Bytes of the payload looked at for the opening `{` (white space before it is skipped).
const PEEK_LEN: usize = 16;

#[cgroup_skb]
pub fn stream_egress(ctx: SkBuffContext) -> i32 {
    on_segment(&ctx);
    1
}

/// Whether the current task holds the lock of this TCP socket, so that it is the one sending
/// (the module comment); false for a socket that is not TCP.
#[inline(always)]
pub fn locked_by_current(sk: *mut aya_ebpf::bindings::bpf_sock) -> bool {
    // SAFETY: the helper returns a BTF-typed tcp_sock or NULL; the read is checked by the
    // verifier against the struct and fault-tolerant.
    let full = unsafe { bpf_skc_to_tcp_sock(sk.cast()) };
    !full.is_null() && Kptr::from_btf(full).read::<u32>(config!(offsets.sk_lock_owned)) != 0
}

#[inline(always)]
fn on_segment(ctx: &SkBuffContext) {
    let skb = ctx.skb.skb;
    // SAFETY: context field reads; the socket pointer is checked before use.
    let sk = unsafe { (*skb).__bindgen_anon_2.sk };
    if sk.is_null() {
        return;
    }
    // SAFETY: the helper checks the socket and returns NULL unless it is a TCP socket.
    let tp = unsafe { bpf_tcp_sock(sk) };
    if tp.is_null() {
        return;
    }
    // Data segments this connection sent, this one included (the kernel counts them before the
    // packet reaches the egress hook), less the segments in this packet (a GSO packet holds
    // several): those before it.
    // SAFETY: fields of the context and of the checked tcp_sock pointer.
    let (sent, this) = unsafe { ((*tp).data_segs_out, (*skb).gso_segs) };
    if sent == 0 {
        // No data sent yet: the handshake, or the ACKs of a connection that only receives.
        return;
    }
    let before = sent.saturating_sub(if this == 0 { 1 } else { this });
    if before >= STREAM_SEGMENTS {
        return;
    }

    // Only now the headers, read in place (a locally built segment has them in the linear
    // part; a helper call costs more than the loads): a pure ACK carries no payload.
    let hook = Hook::StreamEgress;
    // SAFETY: context reads, which the verifier turns into packet pointers.
    let (data, end) = unsafe { ((*skb).data as usize, (*skb).data_end as usize) };
    if data + 40 > end {
        count(hook, StatKind::Errors);
        return;
    }
    // SAFETY: within [data, end), checked above.
    let first = unsafe { *(data as *const u8) };
    let l4 = match first >> 4 {
        4 => ((first & 0x0f) as usize) * 4,
        6 => {
            // SAFETY: as above.
            if unsafe { *((data + 6) as *const u8) } != IPPROTO_TCP {
                // IPv6 extension headers on a locally sent TCP segment: not followed.
                count(hook, StatKind::Errors);
                return;
            }
            40
        }
        _ => return,
    };
    if data + l4 + 13 > end {
        count(hook, StatKind::Errors);
        return;
    }
    // SAFETY: within [data, end), checked above.
    let doff = unsafe { *((data + l4 + 12) as *const u8) };
    let payload_at = l4 + ((doff >> 4) as usize) * 4;
    let total = ctx.len() as usize;
    if payload_at >= total {
        return;
    }
    let payload_len = total - payload_at;

    // The first bytes: `{` after optional white space, or nothing more to do.
    let mut peek = [0u8; PEEK_LEN];
    let n = if payload_len < PEEK_LEN {
        payload_len
    } else {
        PEEK_LEN
    };
    // n is in 1..=PEEK_LEN; the mask keeps that visible to the verifier.
    let n = ((n - 1) & (PEEK_LEN - 1)) + 1;
    // SAFETY: n bytes into a PEEK_LEN-byte stack buffer.
    let rc = unsafe {
        bpf_skb_load_bytes(
            skb.cast(),
            payload_at as u32,
            peek.as_mut_ptr().cast(),
            n as u32,
        )
    };
    if rc != 0 {
        count(hook, StatKind::Errors);
        return;
    }
    let mut json = false;
    for (i, &b) in peek.iter().enumerate() {
        if i >= n {
            break;
        }
        if matches!(b, b' ' | b'\t' | b'\r' | b'\n') {
            continue;
        }
        json = b == b'{';
        break;
    }
    if !json {
        count(hook, StatKind::Filtered);
        return;
    }

    // The sender: the current task when it holds the socket's lock (process context).
    let owned = locked_by_current(sk);
    let mut flags = 0;
    if !owned {
        flags |= stream_flags::OWNER_UNKNOWN;
        count(hook, StatKind::Unresolved);
    } else if is_agent() {
        count(hook, StatKind::Filtered);
        return;
    }
    if payload_len > STREAM_HEAD_LEN {
        flags |= stream_flags::TRUNCATED;
    }

    let Some(mut entry) = reserve::<StreamEvent>() else {
        count(hook, StatKind::Dropped);
        return;
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: reserved memory of the right size; every field is written (head up to len).
    let ok = unsafe {
        let ev = &mut *ev;
        ev.header = header(kind::STREAM, core::mem::size_of::<StreamEvent>());
        if !owned {
            ev.task = core::mem::zeroed();
        } else {
            fill_current(&mut ev.task);
        }
        ev.cookie = bpf_get_socket_cookie(skb.cast());
        let s = &*skb;
        ev.addr = [0; 16];
        ev.family = if s.family == AF_INET6 {
            for (i, word) in s.remote_ip6.iter().enumerate() {
                ev.addr[i * 4..i * 4 + 4].copy_from_slice(&word.to_ne_bytes());
            }
            family::INET6
        } else {
            if s.family == AF_INET {
                ev.addr[..4].copy_from_slice(&s.remote_ip4.to_ne_bytes());
            }
            family::INET
        };
        ev.local_port = s.local_port as u16;
        // The remote port is in network order, in the upper half on little-endian targets.
        let remote = if cfg!(target_endian = "little") {
            (s.remote_port >> 16) as u16
        } else {
            s.remote_port as u16
        };
        ev.remote_port = u16::from_be(remote);
        ev._pad = 0;
        ev.segment = before;
        ev.flags = flags;
        ev.payload_len = payload_len as u32;
        let len = if payload_len > STREAM_HEAD_LEN {
            STREAM_HEAD_LEN
        } else {
            payload_len
        };
        // len is in 1..=STREAM_HEAD_LEN; the mask keeps that visible to the verifier.
        let len = ((len - 1) & (STREAM_HEAD_LEN - 1)) + 1;
        let rc = bpf_skb_load_bytes(
            skb.cast(),
            payload_at as u32,
            ev.head.as_mut_ptr().cast(),
            len as u32,
        );
        ev.head_len = if rc == 0 { len as u32 } else { 0 };
        rc == 0
    };
    entry.submit();
    count(hook, StatKind::Sent);
    if !ok {
        count(hook, StatKind::Errors);
    }
}
