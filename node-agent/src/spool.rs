//! A bounded on-disk queue (SQLite) of what a receiver has not accepted yet, so an outage or an
//! agent restart loses nothing that fits. Cluster mode queues its API writes in one
//! (`Spool<publish::Action>`, `spool.db`); every sink has its own (`Spool<sinks::SinkEntry>`,
//! `sinks/<name>.db`).
//!
//! - Entries keep the order they first came in (a sequence number).
//! - An entry for something that already waits (same [`SpoolEntry::key`]) replaces the waiting
//!   one in place: the position of the first, the content of the latest.
//! - Failed attempts at an entry are counted in the file ([`Spool::record_failure`]), so a retry
//!   limit holds across restarts; an entry given up on is removed and counted as dead-lettered
//!   ([`Spool::dead_letter`]), a total that survives restarts too.
//! - Bounded by entries and bytes. When full, the oldest entry of the lowest severity goes first
//!   (the incoming one included: a Low entry does not push out a High one). Every eviction is
//!   counted in the database, so the total survives restarts and is reported in the heartbeat.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use vigil_crds::finding::SeverityLabel;

use serde::{Serialize, de::DeserializeOwned};

/// What a spool holds: serialised as JSON, with a key that identifies it (a newer entry of the
/// same key replaces the waiting one) and a severity that decides what is evicted first.
pub trait SpoolEntry: Serialize + DeserializeOwned {
    /// Identity: an entry with the same key replaces the waiting one.
    fn key(&self) -> String;
    /// Severity: when full, the oldest entry of the lowest severity goes first.
    fn severity(&self) -> SeverityLabel;
    /// A short description for errors.
    fn describe(&self) -> String;
}

/// Where cluster agents keep their API spool unless told otherwise.
pub const DEFAULT_PATH: &str = "/var/lib/vigil/spool.db";
/// Default most entries.
pub const DEFAULT_MAX_ENTRIES: u64 = 10_000;
/// Default most bytes of serialised actions.
pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    severity INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    revision INTEGER NOT NULL DEFAULT 0,
    action TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS entries_eviction ON entries(severity, seq);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
PRAGMA user_version = 1;
";

/// Why the spool failed. Every variant names the database file.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The directory for the database could not be created.
    #[error("{path}: cannot create the spool directory: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// SQLite failed (unwritable, not a database, disk full, ...).
    #[error("{path}: spool {action}: {source}")]
    Sqlite {
        /// The database.
        path: PathBuf,
        /// What the spool was doing.
        action: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A stored entry does not parse (written by an incompatible version, or damaged). It has
    /// been removed and counted as lost.
    #[error("{path}: spool entry {seq} does not parse and was dropped: {source}")]
    Corrupt {
        /// The database.
        path: PathBuf,
        /// The entry's sequence number.
        seq: u64,
        /// The parser error.
        #[source]
        source: serde_json::Error,
    },
    /// An action could not be serialised.
    #[error("{path}: cannot serialise {what} for the spool: {source}")]
    Serialise {
        /// The database.
        path: PathBuf,
        /// The action.
        what: String,
        /// The error.
        #[source]
        source: serde_json::Error,
    },
}

/// Bounds of the spool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolLimits {
    /// Most entries (at least 1).
    pub max_entries: u64,
    /// Most bytes of serialised actions.
    pub max_bytes: u64,
}

impl Default for SpoolLimits {
    fn default() -> Self {
        Self {
            max_entries: DEFAULT_MAX_ENTRIES,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// Result of [`Spool::push`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PushOutcome {
    /// Entries evicted to make room (the pushed one included when it was the least important).
    pub evicted: u64,
    /// The action replaced a waiting one for the same object.
    pub replaced: bool,
    /// The action is in the spool (false when it was itself evicted).
    pub stored: bool,
}

/// The spool database.
pub struct Spool<E: SpoolEntry> {
    conn: Connection,
    path: PathBuf,
    limits: SpoolLimits,
    len: u64,
    bytes: u64,
    lost: u64,
    /// The entry [`Spool::peek`] last handed out and its revision: acking it removes it only if
    /// no newer content replaced it meanwhile.
    peeked: Option<(u64, i64)>,
    dead_lettered: u64,
    entry: std::marker::PhantomData<fn() -> E>,
}

impl<E: SpoolEntry> std::fmt::Debug for Spool<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("path", &self.path)
            .field("limits", &self.limits)
            .field("len", &self.len)
            .field("bytes", &self.bytes)
            .field("lost", &self.lost)
            .field("dead_lettered", &self.dead_lettered)
            .finish_non_exhaustive()
    }
}

fn severity_rank(s: SeverityLabel) -> i64 {
    match s {
        SeverityLabel::Low => 0,
        SeverityLabel::Medium => 1,
        SeverityLabel::High => 2,
        SeverityLabel::Critical => 3,
    }
}

impl From<crate::sqlite::OpenError> for SpoolError {
    fn from(error: crate::sqlite::OpenError) -> Self {
        match error {
            crate::sqlite::OpenError::CreateDir { path, source } => {
                Self::CreateDir { path, source }
            }
            crate::sqlite::OpenError::Sqlite {
                path,
                action,
                source,
            } => Self::Sqlite {
                path,
                action,
                source,
            },
        }
    }
}

impl<E: SpoolEntry> Spool<E> {
    /// Opens (creating if needed) the spool at `path`. Entries beyond smaller `limits` than the
    /// file was written with are evicted (and counted) now.
    pub fn open(path: &Path, limits: SpoolLimits) -> Result<Self, SpoolError> {
        // FULL: an entry the agent considers spooled survives a power loss too.
        let conn = crate::sqlite::open(path, crate::sqlite::Durability::Full, SCHEMA)?;
        // Spools written before attempts were counted lack the column.
        if conn
            .prepare("SELECT attempts FROM entries LIMIT 0")
            .is_err()
        {
            conn.execute_batch(
                "ALTER TABLE entries ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0",
            )
            .map_err(|source| SpoolError::Sqlite {
                path: path.to_path_buf(),
                action: "add the attempts column",
                source,
            })?;
        }
        let sql = |action| {
            let path = path.to_path_buf();
            move |source| SpoolError::Sqlite {
                path,
                action,
                source,
            }
        };
        let (len, bytes): (i64, i64) = conn
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM entries",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(sql("count entries"))?;
        let lost: i64 = conn
            .query_row("SELECT value FROM counters WHERE name = 'lost'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(sql("read the lost count"))?
            .unwrap_or(0);
        let dead_lettered: i64 = conn
            .query_row(
                "SELECT value FROM counters WHERE name = 'dead_lettered'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql("read the dead-letter count"))?
            .unwrap_or(0);
        let mut spool = Self {
            conn,
            path: path.to_path_buf(),
            limits: SpoolLimits {
                max_entries: limits.max_entries.max(1),
                ..limits
            },
            len: u64::try_from(len).unwrap_or(0),
            bytes: u64::try_from(bytes).unwrap_or(0),
            lost: u64::try_from(lost).unwrap_or(0),
            peeked: None,
            dead_lettered: u64::try_from(dead_lettered).unwrap_or(0),
            entry: std::marker::PhantomData,
        };
        let evicted = spool.in_transaction("evict to the limits", |s| s.evict_to_limits())?;
        if evicted > 0 {
            tracing::warn!(path = %spool.path.display(), evicted, "spool over its limits at open: oldest lowest-severity entries dropped");
        }
        Ok(spool)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The limits in force.
    pub fn limits(&self) -> SpoolLimits {
        self.limits
    }

    fn err(&self, action: &'static str) -> impl FnOnce(rusqlite::Error) -> SpoolError + '_ {
        move |source| SpoolError::Sqlite {
            path: self.path.clone(),
            action,
            source,
        }
    }

    /// Runs `f` in a transaction; on error the in-memory counters are reloaded from the file.
    fn in_transaction<T>(
        &mut self,
        action: &'static str,
        f: impl FnOnce(&mut Self) -> Result<T, SpoolError>,
    ) -> Result<T, SpoolError> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(self.err(action))?;
        let saved = (self.len, self.bytes, self.lost);
        match f(self) {
            Ok(v) => match self.conn.execute_batch("COMMIT") {
                Ok(()) => Ok(v),
                Err(e) => {
                    let _ = self.conn.execute_batch("ROLLBACK");
                    (self.len, self.bytes, self.lost) = saved;
                    Err(self.err(action)(e))
                }
            },
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                (self.len, self.bytes, self.lost) = saved;
                Err(e)
            }
        }
    }

    /// Queues `action`, replacing a waiting entry of the same key in place (its attempts start
    /// again), and evicts what no longer fits.
    pub fn push(&mut self, action: &E) -> Result<PushOutcome, SpoolError> {
        let json = serde_json::to_string(action).map_err(|source| SpoolError::Serialise {
            path: self.path.clone(),
            what: action.describe(),
            source,
        })?;
        let key = action.key();
        let severity = severity_rank(action.severity());
        let size = json.len() as u64;
        self.in_transaction("push", |s| {
            let existing: Option<(i64, i64)> = s
                .conn
                .query_row(
                    "SELECT seq, bytes FROM entries WHERE key = ?1",
                    params![key],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(s.err("look up the entry"))?;
            let seq = match existing {
                Some((seq, old_bytes)) => {
                    s.conn
                        .execute(
                            "UPDATE entries SET severity = ?2, bytes = ?3, action = ?4,
                             revision = revision + 1, attempts = 0 WHERE seq = ?1",
                            params![seq, severity, size as i64, json],
                        )
                        .map_err(s.err("replace the entry"))?;
                    s.bytes = s.bytes.saturating_sub(old_bytes as u64) + size;
                    seq
                }
                None => {
                    s.conn
                        .execute(
                            "INSERT INTO entries (key, severity, bytes, action) VALUES (?1, ?2, ?3, ?4)",
                            params![key, severity, size as i64, json],
                        )
                        .map_err(s.err("insert the entry"))?;
                    s.len += 1;
                    s.bytes += size;
                    s.conn.last_insert_rowid()
                }
            };
            let evicted = s.evict_to_limits()?;
            let stored = s
                .conn
                .query_row("SELECT 1 FROM entries WHERE seq = ?1", params![seq], |_| Ok(()))
                .optional()
                .map_err(s.err("look up the entry"))?
                .is_some();
            Ok(PushOutcome {
                evicted,
                replaced: existing.is_some(),
                stored,
            })
        })
        .inspect(|outcome| {
            if outcome.evicted > 0 {
                tracing::warn!(
                    path = %self.path.display(),
                    evicted = outcome.evicted,
                    lost_total = self.lost,
                    stored = outcome.stored,
                    "spool full: oldest lowest-severity entries dropped"
                );
            }
        })
    }

    /// Evicts the oldest entry of the lowest severity until within the limits; counts them.
    fn evict_to_limits(&mut self) -> Result<u64, SpoolError> {
        let mut evicted = 0;
        while self.len > self.limits.max_entries || self.bytes > self.limits.max_bytes {
            let victim: Option<(i64, i64)> = self
                .conn
                .query_row(
                    "SELECT seq, bytes FROM entries ORDER BY severity, seq LIMIT 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(self.err("find the entry to evict"))?;
            let Some((seq, bytes)) = victim else {
                // Counters out of step with the file: trust the file.
                (self.len, self.bytes) = (0, 0);
                break;
            };
            self.conn
                .execute("DELETE FROM entries WHERE seq = ?1", params![seq])
                .map_err(self.err("evict an entry"))?;
            self.len = self.len.saturating_sub(1);
            self.bytes = self.bytes.saturating_sub(bytes as u64);
            evicted += 1;
        }
        if evicted > 0 {
            self.add_lost(evicted)?;
        }
        Ok(evicted)
    }

    fn add_lost(&mut self, n: u64) -> Result<(), SpoolError> {
        self.conn
            .execute(
                "INSERT INTO counters (name, value) VALUES ('lost', ?1)
                 ON CONFLICT(name) DO UPDATE SET value = value + ?1",
                params![n as i64],
            )
            .map_err(self.err("count lost entries"))?;
        self.lost += n;
        Ok(())
    }

    /// The oldest entry: its sequence number and action. An entry that does not parse is
    /// removed, counted as lost and reported as [`SpoolError::Corrupt`]; the next call goes on
    /// with the following one.
    pub fn peek(&mut self) -> Result<Option<(u64, E)>, SpoolError> {
        let row: Option<(i64, i64, i64, String)> = self
            .conn
            .query_row(
                "SELECT seq, revision, bytes, action FROM entries ORDER BY seq LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(self.err("read the oldest entry"))?;
        let Some((seq, revision, bytes, json)) = row else {
            self.peeked = None;
            return Ok(None);
        };
        let seq_u = u64::try_from(seq).unwrap_or(0);
        match serde_json::from_str::<E>(&json) {
            Ok(action) => {
                self.peeked = Some((seq_u, revision));
                Ok(Some((seq_u, action)))
            }
            Err(source) => {
                self.in_transaction("drop a corrupt entry", |s| {
                    s.conn
                        .execute("DELETE FROM entries WHERE seq = ?1", params![seq])
                        .map_err(s.err("drop a corrupt entry"))?;
                    s.len = s.len.saturating_sub(1);
                    s.bytes = s.bytes.saturating_sub(bytes as u64);
                    s.add_lost(1)
                })?;
                Err(SpoolError::Corrupt {
                    path: self.path.clone(),
                    seq: seq_u,
                    source,
                })
            }
        }
    }

    /// Removes entry `seq` once delivered. If the entry was replaced by newer content after
    /// [`Spool::peek`] handed it out, it stays (at its place) so the newer content is sent too.
    /// Returns whether an entry was removed.
    pub fn ack(&mut self, seq: u64) -> Result<bool, SpoolError> {
        let revision = self
            .peeked
            .take()
            .filter(|(s, _)| *s == seq)
            .map(|(_, r)| r);
        let seq_i = i64::try_from(seq).unwrap_or(i64::MAX);
        self.in_transaction("ack", |s| {
            let bytes: Option<i64> = s
                .conn
                .query_row(
                    "DELETE FROM entries WHERE seq = ?1 AND (?2 IS NULL OR revision = ?2)
                     RETURNING bytes",
                    params![seq_i, revision],
                    |r| r.get(0),
                )
                .optional()
                .map_err(s.err("remove a delivered entry"))?;
            if let Some(b) = bytes {
                s.len = s.len.saturating_sub(1);
                s.bytes = s.bytes.saturating_sub(b as u64);
            }
            Ok(bytes.is_some())
        })
    }

    /// Counts a failed attempt at entry `seq`; returns the attempts made so far (0 when the
    /// entry is gone).
    pub fn record_failure(&mut self, seq: u64) -> Result<u32, SpoolError> {
        let seq_i = i64::try_from(seq).unwrap_or(i64::MAX);
        let attempts: Option<i64> = self
            .conn
            .query_row(
                "UPDATE entries SET attempts = attempts + 1 WHERE seq = ?1 RETURNING attempts",
                params![seq_i],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err("count a failed attempt"))?;
        Ok(attempts.map_or(0, |a| u32::try_from(a).unwrap_or(u32::MAX)))
    }

    /// Failed attempts at entry `seq` so far.
    pub fn attempts(&self, seq: u64) -> Result<u32, SpoolError> {
        let seq_i = i64::try_from(seq).unwrap_or(i64::MAX);
        let attempts: Option<i64> = self
            .conn
            .query_row(
                "SELECT attempts FROM entries WHERE seq = ?1",
                params![seq_i],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err("read the attempts"))?;
        Ok(attempts.map_or(0, |a| u32::try_from(a).unwrap_or(u32::MAX)))
    }

    /// Gives up on entry `seq`: removes it and counts it as dead-lettered. Returns whether an
    /// entry was removed.
    pub fn dead_letter(&mut self, seq: u64) -> Result<bool, SpoolError> {
        self.peeked = None;
        let seq_i = i64::try_from(seq).unwrap_or(i64::MAX);
        let removed = self.in_transaction("dead-letter an entry", |s| {
            let bytes: Option<i64> = s
                .conn
                .query_row(
                    "DELETE FROM entries WHERE seq = ?1 RETURNING bytes",
                    params![seq_i],
                    |r| r.get(0),
                )
                .optional()
                .map_err(s.err("dead-letter an entry"))?;
            if let Some(b) = bytes {
                s.len = s.len.saturating_sub(1);
                s.bytes = s.bytes.saturating_sub(b as u64);
                s.conn
                    .execute(
                        "INSERT INTO counters (name, value) VALUES ('dead_lettered', 1)
                         ON CONFLICT(name) DO UPDATE SET value = value + 1",
                        [],
                    )
                    .map_err(s.err("count a dead-lettered entry"))?;
            }
            Ok(bytes.is_some())
        })?;
        if removed {
            self.dead_lettered += 1;
        }
        Ok(removed)
    }

    /// Entries given up on since the file was created (survives restarts).
    pub fn dead_lettered_total(&self) -> u64 {
        self.dead_lettered
    }

    /// Entries waiting.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of the waiting entries.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Entries evicted or dropped as corrupt since the file was created (survives restarts).
    pub fn lost_total(&self) -> u64 {
        self.lost
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::cluster::publish::{
        Action, Publisher,
        tests::{config, finding},
    };

    type Spool = super::Spool<Action>;

    fn temp_db(name: &str) -> (tempfile::TempDir, PathBuf) {
        crate::scratch_path(&format!("vigil-spool-{name}-"), "sub/spool.db")
    }

    fn apply(id: &str, severity: f64, count: u64) -> Action {
        let mut f = finding(id, severity, Some(("shop", "web-1")));
        f.count = count;
        Action::Apply {
            namespace: "shop".into(),
            name: f.object_name(),
            finding: f,
            archived_by: None,
            archived_at: None,
        }
    }

    /// `name:count` of every entry, in order, draining the spool.
    fn drain(s: &mut Spool) -> Vec<String> {
        let mut out = Vec::new();
        while let Some((seq, a)) = s.peek().unwrap() {
            match &a {
                Action::Apply { name, finding, .. } => {
                    out.push(format!("{name}:{}", finding.count))
                }
                Action::Event { event, .. } => {
                    out.push(format!("event:{}", event.metadata.name.as_deref().unwrap()));
                }
            }
            assert!(s.ack(seq).unwrap());
        }
        out
    }

    #[test]
    fn order_is_kept_and_survives_reopen() {
        let (_scratch, path) = temp_db("order");
        {
            let mut s = Spool::open(&path, SpoolLimits::default()).unwrap();
            for id in ["a", "b", "c"] {
                let out = s.push(&apply(id, 5.0, 1)).unwrap();
                assert_eq!(
                    out,
                    PushOutcome {
                        evicted: 0,
                        replaced: false,
                        stored: true
                    }
                );
            }
            assert_eq!(s.len(), 3);
        }
        let mut s = Spool::open(&path, SpoolLimits::default()).unwrap();
        assert_eq!(s.len(), 3);
        assert!(s.bytes() > 0);
        assert_eq!(drain(&mut s), ["finding-a:1", "finding-b:1", "finding-c:1"]);
        assert!(s.is_empty());
        assert_eq!(s.bytes(), 0);
    }

    #[test]
    fn replacement_keeps_the_first_position_and_the_latest_content() {
        let (_scratch, path) = temp_db("replace");
        let mut s = Spool::open(&path, SpoolLimits::default()).unwrap();
        s.push(&apply("a", 5.0, 1)).unwrap();
        s.push(&apply("b", 5.0, 1)).unwrap();
        let out = s.push(&apply("a", 5.0, 9)).unwrap();
        assert!(out.replaced && out.stored && out.evicted == 0, "{out:?}");
        assert_eq!(s.len(), 2);
        assert_eq!(drain(&mut s), ["finding-a:9", "finding-b:1"]);
    }

    #[test]
    fn replacement_while_in_flight_is_not_acked_away() {
        let (_scratch, path) = temp_db("inflight");
        let mut s = Spool::open(&path, SpoolLimits::default()).unwrap();
        s.push(&apply("a", 5.0, 1)).unwrap();
        s.push(&apply("b", 5.0, 1)).unwrap();
        let (seq, _) = s.peek().unwrap().unwrap();
        // A newer count arrives while count 1 is being sent.
        s.push(&apply("a", 5.0, 2)).unwrap();
        assert!(!s.ack(seq).unwrap(), "the newer content must stay");
        assert_eq!(drain(&mut s), ["finding-a:2", "finding-b:1"]);
    }

    #[test]
    fn full_spool_evicts_oldest_of_lowest_severity() {
        // (pushes as (id, severity), max entries, want left in order, want lost)
        type Case = (
            &'static [(&'static str, f64)],
            u64,
            &'static [&'static str],
            u64,
        );
        let table: [Case; 4] = [
            (
                &[("l1", 2.0), ("h1", 8.0), ("l2", 2.0), ("m1", 5.0)],
                3,
                &["finding-h1:1", "finding-l2:1", "finding-m1:1"],
                1,
            ),
            (
                &[("h1", 8.0), ("m1", 5.0), ("h2", 8.0), ("c1", 9.5)],
                3,
                &["finding-h1:1", "finding-h2:1", "finding-c1:1"],
                1,
            ),
            // The incoming entry is the least important: it is the one dropped.
            (
                &[("h1", 8.0), ("h2", 8.0), ("l1", 2.0)],
                2,
                &["finding-h1:1", "finding-h2:1"],
                1,
            ),
            // Same severity: oldest first.
            (
                &[("m1", 5.0), ("m2", 5.0), ("m3", 5.0), ("m4", 5.0)],
                2,
                &["finding-m3:1", "finding-m4:1"],
                2,
            ),
        ];
        for (i, (pushes, max, want, lost)) in table.into_iter().enumerate() {
            let (_scratch, path) = temp_db(&format!("evict{i}"));
            let mut s = Spool::open(
                &path,
                SpoolLimits {
                    max_entries: max,
                    max_bytes: u64::MAX,
                },
            )
            .unwrap();
            let mut evicted = 0;
            for (id, sev) in pushes {
                evicted += s.push(&apply(id, *sev, 1)).unwrap().evicted;
            }
            assert_eq!((evicted, s.lost_total()), (lost, lost), "case {i}");
            assert_eq!(drain(&mut s), want, "case {i}");
        }
    }

    #[test]
    fn incoming_least_important_entry_reports_not_stored() {
        let (_scratch, path) = temp_db("notstored");
        let limits = SpoolLimits {
            max_entries: 1,
            max_bytes: u64::MAX,
        };
        let mut s = Spool::open(&path, limits).unwrap();
        s.push(&apply("h", 8.0, 1)).unwrap();
        let out = s.push(&apply("l", 2.0, 1)).unwrap();
        assert_eq!(
            out,
            PushOutcome {
                evicted: 1,
                replaced: false,
                stored: false
            }
        );
    }

    #[test]
    fn byte_limit_evicts_too() {
        let (_scratch, path) = temp_db("bytes");
        let one = serde_json::to_string(&apply("a", 5.0, 1)).unwrap().len() as u64;
        let mut s = Spool::open(
            &path,
            SpoolLimits {
                max_entries: 100,
                max_bytes: one * 2 + one / 2,
            },
        )
        .unwrap();
        for id in ["a", "b", "c"] {
            s.push(&apply(id, 5.0, 1)).unwrap();
        }
        assert_eq!(s.len(), 2);
        assert!(s.bytes() <= s.limits().max_bytes);
        assert_eq!(s.lost_total(), 1);
        assert_eq!(drain(&mut s), ["finding-b:1", "finding-c:1"]);
    }

    #[test]
    fn lost_count_survives_reopen_and_smaller_limits_evict_at_open() {
        let (_scratch, path) = temp_db("lost");
        let small = SpoolLimits {
            max_entries: 2,
            max_bytes: u64::MAX,
        };
        {
            let mut s = Spool::open(&path, small).unwrap();
            for id in ["a", "b", "c", "d"] {
                s.push(&apply(id, 5.0, 1)).unwrap();
            }
            assert_eq!(s.lost_total(), 2);
        }
        {
            let s = Spool::open(&path, small).unwrap();
            assert_eq!((s.lost_total(), s.len()), (2, 2));
        }
        let mut s = Spool::open(
            &path,
            SpoolLimits {
                max_entries: 1,
                max_bytes: u64::MAX,
            },
        )
        .unwrap();
        assert_eq!((s.lost_total(), s.len()), (3, 1));
        assert_eq!(drain(&mut s), ["finding-d:1"]);
    }

    #[test]
    fn events_from_the_publisher_spool_and_come_back_equal() {
        let (_scratch, path) = temp_db("events");
        let mut s = Spool::open(&path, SpoolLimits::default()).unwrap();
        let mut p = Publisher::new(config());
        let actions = p.on_finding(
            &finding("e", 9.0, Some(("shop", "web-1"))),
            true,
            None,
            Instant::now(),
        );
        assert_eq!(actions.len(), 2);
        for a in &actions {
            s.push(a).unwrap();
        }
        // The same Event again (a retry by the publisher after restart) replaces, not duplicates.
        assert!(s.push(&actions[1]).unwrap().replaced);
        for want in &actions {
            let (seq, got) = s.peek().unwrap().unwrap();
            assert_eq!(&got, want);
            s.ack(seq).unwrap();
        }
        assert!(s.peek().unwrap().is_none());
    }

    #[test]
    fn corrupt_entry_is_dropped_counted_and_named() {
        let (_scratch, path) = temp_db("corrupt-entry");
        let mut s = Spool::open(&path, SpoolLimits::default()).unwrap();
        s.push(&apply("a", 5.0, 1)).unwrap();
        s.push(&apply("b", 5.0, 1)).unwrap();
        s.conn
            .execute(
                "UPDATE entries SET action = '{\"action\":\"nonsense\"}' WHERE key LIKE '%finding-a'",
                [],
            )
            .unwrap();
        let err = s.peek().unwrap_err();
        assert!(matches!(err, SpoolError::Corrupt { .. }), "{err}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        assert_eq!((s.lost_total(), s.len()), (1, 1));
        assert_eq!(drain(&mut s), ["finding-b:1"]);
    }

    #[test]
    fn a_corrupt_file_is_moved_aside_and_a_fresh_spool_started() {
        let (_scratch, path) = temp_db("corrupt-file");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, vec![0x5a_u8; 8192]).unwrap();
        // The agent still starts (crate::sqlite moves the damaged file aside, with an error).
        let s = Spool::open(&path, SpoolLimits::default()).unwrap();
        assert_eq!(s.len(), 0);
        let kept_aside = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().contains(".corrupt-"));
        assert!(
            kept_aside,
            "the damaged spool is kept for a person to look at"
        );
    }

    #[test]
    fn unwritable_location_gives_an_error_naming_it() {
        let (_scratch, path) = temp_db("unwritable");
        let parent = path.parent().unwrap();
        std::fs::create_dir_all(parent.parent().unwrap()).unwrap();
        // A file where the directory should be: not creatable, even for root.
        std::fs::write(parent, b"not a directory").unwrap();
        let err = Spool::open(&path, SpoolLimits::default()).unwrap_err();
        assert!(matches!(err, SpoolError::CreateDir { .. }), "{err}");
        assert!(
            err.to_string().contains(&parent.display().to_string()),
            "{err}"
        );
        // The database path itself a directory: SQLite cannot open it.
        let (_scratch, dir_path) = temp_db("is-a-dir");
        std::fs::create_dir_all(&dir_path).unwrap();
        let err = Spool::open(&dir_path, SpoolLimits::default()).unwrap_err();
        assert!(
            err.to_string().contains(&dir_path.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn failed_attempts_and_dead_letters_are_counted_across_reopen() {
        let (_scratch, path) = temp_db("attempts");
        {
            let mut s = Spool::open(&path, SpoolLimits::default()).unwrap();
            s.push(&apply("a", 5.0, 1)).unwrap();
            s.push(&apply("b", 5.0, 1)).unwrap();
            let (seq, _) = s.peek().unwrap().unwrap();
            assert_eq!(s.record_failure(seq).unwrap(), 1);
            assert_eq!(s.record_failure(seq).unwrap(), 2);
        }
        let mut s = Spool::open(&path, SpoolLimits::default()).unwrap();
        let (seq, _) = s.peek().unwrap().unwrap();
        assert_eq!(s.attempts(seq).unwrap(), 2);
        assert!(s.dead_letter(seq).unwrap());
        assert!(!s.dead_letter(seq).unwrap(), "already gone");
        assert_eq!((s.dead_lettered_total(), s.len()), (1, 1));
        // A replaced entry starts its attempts again.
        let (seq_b, _) = s.peek().unwrap().unwrap();
        s.record_failure(seq_b).unwrap();
        s.push(&apply("b", 5.0, 2)).unwrap();
        assert_eq!(s.attempts(seq_b).unwrap(), 0);
        drop(s);
        let s = Spool::open(&path, SpoolLimits::default()).unwrap();
        assert_eq!(s.dead_lettered_total(), 1);
        let mut s = s;
        assert_eq!(s.record_failure(9999).unwrap(), 0, "no such entry");
    }

    #[test]
    fn a_spool_without_the_attempts_column_is_migrated() {
        let (_scratch, path) = temp_db("migrate");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE entries (seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE,
                 severity INTEGER NOT NULL, bytes INTEGER NOT NULL, revision INTEGER NOT NULL DEFAULT 0,
                 action TEXT NOT NULL);
                 CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);",
            )
            .unwrap();
            let json = serde_json::to_string(&apply("old", 5.0, 3)).unwrap();
            conn.execute(
                "INSERT INTO entries (key, severity, bytes, action) VALUES ('k', 1, ?1, ?2)",
                rusqlite::params![json.len() as i64, json],
            )
            .unwrap();
        }
        let mut s = Spool::open(&path, SpoolLimits::default()).unwrap();
        let (seq, _) = s.peek().unwrap().unwrap();
        assert_eq!(s.record_failure(seq).unwrap(), 1);
        assert_eq!(drain(&mut s), ["finding-old:3"]);
    }
}
