//! Vigil's eBPF programs: process, network and DNS sensors.
//!
//! Each program is thin: filter the agent's own tasks first, fill one record straight into the
//! ring buffer, count what was sent, dropped or failed. Kernel struct fields are read at offsets
//! that user space resolved from BTF (`VIGIL_CONFIG.offsets`), so one object runs on many kernels.
//! Records are submitted without waking the reader until `wakeup_bytes` are waiting: a wake-up
//! costs far more than a record, and the reader also polls on a short timer.
#![no_std]
#![no_main]
// For an atomic add on map memory: the bpf target's core has no atomic types with
// read-modify-write, but the kernel has had `lock xadd` from the start.
#![feature(core_intrinsics)]
#![allow(internal_features)]

mod activity;
mod dns;
mod files;
mod guard;
mod kernel;
mod net;
mod process;
mod sourced;
mod stream;
mod synthetic;
mod sysctl;

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // SAFETY: the verifier rejects programs that could reach this; it only exists for rustc.
    unsafe { core::hint::unreachable_unchecked() }
}

/// The licence the kernel checks before granting GPL-only helpers.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
