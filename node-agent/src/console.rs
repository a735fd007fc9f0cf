//! The console's host backend: the pages of `vigil-console` over this host's findings store,
//! its suppression-rules file and its threat-intel configuration (`node-agent console`).
//!
//! It lives here, not in the console crate, because the store is the agent's: the console reads
//! it through the same [`Store`] API the agent writes with (one schema, one set of queries), and
//! the console crate stays free of SQLite.

use std::{
    io::Write as _,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    sync::{Mutex, MutexGuard},
};

use k8s_openapi::jiff::{SignedDuration, Timestamp, tz::TimeZone};
use vigil_console::{
    Backend, BackendError, CoverageStatus, CreatedRule, DayCounts, FindingRecord, FindingsPage,
    ListInfo, NodeCoverage, NodeUsage, RuleInfo, Settings, SeverityCounts, Summary, TrustTarget,
    Usage,
    query::{self, FindingsQuery, Status},
    trust::{self, TrustedNet},
};
use vigil_crds::{
    finding::{HostDetails, SeverityLabel},
    suppression::CompiledRule,
    suppression_rule::{SuppressionRule, parse_rules_file},
};

use crate::{
    detect::host::{host_details, load_intel_config},
    store::{Filter, GroupBy, Sort, SortKey, Store, StoreError, StoredFinding},
};

/// Most top types and resources on the summary.
const TOP: u64 = 8;
/// Largest suppression-rules file the console reads or extends.
const MAX_RULES_FILE: u64 = 4 << 20;
/// Largest trusted-IP list file the console extends (a larger one is left to an editor).
const MAX_TRUSTED_FILE: u64 = 16 << 20;
/// When a host agent applies a changed trusted list.
const HOST_APPLIES: &str = "The agent reads it at start and on SIGHUP (systemctl reload vigil-agent, or kill -HUP the agent).";

/// The host backend.
pub struct HostBackend {
    store: Mutex<Store>,
    host: HostDetails,
    rules_file: Option<PathBuf>,
    intel_config: Option<PathBuf>,
    proc_root: PathBuf,
}

fn source(action: &'static str) -> impl FnOnce(StoreError) -> BackendError {
    move |e| BackendError::Source {
        action,
        source: Box::new(e),
    }
}

impl HostBackend {
    /// The backend over `store`; `rules_file` is the file `node-agent run --suppression-rules`
    /// reads (rules are appended there), `intel_config` the `--intel-config` file.
    pub fn new(store: Store, rules_file: Option<PathBuf>, intel_config: Option<PathBuf>) -> Self {
        Self {
            store: Mutex::new(store),
            host: host_details(),
            rules_file,
            intel_config,
            proc_root: PathBuf::from("/proc"),
        }
    }

    /// Looks for agents under another `/proc` (tests).
    pub fn with_proc_root(mut self, proc_root: PathBuf) -> Self {
        self.proc_root = proc_root;
        self
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        // A panic while holding the lock leaves the store usable: every write is one
        // transaction.
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn rules(&self) -> Result<(Vec<SuppressionRule>, Vec<CompiledRule>), BackendError> {
        let Some(path) = &self.rules_file else {
            return Ok((Vec::new(), Vec::new()));
        };
        let text = match read_bounded(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(BackendError::Source {
                    action: "read the suppression rules",
                    source: Box::new(e),
                });
            }
        };
        let file = path.display().to_string();
        let compiled =
            parse_rules_file(&file, &text).map_err(|e| BackendError::Rejected(e.to_string()))?;
        let mut rules = Vec::new();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value: serde_yaml::Value = serde::Deserialize::deserialize(doc)
                .map_err(|e| BackendError::Rejected(format!("{file}: {e}")))?;
            if value.is_null() {
                continue;
            }
            rules.push(
                serde_yaml::from_value(value)
                    .map_err(|e| BackendError::Rejected(format!("{file}: {e}")))?,
            );
        }
        Ok((rules, compiled))
    }

    /// The trusted-IP lists of the intel configuration (name, file).
    fn trusted_files(&self) -> Result<Vec<(String, PathBuf)>, BackendError> {
        let Some(path) = &self.intel_config else {
            return Err(BackendError::Unavailable(
                "this console was started without --intel-config FILE, so it knows no trusted lists (the intel configuration's trusted_ips)".into(),
            ));
        };
        let config = load_intel_config(path).map_err(|e| BackendError::Rejected(e.to_string()))?;
        Ok(config
            .trusted_ips
            .iter()
            .map(|l| (l.name.clone(), l.path.clone()))
            .collect())
    }

    /// What adding `net` to the file at `path` would do.
    fn trust_target(
        name: &str,
        path: &Path,
        net: &TrustedNet,
    ) -> Result<TrustTarget, BackendError> {
        let (text, creates) = match read_trusted(path) {
            Ok(t) => (t, false),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), true),
            Err(e) => {
                return Err(BackendError::Rejected(format!(
                    "trusted list {name}: {}: {e}",
                    path.display()
                )));
            }
        };
        Ok(TrustTarget {
            name: name.to_owned(),
            location: path.display().to_string(),
            entries: Some(trust::entries(&text)),
            already_listed: trust::listed(&text, net),
            creates,
            applies: HOST_APPLIES.into(),
        })
    }

    /// Running agents on this host: pid and start time.
    fn agents(&self) -> Vec<(u32, Option<Timestamp>)> {
        running_agents(&self.proc_root)
    }
}

fn read_trusted(path: &Path) -> std::io::Result<String> {
    let meta = std::fs::metadata(path)?;
    if meta.len() > MAX_TRUSTED_FILE {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB; edit it by hand",
            MAX_TRUSTED_FILE >> 20
        )));
    }
    std::fs::read_to_string(path)
}

fn read_bounded(path: &Path) -> std::io::Result<String> {
    let meta = std::fs::metadata(path)?;
    if meta.len() > MAX_RULES_FILE {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB",
            MAX_RULES_FILE >> 20
        )));
    }
    std::fs::read_to_string(path)
}

/// The store's filter for a console query.
pub fn filter_of(q: &FindingsQuery) -> Filter {
    let c = &q.criteria;
    Filter {
        severities: c.severity.clone(),
        finding_type: c.finding_type.clone(),
        resource_any: c.resource.clone(),
        process_name: c.process.clone(),
        executable: c.executable.clone(),
        sha256: c.sha256.clone(),
        remote: c.remote.clone(),
        mitre: c.mitre.clone(),
        since: c.since.as_ref().map(|t| t.at),
        until: c.until.as_ref().map(|t| t.at),
        archived: match c.status {
            Status::Active => Some(false),
            Status::Archived => Some(true),
            Status::All => None,
        },
        sort: Sort {
            key: match q.sort {
                query::SortKey::LastSeen => SortKey::LastSeen,
                query::SortKey::FirstSeen => SortKey::FirstSeen,
                query::SortKey::Severity => SortKey::Severity,
                query::SortKey::Count => SortKey::Count,
                query::SortKey::Type => SortKey::Type,
                query::SortKey::Resource => SortKey::Resource,
            },
            descending: q.descending,
        },
        offset: q.offset(),
        limit: Some(q.page_size),
        ..Default::default()
    }
}

fn record(s: StoredFinding) -> FindingRecord {
    FindingRecord {
        finding: s.finding,
        archived_by: s.archived_by,
    }
}

fn label_of(s: &str) -> Option<SeverityLabel> {
    match s {
        "Low" => Some(SeverityLabel::Low),
        "Medium" => Some(SeverityLabel::Medium),
        "High" => Some(SeverityLabel::High),
        "Critical" => Some(SeverityLabel::Critical),
        _ => None,
    }
}

impl Backend for HostBackend {
    fn describe(&self) -> (String, String) {
        ("host".into(), self.host.hostname.clone())
    }

    fn findings(&self, q: &FindingsQuery, _now: Timestamp) -> Result<FindingsPage, BackendError> {
        let filter = filter_of(q);
        let store = self.store();
        let total = store.count(&filter).map_err(source("count findings"))?;
        let rows = store.list(&filter).map_err(source("list findings"))?;
        Ok(FindingsPage {
            rows: rows.into_iter().map(record).collect(),
            total,
        })
    }

    fn finding(&self, id: &str) -> Result<Option<FindingRecord>, BackendError> {
        Ok(self
            .store()
            .get(id)
            .map_err(source("read a finding"))?
            .map(record))
    }

    fn set_archived(
        &self,
        id: &str,
        archived: bool,
    ) -> Result<Option<FindingRecord>, BackendError> {
        Ok(self
            .store()
            .set_archived(id, archived)
            .map_err(source("archive a finding"))?
            .map(record))
    }

    fn summary(&self, now: Timestamp, days: u32) -> Result<Summary, BackendError> {
        let store = self.store();
        let active = Filter {
            archived: Some(false),
            ..Default::default()
        };
        let mut by_severity = SeverityCounts::default();
        for (keys, n) in store
            .tally(&active, &[GroupBy::Label], 10)
            .map_err(source("count findings"))?
        {
            if let Some(l) = keys.first().and_then(|k| label_of(k)) {
                by_severity.add(l, n);
            }
        }
        let archived = store
            .count(&Filter {
                archived: Some(true),
                ..Default::default()
            })
            .map_err(source("count findings"))?;
        let today = now.to_zoned(TimeZone::UTC).date();
        let first = today
            .checked_sub(SignedDuration::from_hours(
                24 * i64::from(days.saturating_sub(1)),
            ))
            .unwrap_or(today);
        let since = first
            .to_zoned(TimeZone::UTC)
            .map(|z| z.timestamp())
            .unwrap_or(now);
        let recent = Filter {
            since: Some(since),
            ..active.clone()
        };
        let mut by_day: Vec<DayCounts> = (0..days)
            .filter_map(|i| {
                first
                    .checked_add(SignedDuration::from_hours(24 * i64::from(i)))
                    .ok()
            })
            .map(|d| DayCounts {
                day: d.to_string(),
                severities: SeverityCounts::default(),
            })
            .collect();
        for (keys, n) in store
            .tally(
                &recent,
                &[GroupBy::Day, GroupBy::Label],
                10 * u64::from(days),
            )
            .map_err(source("count findings per day"))?
        {
            if let (Some(day), Some(l)) = (keys.first(), keys.get(1).and_then(|k| label_of(k)))
                && let Some(slot) = by_day.iter_mut().find(|d| d.day == *day)
            {
                slot.severities.add(l, n);
            }
        }
        let pairs = |v: Vec<(Vec<String>, u64)>| {
            v.into_iter()
                .filter_map(|(k, n)| k.into_iter().next().map(|k| (k, n)))
                .collect()
        };
        Ok(Summary {
            by_severity,
            archived,
            by_day,
            top_types: pairs(
                store
                    .tally(&active, &[GroupBy::Type], TOP)
                    .map_err(source("count findings per type"))?,
            ),
            top_resources: pairs(
                store
                    .tally(&active, &[GroupBy::Resource], TOP)
                    .map_err(source("count findings per resource"))?,
            ),
        })
    }

    fn coverage(&self, _now: Timestamp) -> Result<Vec<NodeCoverage>, BackendError> {
        let agents = self.agents();
        let status = match agents.as_slice() {
            [] if !self.proc_root.join("self").exists() => CoverageStatus::Unknown {
                reason: format!("{} cannot be read", self.proc_root.display()),
            },
            [] => CoverageStatus::Unhealthy {
                reason: "no `node-agent run` process is running on this host".into(),
            },
            [_] => CoverageStatus::Healthy,
            many => CoverageStatus::Unhealthy {
                reason: format!(
                    "{} agents run at once (pids {}); they report every event twice",
                    many.len(),
                    many.iter()
                        .map(|a| a.0.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            },
        };
        Ok(vec![NodeCoverage {
            name: self.host.hostname.clone(),
            status,
            agent_version: Some(env!("CARGO_PKG_VERSION").to_owned()),
            kernel: self.host.kernel_version.clone(),
            active_hooks: None,
            events_per_second: None,
            drops: None,
            last_heartbeat: None,
            vcpus: Some(vcpus()),
        }])
    }

    fn usage(&self, now: Timestamp) -> Result<Usage, BackendError> {
        let month_start = now
            .to_zoned(TimeZone::UTC)
            .date()
            .first_of_month()
            .to_zoned(TimeZone::UTC)
            .map(|z| z.timestamp())
            .unwrap_or(now);
        // The earliest start of a running agent this month: the standalone agent keeps no
        // heartbeat history, so only the current run is known to have covered the host.
        let started = self
            .agents()
            .into_iter()
            .filter_map(|a| a.1)
            .min()
            .map(|s| s.max(month_start));
        let mut per_day = Vec::new();
        let mut hours = 0.0;
        if let Some(start) = started {
            let mut t = start;
            while t < now {
                let day = t.to_zoned(TimeZone::UTC).date();
                let next = day
                    .tomorrow()
                    .ok()
                    .and_then(|d| d.to_zoned(TimeZone::UTC).ok())
                    .map(|z| z.timestamp())
                    .unwrap_or(now)
                    .min(now);
                let h = (next.as_second() - t.as_second()) as f64 / 3600.0;
                hours += h;
                per_day.push((day.to_string(), h * f64::from(vcpus())));
                if next <= t {
                    break;
                }
                t = next;
            }
        }
        Ok(Usage {
            nodes: vec![NodeUsage {
                node: self.host.hostname.clone(),
                vcpus: vcpus(),
                hours,
                per_day,
            }],
            basis: match started {
                Some(s) => format!(
                    "This host's {} vCPUs times the hours the running agent has been up this month (since {}); the standalone agent keeps no heartbeat history, so earlier runs are not counted.",
                    vcpus(),
                    vigil_console::pages::time(&s)
                ),
                None => format!(
                    "No agent is running on this host, so no monitored hours are known this month ({} vCPUs).",
                    vcpus()
                ),
            },
        })
    }

    fn settings(&self) -> Result<Settings, BackendError> {
        let mut s = Settings::default();
        match self.intel_config.as_deref().map(load_intel_config) {
            None => s.threat_lists = builtin_lists(),
            Some(Err(e)) => s.problems.push(e.to_string()),
            Some(Ok(config)) => {
                if config.builtin {
                    s.threat_lists = builtin_lists();
                }
                for l in &config.lists {
                    s.threat_lists.push(file_list(
                        &l.name,
                        &l.path,
                        Some(format!("{:?}", l.format)),
                    ));
                }
                for l in &config.trusted_ips {
                    s.trusted_lists.push(file_list(&l.name, &l.path, None));
                }
                if let Err(e) = vigil_detection::loader::load(&config) {
                    s.problems.push(format!("threat intel does not load: {e}"));
                }
            }
        }
        match &self.rules_file {
            None => {
                s.rules_source = "No suppression-rules file: start the console with --suppression-rules FILE (the file `node-agent run --suppression-rules` reads) to see and add rules.".into();
            }
            Some(path) => {
                s.rules_source = format!(
                    "From {} (the agent reads it at start and on SIGHUP).",
                    path.display()
                );
                match self.rules() {
                    Err(e) => s.problems.push(e.to_string()),
                    Ok((rules, compiled)) => {
                        let mut matched = vec![0u64; compiled.len()];
                        self.store()
                            .for_each(|f| {
                                for (i, c) in compiled.iter().enumerate() {
                                    if c.matches(&f.finding).unwrap_or(false) {
                                        matched[i] += 1;
                                    }
                                }
                            })
                            .map_err(source("match rules against findings"))?;
                        s.suppression_rules = rules
                            .into_iter()
                            .zip(matched)
                            .map(|(rule, matched)| RuleInfo { rule, matched })
                            .collect();
                    }
                }
            }
        }
        let store = self.store();
        s.facts.push((
            "Findings database".into(),
            store.path().display().to_string(),
        ));
        s.facts.push((
            "Findings stored".into(),
            store.len().map_err(source("count findings"))?.to_string(),
        ));
        if let Some(p) = &self.intel_config {
            s.facts
                .push(("Threat-intel configuration".into(), p.display().to_string()));
        }
        Ok(s)
    }

    fn preview_suppression(&self, rule: &SuppressionRule) -> Result<u64, BackendError> {
        let name = rule.metadata.name.as_deref().unwrap_or("preview");
        let compiled = rule
            .spec
            .compile(name)
            .map_err(|e| BackendError::Rejected(e.to_string()))?;
        let mut n = 0;
        self.store()
            .for_each(|f| {
                if !f.finding.archived && compiled.matches(&f.finding).unwrap_or(false) {
                    n += 1;
                }
            })
            .map_err(source("preview a rule"))?;
        Ok(n)
    }

    fn create_suppression(&self, rule: &SuppressionRule) -> Result<CreatedRule, BackendError> {
        let Some(path) = &self.rules_file else {
            return Err(BackendError::Unavailable(
                "this console was started without --suppression-rules FILE, so there is no file to add the rule to".into(),
            ));
        };
        let name = rule
            .metadata
            .name
            .clone()
            .ok_or_else(|| BackendError::Rejected("the rule has no name".into()))?;
        let (existing, _) = self.rules()?;
        if existing
            .iter()
            .any(|r| r.metadata.name.as_deref() == Some(&name))
        {
            return Err(BackendError::Rejected(format!(
                "{}: a rule named {name} exists already; choose another name",
                path.display()
            )));
        }
        let compiled = rule
            .spec
            .compile(&name)
            .map_err(|e| BackendError::Rejected(e.to_string()))?;
        let yaml = serde_yaml::to_string(rule).map_err(|e| BackendError::Source {
            action: "render the rule",
            source: Box::new(e),
        })?;
        let io = |action| {
            move |e: std::io::Error| BackendError::Source {
                action,
                source: Box::new(e),
            }
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(io("open the suppression rules"))?;
        let doc = format!(
            "---\n# Added by the Vigil console on {}\n{yaml}",
            vigil_console::pages::time(&Timestamp::now())
        );
        file.write_all(doc.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io("append to the suppression rules"))?;
        let archived_now = self
            .store()
            .archive_matching(&name, |f| compiled.matches(f).unwrap_or(false))
            .map_err(source("archive matching findings"))?;
        tracing::info!(rule = %name, file = %path.display(), archived_now, "suppression rule added from the console");
        Ok(CreatedRule {
            name,
            location: path.display().to_string(),
            archived_now,
        })
    }

    fn trust_targets(&self, net: &TrustedNet) -> Result<Vec<TrustTarget>, BackendError> {
        self.trusted_files()?
            .iter()
            .map(|(name, path)| Self::trust_target(name, path, net))
            .collect()
    }

    fn add_trusted(
        &self,
        list: &str,
        net: &TrustedNet,
        note: &str,
    ) -> Result<TrustTarget, BackendError> {
        let files = self.trusted_files()?;
        let Some((name, path)) = files.iter().find(|(n, _)| n == list) else {
            return Err(BackendError::Rejected(format!(
                "no trusted list named {list:?} in the intel configuration; the lists are {}",
                files
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        let before = Self::trust_target(name, path, net)?;
        if before.already_listed {
            return Ok(before);
        }
        // Appending keeps what is there byte for byte (comments, order); a missing file is
        // created readable by the agent only.
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| BackendError::Source {
                action: "open the trusted list",
                source: Box::new(e),
            })?;
        let current = read_trusted(path).map_err(|e| BackendError::Source {
            action: "read the trusted list",
            source: Box::new(e),
        })?;
        let whole = trust::appended(&current, net, note);
        let tail = &whole[current.len()..];
        file.write_all(tail.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| BackendError::Source {
                action: "append to the trusted list",
                source: Box::new(e),
            })?;
        tracing::info!(list = %name, file = %path.display(), %net, "address added to a trusted list from the console");
        Self::trust_target(name, path, net)
    }
}

fn builtin_lists() -> Vec<ListInfo> {
    vigil_detection::loader::BUILTIN_LISTS
        .iter()
        .map(|l| ListInfo {
            name: l.name.to_owned(),
            source: format!("built in ({})", l.file),
            entries: None,
            error: None,
        })
        .chain(
            vigil_detection::loader::GUARDDUTY_TESTER_LISTS
                .iter()
                .map(|l| ListInfo {
                    name: l.name.to_owned(),
                    source: format!("built in (the GuardDuty tester's {})", l.domain),
                    entries: Some(1),
                    error: None,
                }),
        )
        .collect()
}

/// A configured list: its entries counted for a plain-text file, its read error if any.
fn file_list(name: &str, path: &Path, format: Option<String>) -> ListInfo {
    let source = match format {
        Some(f) => format!("{} ({f})", path.display()),
        None => path.display().to_string(),
    };
    let gz = path.extension().is_some_and(|e| e == "gz");
    let (entries, error) = match std::fs::metadata(path) {
        Err(e) => (None, Some(e.to_string())),
        Ok(_) if gz => (None, None),
        Ok(m) if m.len() > 256 << 20 => (None, None),
        Ok(_) => match std::fs::read_to_string(path) {
            Ok(t) => (
                Some(
                    t.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty() && !l.starts_with('#'))
                        .count() as u64,
                ),
                None,
            ),
            Err(e) => (None, Some(e.to_string())),
        },
    };
    ListInfo {
        name: name.to_owned(),
        source,
        entries,
        error,
    }
}

fn vcpus() -> u32 {
    std::thread::available_parallelism()
        .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
        .unwrap_or(1)
}

/// `node-agent run` processes under `proc_root` (`node-agent` alone runs too), with their start
/// time when it can be worked out.
fn running_agents(proc_root: &Path) -> Vec<(u32, Option<Timestamp>)> {
    let Ok(dir) = std::fs::read_dir(proc_root) else {
        return Vec::new();
    };
    let boot = boot_time(proc_root);
    let mut found = Vec::new();
    for entry in dir.flatten().take(1 << 20) {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .collect();
        let Some(program) = args.first() else {
            continue;
        };
        if !program.ends_with(b"node-agent") {
            continue;
        }
        let subcommand = args.iter().skip(1).find(|a| !a.starts_with(b"-"));
        if !matches!(subcommand, None | Some(&b"run")) {
            continue;
        }
        found.push((pid, start_time(&entry.path(), boot)));
    }
    found.sort();
    found
}

fn boot_time(proc_root: &Path) -> Option<i64> {
    let stat = std::fs::read_to_string(proc_root.join("stat")).ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

fn start_time(pid_dir: &Path, boot: Option<i64>) -> Option<Timestamp> {
    let stat = std::fs::read_to_string(pid_dir.join("stat")).ok()?;
    // Field 22 (starttime, clock ticks after boot), counted after the `(comm)` field.
    let after = stat.rsplit_once(") ")?.1;
    let ticks: i64 = after.split(' ').nth(19)?.parse().ok()?;
    // SAFETY: sysconf reads a constant of the running kernel.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz <= 0 {
        return None;
    }
    Timestamp::from_second(boot? + ticks / hz).ok()
}
