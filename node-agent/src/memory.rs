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
        (
            "MALLOC_MMAP_THRESHOLD_",
            libc::M_MMAP_THRESHOLD,
            MMAP_THRESHOLD,
        ),
        (
            "MALLOC_TRIM_THRESHOLD_",
            libc::M_TRIM_THRESHOLD,
            TRIM_THRESHOLD,
        ),
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

/// Drops this process's pages of `bytes`, data built into the binary that is read once (the
/// compressed threat lists, the eBPF object): they count in the resident set until unmapped,
/// and come back from the binary's file if read again. Only whole pages inside `bytes` are
/// dropped; a page it shares with other data stays.
pub fn release_static(bytes: &'static [u8]) {
    // SAFETY: sysconf has no preconditions.
    let page = match usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }) {
        Ok(page) if page.is_power_of_two() => page,
        _ => return,
    };
    let first = bytes.as_ptr() as usize;
    let start = first.next_multiple_of(page);
    let end = (first + bytes.len()) & !(page - 1);
    if end > start {
        // SAFETY: [start, end) lies inside a `'static` shared slice, which is read-only data
        // mapped privately from the binary and never written: MADV_DONTNEED drops the pages
        // from this process, and the next read faults them in again from the file with the
        // same contents. A failure (EINVAL on an odd mapping) leaves them resident.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
        }
    }
}

/// [`release_static`] for every built-in threat list: called after each intel load.
pub fn release_builtin_lists() {
    for list in vigil_detection::loader::BUILTIN_LISTS {
        release_static(list.compressed());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dropped pages come back with the same bytes: the lists still hash alike and load.
    #[test]
    fn released_lists_read_back_the_same() {
        let sums = || -> Vec<u64> {
            vigil_detection::loader::BUILTIN_LISTS
                .iter()
                .map(|l| {
                    l.compressed()
                        .iter()
                        .fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
                            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
                        })
                })
                .collect()
        };
        let before = sums();
        release_builtin_lists();
        assert_eq!(sums(), before);
        release_builtin_lists();
        let (intel, report) = vigil_detection::load(&vigil_detection::IntelConfig::default())
            .expect("the built-in lists load after their pages were dropped");
        assert_eq!(report.malformed_total, 0);
        assert!(
            intel
                .lookup_domain("www.2miners.com")
                .contains("crypto-domains")
        );
    }
}
