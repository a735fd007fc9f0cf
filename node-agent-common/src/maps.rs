//! Sizes of the kernel's maps that both sides need to agree on, which LRU maps keep one LRU
//! list per CPU, and how records are spread over ring buffers.
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
//!
//! Records go to one of [`MAX_RINGS`] ring buffers, `EVENTS0` to `EVENTS15`: the one of the
//! CPU the program runs on, `EVENTS<cpu & (rings - 1)>`. A ring buffer's reservation takes a
//! spinlock that every CPU writing to it shares; with one ring per group of about four CPUs,
//! that lock is shared by four CPUs, not by all of them. The ring count is chosen at load
//! ([`default_rings`], or `--rings`) and written to `AgentConfig::ring_mask`; the rings not in
//! use are created with one page. User space reads every ring in use and merges their records
//! by their boot-clock stamp (`node-agent/src/sensor/reader.rs`).

/// The most ring buffers the programs can write to (the `EVENTS<n>` maps of the object).
pub const MAX_RINGS: u32 = 16;

/// The ring buffers' map names, by ring number.
pub const RING_NAMES: [&str; MAX_RINGS as usize] = [
    "EVENTS0", "EVENTS1", "EVENTS2", "EVENTS3", "EVENTS4", "EVENTS5", "EVENTS6", "EVENTS7",
    "EVENTS8", "EVENTS9", "EVENTS10", "EVENTS11", "EVENTS12", "EVENTS13", "EVENTS14", "EVENTS15",
];

/// Bytes of ring buffer in all: about 35 ms of the fastest storm measured (a write storm inside
/// the sensitive set) between two reader polls when one ring takes every CPU's records. Several
/// rings share it: each fills from its group of CPUs only, so the slack per CPU stays the same.
/// The total counts twice in the agent's resident set (the kernel maps a ring's data pages
/// twice, so a record that wraps reads as one piece).
pub const TOTAL_RING_BYTES: u32 = 8 * 1024 * 1024;

/// The smallest ring buffer in use: four times the wake-up batch (256 KiB), so a ring holds
/// several batches while the reader wakes.
pub const MIN_RING_BYTES: u32 = 1024 * 1024;

/// The ring count for a machine with `cpus` CPUs: one per four CPUs (rounded up), as a power
/// of two, at most [`MAX_RINGS`]. 1 to 4 CPUs: 1; 16: 4; 64 and more: 16.
pub const fn default_rings(cpus: u32) -> u32 {
    let wanted = cpus.div_ceil(4);
    let mut rings = 1;
    while rings < wanted && rings < MAX_RINGS {
        rings *= 2;
    }
    rings
}

/// Whether the programs can spread records over `rings` ring buffers: a power of two from 1 to
/// [`MAX_RINGS`] (a ring is picked by masking the CPU number).
pub const fn valid_rings(rings: u32) -> bool {
    rings.is_power_of_two() && rings <= MAX_RINGS
}

/// The size of each ring buffer in use when `rings` are: [`TOTAL_RING_BYTES`] shared (a power
/// of two, as the kernel requires, since `rings` is one), never below [`MIN_RING_BYTES`]. 1 ring:
/// 8 MiB; 2: 4 MiB each; 4 (16 CPUs): 2 MiB each; 8 and 16: 1 MiB each.
pub const fn ring_bytes(rings: u32) -> u32 {
    let share = TOTAL_RING_BYTES / if rings == 0 { 1 } else { rings };
    if share < MIN_RING_BYTES {
        MIN_RING_BYTES
    } else {
        share
    }
}

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

    #[test]
    fn a_ring_per_four_cpus_as_a_power_of_two_at_most_sixteen() {
        for (cpus, rings) in [
            (0, 1),
            (1, 1),
            (2, 1),
            (4, 1),
            (5, 2),
            (8, 2),
            (12, 4),
            (16, 4),
            (24, 8),
            (32, 8),
            (48, 16),
            (96, 16),
            (4096, 16),
            (u32::MAX, 16),
        ] {
            assert_eq!(default_rings(cpus), rings, "{cpus} CPUs");
            assert!(valid_rings(default_rings(cpus)));
        }
        assert!(valid_rings(1) && valid_rings(2) && valid_rings(16));
        assert!(!valid_rings(0) && !valid_rings(3) && !valid_rings(32));
        for (i, name) in RING_NAMES.iter().enumerate() {
            let number = name
                .strip_prefix("EVENTS")
                .and_then(|n| n.parse::<usize>().ok());
            assert_eq!(number, Some(i), "{name}");
        }
        assert_eq!(ring_bytes(1), 8 << 20);
        assert_eq!(ring_bytes(2), 4 << 20);
        assert_eq!(
            ring_bytes(4) * 4,
            8 << 20,
            "the total is shared, not multiplied"
        );
        assert_eq!(ring_bytes(16), 1 << 20);
        for rings in [1, 2, 4, 8, 16] {
            assert!(ring_bytes(rings).is_power_of_two(), "{rings}");
        }
    }
}
