//! The embedded findings store (standalone mode): SQLite, one row per finding, surviving agent
//! restarts, bounded by age (retention) and by number of findings.
//!
//! Each row keeps the whole finding document as JSON plus the columns the CLI filters on. A
//! repeat of a finding (same id: same type, resource and key context) adds to `count`, moves
//! `eventLastSeen` and keeps `createdAt` and `eventFirstSeen`; an archived finding stays
//! archived. Suppression never deletes; only retention and the size bound do.

use std::{
    cell::{Cell, RefCell},
    collections::HashMap,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use rusqlite::{Connection, OptionalExtension, params};
use vigil_crds::finding::{Finding, SeverityLabel};

/// Where standalone agents keep findings unless told otherwise.
pub const DEFAULT_PATH: &str = "/var/lib/vigil/findings.db";
/// Findings whose last event is older than this are removed.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);
/// Most findings kept; the least severe, then the least recently seen, go first.
pub const DEFAULT_MAX_FINDINGS: u64 = 100_000;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory for the database could not be created.
    #[error("{path}: cannot create the directory: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// SQLite failed.
    #[error("{path}: {action}: {source}")]
    Sqlite {
        /// The database.
        path: PathBuf,
        /// What the store was doing.
        action: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A stored document does not parse (written by an incompatible version, or edited).
    #[error("{path}: finding {id}: stored document does not parse: {source}")]
    Corrupt {
        /// The database.
        path: PathBuf,
        /// The finding id.
        id: String,
        /// The parser error.
        #[source]
        source: serde_json::Error,
    },
    /// A finding could not be serialised.
    #[error("finding {id}: cannot serialise: {source}")]
    Serialise {
        /// The finding id.
        id: String,
        /// The error.
        #[source]
        source: serde_json::Error,
    },
}

/// Bounds of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    /// Findings last seen longer ago than this are removed.
    pub retention: Duration,
    /// Most findings kept.
    pub max_findings: u64,
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self {
            retention: DEFAULT_RETENTION,
            max_findings: DEFAULT_MAX_FINDINGS,
        }
    }
}

/// A stored finding with what the store adds.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFinding {
    /// The document, as merged.
    pub finding: Finding,
    /// The suppression rule that archived it, if any.
    pub archived_by: Option<String>,
}

/// Result of writing one finding.
#[derive(Debug, Clone, PartialEq)]
pub struct Upserted {
    /// The finding as stored now.
    pub stored: StoredFinding,
    /// The store had no finding with this id.
    pub inserted: bool,
}

/// Filters of `findings list`.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// At least this severity.
    pub min_severity: Option<SeverityLabel>,
    /// Exactly this type.
    pub finding_type: Option<String>,
    /// Resource display name (the host, or namespace/pod/container).
    pub resource: Option<String>,
    /// Last seen at or after this time.
    pub since: Option<Timestamp>,
    /// `Some(true)`: only archived; `Some(false)`: only active; `None`: both.
    pub archived: Option<bool>,
    /// Most rows returned (newest first).
    pub limit: Option<u64>,
}

/// The findings database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    limits: StoreLimits,
    /// Findings merged in memory and not yet written: a storm of one finding becomes one write
    /// per flush instead of one per event. Written by [`Store::flush`], which every reader
    /// calls first, at [`FLUSH_EVERY`] entries or [`FLUSH_AFTER`], and on drop.
    pending: RefCell<HashMap<String, StoredFinding>>,
    pending_since: Cell<Option<Instant>>,
    /// Failed flushes since the last one that worked, and when to try again.
    failures_in_a_row: Cell<u32>,
    retry_at: Cell<Option<Instant>>,
    stats: Cell<StoreStats>,
}

/// What the store gave up, counted since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreStats {
    /// Flushes that failed; their findings stayed pending.
    pub failed_flushes: u64,
    /// Pending findings dropped because writes kept failing and the batch was full.
    pub shed: u64,
    /// Stored findings removed by the size bound (the least severe first).
    pub evicted: u64,
    /// Stored findings removed by retention.
    pub expired: u64,
}

/// Most findings kept pending while writes fail.
pub const MAX_PENDING: usize = 8 * FLUSH_EVERY;

/// How long to wait before the next write after `failures` failed ones in a row: 100 ms,
/// doubling, at most 30 s.
pub fn retry_delay(failures: u32) -> Duration {
    let ms = 100u64.saturating_mul(1u64 << failures.saturating_sub(1).min(16));
    Duration::from_millis(ms.min(30_000))
}

/// Pending findings that trigger a write.
pub const FLUSH_EVERY: usize = 512;
/// Oldest a pending finding gets before it is written.
pub const FLUSH_AFTER: Duration = Duration::from_millis(20);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS findings (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    severity REAL NOT NULL,
    resource TEXT NOT NULL,
    archived INTEGER NOT NULL DEFAULT 0,
    archived_by TEXT,
    count INTEGER NOT NULL,
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    document TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS findings_last_seen ON findings(last_seen_ms);
CREATE INDEX IF NOT EXISTS findings_type ON findings(type);
PRAGMA user_version = 1;
";

fn millis(t: &Time) -> i64 {
    t.0.as_millisecond()
}

impl From<crate::sqlite::OpenError> for StoreError {
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

impl Store {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path, limits: StoreLimits) -> Result<Self, StoreError> {
        // WAL: `findings list` can read while the agent writes.
        let conn = crate::sqlite::open(path, crate::sqlite::Durability::Normal, SCHEMA)?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
            limits,
            pending: RefCell::new(HashMap::new()),
            pending_since: Cell::new(None),
            failures_in_a_row: Cell::new(0),
            retry_at: Cell::new(None),
            stats: Cell::new(StoreStats::default()),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, action: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Sqlite {
            path: self.path.clone(),
            action,
            source,
        }
    }

    /// Writes one occurrence of a finding (`occurrences` more events of it), merging with the
    /// stored finding of the same id.
    pub fn upsert(
        &mut self,
        finding: &Finding,
        occurrences: u64,
        archived_by: Option<&str>,
    ) -> Result<Upserted, StoreError> {
        let pending = self.pending.borrow().get(&finding.id).cloned();
        let existing = match pending {
            Some(p) => Some(p),
            None => self.load(&finding.id)?,
        };
        let inserted = existing.is_none();
        let merged = match existing {
            None => StoredFinding {
                finding: finding.clone(),
                archived_by: archived_by.map(str::to_owned),
            },
            Some(old) => {
                let mut f = finding.clone();
                f.count = old.finding.count.saturating_add(occurrences.max(1));
                f.created_at = old.finding.created_at.clone();
                if old.finding.event_first_seen.0 < f.event_first_seen.0 {
                    f.event_first_seen = old.finding.event_first_seen.clone();
                }
                if old.finding.event_last_seen.0 > f.event_last_seen.0 {
                    f.event_last_seen = old.finding.event_last_seen.clone();
                }
                f.updated_at = Time(f.updated_at.0.max(old.finding.updated_at.0));
                // Archived findings stay archived (and keep the rule that archived them).
                f.archived = old.finding.archived || finding.archived;
                let by = old.archived_by.or_else(|| archived_by.map(str::to_owned));
                StoredFinding {
                    finding: f,
                    archived_by: by,
                }
            }
        };
        let count = {
            let mut pending = self.pending.borrow_mut();
            pending.insert(merged.finding.id.clone(), merged.clone());
            pending.len()
        };
        if self.pending_since.get().is_none() {
            self.pending_since.set(Some(Instant::now()));
        }
        let backing_off = self.retry_at.get().is_some_and(|t| Instant::now() < t);
        if (count >= FLUSH_EVERY && !backing_off) || self.flush_is_due() {
            self.flush()?;
        } else if backing_off {
            self.shed_beyond(MAX_PENDING);
        }
        Ok(Upserted {
            stored: merged,
            inserted,
        })
    }

    fn flush_is_due(&self) -> bool {
        let waited = self
            .pending_since
            .get()
            .is_some_and(|t| t.elapsed() >= FLUSH_AFTER);
        waited && self.retry_at.get().is_none_or(|t| Instant::now() >= t)
    }

    /// Writes pending findings when the oldest has waited [`FLUSH_AFTER`] (for an idle loop).
    pub fn flush_if_due(&self) -> Result<(), StoreError> {
        if self.flush_is_due() {
            self.flush()
        } else {
            Ok(())
        }
    }

    /// Writes every pending finding, in one transaction. When that fails (a full disk, a
    /// damaged file) every pending finding stays for the next try, which waits longer after each
    /// failure ([`retry_delay`]); the batch keeps at most [`MAX_PENDING`] findings, shedding the
    /// least severe (then least recently seen) beyond that, counted in [`StoreStats::shed`].
    pub fn flush(&self) -> Result<(), StoreError> {
        if self.pending.borrow().is_empty() {
            self.pending_since.set(None);
            return Ok(());
        }
        match self.write_pending() {
            Ok(()) => {
                self.pending.borrow_mut().clear();
                self.pending_since.set(None);
                self.failures_in_a_row.set(0);
                self.retry_at.set(None);
                Ok(())
            }
            Err(error) => {
                // After a failed statement or COMMIT the transaction may still be open.
                let _ = self.conn.execute_batch("ROLLBACK");
                let failures = self.failures_in_a_row.get().saturating_add(1);
                self.failures_in_a_row.set(failures);
                self.retry_at
                    .set(Some(Instant::now() + retry_delay(failures)));
                self.update_stats(|s| s.failed_flushes += 1);
                self.shed_beyond(MAX_PENDING);
                Err(error)
            }
        }
    }

    fn write_pending(&self) -> Result<(), StoreError> {
        self.conn
            .execute_batch("BEGIN")
            .map_err(self.err("begin a transaction"))?;
        for stored in self.pending.borrow().values() {
            self.write(stored)?;
        }
        self.conn
            .execute_batch("COMMIT")
            .map_err(self.err("commit findings"))
    }

    /// Drops the least severe, then least recently seen, pending findings beyond `max`.
    fn shed_beyond(&self, max: usize) {
        let mut pending = self.pending.borrow_mut();
        if pending.len() <= max {
            return;
        }
        let mut order: Vec<(f64, i64, String)> = pending
            .values()
            .map(|s| {
                let f = &s.finding;
                (f.severity, millis(&f.event_last_seen), f.id.clone())
            })
            .collect();
        order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let excess = pending.len() - max;
        for (_, _, id) in order.into_iter().take(excess) {
            pending.remove(&id);
        }
        drop(pending);
        self.update_stats(|s| s.shed += excess as u64);
        tracing::error!(
            shed = excess,
            kept = max,
            "findings store cannot write: the least severe pending findings were dropped"
        );
    }

    fn update_stats(&self, f: impl FnOnce(&mut StoreStats)) {
        let mut stats = self.stats.get();
        f(&mut stats);
        self.stats.set(stats);
    }

    /// What the store had to give up so far.
    pub fn stats(&self) -> StoreStats {
        self.stats.get()
    }

    /// Findings merged in memory and not yet written.
    pub fn pending_len(&self) -> usize {
        self.pending.borrow().len()
    }

    fn write(&self, s: &StoredFinding) -> Result<(), StoreError> {
        let f = &s.finding;
        let document = serde_json::to_string(f).map_err(|source| StoreError::Serialise {
            id: f.id.clone(),
            source,
        })?;
        self.conn
            .execute(
                "INSERT INTO findings (id, type, severity, resource, archived, archived_by, count,
                     first_seen_ms, last_seen_ms, document)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT(id) DO UPDATE SET type = ?2, severity = ?3, resource = ?4,
                     archived = ?5, archived_by = ?6, count = ?7, first_seen_ms = ?8,
                     last_seen_ms = ?9, document = ?10",
                params![
                    f.id,
                    f.finding_type,
                    f.severity,
                    f.resource.display_name,
                    f.archived,
                    s.archived_by,
                    i64::try_from(f.count).unwrap_or(i64::MAX),
                    millis(&f.event_first_seen),
                    millis(&f.event_last_seen),
                    document
                ],
            )
            .map_err(self.err("write a finding"))?;
        Ok(())
    }

    /// The finding with this id (or a unique id prefix of at least 6 characters).
    pub fn get(&self, id: &str) -> Result<Option<StoredFinding>, StoreError> {
        self.flush()?;
        self.load(id)
    }

    /// `get` without writing pending findings first.
    fn load(&self, id: &str) -> Result<Option<StoredFinding>, StoreError> {
        let row: Option<(String, String, Option<String>)> = self
            .conn
            .query_row(
                "SELECT id, document, archived_by FROM findings WHERE id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(self.err("read a finding"))?;
        let row = match row {
            Some(row) => Some(row),
            None if id.len() >= 6 && id.chars().all(|c| c.is_ascii_hexdigit()) => {
                let mut stmt = self
                    .conn
                    .prepare(
                        "SELECT id, document, archived_by FROM findings WHERE id LIKE ?1 LIMIT 2",
                    )
                    .map_err(self.err("read a finding"))?;
                let rows: Vec<(String, String, Option<String>)> = stmt
                    .query_map(params![format!("{id}%")], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })
                    .map_err(self.err("read a finding"))?
                    .collect::<Result<_, _>>()
                    .map_err(self.err("read a finding"))?;
                (rows.len() == 1).then(|| rows.into_iter().next()).flatten()
            }
            None => None,
        };
        row.map(|(id, doc, by)| self.parse(&id, &doc, by))
            .transpose()
    }

    fn parse(&self, id: &str, doc: &str, by: Option<String>) -> Result<StoredFinding, StoreError> {
        let finding = serde_json::from_str(doc).map_err(|source| StoreError::Corrupt {
            path: self.path.clone(),
            id: id.to_owned(),
            source,
        })?;
        Ok(StoredFinding {
            finding,
            archived_by: by,
        })
    }

    /// Findings matching the filter, most recently seen first.
    pub fn list(&self, filter: &Filter) -> Result<Vec<StoredFinding>, StoreError> {
        self.flush()?;
        let mut sql = String::from("SELECT id, document, archived_by FROM findings WHERE 1 = 1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(label) = filter.min_severity {
            sql.push_str(" AND severity >= ?");
            args.push(
                match label {
                    SeverityLabel::Low => 1.0,
                    SeverityLabel::Medium => 4.0,
                    SeverityLabel::High => 7.0,
                    SeverityLabel::Critical => 9.0,
                }
                .into(),
            );
        }
        if let Some(t) = &filter.finding_type {
            sql.push_str(" AND type = ?");
            args.push(t.clone().into());
        }
        if let Some(r) = &filter.resource {
            sql.push_str(" AND resource = ?");
            args.push(r.clone().into());
        }
        if let Some(since) = filter.since {
            sql.push_str(" AND last_seen_ms >= ?");
            args.push(since.as_millisecond().into());
        }
        if let Some(archived) = filter.archived {
            sql.push_str(" AND archived = ?");
            args.push(i64::from(archived).into());
        }
        sql.push_str(" ORDER BY last_seen_ms DESC, id");
        if let Some(limit) = filter.limit {
            sql.push_str(" LIMIT ?");
            args.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
        }
        let mut stmt = self.conn.prepare(&sql).map_err(self.err("list findings"))?;
        let rows: Vec<(String, String, Option<String>)> = stmt
            .query_map(rusqlite::params_from_iter(args), |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(self.err("list findings"))?
            .collect::<Result<_, _>>()
            .map_err(self.err("list findings"))?;
        rows.into_iter()
            .map(|(id, doc, by)| self.parse(&id, &doc, by))
            .collect()
    }

    /// Number of findings stored.
    pub fn len(&self) -> Result<u64, StoreError> {
        self.flush()?;
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM findings", [], |r| r.get(0))
            .map_err(self.err("count findings"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        self.len().map(|n| n == 0)
    }

    /// Number of archived findings stored.
    pub fn archived_len(&self) -> Result<u64, StoreError> {
        self.flush()?;
        let n: i64 = self
            .conn
            .query_row(
                "SELECT COUNT(*) FROM findings WHERE archived = 1",
                [],
                |r| r.get(0),
            )
            .map_err(self.err("count archived findings"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Applies the bounds as of `now`: removes findings last seen before `now - retention`,
    /// then, beyond `max_findings`, the least severe and among equals the least recently seen:
    /// a flood of Low findings never pushes out a High one. Returns how many were removed;
    /// [`Store::stats`] counts them.
    pub fn enforce_limits(&mut self, now: Timestamp) -> Result<u64, StoreError> {
        self.flush()?;
        let cutoff = now
            .as_millisecond()
            .saturating_sub(i64::try_from(self.limits.retention.as_millis()).unwrap_or(i64::MAX));
        let old = self
            .conn
            .execute(
                "DELETE FROM findings WHERE last_seen_ms < ?1",
                params![cutoff],
            )
            .map_err(self.err("remove expired findings"))?;
        let max = i64::try_from(self.limits.max_findings).unwrap_or(i64::MAX);
        let excess = self
            .conn
            .execute(
                "DELETE FROM findings WHERE id IN (
                     SELECT id FROM findings
                     ORDER BY severity DESC, last_seen_ms DESC, id LIMIT -1 OFFSET ?1)",
                params![max],
            )
            .map_err(self.err("remove findings beyond the size bound"))?;
        self.update_stats(|s| {
            s.expired += old as u64;
            s.evicted += excess as u64;
        });
        if excess > 0 {
            tracing::warn!(
                evicted = excess,
                max_findings = self.limits.max_findings,
                "findings store full: the least severe, least recently seen findings were removed"
            );
        }
        Ok((old + excess) as u64)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Err(error) = self.flush() {
            tracing::error!(%error, "findings not written at shutdown");
        }
    }
}

#[cfg(test)]
mod tests {
    use vigil_crds::finding::{HostDetails, Resource, ResourceRole, RuntimeContext};

    use super::*;

    fn at(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    fn finding(id: &str, t: &str, severity: f64, seen: &str) -> Finding {
        Finding {
            id: id.into(),
            schema_version: "1.0".into(),
            finding_type: t.into(),
            title: "t".into(),
            description: "d".into(),
            severity,
            severity_label: SeverityLabel::from_score(severity).unwrap(),
            created_at: at(seen),
            updated_at: at(seen),
            resource: Resource {
                display_name: "node-a".into(),
                host: HostDetails {
                    hostname: "node-a".into(),
                    ..Default::default()
                },
                container: None,
                pod: None,
            },
            resource_role: ResourceRole::Actor,
            count: 1,
            event_first_seen: at(seen),
            event_last_seen: at(seen),
            process: None,
            context: RuntimeContext::default(),
            network: None,
            dns: None,
            evidence: None,
            archived: false,
        }
    }

    fn temp_db(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vigil-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("sub").join("findings.db")
    }

    #[test]
    fn repeats_merge_and_survive_reopening() {
        let path = temp_db("merge");
        {
            let mut s = Store::open(&path, StoreLimits::default()).unwrap();
            let a = finding(
                "aa11",
                "Execution:Runtime/SuspiciousTool",
                5.0,
                "2026-11-27T10:00:00Z",
            );
            assert!(s.upsert(&a, 1, None).unwrap().inserted);
            let mut again = finding(
                "aa11",
                "Execution:Runtime/SuspiciousTool",
                5.0,
                "2026-11-27T11:00:00Z",
            );
            again.archived = true;
            let up = s.upsert(&again, 1, Some("quiet-tools")).unwrap();
            assert!(!up.inserted);
            assert_eq!(up.stored.finding.count, 2);
            assert_eq!(up.stored.finding.created_at, at("2026-11-27T10:00:00Z"));
            assert_eq!(
                up.stored.finding.event_first_seen,
                at("2026-11-27T10:00:00Z")
            );
            assert_eq!(
                up.stored.finding.event_last_seen,
                at("2026-11-27T11:00:00Z")
            );
            assert!(up.stored.finding.archived);
        }
        let mut s = Store::open(&path, StoreLimits::default()).unwrap();
        let got = s.get("aa11").unwrap().expect("kept across reopening");
        assert_eq!(got.finding.count, 2);
        assert_eq!(got.archived_by.as_deref(), Some("quiet-tools"));
        // A later repeat that no rule archives leaves it archived.
        let third = finding(
            "aa11",
            "Execution:Runtime/SuspiciousTool",
            5.0,
            "2026-11-27T12:00:00Z",
        );
        let up = s.upsert(&third, 1, None).unwrap();
        assert!(up.stored.finding.archived);
        assert_eq!(up.stored.archived_by.as_deref(), Some("quiet-tools"));
        assert_eq!(up.stored.finding.count, 3);
    }

    #[test]
    fn filters_select_by_severity_type_since_and_archived() {
        let path = temp_db("filters");
        let mut s = Store::open(&path, StoreLimits::default()).unwrap();
        s.upsert(
            &finding(
                "a1",
                "Execution:Runtime/SuspiciousTool",
                2.0,
                "2026-11-27T10:00:00Z",
            ),
            1,
            None,
        )
        .unwrap();
        s.upsert(
            &finding(
                "b2",
                "Backdoor:Runtime/C&CActivity.B",
                8.0,
                "2026-11-27T11:00:00Z",
            ),
            1,
            None,
        )
        .unwrap();
        let mut c = finding(
            "c3",
            "Backdoor:Runtime/C&CActivity.B",
            5.0,
            "2026-11-27T12:00:00Z",
        );
        c.archived = true;
        s.upsert(&c, 1, Some("r")).unwrap();
        let ids = |f: Filter| -> Vec<String> {
            s.list(&f)
                .unwrap()
                .into_iter()
                .map(|x| x.finding.id)
                .collect()
        };
        assert_eq!(ids(Filter::default()), ["c3", "b2", "a1"]);
        assert_eq!(
            ids(Filter {
                min_severity: Some(SeverityLabel::Medium),
                ..Default::default()
            }),
            ["c3", "b2"]
        );
        assert_eq!(
            ids(Filter {
                finding_type: Some("Execution:Runtime/SuspiciousTool".into()),
                ..Default::default()
            }),
            ["a1"]
        );
        assert_eq!(
            ids(Filter {
                since: Some("2026-11-27T10:30:00Z".parse().unwrap()),
                archived: Some(false),
                ..Default::default()
            }),
            ["b2"]
        );
        assert_eq!(
            ids(Filter {
                archived: Some(true),
                ..Default::default()
            }),
            ["c3"]
        );
        assert_eq!(s.get("c3").unwrap().unwrap().finding.id, "c3");
        assert!(s.get("zz").unwrap().is_none());
        assert_eq!((s.len().unwrap(), s.archived_len().unwrap()), (3, 1));
    }

    #[test]
    fn retention_and_size_bounds_remove_the_oldest() {
        let path = temp_db("bounds");
        let limits = StoreLimits {
            retention: Duration::from_secs(24 * 3600),
            max_findings: 2,
        };
        let mut s = Store::open(&path, limits).unwrap();
        for (id, seen) in [
            ("old", "2026-11-20T00:00:00Z"),
            ("x1", "2026-11-27T01:00:00Z"),
            ("x2", "2026-11-27T02:00:00Z"),
            ("x3", "2026-11-27T03:00:00Z"),
        ] {
            s.upsert(
                &finding(id, "Execution:Runtime/SuspiciousTool", 5.0, seen),
                1,
                None,
            )
            .unwrap();
        }
        let removed = s
            .enforce_limits("2026-11-27T12:00:00Z".parse().unwrap())
            .unwrap();
        assert_eq!(removed, 2);
        let left: Vec<String> = s
            .list(&Filter::default())
            .unwrap()
            .into_iter()
            .map(|f| f.finding.id)
            .collect();
        assert_eq!(left, ["x3", "x2"]);
    }

    #[test]
    fn the_size_bound_removes_low_findings_before_high_ones_and_counts_them() {
        let path = temp_db("severity-bound");
        let limits = StoreLimits {
            retention: DEFAULT_RETENTION,
            max_findings: 3,
        };
        let mut s = Store::open(&path, limits).unwrap();
        let t = "Execution:Runtime/SuspiciousTool";
        s.upsert(&finding("high", t, 8.0, "2026-11-27T00:00:00Z"), 1, None)
            .unwrap();
        s.upsert(&finding("crit", t, 9.5, "2026-11-27T00:00:01Z"), 1, None)
            .unwrap();
        for i in 0..6 {
            let seen = format!("2026-11-27T01:00:0{i}Z");
            s.upsert(&finding(&format!("low{i}"), t, 2.0, &seen), 1, None)
                .unwrap();
        }
        let removed = s
            .enforce_limits("2026-11-27T12:00:00Z".parse().unwrap())
            .unwrap();
        assert_eq!(removed, 5);
        let mut left: Vec<String> = s
            .list(&Filter::default())
            .unwrap()
            .into_iter()
            .map(|f| f.finding.id)
            .collect();
        left.sort();
        assert_eq!(left, ["crit", "high", "low5"]);
        assert_eq!(s.stats().evicted, 5);
    }

    #[test]
    fn retry_delay_doubles_and_is_capped() {
        assert_eq!(retry_delay(1), Duration::from_millis(100));
        assert_eq!(retry_delay(2), Duration::from_millis(200));
        assert_eq!(retry_delay(5), Duration::from_millis(1600));
        assert_eq!(retry_delay(40), Duration::from_secs(30));
    }

    /// A small tmpfs mounted for a test, unmounted when dropped.
    struct SmallFs(PathBuf);

    impl SmallFs {
        fn mount(name: &str, size: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("vigil-fullfs-{}-{name}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let status = std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(&dir)
                .status()
                .unwrap();
            assert!(status.success(), "mount a tmpfs on {}", dir.display());
            Self(dir)
        }

        /// Fills the filesystem with one file until it is full.
        fn fill(&self) -> PathBuf {
            use std::io::Write;
            let filler = self.0.join("filler");
            let mut f = std::fs::File::create(&filler).unwrap();
            let block = vec![0u8; 4096];
            while f.write_all(&block).is_ok() {}
            filler
        }
    }

    impl Drop for SmallFs {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_full_disk_loses_no_finding_and_writes_them_all_once_there_is_room() {
        if !crate::collector::root_or_skip(
            "a_full_disk_loses_no_finding_and_writes_them_all_once_there_is_room (mounts a tmpfs)",
        ) {
            return;
        }
        let fs = SmallFs::mount("store", "2m");
        let path = fs.0.join("findings.db");
        let mut s = Store::open(&path, StoreLimits::default()).unwrap();
        s.upsert(
            &finding(
                "before",
                "Execution:Runtime/SuspiciousTool",
                5.0,
                "2026-11-27T00:00:00Z",
            ),
            1,
            None,
        )
        .unwrap();
        s.flush().unwrap();
        let filler = fs.fill();
        let long = "d".repeat(4000);
        for i in 0..100 {
            let mut f = finding(
                &format!("f{i:03}"),
                "Execution:Runtime/SuspiciousTool",
                5.0,
                "2026-11-27T01:00:00Z",
            );
            f.description = long.clone();
            // Whether this upsert already tried to write depends on how fast the loop runs; an
            // error here is the full disk too, and the finding stays pending either way.
            let _ = s.upsert(&f, 1, None);
        }
        assert!(s.flush().is_err(), "the disk is full");
        assert!(s.stats().failed_flushes >= 1);
        assert_eq!(s.pending_len(), 100, "every finding is still pending");
        std::fs::remove_file(&filler).unwrap();
        s.flush().unwrap();
        assert_eq!(s.len().unwrap(), 101);
        assert_eq!(s.stats().shed, 0);
        drop(s);
        let reopened = Store::open(&path, StoreLimits::default()).unwrap();
        assert_eq!(reopened.len().unwrap(), 101);
    }

    #[test]
    fn a_batch_that_cannot_be_written_is_bounded_by_shedding_the_least_severe() {
        if !crate::collector::root_or_skip(
            "a_batch_that_cannot_be_written_is_bounded_by_shedding_the_least_severe (mounts a tmpfs)",
        ) {
            return;
        }
        let fs = SmallFs::mount("shed", "2m");
        let s = Store::open(&fs.0.join("findings.db"), StoreLimits::default()).unwrap();
        let _filler = fs.fill();
        {
            let mut pending = s.pending.borrow_mut();
            let mut add = |id: String, severity: f64| {
                let f = finding(
                    &id,
                    "Execution:Runtime/SuspiciousTool",
                    severity,
                    "2026-11-27T01:00:00Z",
                );
                pending.insert(
                    id,
                    StoredFinding {
                        finding: f,
                        archived_by: None,
                    },
                );
            };
            add("critical".into(), 9.5);
            for i in 0..MAX_PENDING + 10 {
                add(format!("low{i}"), 2.0);
            }
        }
        assert!(s.flush().is_err());
        assert_eq!(s.pending_len(), MAX_PENDING);
        assert_eq!(s.stats().shed, 11);
        assert!(s.pending.borrow().contains_key("critical"));
    }

    #[test]
    fn unopenable_path_names_the_file() {
        let err = Store::open(
            Path::new("/proc/vigil-no/findings.db"),
            StoreLimits::default(),
        )
        .err()
        .expect("cannot create under /proc")
        .to_string();
        assert!(err.contains("/proc/vigil-no"), "{err}");
    }

    #[test]
    fn a_storm_of_one_finding_is_merged_in_memory_and_written_once_visible() {
        let path = temp_db("storm");
        {
            let mut store = Store::open(&path, StoreLimits::default()).expect("open");
            let first = store
                .upsert(
                    &finding(
                        "storm",
                        "Execution:Runtime/NewBinaryExecuted",
                        5.0,
                        "2026-01-01T00:00:00Z",
                    ),
                    1,
                    None,
                )
                .expect("first");
            assert!(first.inserted);
            for i in 1..1000 {
                let seen = format!("2026-01-01T00:00:{:02}Z", i % 60);
                let again = store
                    .upsert(
                        &finding("storm", "Execution:Runtime/NewBinaryExecuted", 5.0, &seen),
                        1,
                        None,
                    )
                    .expect("repeat");
                assert!(!again.inserted, "repeat {i} is not new");
            }
            // Readers in this process see the merged state...
            let stored = store.get("storm").expect("get").expect("present");
            assert_eq!(stored.finding.count, 1000);
            // ...and so does another process once the batch is written (here: on drop).
            store
                .upsert(
                    &finding(
                        "late",
                        "Execution:Runtime/NewBinaryExecuted",
                        5.0,
                        "2026-01-01T00:01:00Z",
                    ),
                    1,
                    None,
                )
                .expect("late");
        }
        let reopened = Store::open(&path, StoreLimits::default()).expect("reopen");
        assert_eq!(
            reopened.len().expect("len"),
            2,
            "the pending finding was written at drop"
        );
        assert_eq!(
            reopened
                .get("storm")
                .expect("get")
                .expect("present")
                .finding
                .count,
            1000
        );
    }

    mod properties {
        use std::sync::atomic::{AtomicUsize, Ordering};

        use proptest::{collection::vec, prelude::*};

        use super::*;

        /// 2026-01-01T00:00:00Z.
        const BASE: i64 = 1_767_225_600;

        fn at_second(offset: i64) -> Time {
            Time(Timestamp::from_second(BASE + offset).unwrap())
        }

        /// One event of the finding as the detector reports it.
        #[derive(Debug, Clone)]
        struct Occurrence {
            /// Events it stands for (kernel-folded repeats included).
            occurrences: u64,
            /// The count on the detector's copy, which the store must not trust for repeats.
            detector_count: u64,
            first: i64,
            span: i64,
            archived_by: Option<&'static str>,
            flush: bool,
        }

        fn occurrence() -> impl Strategy<Value = Occurrence> {
            (
                1u64..50,
                1u64..1000,
                0i64..100_000,
                0i64..10_000,
                prop_oneof![3 => Just(None), 1 => Just(Some("quiet")), 1 => Just(Some("other"))],
                any::<bool>(),
            )
                .prop_map(
                    |(occurrences, detector_count, first, span, archived_by, flush)| Occurrence {
                        occurrences,
                        detector_count,
                        first,
                        span,
                        archived_by,
                        flush,
                    },
                )
        }

        fn reported(id: &str, index: usize, e: &Occurrence) -> Finding {
            let mut f = finding(
                id,
                "Execution:Runtime/NewBinaryExecuted",
                5.0,
                "2026-01-01T00:00:00Z",
            );
            f.event_first_seen = at_second(e.first);
            f.event_last_seen = at_second(e.first + e.span);
            f.created_at = f.event_first_seen.clone();
            f.updated_at = f.event_last_seen.clone();
            // A first occurrence carries its own count, as the detector builds it.
            f.count = if index == 0 {
                e.occurrences
            } else {
                e.detector_count
            };
            f.archived = e.archived_by.is_some();
            f
        }

        static CASE: AtomicUsize = AtomicUsize::new(0);

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(48))]

            #[test]
            fn repeats_add_up_widen_the_seen_window_and_stay_archived(
                events in vec(occurrence(), 1..12),
                interleave in vec(occurrence(), 0..6),
            ) {
                let case = CASE.fetch_add(1, Ordering::Relaxed);
                let path = temp_db(&format!("prop-{case}"));
                let mut store = Store::open(&path, StoreLimits::default()).unwrap();
                let mut archived_by: Option<&str> = None;
                for (i, e) in events.iter().enumerate() {
                    let up = store.upsert(&reported("prop", i, e), e.occurrences, e.archived_by).unwrap();
                    prop_assert_eq!(up.inserted, i == 0);
                    archived_by = archived_by.or(e.archived_by);
                    // Sticky: archived once, archived from then on, by the first rule.
                    prop_assert_eq!(up.stored.finding.archived, archived_by.is_some());
                    prop_assert_eq!(up.stored.archived_by.as_deref(), archived_by);
                    // Another finding in between changes nothing of this one.
                    if let Some(other) = interleave.get(i) {
                        store.upsert(&reported("other", i, other), other.occurrences, None).unwrap();
                    }
                    if e.flush {
                        store.flush().unwrap();
                    }
                }
                let count: u64 = events.iter().map(|e| e.occurrences).sum();
                let first = events.iter().map(|e| e.first).min().unwrap();
                let last = events.iter().map(|e| e.first + e.span).max().unwrap();
                // As read back from the file, after a reopen.
                drop(store);
                let store = Store::open(&path, StoreLimits::default()).unwrap();
                let stored = store.get("prop").unwrap().unwrap();
                let _ = std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap());
                prop_assert_eq!(stored.finding.count, count);
                prop_assert_eq!(&stored.finding.event_first_seen, &at_second(first));
                prop_assert_eq!(&stored.finding.event_last_seen, &at_second(last));
                prop_assert_eq!(&stored.finding.created_at, &at_second(events[0].first));
                prop_assert_eq!(stored.finding.archived, archived_by.is_some());
                prop_assert_eq!(stored.archived_by.as_deref(), archived_by);
            }
        }
    }
}
