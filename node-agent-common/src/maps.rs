//! Sizes of the kernel's hash maps that both sides need to agree on, and which LRU maps keep
//! one LRU list per CPU.
//!
//! An LRU hash with the common list (the default) gives each CPU a small local list of free
//! entries (128) and refills it from one global list under one lock shared by all CPUs, which
//! is also where entries are evicted. Maps that only insert and let the LRU evict (the repeat
//! filter, the DNS sockets: an entry per new connection or socket, never deleted) take that
//! lock every 128 inserts on each CPU, and shrink the global list under it: on many cores, a
//! storm of new connections serialises there. Those two are created with
//! `BPF_F_NO_COMMON_LRU`: each CPU has its own LRU list and lock. The hash table itself stays
//! one table: an entry inserted on one CPU is found from any other. The kernel splits
//! `max_entries` evenly between the possible CPUs and evicts from the inserting CPU's share
//! only, so their size is set at load time from the CPU count: never below [`LRU_ENTRIES`],
//! never below [`LRU_ENTRIES_PER_CPU`] per CPU.
//!
//! The maps of syscalls in flight (`PENDING`, `PENDING_ACT`, `PENDING_FILE`, keyed by thread)
//! keep the common list: an entry is inserted at a syscall's entry and deleted at its exit, and
//! a deleted entry goes back to the local free list of the CPU that inserted it (whichever CPU
//! the thread exits on), so the global lock is not on their path; a per-CPU list would cost
//! more there (each insert rotates the CPU's list: about 30 ns more per write-open, measured
//! with `scripts/prog-stats.py`, docs/PERFORMANCE.md). They must not become per-CPU maps
//! either: a thread can sleep in a syscall and exit it on another CPU (the `sensor_breadth`
//! test `a_write_open_that_ends_on_another_cpu_is_reported`).
//!
//! `WRITTEN` keeps the common list too: which files were written must hold across the whole
//! host (a build writing thousands of files on one CPU must not push out a dropped payload
//! written on it earlier), and its hot paths (a lookup at each exec and executable mmap) take no
//! lock.

/// Entries of the LRU maps of per-thread and per-connection state as declared in the eBPF
/// object.
pub const LRU_ENTRIES: u32 = 16384;

/// Entries each CPU's share of a per-CPU LRU map keeps at least: new connections of one CPU
/// within the repeat window, DNS sockets opened on one CPU and still in use.
pub const LRU_ENTRIES_PER_CPU: u32 = 256;

/// The maps created with `BPF_F_NO_COMMON_LRU`, sized by [`per_cpu_lru_entries`].
pub const PER_CPU_LRU_MAPS: [&str; 2] = ["REPEATS", "DNS_SOCKETS"];

/// `max_entries` for a per-CPU LRU map on a machine with `possible_cpus` CPUs (the count in
/// `/sys/devices/system/cpu/possible`, which is what the kernel divides by).
pub const fn per_cpu_lru_entries(possible_cpus: u32) -> u32 {
    let per_cpu = LRU_ENTRIES_PER_CPU.saturating_mul(possible_cpus);
    if per_cpu > LRU_ENTRIES {
        per_cpu
    } else {
        LRU_ENTRIES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cpu_keeps_its_share_on_small_and_large_machines() {
        for cpus in [1, 2, 4, 16, 64, 96, 256, 4096] {
            let entries = per_cpu_lru_entries(cpus);
            assert!(entries >= LRU_ENTRIES, "{cpus} CPUs: {entries}");
            assert!(
                entries / cpus >= LRU_ENTRIES_PER_CPU,
                "{cpus} CPUs: {} per CPU",
                entries / cpus
            );
        }
        // Two CPUs keep the declared size (8192 each); 96 get 256 each, not 170.
        assert_eq!(per_cpu_lru_entries(2), LRU_ENTRIES);
        assert_eq!(per_cpu_lru_entries(96), 96 * 256);
        assert_eq!(per_cpu_lru_entries(u32::MAX), u32::MAX);
    }
}
