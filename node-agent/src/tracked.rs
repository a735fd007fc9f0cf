//! What the agent keeps about the host's activity, table by table, against each table's bound,
//! and what each table shed to stay there. A workload controls how many processes, names and
//! files it creates; every table it can grow is bounded by construction, and this is where the
//! agent says how full each one is and how much it let go (health JSON, `/metrics`, the Lease).

use serde::Serialize;

/// One bounded table of the agent's user-space state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackedTable {
    /// Its name (`processes`, `exeHashes`, `detectorProcesses`, `processParents`,
    /// `findings`, `dns`, and the kernel's `kernelWrittenFiles` and `kernelDnsSockets`).
    pub table: &'static str,
    /// Entries held now.
    pub entries: u64,
    /// The most entries it may hold.
    pub max_entries: u64,
    /// Bytes held now, where the table accounts its bytes (strings and paths included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// The most bytes it may hold, where it has a byte bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    /// Entries dropped to stay within the bounds since the agent started.
    pub shed: u64,
}

impl TrackedTable {
    /// A table bounded by its number of entries only (no byte accounting).
    pub fn by_entries(table: &'static str, entries: u64, max_entries: u64, shed: u64) -> Self {
        Self {
            table,
            entries,
            max_entries,
            bytes: None,
            max_bytes: None,
            shed,
        }
    }

    /// Whether the table is within its bounds (it always should be: a test asserts it under each
    /// hostile workload).
    pub fn within_bounds(&self) -> bool {
        self.entries <= self.max_entries
            && match (self.bytes, self.max_bytes) {
                (Some(b), Some(max)) => b <= max,
                _ => true,
            }
    }
}

/// Entries shed by all `tables`.
pub fn total_shed(tables: &[TrackedTable]) -> u64 {
    tables.iter().map(|t| t.shed).sum()
}

/// Bytes held by the `tables` that account their bytes.
pub fn total_bytes(tables: &[TrackedTable]) -> u64 {
    tables.iter().filter_map(|t| t.bytes).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_and_totals() {
        let mut t = TrackedTable {
            table: "processes",
            entries: 10,
            max_entries: 10,
            bytes: Some(100),
            max_bytes: Some(100),
            shed: 3,
        };
        assert!(t.within_bounds());
        t.bytes = Some(101);
        assert!(!t.within_bounds());
        let u = TrackedTable {
            table: "findings",
            entries: 11,
            max_entries: 10,
            shed: 4,
            ..TrackedTable::default()
        };
        assert!(!u.within_bounds());
        assert_eq!(total_shed(&[t.clone(), u.clone()]), 7);
        assert_eq!(total_bytes(&[t, u]), 101);
    }
}
