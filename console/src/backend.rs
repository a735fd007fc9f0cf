//! The one data-source trait the pages are drawn from, and what it returns. The host backend
//! (the agent's SQLite store) lives in `node-agent`, which depends on this crate; a cluster
//! backend reads the custom resources.

use k8s_openapi::jiff::Timestamp;
use vigil_crds::{
    finding::{Finding, SeverityLabel},
    suppression_rule::SuppressionRule,
};

use crate::{query::FindingsQuery, trust::TrustedNet};

/// Why the backend could not answer.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The data source failed (a database error, an API error).
    #[error("{action}: {source}")]
    Source {
        /// What the backend was doing.
        action: &'static str,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The request cannot be carried out as asked (a rule name already taken, a rule that does
    /// not compile); the message names what is wrong.
    #[error("{0}")]
    Rejected(String),
    /// This backend cannot do that here (say, suppression rules on a host started without a
    /// rules file).
    #[error("not available: {0}")]
    Unavailable(String),
}

/// A finding with what the store knows about it.
#[derive(Debug, Clone, PartialEq)]
pub struct FindingRecord {
    /// The finding document.
    pub finding: Finding,
    /// The suppression rule that archived it, if one did.
    pub archived_by: Option<String>,
}

/// One page of a filtered listing.
#[derive(Debug, Clone, Default)]
pub struct FindingsPage {
    /// The findings of this page, in the query's order.
    pub rows: Vec<FindingRecord>,
    /// How many findings match the filter in all.
    pub total: u64,
}

/// Findings counted per severity label.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeverityCounts {
    /// Low.
    pub low: u64,
    /// Medium.
    pub medium: u64,
    /// High.
    pub high: u64,
    /// Critical.
    pub critical: u64,
}

impl SeverityCounts {
    /// Adds `n` to the label's count.
    pub fn add(&mut self, label: SeverityLabel, n: u64) {
        let slot = match label {
            SeverityLabel::Low => &mut self.low,
            SeverityLabel::Medium => &mut self.medium,
            SeverityLabel::High => &mut self.high,
            SeverityLabel::Critical => &mut self.critical,
        };
        *slot = slot.saturating_add(n);
    }

    /// The count of one label.
    pub fn get(&self, label: SeverityLabel) -> u64 {
        match label {
            SeverityLabel::Low => self.low,
            SeverityLabel::Medium => self.medium,
            SeverityLabel::High => self.high,
            SeverityLabel::Critical => self.critical,
        }
    }

    /// All labels together.
    pub fn total(&self) -> u64 {
        self.low
            .saturating_add(self.medium)
            .saturating_add(self.high)
            .saturating_add(self.critical)
    }
}

/// One day of the summary's chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayCounts {
    /// The day (UTC), `YYYY-MM-DD`.
    pub day: String,
    /// Findings last seen that day, per severity.
    pub severities: SeverityCounts,
}

/// What the summary page shows (active findings only).
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Active findings per severity.
    pub by_severity: SeverityCounts,
    /// Archived findings.
    pub archived: u64,
    /// The last days, oldest first, per severity.
    pub by_day: Vec<DayCounts>,
    /// The most frequent finding types and their counts, most first.
    pub top_types: Vec<(String, u64)>,
    /// The resources with the most findings, most first.
    pub top_resources: Vec<(String, u64)>,
}

/// Whether a node is monitored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoverageStatus {
    /// The agent runs and reports.
    Healthy,
    /// The agent is missing, failing or losing events.
    Unhealthy {
        /// Why.
        reason: String,
    },
    /// Nothing says either way.
    Unknown {
        /// Why not.
        reason: String,
    },
}

/// One node of the coverage page.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeCoverage {
    /// Node (or host) name.
    pub name: String,
    /// Its status.
    pub status: CoverageStatus,
    /// Agent version, when known.
    pub agent_version: Option<String>,
    /// Kernel release, when known.
    pub kernel: Option<String>,
    /// Hooks attached, when known.
    pub active_hooks: Option<u32>,
    /// Events per second, when known.
    pub events_per_second: Option<f64>,
    /// Events dropped, when known.
    pub drops: Option<u64>,
    /// Last heartbeat, when known.
    pub last_heartbeat: Option<Timestamp>,
    /// vCPUs of the node, when known.
    pub vcpus: Option<u32>,
}

/// One node's monitored vCPU-hours.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeUsage {
    /// Node name.
    pub node: String,
    /// vCPUs.
    pub vcpus: u32,
    /// Hours monitored this month.
    pub hours: f64,
    /// Monitored vCPU-hours per day this month, oldest first (`YYYY-MM-DD`).
    pub per_day: Vec<(String, f64)>,
}

impl NodeUsage {
    /// vCPUs times hours.
    pub fn vcpu_hours(&self) -> f64 {
        f64::from(self.vcpus) * self.hours
    }
}

/// The usage page.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    /// Per node.
    pub nodes: Vec<NodeUsage>,
    /// How the hours were worked out (shown beside the figures).
    pub basis: String,
}

/// A threat or trusted list in use.
#[derive(Debug, Clone, PartialEq)]
pub struct ListInfo {
    /// Its name.
    pub name: String,
    /// Where it comes from (a file, a URL, built in).
    pub source: String,
    /// Entries loaded, when known.
    pub entries: Option<u64>,
    /// Why it could not be loaded, if so.
    pub error: Option<String>,
}

/// A suppression rule with how many stored findings it matches.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleInfo {
    /// The rule.
    pub rule: SuppressionRule,
    /// Stored findings it matches now.
    pub matched: u64,
}

/// The settings page.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Threat lists.
    pub threat_lists: Vec<ListInfo>,
    /// Trusted lists.
    pub trusted_lists: Vec<ListInfo>,
    /// Suppression rules.
    pub suppression_rules: Vec<RuleInfo>,
    /// Where the rules come from (a file path, the cluster), and why none if so.
    pub rules_source: String,
    /// Problems reading the configuration, each naming the file and what is wrong.
    pub problems: Vec<String>,
    /// Other facts worth showing (name, value).
    pub facts: Vec<(String, String)>,
}

/// What creating a suppression rule did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedRule {
    /// The rule's name.
    pub name: String,
    /// Where it was written (a file, a custom resource).
    pub location: String,
    /// Active findings it archived at once.
    pub archived_now: u64,
}

/// A trusted list an address can be added to, and what adding one would do (or did).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustTarget {
    /// The list's name (what the form sends back).
    pub name: String,
    /// Where its entries live (a file, a ConfigMap key).
    pub location: String,
    /// Entries it holds now, when it could be read.
    pub entries: Option<u64>,
    /// It lists the address or block already, exactly.
    pub already_listed: bool,
    /// Adding creates the file, key or ConfigMap.
    pub creates: bool,
    /// When the agents apply a change to it.
    pub applies: String,
}

/// Where the pages get their data. Calls may block (a database query): the server runs them on
/// the blocking pool.
pub trait Backend: Send + Sync + 'static {
    /// `host` or `cluster`, and the name shown in the header.
    fn describe(&self) -> (String, String);

    /// One page of findings matching the query, and how many match in all.
    fn findings(&self, query: &FindingsQuery, now: Timestamp)
    -> Result<FindingsPage, BackendError>;

    /// The finding with this id, if any.
    fn finding(&self, id: &str) -> Result<Option<FindingRecord>, BackendError>;

    /// Archives or restores a finding; `None` when there is no such finding.
    fn set_archived(&self, id: &str, archived: bool)
    -> Result<Option<FindingRecord>, BackendError>;

    /// The summary as of `now` over the last `days` days.
    fn summary(&self, now: Timestamp, days: u32) -> Result<Summary, BackendError>;

    /// Every node and whether it is covered.
    fn coverage(&self, now: Timestamp) -> Result<Vec<NodeCoverage>, BackendError>;

    /// Monitored vCPU-hours this month as of `now`.
    fn usage(&self, now: Timestamp) -> Result<Usage, BackendError>;

    /// Lists and rules in use.
    fn settings(&self) -> Result<Settings, BackendError>;

    /// How many stored findings (active ones) the rule would archive.
    fn preview_suppression(&self, rule: &SuppressionRule) -> Result<u64, BackendError>;

    /// Adds the rule where the detector reads rules, and archives the active findings it
    /// matches.
    fn create_suppression(&self, rule: &SuppressionRule) -> Result<CreatedRule, BackendError>;

    /// The trusted lists `net` could be added to, each with what adding it would do.
    fn trust_targets(&self, net: &TrustedNet) -> Result<Vec<TrustTarget>, BackendError> {
        let _ = net;
        Ok(Vec::new())
    }

    /// Appends `net` to the trusted list named `list`, with `note` (where it came from) as a
    /// comment above it; returns the list as it is now.
    fn add_trusted(
        &self,
        list: &str,
        net: &TrustedNet,
        note: &str,
    ) -> Result<TrustTarget, BackendError> {
        let _ = (list, net, note);
        Err(BackendError::Unavailable(
            "this console has no trusted lists to add to".into(),
        ))
    }
}
