//! The edges of detection: reading what the pure detector needs at start (host facts, user
//! names, rules, suppression rules, threat-intel configuration) and the agent-side runner that
//! feeds events to the detector and findings to the store.

use std::{
    collections::{BTreeSet, HashMap},
    path::{Path, PathBuf},
    sync::Arc,
};

use vigil_crds::{
    finding::HostDetails,
    suppression::CompiledRule,
    suppression_rule::{RulesFileError, parse_rules_file},
};
use vigil_detection::{DgaModel, DgaModelError, IntelConfig, IntelError, LoadReport, SharedIntel};

use super::{Detector, DetectorConfig, Outcome, ProcessLookup, RuleError, RuleSet};
use crate::{
    event::{Clock, Event},
    store::{Store, StoreError, StoreLimits},
};

/// Detection could not be set up; each variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// An exec rules file is invalid.
    #[error(transparent)]
    Rules(#[from] RuleError),
    /// The suppression rules file could not be read.
    #[error("{path}: cannot read the suppression rules: {source}")]
    SuppressionRead {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The suppression rules file is invalid.
    #[error(transparent)]
    Suppression(#[from] RulesFileError),
    /// The threat-intel configuration could not be read.
    #[error("{path}: cannot read the threat-intel configuration: {source}")]
    IntelConfigRead {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The threat-intel configuration is invalid.
    #[error("{path}: {source}")]
    IntelConfig {
        /// The file.
        path: PathBuf,
        /// The parser error, with line and column.
        #[source]
        source: serde_yaml::Error,
    },
    /// A threat list could not be loaded.
    #[error(transparent)]
    Intel(#[from] IntelError),
    /// The DGA model is invalid.
    #[error(transparent)]
    Dga(#[from] DgaModelError),
    /// The findings store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How detection runs inside `node-agent run`.
#[derive(Debug, Clone, Default)]
pub struct DetectionOptions {
    /// Threat-intel configuration (YAML `IntelConfig`); built-in lists only when absent.
    pub intel_config: Option<PathBuf>,
    /// Threat-intel configuration given directly (cluster mode builds it from the policy);
    /// takes the place of `intel_config`.
    pub intel: Option<IntelConfig>,
    /// Extra exec rules: every `*.yaml` in this directory.
    pub rules_dir: Option<PathBuf>,
    /// Skip the built-in exec rules.
    pub no_builtin_rules: bool,
    /// Suppression rules (SuppressionRule YAML documents).
    pub suppression: Option<PathBuf>,
    /// The findings database; `None` keeps findings in memory only.
    pub database: Option<PathBuf>,
    /// Store bounds.
    pub limits: StoreLimits,
    /// Finding types never raised (`--disable-finding`).
    pub disabled_types: std::collections::BTreeSet<vigil_detection::FindingType>,
}

impl DetectionOptions {
    /// The threat-intel configuration in force: the one given, else the file's, else the
    /// built-in lists.
    pub fn intel_config(&self) -> Result<IntelConfig, SetupError> {
        match (&self.intel, &self.intel_config) {
            (Some(config), _) => Ok(config.clone()),
            (None, Some(path)) => load_intel_config(path),
            (None, None) => Ok(IntelConfig::default()),
        }
    }
}

/// `/etc/passwd` as uid -> name; an unreadable file gives an empty map (names are optional).
pub fn read_users(path: &Path) -> HashMap<u32, String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let uid = fields.nth(1)?.parse().ok()?;
            Some((uid, name.to_owned()))
        })
        .collect()
}

/// The setuid and setgid programs in the system program directories (`/usr/bin`, `/usr/sbin`,
/// `/bin`, `/sbin`, `/usr/lib/openssh`, and `/usr/libexec` with its subdirectories, as
/// [`super::system_program_dir`] knows them), by the path the kernel names them with (on a
/// merged-/usr system `/bin` is a link to `/usr/bin`: its entries are found under both). A
/// few thousand `lstat`s at start.
pub fn privileged_programs(root: &Path) -> BTreeSet<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    const SETID: u32 = 0o6000;
    const DIRS: [(&str, usize); 6] = [
        ("usr/bin", 0),
        ("usr/sbin", 0),
        ("bin", 0),
        ("sbin", 0),
        ("usr/lib/openssh", 0),
        ("usr/libexec", 2),
    ];
    fn walk(root: &Path, dir: &Path, depth: usize, out: &mut BTreeSet<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            return;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            let rel = dir.join(entry.file_name());
            if meta.is_dir() {
                if depth > 0 {
                    walk(root, &rel, depth - 1, out);
                }
            } else if meta.is_file() && meta.mode() & SETID != 0 {
                out.insert(Path::new("/").join(rel));
            }
        }
    }
    let mut out = BTreeSet::new();
    for (dir, depth) in DIRS {
        walk(root, Path::new(dir), depth, &mut out);
    }
    out
}

/// The host: name, kernel release and OS name, from /proc and /etc/os-release.
pub fn host_details() -> HostDetails {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_owned())
            .ok()
            .filter(|s| !s.is_empty())
    };
    let os_image = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_owned())
        });
    HostDetails {
        hostname: read("/proc/sys/kernel/hostname").unwrap_or_else(|| "localhost".into()),
        node_name: std::env::var("NODE_NAME").ok().filter(|n| !n.is_empty()),
        kernel_version: read("/proc/sys/kernel/osrelease"),
        os_image,
    }
}

/// Reads and compiles a suppression rules file.
pub fn load_suppression(path: &Path) -> Result<Vec<CompiledRule>, SetupError> {
    let text = std::fs::read_to_string(path).map_err(|source| SetupError::SuppressionRead {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(parse_rules_file(&path.display().to_string(), &text)?)
}

/// Reads a threat-intel configuration file.
pub fn load_intel_config(path: &Path) -> Result<IntelConfig, SetupError> {
    let text = std::fs::read_to_string(path).map_err(|source| SetupError::IntelConfigRead {
        path: path.to_path_buf(),
        source,
    })?;
    serde_yaml::from_str(&text).map_err(|source| SetupError::IntelConfig {
        path: path.to_path_buf(),
        source,
    })
}

/// Builds the detector from the options: intel, DGA model, rules and suppression.
pub fn build_detector(
    options: &DetectionOptions,
    clock: Clock,
    boot_id: String,
) -> Result<(Detector, LoadReport), SetupError> {
    let intel_config = options.intel_config()?;
    let (intel, report) = SharedIntel::load(&intel_config)?;
    crate::memory::release_builtin_lists();
    let rules = RuleSet::load(!options.no_builtin_rules, options.rules_dir.as_deref())?;
    let suppression = match &options.suppression {
        Some(path) => load_suppression(path)?,
        None => Vec::new(),
    };
    let config = DetectorConfig {
        host: host_details(),
        boot_id,
        users: read_users(Path::new("/etc/passwd")),
        privileged_programs: privileged_programs(Path::new("/")),
        disabled_types: options.disabled_types.clone(),
        ..DetectorConfig::default()
    };
    let hashing = std::time::Instant::now();
    let tools = crate::tool_hashes::installed_on_host(rules.program_names());
    tracing::debug!(
        programs = tools.by_digest.len(),
        skipped = tools.skipped,
        took_ms = hashing.elapsed().as_millis() as u64,
        "installed tools hashed"
    );
    let detector = Detector::new(
        Arc::new(intel),
        Some(DgaModel::builtin()?),
        rules,
        suppression,
        config,
        clock,
    )
    .with_tool_hashes(tools.by_digest);
    Ok((detector, report))
}

/// Upserts between two applications of the store bounds.
const ENFORCE_EVERY: u64 = 1_000;

/// The detector and the store as `node-agent run` uses them.
pub struct DetectionRunner {
    detector: Detector,
    options: DetectionOptions,
    store: Option<Store>,
    upserts: u64,
    store_errors: u64,
    /// Finding types to raise; `None` raises all.
    enabled_types: Option<std::collections::HashSet<String>>,
    /// Opt-in automated response, run on every finding once stored.
    responder: Option<crate::response::Responder>,
    /// Actions taken since the last [`Self::take_responses`] (cluster mode makes Events of
    /// them), newest [`MAX_RESPONSES`] kept.
    responses:
        std::collections::VecDeque<(vigil_crds::Finding, Vec<vigil_crds::finding::ActionTaken>)>,
}

/// Response records waiting for [`DetectionRunner::take_responses`] at most.
const MAX_RESPONSES: usize = 1024;

impl DetectionRunner {
    /// A runner; opens the store (applying its bounds once) when the options name one.
    pub fn new(detector: Detector, options: &DetectionOptions) -> Result<Self, SetupError> {
        let store = match &options.database {
            Some(path) => {
                let mut store = Store::open(path, options.limits)?;
                store.enforce_limits(k8s_openapi::jiff::Timestamp::now())?;
                Some(store)
            }
            None => None,
        };
        Ok(Self {
            detector,
            options: options.clone(),
            store,
            upserts: 0,
            store_errors: 0,
            enabled_types: None,
            responder: None,
            responses: std::collections::VecDeque::new(),
        })
    }

    /// The detector.
    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// The detector, to change its suppression rules or enricher.
    pub fn detector_mut(&mut self) -> &mut Detector {
        &mut self.detector
    }

    /// Runs automated response on every finding from now on.
    pub fn set_responder(&mut self, responder: crate::response::Responder) {
        self.responder = Some(responder);
    }

    /// The response engine, when one is set.
    pub fn responder_mut(&mut self) -> Option<&mut crate::response::Responder> {
        self.responder.as_mut()
    }

    /// The findings acted on since the last call, with the actions taken.
    pub fn take_responses(
        &mut self,
    ) -> Vec<(vigil_crds::Finding, Vec<vigil_crds::finding::ActionTaken>)> {
        self.responses.drain(..).collect()
    }

    /// Raise only these finding types (exact GuardDuty names); empty raises all.
    pub fn set_enabled_types(&mut self, types: &[String]) {
        self.enabled_types = (!types.is_empty()).then(|| types.iter().cloned().collect());
    }

    /// Reads the threat-intel configuration and the suppression rules again (SIGHUP). Either
    /// both load and replace the old ones, or nothing changes and the error says why.
    pub fn reload(&mut self) -> Result<LoadReport, SetupError> {
        let intel_config = self.options.intel_config()?;
        let suppression = match &self.options.suppression {
            Some(path) => load_suppression(path)?,
            None => Vec::new(),
        };
        let report = self.detector.intel().reload(&intel_config)?;
        crate::memory::release_builtin_lists();
        self.detector.set_suppression(suppression);
        if let Some(responder) = self.responder.as_mut()
            && let Err(error) = responder.reload_intel(&self.detector.intel().snapshot())
        {
            tracing::warn!(%error, "response: the kernel deny maps keep the previous addresses");
        }
        Ok(report)
    }

    /// Store writes that failed (logged; the agent keeps running).
    pub fn store_errors(&self) -> u64 {
        self.store_errors
    }

    /// What the store gave up (failed flushes, shed, evicted, expired), when there is one.
    pub fn store_stats(&self) -> Option<crate::store::StoreStats> {
        self.store.as_ref().map(crate::store::Store::stats)
    }

    /// Writes findings that have waited long enough in the store's batch (called by the run
    /// loop after every drain, events or not, so an idle host still gets them on disk).
    pub fn flush_if_due(&mut self) {
        if let Some(store) = &self.store
            && let Err(error) = store.flush_if_due()
        {
            self.store_errors += 1;
            tracing::warn!(%error, "cannot write findings");
        }
    }

    /// Runs detection on one event, stores what it raised and returns every outcome: the
    /// finding as stored (its count merged with what the store kept across restarts), `new`
    /// when the store had no such finding. [`Outcome::is_shown`] tells the ones to print.
    pub fn on_event(&mut self, event: &Event, lookup: &dyn ProcessLookup) -> Vec<Outcome> {
        let mut outcomes = self.detector.process(event, lookup);
        if let Some(enabled) = &self.enabled_types {
            outcomes.retain(|o| enabled.contains(&o.finding.finding_type));
        }
        for outcome in &mut outcomes {
            let new = match self.store.as_mut() {
                Some(store) => {
                    self.upserts += 1;
                    if self.upserts.is_multiple_of(ENFORCE_EVERY)
                        && let Err(error) =
                            store.enforce_limits(k8s_openapi::jiff::Timestamp::now())
                    {
                        tracing::warn!(%error, "cannot apply the findings store bounds");
                    }
                    // Every occurrence this event stands for, the repeats the kernel counted
                    // instead of sending included, reaches the stored count.
                    let occurrences = super::occurrences(event);
                    match store.upsert(
                        &outcome.finding,
                        occurrences,
                        outcome.archived_by.as_deref(),
                    ) {
                        Ok(up) => {
                            outcome.finding = up.stored.finding;
                            if outcome.archived_by.is_none() {
                                outcome.archived_by = up.stored.archived_by;
                            }
                            up.inserted
                        }
                        Err(error) => {
                            self.store_errors += 1;
                            tracing::warn!(%error, id = %outcome.finding.id, "cannot store a finding");
                            outcome.new
                        }
                    }
                }
                None => outcome.new,
            };
            outcome.new = new;
            if let Some(responder) = self.responder.as_mut()
                && outcome.archived_by.is_none()
            {
                let actions = responder.on_finding(&outcome.finding, std::time::Instant::now());
                if !actions.is_empty() {
                    if let Some(store) = self.store.as_mut()
                        && let Err(error) = store.add_actions(&outcome.finding.id, &actions)
                    {
                        self.store_errors += 1;
                        tracing::warn!(%error, id = %outcome.finding.id, "cannot record response actions");
                    }
                    outcome
                        .finding
                        .actions_taken
                        .extend(actions.iter().cloned());
                    if self.responses.len() >= MAX_RESPONSES {
                        self.responses.pop_front();
                    }
                    self.responses.push_back((outcome.finding.clone(), actions));
                }
            }
            if let Some(rule) = &outcome.archived_by {
                tracing::debug!(id = %outcome.finding.id, rule = %rule, "finding archived by a suppression rule");
            }
        }
        outcomes
    }
}
