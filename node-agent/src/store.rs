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

/// Filters of `findings list` and of the console's findings page.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// At least this severity.
    pub min_severity: Option<SeverityLabel>,
    /// One of these severity labels (none given: any).
    pub severities: Vec<SeverityLabel>,
    /// Exactly this type.
    pub finding_type: Option<String>,
    /// Resource display name (the host, or namespace/pod/container).
    pub resource: Option<String>,
    /// Any part of the resource equals this: display name, node or host name, namespace, pod,
    /// container or image.
    pub resource_any: Option<String>,
    /// Process name (comm) equals this.
    pub process_name: Option<String>,
    /// Executable path equals this.
    pub executable: Option<String>,
    /// Executable SHA-256 equals this (hex, any case).
    pub sha256: Option<String>,
    /// Remote IP address or domain (DNS query or connection's domain) equals this.
    pub remote: Option<String>,
    /// One of the finding's MITRE ATT&CK techniques (`additional.mitreTechniques`) equals this.
    pub mitre: Option<String>,
    /// Last seen at or after this time.
    pub since: Option<Timestamp>,
    /// Last seen before this time.
    pub until: Option<Timestamp>,
    /// `Some(true)`: only archived; `Some(false)`: only active; `None`: both.
    pub archived: Option<bool>,
    /// Order of the rows (default: most recently seen first).
    pub sort: Sort,
    /// Rows skipped before the first returned (paging).
    pub offset: u64,
    /// Most rows returned.
    pub limit: Option<u64>,
}

/// The column findings are ordered by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SortKey {
    /// When the finding's last event was seen.
    #[default]
    LastSeen,
    /// When its first event was seen.
    FirstSeen,
    /// Severity score.
    Severity,
    /// Events counted.
    Count,
    /// Finding type.
    Type,
    /// Resource display name.
    Resource,
}

impl SortKey {
    fn column(self) -> &'static str {
        match self {
            Self::LastSeen => "last_seen_ms",
            Self::FirstSeen => "first_seen_ms",
            Self::Severity => "severity",
            Self::Count => "count",
            Self::Type => "type",
            Self::Resource => "resource",
        }
    }
}

/// What [`Store::tally`] groups findings by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// Finding type.
    Type,
    /// Resource display name.
    Resource,
    /// Severity label (`Low`, `Medium`, `High`, `Critical`).
    Label,
    /// UTC day of the last event (`YYYY-MM-DD`).
    Day,
}

impl GroupBy {
    fn expression(self) -> &'static str {
        match self {
            Self::Type => "type",
            Self::Resource => "resource",
            Self::Label => {
                "CASE WHEN severity >= 9 THEN 'Critical' WHEN severity >= 7 THEN 'High' \
                 WHEN severity >= 4 THEN 'Medium' ELSE 'Low' END"
            }
            Self::Day => "strftime('%Y-%m-%d', last_seen_ms / 1000, 'unixepoch')",
        }
    }
}

/// Order of the rows of a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    /// The column.
    pub key: SortKey,
    /// Largest (latest) first.
    pub descending: bool,
}

impl Default for Sort {
    fn default() -> Self {
        Self {
            key: SortKey::LastSeen,
            descending: true,
        }
    }
}

/// The lowest score of a label (labels cover `[low, next label's low)`).
fn label_floor(label: SeverityLabel) -> f64 {
    match label {
        SeverityLabel::Low => 1.0,
        SeverityLabel::Medium => 4.0,
        SeverityLabel::High => 7.0,
        SeverityLabel::Critical => 9.0,
    }
}

fn label_ceiling(label: SeverityLabel) -> f64 {
    match label {
        SeverityLabel::Low => 4.0,
        SeverityLabel::Medium => 7.0,
        SeverityLabel::High => 9.0,
        // Above every valid score (at most 10).
        SeverityLabel::Critical => 11.0,
    }
}

impl Filter {
    /// The `WHERE` clause (starting with ` WHERE`) and its arguments.
    fn where_clause(&self) -> (String, Vec<rusqlite::types::Value>) {
        let mut sql = String::from(" WHERE 1 = 1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(label) = self.min_severity {
            sql.push_str(" AND severity >= ?");
            args.push(label_floor(label).into());
        }
        if !self.severities.is_empty() {
            let any: Vec<&str> = self
                .severities
                .iter()
                .map(|_| "(severity >= ? AND severity < ?)")
                .collect();
            sql.push_str(&format!(" AND ({})", any.join(" OR ")));
            for label in &self.severities {
                args.push(label_floor(*label).into());
                args.push(label_ceiling(*label).into());
            }
        }
        let mut equals = |column: &str, value: &Option<String>| {
            if let Some(v) = value {
                sql.push_str(&format!(" AND {column} = ?"));
                args.push(v.clone().into());
            }
        };
        equals("type", &self.finding_type);
        equals("resource", &self.resource);
        equals("process_name", &self.process_name);
        equals("exe_path", &self.executable);
        equals(
            "exe_sha256",
            &self.sha256.as_ref().map(|s| s.to_ascii_lowercase()),
        );
        if let Some(r) = &self.resource_any {
            sql.push_str(" AND instr(resource_keys, ?) > 0");
            args.push(format!("\n{r}\n").into());
        }
        if let Some(r) = &self.remote {
            sql.push_str(" AND (remote_ip = ? OR domain = ?)");
            args.push(r.clone().into());
            args.push(r.trim_end_matches('.').to_ascii_lowercase().into());
        }
        if let Some(t) = &self.mitre {
            sql.push_str(" AND instr(mitre, ?) > 0");
            args.push(format!(",{},", t.trim().to_ascii_uppercase()).into());
        }
        if let Some(since) = self.since {
            sql.push_str(" AND last_seen_ms >= ?");
            args.push(since.as_millisecond().into());
        }
        if let Some(until) = self.until {
            sql.push_str(" AND last_seen_ms < ?");
            args.push(until.as_millisecond().into());
        }
        if let Some(archived) = self.archived {
            sql.push_str(" AND archived = ?");
            args.push(i64::from(archived).into());
        }
        (sql, args)
    }
}

/// The columns the store derives from a finding to filter on (besides type, severity,
/// resource, archived and times).
#[derive(Debug, Default, PartialEq, Eq)]
struct Derived {
    process_name: Option<String>,
    exe_path: Option<String>,
    exe_sha256: Option<String>,
    remote_ip: Option<String>,
    domain: Option<String>,
    /// `,T1059,T1036.005,`: each technique between commas, for an `instr` match.
    mitre: String,
    /// Every part of the resource between newlines, for an `instr` match.
    resource_keys: String,
}

impl Derived {
    fn of(f: &Finding) -> Self {
        let process = f.process.as_ref();
        let domain = f
            .dns
            .as_ref()
            .map(|d| d.domain.clone())
            .or_else(|| f.network.as_ref().and_then(|n| n.remote_domain.clone()))
            .map(|d| d.trim_end_matches('.').to_ascii_lowercase());
        let mitre: Vec<String> = f
            .context
            .additional
            .get("mitreTechniques")
            .map(|t| {
                t.split(',')
                    .map(|x| x.trim().to_ascii_uppercase())
                    .filter(|x| !x.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let r = &f.resource;
        let mut keys = vec![r.display_name.clone(), r.host.hostname.clone()];
        keys.extend(r.host.node_name.clone());
        if let Some(p) = &r.pod {
            keys.push(p.namespace.clone());
            keys.push(p.name.clone());
            keys.push(format!("{}/{}", p.namespace, p.name));
        }
        if let Some(c) = &r.container {
            keys.push(c.name.clone());
            keys.extend(c.image.clone());
        }
        keys.retain(|k| !k.is_empty() && !k.contains('\n'));
        Self {
            process_name: process.map(|p| p.name.clone()),
            exe_path: process
                .map(|p| p.executable_path.clone())
                .filter(|p| !p.is_empty()),
            exe_sha256: process
                .and_then(|p| p.executable_sha256.clone())
                .map(|s| s.to_ascii_lowercase()),
            remote_ip: f.network.as_ref().map(|n| n.remote_ip.clone()),
            domain,
            mitre: if mitre.is_empty() {
                String::new()
            } else {
                format!(",{},", mitre.join(","))
            },
            resource_keys: format!("\n{}\n", keys.join("\n")),
        }
    }
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
    document TEXT NOT NULL,
    process_name TEXT,
    exe_path TEXT,
    exe_sha256 TEXT,
    remote_ip TEXT,
    domain TEXT,
    mitre TEXT NOT NULL DEFAULT '',
    resource_keys TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS findings_last_seen ON findings(last_seen_ms);
CREATE INDEX IF NOT EXISTS findings_type ON findings(type);
";

/// The columns schema version 2 added (the console's filters), created on a version-1 store and
/// filled from the stored documents.
const DERIVED_COLUMNS: &[&str] = &[
    "process_name TEXT",
    "exe_path TEXT",
    "exe_sha256 TEXT",
    "remote_ip TEXT",
    "domain TEXT",
    "mitre TEXT NOT NULL DEFAULT ''",
    "resource_keys TEXT NOT NULL DEFAULT ''",
];

/// A covering index of every filter and sort column: counting and paging the console's
/// filtered listing reads this (a few tens of bytes a finding) instead of every document.
const INDEXES: &str = "
CREATE INDEX IF NOT EXISTS findings_console ON findings(
    last_seen_ms, archived, severity, type, resource, count, first_seen_ms, id, process_name,
    exe_path, exe_sha256, remote_ip, domain, mitre, resource_keys);
PRAGMA user_version = 2;
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
        migrate(&conn).map_err(|(action, source)| StoreError::Sqlite {
            path: path.to_path_buf(),
            action,
            source,
        })?;
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
        // The exact id only: a prefix lookup here would scan the table for every new finding
        // (and could merge into another finding).
        let existing = match pending {
            Some(p) => Some(p),
            None => self.load_exact(&finding.id)?,
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
                // Actions taken stay on the finding across repeats.
                let mut actions = old.finding.actions_taken;
                actions.extend(finding.actions_taken.iter().cloned());
                f.actions_taken = bounded_actions(actions);
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

    /// Appends automated response actions to the stored finding `id` (kept with the newest
    /// [`vigil_crds::limits::ACTIONS_TAKEN`]); false when there is no such finding.
    pub fn add_actions(
        &mut self,
        id: &str,
        actions: &[vigil_crds::finding::ActionTaken],
    ) -> Result<bool, StoreError> {
        if actions.is_empty() {
            return Ok(true);
        }
        let pending = self.pending.borrow().get(id).cloned();
        let existing = match pending {
            Some(p) => Some(p),
            None => self.load(id)?,
        };
        let Some(mut stored) = existing else {
            return Ok(false);
        };
        let mut all = std::mem::take(&mut stored.finding.actions_taken);
        all.extend(actions.iter().cloned());
        stored.finding.actions_taken = bounded_actions(all);
        self.pending.borrow_mut().insert(id.to_owned(), stored);
        if self.pending_since.get().is_none() {
            self.pending_since.set(Some(Instant::now()));
        }
        Ok(true)
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
        let d = Derived::of(f);
        let document = serde_json::to_string(f).map_err(|source| StoreError::Serialise {
            id: f.id.clone(),
            source,
        })?;
        self.conn
            .execute(
                "INSERT INTO findings (id, type, severity, resource, archived, archived_by, count,
                     first_seen_ms, last_seen_ms, document, process_name, exe_path, exe_sha256,
                     remote_ip, domain, mitre, resource_keys)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                     ?17)
                 ON CONFLICT(id) DO UPDATE SET type = ?2, severity = ?3, resource = ?4,
                     archived = ?5, archived_by = ?6, count = ?7, first_seen_ms = ?8,
                     last_seen_ms = ?9, document = ?10, process_name = ?11, exe_path = ?12,
                     exe_sha256 = ?13, remote_ip = ?14, domain = ?15, mitre = ?16,
                     resource_keys = ?17",
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
                    document,
                    d.process_name,
                    d.exe_path,
                    d.exe_sha256,
                    d.remote_ip,
                    d.domain,
                    d.mitre,
                    d.resource_keys
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

    /// The finding with exactly this id, without writing pending findings first.
    fn load_exact(&self, id: &str) -> Result<Option<StoredFinding>, StoreError> {
        let row: Option<(String, Option<String>)> = self
            .conn
            .prepare_cached("SELECT document, archived_by FROM findings WHERE id = ?1")
            .and_then(|mut s| {
                s.query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(self.err("read a finding"))?;
        row.map(|(doc, by)| self.parse(id, &doc, by)).transpose()
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

    /// Findings matching the filter, in the filter's order (most recently seen first unless
    /// it says otherwise), from `offset`, at most `limit`.
    pub fn list(&self, filter: &Filter) -> Result<Vec<StoredFinding>, StoreError> {
        self.flush()?;
        // The ids come from the covering index alone; only the page's documents are read.
        let (clause, mut args) = filter.where_clause();
        let direction = if filter.sort.descending {
            "DESC"
        } else {
            "ASC"
        };
        let mut sql = format!(
            "SELECT id FROM findings INDEXED BY findings_console{clause} ORDER BY {} {direction}, id {direction}",
            filter.sort.key.column()
        );
        sql.push_str(" LIMIT ? OFFSET ?");
        args.push(
            filter
                .limit
                .map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX))
                .into(),
        );
        args.push(i64::try_from(filter.offset).unwrap_or(i64::MAX).into());
        let mut stmt = self
            .conn
            .prepare_cached(&sql)
            .map_err(self.err("list findings"))?;
        let ids: Vec<String> = stmt
            .query_map(rusqlite::params_from_iter(args), |r| r.get(0))
            .map_err(self.err("list findings"))?
            .collect::<Result<_, _>>()
            .map_err(self.err("list findings"))?;
        let mut read = self
            .conn
            .prepare_cached("SELECT document, archived_by FROM findings WHERE id = ?1")
            .map_err(self.err("read a finding"))?;
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            let row: Option<(String, Option<String>)> = read
                .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(self.err("read a finding"))?;
            if let Some((doc, by)) = row {
                found.push(self.parse(&id, &doc, by)?);
            }
        }
        Ok(found)
    }

    /// Number of findings matching the filter (its order, offset and limit aside).
    pub fn count(&self, filter: &Filter) -> Result<u64, StoreError> {
        self.flush()?;
        let (clause, args) = filter.where_clause();
        let sql = format!("SELECT COUNT(*) FROM findings INDEXED BY findings_console{clause}");
        let n: i64 = self
            .conn
            .prepare_cached(&sql)
            .and_then(|mut s| s.query_row(rusqlite::params_from_iter(args), |r| r.get(0)))
            .map_err(self.err("count findings"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Findings matching the filter counted per group (the keys in `by`'s order), most first,
    /// at most `limit` groups.
    pub fn tally(
        &self,
        filter: &Filter,
        by: &[GroupBy],
        limit: u64,
    ) -> Result<Vec<(Vec<String>, u64)>, StoreError> {
        self.flush()?;
        let (clause, mut args) = filter.where_clause();
        let keys: Vec<&str> = by.iter().map(|g| g.expression()).collect();
        let keys = keys.join(", ");
        let sql = format!(
            "SELECT {keys}, COUNT(*) AS n FROM findings INDEXED BY findings_console{clause} \
             GROUP BY {keys} ORDER BY n DESC, 1 LIMIT ?"
        );
        args.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
        let mut stmt = self
            .conn
            .prepare_cached(&sql)
            .map_err(self.err("count findings per group"))?;
        let width = by.len();
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args), |r| {
                let mut keys = Vec::with_capacity(width);
                for i in 0..width {
                    keys.push(r.get::<_, String>(i)?);
                }
                let n: i64 = r.get(width)?;
                Ok((keys, u64::try_from(n).unwrap_or(0)))
            })
            .map_err(self.err("count findings per group"))?
            .collect::<Result<_, _>>()
            .map_err(self.err("count findings per group"))?;
        Ok(rows)
    }

    /// Archives or restores one finding by hand (`archived_by` is cleared: no rule did it).
    /// Returns the finding as stored now, or `None` when there is no such finding.
    pub fn set_archived(
        &self,
        id: &str,
        archived: bool,
    ) -> Result<Option<StoredFinding>, StoreError> {
        self.flush()?;
        let Some(mut stored) = self.load(id)? else {
            return Ok(None);
        };
        stored.finding.archived = archived;
        if !archived {
            stored.archived_by = None;
        }
        self.write(&stored)?;
        Ok(Some(stored))
    }

    /// Calls `each` with every stored finding (document order unspecified), for evaluations
    /// that need the whole document (a suppression rule's preview). Stops at the first error.
    pub fn for_each(&self, mut each: impl FnMut(&StoredFinding)) -> Result<(), StoreError> {
        self.flush()?;
        let mut stmt = self
            .conn
            .prepare("SELECT id, document, archived_by FROM findings")
            .map_err(self.err("read findings"))?;
        let mut rows = stmt.query([]).map_err(self.err("read findings"))?;
        while let Some(row) = rows.next().map_err(self.err("read findings"))? {
            let id: String = row.get(0).map_err(self.err("read findings"))?;
            let doc: String = row.get(1).map_err(self.err("read findings"))?;
            let by: Option<String> = row.get(2).map_err(self.err("read findings"))?;
            each(&self.parse(&id, &doc, by)?);
        }
        Ok(())
    }

    /// Archives every active finding `matches` says yes to, recording `rule` as what archived
    /// it; returns how many. One transaction.
    pub fn archive_matching(
        &self,
        rule: &str,
        mut matches: impl FnMut(&Finding) -> bool,
    ) -> Result<u64, StoreError> {
        let mut hits = Vec::new();
        self.for_each(|s| {
            if !s.finding.archived && matches(&s.finding) {
                hits.push(s.clone());
            }
        })?;
        self.conn
            .execute_batch("BEGIN")
            .map_err(self.err("begin a transaction"))?;
        for mut s in hits.iter().cloned() {
            s.finding.archived = true;
            s.archived_by = Some(rule.to_owned());
            if let Err(e) = self.write(&s) {
                let _ = self.conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
        self.conn
            .execute_batch("COMMIT")
            .map_err(self.err("commit archived findings"))?;
        Ok(hits.len() as u64)
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

/// Brings a store written by an older agent to this schema: the derived filter columns are
/// added and filled from each document, then the console's index is built.
fn migrate(conn: &Connection) -> Result<(), (&'static str, rusqlite::Error)> {
    let mut stmt = conn
        .prepare("SELECT name FROM pragma_table_info('findings')")
        .map_err(|e| ("read the schema", e))?;
    let columns: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| ("read the schema", e))?;
    drop(stmt);
    let missing: Vec<&&str> = DERIVED_COLUMNS
        .iter()
        .filter(|c| !columns.iter().any(|have| c.split(' ').next() == Some(have)))
        .collect();
    if !missing.is_empty() {
        conn.execute_batch("BEGIN")
            .map_err(|e| ("begin the schema upgrade", e))?;
        let upgrade = || -> Result<(), (&'static str, rusqlite::Error)> {
            for column in &missing {
                conn.execute_batch(&format!("ALTER TABLE findings ADD COLUMN {column}"))
                    .map_err(|e| ("add a filter column", e))?;
            }
            let mut read = conn
                .prepare("SELECT id, document FROM findings")
                .map_err(|e| ("read findings to upgrade", e))?;
            let rows: Vec<(String, String)> = read
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect())
                .map_err(|e| ("read findings to upgrade", e))?;
            for (id, doc) in rows {
                // A document that does not parse keeps empty columns; reading it reports it.
                let Ok(f) = serde_json::from_str::<Finding>(&doc) else {
                    continue;
                };
                let d = Derived::of(&f);
                conn.execute(
                    "UPDATE findings SET process_name = ?2, exe_path = ?3, exe_sha256 = ?4,
                         remote_ip = ?5, domain = ?6, mitre = ?7, resource_keys = ?8
                     WHERE id = ?1",
                    params![
                        id,
                        d.process_name,
                        d.exe_path,
                        d.exe_sha256,
                        d.remote_ip,
                        d.domain,
                        d.mitre,
                        d.resource_keys
                    ],
                )
                .map_err(|e| ("fill a filter column", e))?;
            }
            Ok(())
        };
        if let Err(e) = upgrade() {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e);
        }
        conn.execute_batch("COMMIT")
            .map_err(|e| ("commit the schema upgrade", e))?;
    }
    conn.execute_batch(INDEXES)
        .map_err(|e| ("create the console index", e))
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Err(error) = self.flush() {
            tracing::error!(%error, "findings not written at shutdown");
        }
    }
}

/// The newest [`vigil_crds::limits::ACTIONS_TAKEN`] actions.
fn bounded_actions(
    mut actions: Vec<vigil_crds::finding::ActionTaken>,
) -> Vec<vigil_crds::finding::ActionTaken> {
    let max = vigil_crds::limits::ACTIONS_TAKEN as usize;
    if actions.len() > max {
        actions.drain(..actions.len() - max);
    }
    actions
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
            actions_taken: Vec::new(),
        }
    }

    fn temp_db(name: &str) -> (tempfile::TempDir, PathBuf) {
        crate::scratch_path(&format!("vigil-store-{name}-"), "sub/findings.db")
    }

    #[test]
    fn repeats_merge_and_survive_reopening() {
        let (_scratch, path) = temp_db("merge");
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
        let (_scratch, path) = temp_db("filters");
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
    fn a_version_1_store_gains_the_console_columns_filled_from_its_documents() {
        let (_scratch, path) = temp_db("migrate");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut f = finding(
            "m1",
            "Execution:Runtime/SuspiciousTool",
            5.0,
            "2026-11-27T10:00:00Z",
        );
        f.context
            .additional
            .insert("mitreTechniques".into(), "T1046".into());
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE findings (id TEXT PRIMARY KEY, type TEXT NOT NULL,
                     severity REAL NOT NULL, resource TEXT NOT NULL,
                     archived INTEGER NOT NULL DEFAULT 0, archived_by TEXT,
                     count INTEGER NOT NULL, first_seen_ms INTEGER NOT NULL,
                     last_seen_ms INTEGER NOT NULL, document TEXT NOT NULL);
                 PRAGMA user_version = 1;",
            )
            .unwrap();
            conn.execute(
                "INSERT INTO findings VALUES ('m1', ?1, 5.0, 'node-a', 0, NULL, 1, 0, 0, ?2)",
                params![f.finding_type, serde_json::to_string(&f).unwrap()],
            )
            .unwrap();
        }
        let s = Store::open(&path, StoreLimits::default()).unwrap();
        let by_mitre = Filter {
            mitre: Some("t1046".into()),
            ..Default::default()
        };
        assert_eq!(s.count(&by_mitre).unwrap(), 1);
        let by_resource = Filter {
            resource_any: Some("node-a".into()),
            ..Default::default()
        };
        assert_eq!(s.list(&by_resource).unwrap()[0].finding.id, "m1");
        let version: i64 = s
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 2);
        drop(s);
        // Opening again changes nothing.
        let s = Store::open(&path, StoreLimits::default()).unwrap();
        assert_eq!(s.count(&by_mitre).unwrap(), 1);
    }

    #[test]
    fn retention_and_size_bounds_remove_the_oldest() {
        let (_scratch, path) = temp_db("bounds");
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
        let (_scratch, path) = temp_db("severity-bound");
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
        let (_scratch, path) = temp_db("storm");
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
                let (_scratch, path) = temp_db(&format!("prop-{case}"));
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
