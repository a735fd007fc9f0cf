//! Vigil's response object: the kernel deny hook on `connect(2)`.
//!
//! cgroup `connect4`/`connect6` programs attached, next to any others (`BPF_F_ALLOW_MULTI`), to
//! the cgroup v2 root (every process on the host) or to one pod's cgroup. Each looks the
//! destination the kernel is about to use (the socket address, not what a process says about
//! itself) up in an LPM trie filled by the agent from the threat lists chosen for denial. In
//! enforce mode a hit returns 0, which the kernel turns into `EPERM`; in dry-run mode the hit is
//! only counted. An IPv4-mapped IPv6 destination (a dual-stack socket) is looked up as IPv4.
//! Kept apart from the sensor object so that response can be loaded, tested and removed on its
//! own, and a sensor failure never leaves a deny hook behind.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::bpf_sock_addr,
    macros::{cgroup_sock_addr, map},
    maps::{
        Array, PerCpuArray,
        lpm_trie::{Key, LpmTrie},
    },
    programs::SockAddrContext,
};
use node_agent_common::response::{
    DENY_V4_ENTRIES, DENY_V6_ENTRIES, MODE_ENFORCE, STAT_CHECKED, STAT_DENIED, STAT_SLOTS,
    STAT_WOULD_DENY,
};

/// Denied IPv4 networks (address in network byte order) -> threat-list mask.
#[map]
static DENY_V4: LpmTrie<[u8; 4], u64> = LpmTrie::with_max_entries(DENY_V4_ENTRIES, 0);

/// Denied IPv6 networks -> threat-list mask.
#[map]
static DENY_V6: LpmTrie<[u8; 16], u64> = LpmTrie::with_max_entries(DENY_V6_ENTRIES, 0);

/// `MODE_DRY_RUN` or `MODE_ENFORCE`, written by the agent; dry run until it says otherwise.
#[map]
static DENY_MODE: Array<u32> = Array::with_max_entries(1, 0);

/// What the hook did (`STAT_*` slots).
#[map]
static DENY_STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(STAT_SLOTS, 0);

#[cgroup_sock_addr(connect4)]
pub fn deny_connect4(ctx: SockAddrContext) -> i32 {
    // SAFETY: the context pointer is valid for the program's lifetime.
    let sa: &bpf_sock_addr = unsafe { &*ctx.sock_addr };
    let hit = DENY_V4
        .get(Key::new(32, sa.user_ip4.to_ne_bytes()))
        .is_some();
    verdict(hit)
}

#[cgroup_sock_addr(connect6)]
pub fn deny_connect6(ctx: SockAddrContext) -> i32 {
    // SAFETY: the context pointer is valid for the program's lifetime.
    let sa: &bpf_sock_addr = unsafe { &*ctx.sock_addr };
    // Each word as the kernel stores it: network byte order in memory.
    let words = [
        sa.user_ip6[0],
        sa.user_ip6[1],
        sa.user_ip6[2],
        sa.user_ip6[3],
    ];
    let mut addr = [0u8; 16];
    addr[0..4].copy_from_slice(&words[0].to_ne_bytes());
    addr[4..8].copy_from_slice(&words[1].to_ne_bytes());
    addr[8..12].copy_from_slice(&words[2].to_ne_bytes());
    addr[12..16].copy_from_slice(&words[3].to_ne_bytes());
    let mapped = addr[..10].iter().all(|b| *b == 0) && addr[10] == 0xff && addr[11] == 0xff;
    let hit = if mapped {
        DENY_V4
            .get(Key::new(32, [addr[12], addr[13], addr[14], addr[15]]))
            .is_some()
    } else {
        DENY_V6.get(Key::new(128, addr)).is_some()
    };
    verdict(hit)
}

/// 1 lets the connect go ahead, 0 refuses it with `EPERM`.
#[inline(always)]
fn verdict(hit: bool) -> i32 {
    bump(STAT_CHECKED);
    if !hit {
        return 1;
    }
    let enforce = DENY_MODE.get(0).is_some_and(|m| *m == MODE_ENFORCE);
    if enforce {
        bump(STAT_DENIED);
        0
    } else {
        bump(STAT_WOULD_DENY);
        1
    }
}

#[inline(always)]
fn bump(slot: u32) {
    if let Some(counter) = DENY_STATS.get_ptr_mut(slot) {
        // SAFETY: this CPU's slot; nothing else runs on this CPU while the program does.
        unsafe { *counter += 1 };
    }
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // SAFETY: the verifier rejects programs that could reach this; it only exists for rustc.
    unsafe { core::hint::unreachable_unchecked() }
}

/// The licence the kernel checks before granting GPL-only helpers.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
