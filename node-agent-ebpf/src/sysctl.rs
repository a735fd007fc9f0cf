//! Kernel settings written through `/proc/sys`, seen by a `cgroup/sysctl` program on the cgroup
//! v2 root as each write reaches the setting's handler: the bytes written, not what the setting
//! reads once user space gets to it (`echo 0 > randomize_va_space; echo 2 > ...` in one script
//! is two records, 0 then 2). Reads are not kept. The program never refuses a write.

use aya_ebpf::{
    helpers::generated::{bpf_sysctl_get_name, bpf_sysctl_get_new_value},
    macros::cgroup_sysctl,
    programs::SysctlContext,
};
use node_agent_common::{
    ActivityEvent, PATH_LEN, SocketPeer, WriterInfo, activity, kind,
    stats::{Hook, StatKind},
};

use crate::kernel::{count, fill_current, header, is_agent, reserve};

/// `-E2BIG`: the name or value was longer than the buffer (which holds its head).
const E2BIG: i64 = 7;

#[cgroup_sysctl]
pub fn sysctl_write(ctx: SysctlContext) -> i32 {
    on_sysctl(&ctx);
    // Allow: the agent watches, it does not refuse.
    1
}

#[inline(always)]
fn on_sysctl(ctx: &SysctlContext) {
    // SAFETY: the context pointer is valid for the program's lifetime.
    let (write, file_pos) = unsafe { ((*ctx.sysctl).write, (*ctx.sysctl).file_pos) };
    if write == 0 {
        return;
    }
    if is_agent() {
        count(Hook::Sysctl, StatKind::Filtered);
        return;
    }
    let Some(mut entry) = reserve::<ActivityEvent>() else {
        count(Hook::Sysctl, StatKind::Dropped);
        return;
    };
    // SAFETY: reserved memory of the right size; every field is written (strings up to their
    // lengths).
    let ev = unsafe { &mut *entry.as_mut_ptr() };
    ev.header = header(kind::ACTIVITY, core::mem::size_of::<ActivityEvent>());
    let mut complete = fill_current(&mut ev.task);
    ev.op = activity::SYSCTL_WRITE;
    ev._pad = 0;
    ev.flags = 0;
    ev.ret = 0;
    ev.args = [file_pos as u64, 0, 0, 0, 0, 0];
    ev.before_uid = 0;
    ev.before_euid = 0;
    ev.before_gid = 0;
    ev.before_egid = 0;
    ev.ino = 0;
    ev.dev = 0;
    ev._pad2 = 0;
    ev.writer = WriterInfo::default();
    ev.sock = SocketPeer::default();
    ev.str3_len = 0;
    ev._pad3 = 0;
    // The full name (`kernel/randomize_va_space`), then the bytes written; each helper leaves a
    // NUL-terminated head when the buffer is too short and says so with -E2BIG.
    // SAFETY: the buffers are in the reserved record and the lengths are theirs.
    let name =
        unsafe { bpf_sysctl_get_name(ctx.sysctl, ev.str1.as_mut_ptr().cast(), PATH_LEN as u64, 0) };
    // SAFETY: as above.
    let value = unsafe {
        bpf_sysctl_get_new_value(ctx.sysctl, ev.str2.as_mut_ptr().cast(), PATH_LEN as u64)
    };
    let (len1, cut1) = taken(name);
    let (len2, cut2) = taken(value);
    ev.str1_len = len1;
    ev.str2_len = len2;
    ev.flags = cut1 as u32 | (cut2 as u32) << 1;
    complete &= (name >= 0 || cut1) && (value >= 0 || cut2);
    entry.submit();
    count(Hook::Sysctl, StatKind::Sent);
    if !complete {
        count(Hook::Sysctl, StatKind::Errors);
    }
}

/// The bytes a `bpf_sysctl_get_*` helper left in a [`PATH_LEN`] buffer and whether it cut them.
#[inline(always)]
fn taken(ret: i64) -> (u32, bool) {
    if ret == -E2BIG {
        ((PATH_LEN - 1) as u32, true)
    } else if ret >= 0 && (ret as usize) < PATH_LEN {
        (ret as u32, false)
    } else {
        (0, false)
    }
}
