//! Sizes of the kernel's hash maps that both sides need to agree on.
//!
//! The maps of per-thread and per-connection state (the syscalls in flight, the repeat filter,
//! the DNS sockets) are LRU hashes with `BPF_F_NO_COMMON_LRU`: each CPU has its own LRU list
//! and lock, so no CPU takes a lock shared with all the others to insert or free an entry (the
//! common list's lock is taken on every refill and eviction). The hash table itself stays one
//! table: an entry inserted on one CPU is found and deleted from any other (a thread that
//! sleeps in a syscall can exit it on another CPU). The kernel splits `max_entries` evenly
//! between the possible CPUs and evicts from the inserting CPU's share only, so the size is
//! set at load time from the CPU count: never below [`LRU_ENTRIES`], never below
//! [`LRU_ENTRIES_PER_CPU`] per CPU.
//!
//! `WRITTEN` keeps the common list: which files were written must hold across the whole host
//! (a build writing thousands of files on one CPU must not push out a dropped payload written
//! on it earlier), and its hot paths (a lookup at each exec and executable mmap) take no lock.

/// Entries of each per-CPU LRU map as declared in the eBPF object.
pub const LRU_ENTRIES: u32 = 16384;

/// Entries each CPU's share keeps at least: threads of one CPU inside a traced syscall at the
/// same time (a write-open blocked on a FIFO or a slow filesystem), new connections of one CPU
/// within the repeat window, DNS sockets opened on one CPU and still in use.
pub const LRU_ENTRIES_PER_CPU: u32 = 256;

/// The maps created with `BPF_F_NO_COMMON_LRU`, sized by [`per_cpu_lru_entries`].
pub const PER_CPU_LRU_MAPS: [&str; 5] = [
    "PENDING",
    "PENDING_ACT",
    "PENDING_FILE",
    "REPEATS",
    "DNS_SOCKETS",
];

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
