//! When to (re-)apply or remove a policy's agent objects.
//!
//! Server-side apply is idempotent, but applies on every reconcile were most of the operator's
//! writes once coverage stopped writing on every heartbeat. The objects (ConfigMap and
//! DaemonSet; the agent's ServiceAccount and RBAC come with the chart) are applied when what is
//! rendered changes, when the agent DaemonSet is not in the cache (just created, or deleted by
//! someone), and at least every [`REAPPLY_EVERY`] to undo changes the cache cannot see (the
//! ConfigMap). Manual mode deletes them on the same terms.

use std::{
    hash::{DefaultHasher, Hash, Hasher},
    time::Duration,
};

use k8s_openapi::jiff::Timestamp;

use crate::render::AgentObjects;

/// Longest time between two applies (or removals) of the same objects.
pub const REAPPLY_EVERY: Duration = Duration::from_secs(300);

/// What was last done to a policy's agent objects, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    /// Applied, as rendered with this digest.
    Applied {
        /// [`digest`] of the objects.
        digest: u64,
        /// When.
        at: Timestamp,
    },
    /// Deleted (Manual mode).
    Removed {
        /// When.
        at: Timestamp,
    },
}

fn older_than(at: Timestamp, now: Timestamp, limit: Duration) -> bool {
    Duration::try_from(at.duration_until(now)).map_or(true, |age| age >= limit)
}

/// A digest of the rendered objects (in memory only, never stored).
pub fn digest(objects: &AgentObjects) -> Result<u64, serde_json::Error> {
    let mut h = DefaultHasher::new();
    serde_json::to_vec(&objects.config_map)?.hash(&mut h);
    serde_json::to_vec(&objects.daemon_set)?.hash(&mut h);
    Ok(h.finish())
}

/// Whether to apply objects of `digest` now.
pub fn must_apply(
    last: Option<Done>,
    digest: u64,
    daemon_set_cached: bool,
    now: Timestamp,
) -> bool {
    match last {
        Some(Done::Applied { digest: d, at }) if d == digest && daemon_set_cached => {
            older_than(at, now, REAPPLY_EVERY)
        }
        _ => true,
    }
}

/// Whether to delete the objects now (Manual mode).
pub fn must_remove(last: Option<Done>, now: Timestamp) -> bool {
    match last {
        Some(Done::Removed { at }) => older_than(at, now, REAPPLY_EVERY),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    #[test]
    fn apply_when_rendered_objects_change_the_daemon_set_is_missing_or_five_minutes_passed() {
        let applied = Some(Done::Applied {
            digest: 7,
            at: at(0),
        });
        // (case, last, digest, DaemonSet cached, now, apply)
        let table = [
            ("never applied", None, 7, true, 10, true),
            ("same, cached, soon", applied, 7, true, 10, false),
            ("same, 4 minutes on", applied, 7, true, 299, false),
            ("same, 5 minutes on", applied, 7, true, 300, true),
            ("rendered differently", applied, 8, true, 10, true),
            ("DaemonSet not cached", applied, 7, false, 10, true),
            (
                "was removed",
                Some(Done::Removed { at: at(0) }),
                7,
                true,
                10,
                true,
            ),
            ("clock stepped back", applied, 7, true, -100, true),
        ];
        for (case, last, d, cached, now, want) in table {
            assert_eq!(must_apply(last, d, cached, at(now)), want, "{case}");
        }
    }

    #[test]
    fn remove_once_then_every_five_minutes() {
        assert!(must_remove(None, at(0)));
        let removed = Some(Done::Removed { at: at(0) });
        assert!(!must_remove(removed, at(60)));
        assert!(must_remove(removed, at(300)));
        assert!(must_remove(
            Some(Done::Applied {
                digest: 1,
                at: at(0)
            }),
            at(1)
        ));
    }
}
