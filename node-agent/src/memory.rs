//! The allocator's settings and when it hands memory back: what decides how much of the heap
//! the agent's resident set keeps (docs/PERFORMANCE.md, "Memory").
//!
//! glibc's malloc raises its mmap threshold each time a large block allocated by `mmap` is
//! freed (up to 32 MiB), so after start-up, whose threat-intel load and eBPF loading free many
//! large temporaries, later big allocations come from the heap and stay resident after they are
//! freed. Fixing the thresholds keeps large temporaries in their own mappings, unmapped when
//! freed. The agent's threads (the event loop, the hasher, the metrics server) allocate little,
//! so one arena per thread only adds slack: two are enough.
//!
//! Other C libraries (musl) have none of these knobs; there the functions do nothing.

/// Blocks from this size get their own mapping, returned to the kernel when freed: glibc's
/// initial threshold, kept fixed.
#[cfg(target_env = "gnu")]
const MMAP_THRESHOLD: libc::c_int = 128 * 1024;

/// Free memory at the top of the heap beyond this goes back to the kernel at once.
#[cfg(target_env = "gnu")]
const TRIM_THRESHOLD: libc::c_int = 128 * 1024;

/// At most this many malloc arenas (glibc's default is eight per CPU).
#[cfg(target_env = "gnu")]
const ARENAS: libc::c_int = 2;

/// Sets the allocator up for a long-running agent; call first, before any thread starts.
/// Settings the environment gives (`MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_`,
/// `MALLOC_ARENA_MAX`) win, so that an operator can still tune them.
pub fn tune_allocator() {
    #[cfg(target_env = "gnu")]
    for (env, param, value) in [
        ("MALLOC_MMAP_THRESHOLD_", libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        ("MALLOC_TRIM_THRESHOLD_", libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        ("MALLOC_ARENA_MAX", libc::M_ARENA_MAX, ARENAS),
    ] {
        if std::env::var_os(env).is_none() {
            // SAFETY: mallopt only changes the allocator's parameters; a refused value is
            // ignored (it returns 0), and none of these can invalidate a live allocation.
            unsafe { libc::mallopt(param, value) };
        }
    }
}

/// Hands free heap memory back to the kernel: after start-up, whose temporaries are freed
/// but would otherwise stay resident in the middle of the heap.
pub fn release_free_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}
