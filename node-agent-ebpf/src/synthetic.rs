//! The benchmark's record generator: when the process named by `bench_tgid` calls
//! `getpgid(2)`, emit a burst of small records. Inert in normal runs (`bench_tgid` is 0, and
//! the agent attaches this program only for the benchmark).

use aya_ebpf::{macros::tracepoint, programs::TracePointContext};
use node_agent_common::{
    SYNTHETIC_PAYLOAD_LEN, SyntheticEvent, kind,
    stats::{Hook, StatKind},
};

use crate::kernel::{config, count, current_tgid, header, reserve};

/// Records per syscall: enough that the syscall's own cost is small beside the records'.
const BURST: u64 = 32;

#[tracepoint(category = "syscalls", name = "sys_enter_getpgid")]
pub fn synthetic_burst(_ctx: TracePointContext) -> u32 {
    let target = config!(bench_tgid);
    if target == 0 || current_tgid() != target {
        return 0;
    }
    for seq in 0..BURST {
        let Some(mut entry) = reserve::<SyntheticEvent>() else {
            count(Hook::Synthetic, StatKind::Dropped);
            continue;
        };
        // SAFETY: reserved memory of the right size; every field is written.
        unsafe {
            let ev = &mut *entry.as_mut_ptr();
            ev.header = header(kind::SYNTHETIC, core::mem::size_of::<SyntheticEvent>());
            ev.seq = seq;
            ev.payload = [0; SYNTHETIC_PAYLOAD_LEN];
        }
        entry.submit();
        count(Hook::Synthetic, StatKind::Sent);
    }
    0
}
