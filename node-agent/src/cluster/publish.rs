//! Which findings become `RuntimeFinding` objects and Kubernetes Events, and when. Pure: detector
//! outcomes and a clock in, [`Action`]s out; the spool and delivery do the I/O.
//!
//! - A new finding is applied at once and, when its severity reaches the policy's threshold and
//!   it is not archived, announced by an Event on its pod (or on the node for host findings).
//! - Repeats of a published finding are coalesced: the object is re-applied with the latest
//!   `count` and `eventLastSeen` at most once per publishing frequency.
//! - Per-node caps bound new objects and Events per minute. A new finding over its cap waits
//!   (counted, logged) and is published, most severe first and oldest first among equals, as
//!   soon as the cap allows: a Critical finding goes out at the next free slot behind any number
//!   of Low ones. An Event over its cap is counted and dropped (the finding object still tells).
//! - Archived findings are applied with the suppression rule that archived them, and never
//!   announced.
//!
//! Namespaces: a pod's finding lives in the pod's namespace; a host finding lives in the agent's
//! namespace ([`PublishConfig::host_namespace`]), and its Event, being about the cluster-scoped
//! Node, goes to [`NODE_EVENT_NAMESPACE`] (`default`), where the kubelet and node problem
//! detectors put node Events too.

use std::{
    cmp::Reverse,
    collections::{BTreeMap, HashMap, VecDeque},
    fmt::Write as _,
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::{core::v1::ObjectReference, events::v1::Event},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time},
};
use kube::Resource as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use vigil_crds::{
    RuntimeFinding,
    agent_config::AgentConfig,
    finding::{Finding, SeverityLabel},
};

/// Namespace of Events about a Node (cluster-scoped objects have no namespace of their own).
pub const NODE_EVENT_NAMESPACE: &str = "default";
/// `reportingController` of the agent's Events.
pub const REPORTING_CONTROLLER: &str = "vigil.dev/node-agent";
/// `action` of the agent's Events.
pub const EVENT_ACTION: &str = "Detected";
/// Label with the finding's severity label, on findings and Events.
pub const SEVERITY_LABEL: &str = "vigil.dev/severity";
/// Label with the RuntimeFinding's name, on Events.
pub const FINDING_LABEL: &str = "vigil.dev/finding";
/// Label with the node name, on findings (same key as the heartbeat Lease's).
pub const NODE_LABEL: &str = vigil_crds::lease::NODE_LABEL;
/// Default cap on new RuntimeFinding objects per minute and node.
pub const DEFAULT_MAX_NEW_FINDINGS_PER_MINUTE: u32 = 120;
/// Default cap on Events per minute and node.
pub const DEFAULT_MAX_EVENTS_PER_MINUTE: u32 = 30;
/// Default number of findings the publisher remembers (four times the detector's aggregates).
pub const DEFAULT_MAX_TRACKED: usize = 16_384;
/// The window the per-minute caps count over.
const CAP_WINDOW: Duration = Duration::from_secs(60);
/// Over-cap warnings are logged at most this often.
const LOG_EVERY: Duration = Duration::from_secs(60);
/// Longest `note` the API server accepts (bytes).
const NOTE_MAX: usize = 1024;
/// Longest `reason` the API server accepts.
const REASON_MAX: usize = 128;
/// Longest label value.
const LABEL_VALUE_MAX: usize = 63;

/// How the agent publishes; from the policy (via [`AgentConfig`]) and the agent's own identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishConfig {
    /// Findings at or above this severity (and not archived) also become Events.
    pub event_min_severity: SeverityLabel,
    /// Repeats of one finding are published at most this often.
    pub publishing_frequency: Duration,
    /// Per-node cap on new RuntimeFinding objects per minute; 0 means no cap.
    pub max_new_findings_per_minute: u32,
    /// Per-node cap on Kubernetes Events per minute; 0 means no cap.
    pub max_events_per_minute: u32,
    /// Namespace of host findings: the agent's.
    pub host_namespace: String,
    /// This node's name: the `regarding` of Events about host findings.
    pub node: String,
    /// `reportingInstance` of Events: the agent pod's name.
    pub reporting_instance: String,
}

impl PublishConfig {
    /// The configuration the operator rendered for this agent, with the default caps. Host
    /// findings go to the heartbeat namespace, which is the agent's.
    pub fn from_agent_config(config: &AgentConfig, node: &str, reporting_instance: &str) -> Self {
        Self {
            event_min_severity: config.event_min_severity,
            publishing_frequency: Duration::from_secs(config.publishing_frequency_seconds),
            max_new_findings_per_minute: DEFAULT_MAX_NEW_FINDINGS_PER_MINUTE,
            max_events_per_minute: DEFAULT_MAX_EVENTS_PER_MINUTE,
            host_namespace: config.heartbeat.namespace.clone(),
            node: node.to_owned(),
            reporting_instance: reporting_instance.to_owned(),
        }
    }
}

/// What to send to the API server; kept in the spool until accepted.
#[expect(
    clippy::large_enum_variant,
    reason = "a few short-lived actions per finding; plain fields read like the objects they write"
)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "action")]
pub enum Action {
    /// Server-side apply of the RuntimeFinding (create or update in one, idempotent), then, when
    /// `archived_by` is set, of its status (archived, archivedBy, archivedAt).
    #[serde(rename_all = "camelCase")]
    Apply {
        /// Namespace of the object.
        namespace: String,
        /// Name of the object ([`Finding::object_name`]).
        name: String,
        /// The spec, as of the latest repeat.
        finding: Finding,
        /// The SuppressionRule that archived the finding, if one did.
        archived_by: Option<String>,
        /// When it was archived (the finding's `updatedAt` when the rule matched); set with
        /// `archived_by`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        archived_at: Option<Time>,
    },
    /// Creation of a Kubernetes Event (events.k8s.io/v1) about the pod or the node.
    Event {
        /// Namespace of the Event.
        namespace: String,
        /// The Event, with its deterministic name.
        event: Event,
    },
}

impl Action {
    /// Identity in the spool: a waiting action with the same key is replaced by a newer one.
    pub fn key(&self) -> String {
        match self {
            Self::Apply {
                namespace, name, ..
            } => format!("apply/{namespace}/{name}"),
            Self::Event { namespace, event } => format!(
                "event/{namespace}/{}",
                event.metadata.name.as_deref().unwrap_or_default()
            ),
        }
    }

    /// Severity of the finding behind the action (an Event's from its [`SEVERITY_LABEL`]; `Low`
    /// when absent): the spool evicts the lowest first.
    pub fn severity(&self) -> SeverityLabel {
        match self {
            Self::Apply { finding, .. } => finding.severity_label,
            Self::Event { event, .. } => event
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SEVERITY_LABEL))
                .and_then(|v| parse_severity(v))
                .unwrap_or(SeverityLabel::Low),
        }
    }

    /// `namespace/name` of the object the action writes, for logs.
    pub fn describe(&self) -> String {
        match self {
            Self::Apply {
                namespace, name, ..
            } => format!("RuntimeFinding {namespace}/{name}"),
            Self::Event { namespace, event } => format!(
                "Event {namespace}/{}",
                event.metadata.name.as_deref().unwrap_or_default()
            ),
        }
    }
}

fn parse_severity(s: &str) -> Option<SeverityLabel> {
    [
        SeverityLabel::Low,
        SeverityLabel::Medium,
        SeverityLabel::High,
        SeverityLabel::Critical,
    ]
    .into_iter()
    .find(|l| l.to_string() == s)
}

/// What the publisher counted since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishStats {
    /// New findings seen.
    pub new_findings: u64,
    /// Repeats seen.
    pub repeats: u64,
    /// Repeats folded into a later apply instead of published on their own.
    pub coalesced: u64,
    /// `Apply` actions emitted.
    pub applies: u64,
    /// `Event` actions emitted.
    pub events: u64,
    /// New findings that had to wait because the per-minute cap on new objects was reached
    /// (each counted once; they are published when the cap allows).
    pub over_cap_findings: u64,
    /// Events dropped because the per-minute cap on Events was reached.
    pub over_cap_events: u64,
    /// Findings waiting for the cap right now.
    pub waiting: u64,
    /// Findings forgotten with an update not yet published because more than the tracking limit
    /// were pending (the local findings store still has them; their next repeat publishes them).
    pub forgotten: u64,
}

/// Identity of a RuntimeFinding object.
type Key = (String, String);

/// What the publisher knows of one finding object.
#[derive(Debug)]
struct Tracked {
    /// Order of first appearance.
    seq: u64,
    /// Severity rank when first seen (Low 0 .. Critical 3): the order of the waiting queue.
    rank: u8,
    /// The latest finding not yet published; `None` once published (repeats bring it back).
    pending: Option<Finding>,
    /// Suppression rule and time of archival, sticky (the detector reports the rule once).
    archived: Option<(String, Time)>,
    /// When an Apply was last emitted; `None`: the object was never published.
    published: Option<Instant>,
    /// Announce it by an Event when it is first published (a new finding).
    wants_event: bool,
    /// The last outcome about it.
    last_seen: Instant,
}

/// Sliding one-minute window of what a cap counted.
#[derive(Debug, Default)]
struct Window(VecDeque<Instant>);

impl Window {
    /// Takes one unit if fewer than `cap` were taken in the last minute (`cap` 0: no cap).
    fn take(&mut self, cap: u32, now: Instant) -> bool {
        if cap == 0 {
            return true;
        }
        while self
            .0
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= CAP_WINDOW)
        {
            self.0.pop_front();
        }
        if self.0.len() >= cap as usize {
            return false;
        }
        self.0.push_back(now);
        true
    }
}

/// Turns detector outcomes into [`Action`]s, applying frequency and caps.
#[derive(Debug)]
pub struct Publisher {
    config: PublishConfig,
    tracked: HashMap<Key, Tracked>,
    /// Never-published findings waiting for the cap: most severe first, then by first appearance.
    waiting: BTreeMap<(Reverse<u8>, u64), Key>,
    /// Published findings with a pending update, by when it may go out.
    scheduled: BTreeMap<(Instant, u64), Key>,
    findings_window: Window,
    events_window: Window,
    next_seq: u64,
    max_tracked: usize,
    stats: PublishStats,
    last_cap_log: Option<Instant>,
    /// Counts since the last over-cap log line.
    unlogged_over_cap: (u64, u64),
}

impl Publisher {
    /// A publisher remembering up to [`DEFAULT_MAX_TRACKED`] findings.
    pub fn new(config: PublishConfig) -> Self {
        Self::with_max_tracked(config, DEFAULT_MAX_TRACKED)
    }

    /// A publisher remembering up to `max_tracked` findings (at least 1). Beyond it, findings
    /// with nothing pending are forgotten first (a later repeat is then published as soon as the
    /// cap allows, without an Event).
    pub fn with_max_tracked(config: PublishConfig, max_tracked: usize) -> Self {
        Self {
            config,
            tracked: HashMap::new(),
            waiting: BTreeMap::new(),
            scheduled: BTreeMap::new(),
            findings_window: Window::default(),
            events_window: Window::default(),
            next_seq: 0,
            max_tracked: max_tracked.max(1),
            stats: PublishStats::default(),
            last_cap_log: None,
            unlogged_over_cap: (0, 0),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &PublishConfig {
        &self.config
    }

    /// Replaces the configuration (live reload). Pending repeats are rescheduled with the new
    /// frequency; caps and threshold apply from now on.
    pub fn set_config(&mut self, config: PublishConfig) {
        let reschedule = config.publishing_frequency != self.config.publishing_frequency;
        self.config = config;
        if reschedule {
            let frequency = self.config.publishing_frequency;
            self.scheduled = self
                .tracked
                .iter()
                .filter(|(_, t)| t.pending.is_some())
                .filter_map(|(k, t)| t.published.map(|p| ((p + frequency, t.seq), k.clone())))
                .collect();
        }
    }

    /// Namespace of a finding's object: its pod's, or the agent's for host findings.
    pub fn namespace_for(&self, finding: &Finding) -> String {
        finding.resource.pod.as_ref().map_or_else(
            || self.config.host_namespace.clone(),
            |p| p.namespace.clone(),
        )
    }

    /// One detector outcome (new or repeat, maybe archived).
    ///
    /// New: applied now (subject to the cap; over it, it waits and is published oldest first as
    /// soon as the cap allows, here or in [`Publisher::due`]) and announced by an Event when its
    /// severity reaches the threshold and it is not archived (subject to the Event cap). Repeat:
    /// applied now when the last apply is at least a publishing frequency old, otherwise
    /// remembered and applied by [`Publisher::due`] when that time comes (the latest count wins).
    /// `archived_by` is the rule that archived it, sticky from the first outcome that names one.
    pub fn on_finding(
        &mut self,
        finding: &Finding,
        new: bool,
        archived_by: Option<&str>,
        now: Instant,
    ) -> Vec<Action> {
        // Findings waiting for the cap came first: they go first.
        let mut actions = self.release_waiting(now);
        let key = (self.namespace_for(finding), finding.object_name());
        if new {
            self.stats.new_findings += 1;
        } else {
            self.stats.repeats += 1;
        }
        let seq = self.next_seq;
        let t = self.tracked.entry(key.clone()).or_insert_with(|| Tracked {
            seq,
            rank: severity_rank(finding.severity_label),
            pending: None,
            archived: None,
            published: None,
            // A repeat of a finding this publisher never saw (it was forgotten, or the agent
            // restarted): the object may exist already; no Event, it is not news.
            wants_event: new,
            last_seen: now,
        });
        if t.seq == seq {
            self.next_seq += 1;
        }
        if t.pending.is_some() && t.published.is_some() {
            self.stats.coalesced += 1;
        }
        t.pending = Some(finding.clone());
        t.last_seen = now;
        if t.archived.is_none()
            && let Some(rule) = archived_by
        {
            t.archived = Some((rule.to_owned(), finding.updated_at.clone()));
        }
        let (seq, rank, published) = (t.seq, t.rank, t.published);
        match published {
            None => {
                if self.waiting.is_empty()
                    && self
                        .findings_window
                        .take(self.config.max_new_findings_per_minute, now)
                {
                    actions.extend(self.publish_first(&key, now));
                } else if let std::collections::btree_map::Entry::Vacant(slot) =
                    self.waiting.entry((Reverse(rank), seq))
                {
                    slot.insert(key);
                    self.stats.over_cap_findings += 1;
                    self.unlogged_over_cap.0 += 1;
                    self.log_over_cap(now);
                }
            }
            Some(published) => {
                let due = published + self.config.publishing_frequency;
                if now >= due {
                    self.scheduled.remove(&(due, seq));
                    actions.extend(self.apply(&key, now));
                } else {
                    self.scheduled.insert((due, seq), key);
                }
            }
        }
        self.stats.waiting = self.waiting.len() as u64;
        self.bound_tracked();
        actions
    }

    /// What is due at `now`: findings that waited for the cap, as far as it allows, and
    /// repeats whose publishing frequency has passed. Also forgets findings idle for a while.
    pub fn due(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = self.release_waiting(now);
        while let Some(entry) = self.scheduled.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            actions.extend(self.apply(&key, now));
        }
        self.forget_idle(now);
        self.stats.waiting = self.waiting.len() as u64;
        self.log_over_cap(now);
        actions
    }

    /// Everything still held, when the agent stops: findings waiting for the cap are published
    /// past it (their Events still under the Event cap), and repeats not yet due go out with
    /// their latest count. The caller spools these, so a restart delivers them instead of a
    /// stop losing them; the cap is a rate, and a stop is not a storm.
    pub fn flush(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        while let Some(entry) = self.waiting.first_entry() {
            let key = entry.remove();
            actions.extend(self.publish_first(&key, now));
        }
        for (_, key) in std::mem::take(&mut self.scheduled) {
            actions.extend(self.apply(&key, now));
        }
        self.stats.waiting = 0;
        actions
    }

    /// Counters so far.
    pub fn stats(&self) -> PublishStats {
        self.stats
    }

    /// Findings remembered.
    pub fn tracked(&self) -> usize {
        self.tracked.len()
    }

    /// Publishes waiting findings, most severe first, while the cap allows.
    fn release_waiting(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        while let Some(entry) = self.waiting.first_entry() {
            if !self
                .findings_window
                .take(self.config.max_new_findings_per_minute, now)
            {
                break;
            }
            let key = entry.remove();
            actions.extend(self.publish_first(&key, now));
        }
        actions
    }

    /// First publication of a finding: its Apply and, when it deserves one, its Event.
    fn publish_first(&mut self, key: &Key, now: Instant) -> Vec<Action> {
        let Some(t) = self.tracked.get_mut(key) else {
            return Vec::new();
        };
        let wants_event = std::mem::take(&mut t.wants_event);
        let mut actions: Vec<Action> = self.apply(key, now).into_iter().collect();
        let Some(Action::Apply {
            finding,
            archived_by,
            ..
        }) = actions.first()
        else {
            return actions;
        };
        let deserves = wants_event
            && archived_by.is_none()
            && !finding.archived
            && finding.severity_label >= self.config.event_min_severity;
        if deserves {
            if self
                .events_window
                .take(self.config.max_events_per_minute, now)
            {
                let event = event_for(&self.config, &key.0, &key.1, finding);
                self.stats.events += 1;
                actions.push(event);
            } else {
                self.stats.over_cap_events += 1;
                self.unlogged_over_cap.1 += 1;
                self.log_over_cap(now);
            }
        }
        actions
    }

    /// The Apply of a finding's pending update, if it has one.
    fn apply(&mut self, key: &Key, now: Instant) -> Option<Action> {
        let t = self.tracked.get_mut(key)?;
        let finding = t.pending.take()?;
        t.published = Some(now);
        self.stats.applies += 1;
        let (archived_by, archived_at) = t.archived.clone().unzip();
        Some(Action::Apply {
            namespace: key.0.clone(),
            name: key.1.clone(),
            finding,
            archived_by,
            archived_at,
        })
    }

    /// Warns about what went over a cap, at most once per [`LOG_EVERY`].
    fn log_over_cap(&mut self, now: Instant) {
        let (findings, events) = self.unlogged_over_cap;
        if findings == 0 && events == 0 {
            return;
        }
        if self
            .last_cap_log
            .is_some_and(|t| now.saturating_duration_since(t) < LOG_EVERY)
        {
            return;
        }
        self.last_cap_log = Some(now);
        self.unlogged_over_cap = (0, 0);
        tracing::warn!(
            findings_deferred = findings,
            events_dropped = events,
            waiting = self.waiting.len(),
            max_new_findings_per_minute = self.config.max_new_findings_per_minute,
            max_events_per_minute = self.config.max_events_per_minute,
            total_findings_deferred = self.stats.over_cap_findings,
            total_events_dropped = self.stats.over_cap_events,
            "publishing over the per-node cap: findings wait, events are dropped"
        );
    }

    /// Forgets published findings with nothing pending that were not seen for a while: twice the
    /// publishing frequency, at least an hour.
    fn forget_idle(&mut self, now: Instant) {
        let idle = (self.config.publishing_frequency * 2).max(Duration::from_secs(3600));
        self.tracked.retain(|_, t| {
            t.pending.is_some()
                || t.published.is_none()
                || now.saturating_duration_since(t.last_seen) < idle
        });
    }

    /// Keeps at most `max_tracked` findings: the idle ones go first (least recently seen), then,
    /// counted as forgotten, the least recently seen with a pending update.
    fn bound_tracked(&mut self) {
        if self.tracked.len() <= self.max_tracked {
            return;
        }
        // Down to 7/8 of the limit, so the sort is paid once per many insertions. Idle ones go
        // first, then among those with something pending the least severe.
        let target = self.max_tracked - self.max_tracked / 8;
        let mut order: Vec<(bool, u8, Instant, u64, Key)> = self
            .tracked
            .iter()
            .map(|(k, t)| (t.pending.is_some(), t.rank, t.last_seen, t.seq, k.clone()))
            .collect();
        order.sort();
        let excess = self.tracked.len().saturating_sub(target);
        let mut forgotten = 0;
        for (pending, rank, _, seq, key) in order.into_iter().take(excess) {
            if let Some(t) = self.tracked.remove(&key) {
                if let Some(p) = t.published {
                    self.scheduled
                        .remove(&(p + self.config.publishing_frequency, seq));
                }
                self.waiting.remove(&(Reverse(rank), seq));
            }
            if pending {
                forgotten += 1;
            }
        }
        self.stats.forgotten += forgotten;
        if forgotten > 0 {
            tracing::warn!(
                forgotten,
                forgotten_total = self.stats.forgotten,
                limit = self.max_tracked,
                "publisher tracking limit reached: findings with unpublished updates forgotten"
            );
        }
        self.stats.waiting = self.waiting.len() as u64;
    }
}

/// Low 0, Medium 1, High 2, Critical 3.
pub fn severity_rank(label: SeverityLabel) -> u8 {
    match label {
        SeverityLabel::Low => 0,
        SeverityLabel::Medium => 1,
        SeverityLabel::High => 2,
        SeverityLabel::Critical => 3,
    }
}

/// The RuntimeFinding object an [`Action::Apply`] writes: the spec, with labels for the node and
/// the severity (when they fit a label value).
pub fn runtime_finding_object(namespace: &str, name: &str, finding: &Finding) -> RuntimeFinding {
    let mut object = RuntimeFinding::new(name, finding.clone());
    object.metadata.namespace = Some(namespace.to_owned());
    let mut labels = BTreeMap::from([(
        SEVERITY_LABEL.to_owned(),
        finding.severity_label.to_string(),
    )]);
    if let Some(node) = finding
        .resource
        .host
        .node_name
        .as_deref()
        .filter(|n| is_label_value(n))
    {
        labels.insert(NODE_LABEL.to_owned(), node.to_owned());
    }
    object.metadata.labels = Some(labels);
    object
}

fn is_label_value(v: &str) -> bool {
    v.len() <= LABEL_VALUE_MAX
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && v.chars().next().is_none_or(|c| c.is_ascii_alphanumeric())
        && v.chars().last().is_none_or(|c| c.is_ascii_alphanumeric())
}

/// The Event announcing a finding: `Warning`, reason from the finding type, about its pod (or
/// this node), pointing at the RuntimeFinding, with a name that depends only on the finding so a
/// retried creation meets `409 AlreadyExists` instead of making a duplicate.
pub fn event_for(config: &PublishConfig, namespace: &str, name: &str, finding: &Finding) -> Action {
    let (event_namespace, regarding) = match &finding.resource.pod {
        Some(pod) => (
            pod.namespace.clone(),
            ObjectReference {
                api_version: Some("v1".to_owned()),
                kind: Some("Pod".to_owned()),
                name: Some(pod.name.clone()),
                namespace: Some(pod.namespace.clone()),
                uid: pod.uid.clone(),
                ..ObjectReference::default()
            },
        ),
        None => (
            NODE_EVENT_NAMESPACE.to_owned(),
            ObjectReference {
                api_version: Some("v1".to_owned()),
                kind: Some("Node".to_owned()),
                name: Some(
                    finding
                        .resource
                        .host
                        .node_name
                        .clone()
                        .unwrap_or_else(|| config.node.clone()),
                ),
                ..ObjectReference::default()
            },
        ),
    };
    let mut labels = BTreeMap::from([(
        SEVERITY_LABEL.to_owned(),
        finding.severity_label.to_string(),
    )]);
    if is_label_value(name) {
        labels.insert(FINDING_LABEL.to_owned(), name.to_owned());
    }
    let event = Event {
        metadata: ObjectMeta {
            name: Some(event_name(namespace, name, finding)),
            namespace: Some(event_namespace.clone()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        action: Some(EVENT_ACTION.to_owned()),
        event_time: Some(MicroTime(finding.event_first_seen.0)),
        note: Some(truncate(
            format!(
                "{} ({} severity; RuntimeFinding {namespace}/{name})",
                finding.title, finding.severity_label
            ),
            NOTE_MAX,
        )),
        reason: Some(event_reason(&finding.finding_type)),
        regarding: Some(regarding),
        related: Some(ObjectReference {
            api_version: Some(RuntimeFinding::api_version(&()).into_owned()),
            kind: Some(RuntimeFinding::kind(&()).into_owned()),
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..ObjectReference::default()
        }),
        reporting_controller: Some(REPORTING_CONTROLLER.to_owned()),
        reporting_instance: Some(config.reporting_instance.clone()),
        type_: Some("Warning".to_owned()),
        ..Event::default()
    };
    Action::Event {
        namespace: event_namespace,
        event,
    }
}

/// The Event recording an automated response action on a finding: about the same pod (or
/// node) as the finding's Event, reason `Response<Action>`, the action's result as the note,
/// named after the finding and the action's time so a retry does not duplicate it.
pub fn response_event(
    config: &PublishConfig,
    namespace: &str,
    name: &str,
    finding: &Finding,
    taken: &vigil_crds::finding::ActionTaken,
) -> Action {
    match event_for(config, namespace, name, finding) {
        Action::Event {
            namespace: event_namespace,
            mut event,
        } => {
            let action = serde_json::to_value(taken.action)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let mut hash = Sha256::new();
            for part in [
                event.metadata.name.as_deref().unwrap_or_default(),
                action.as_str(),
                &taken.time.0.to_string(),
            ] {
                hash.update(part.as_bytes());
                hash.update([0]);
            }
            let mut event_name = format!("{name}.r");
            for b in hash.finalize().iter().take(8) {
                let _ = write!(event_name, "{b:02x}");
            }
            event.metadata.name = Some(event_name);
            event.action = Some("Respond".to_owned());
            event.event_time = Some(MicroTime(taken.time.0));
            let mut reason = String::from("Response");
            let mut chars = action.chars();
            if let Some(first) = chars.next() {
                reason.push(first.to_ascii_uppercase());
                reason.extend(chars);
            }
            event.reason = Some(reason);
            event.note = Some(truncate(
                format!(
                    "{:?}: {} (RuntimeFinding {namespace}/{name})",
                    taken.outcome, taken.result
                ),
                NOTE_MAX,
            ));
            Action::Event {
                namespace: event_namespace,
                event,
            }
        }
        other => other,
    }
}

/// `<object name>.<16 hex>`: the hash covers the object and the finding's id and first
/// occurrence, so the same finding always gets the same Event name and a re-raised one (new first
/// occurrence) a new one.
pub fn event_name(namespace: &str, name: &str, finding: &Finding) -> String {
    let mut hash = Sha256::new();
    for part in [
        namespace,
        name,
        finding.id.as_str(),
        &finding.event_first_seen.0.to_string(),
    ] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    let mut out = format!("{name}.");
    for b in digest.iter().take(8) {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The Event reason for a finding type: its letters and digits, e.g.
/// `CryptoCurrency:Runtime/BitcoinTool` -> `CryptoCurrencyRuntimeBitcoinTool`.
pub fn event_reason(finding_type: &str) -> String {
    let reason: String = finding_type
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(REASON_MAX)
        .collect();
    if reason.is_empty() {
        "RuntimeFinding".to_owned()
    } else {
        reason
    }
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

#[cfg(test)]
pub(crate) mod tests {
    use k8s_openapi::jiff::Timestamp;
    use vigil_crds::finding::{
        ContainerDetails, HostDetails, PodDetails, Resource, ResourceRole, RuntimeContext,
    };

    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn at(s: &str) -> Time {
        Time(s.parse::<Timestamp>().unwrap())
    }

    /// A finding of `severity` in `pod` (`namespace/name`), or on the host.
    pub(crate) fn finding(id: &str, severity: f64, pod: Option<(&str, &str)>) -> Finding {
        let host = HostDetails {
            hostname: "node-a".into(),
            node_name: Some("node-a".into()),
            ..Default::default()
        };
        let pod = pod.map(|(ns, name)| PodDetails {
            name: name.into(),
            namespace: ns.into(),
            uid: Some(format!("uid-{name}")),
            ..Default::default()
        });
        let container = pod.as_ref().map(|_| ContainerDetails {
            name: "app".into(),
            id: "c0ffee".into(),
            ..Default::default()
        });
        Finding {
            id: id.into(),
            schema_version: "1.0".into(),
            finding_type: "Execution:Runtime/NewBinaryExecuted".into(),
            title: format!("finding {id}"),
            description: "d".into(),
            severity,
            severity_label: SeverityLabel::from_score(severity).unwrap(),
            created_at: at("2026-11-27T10:00:00Z"),
            updated_at: at("2026-11-27T10:00:00Z"),
            resource: Resource {
                display_name: Resource::display_name_for(&host, container.as_ref(), pod.as_ref()),
                host,
                container,
                pod,
            },
            resource_role: ResourceRole::Actor,
            count: 1,
            event_first_seen: at("2026-11-27T10:00:00Z"),
            event_last_seen: at("2026-11-27T10:00:00Z"),
            process: None,
            context: RuntimeContext::default(),
            network: None,
            dns: None,
            evidence: None,
            archived: false,
            actions_taken: Vec::new(),
        }
    }

    fn repeat(f: &Finding, count: u64) -> Finding {
        let mut f = f.clone();
        f.count = count;
        f.event_last_seen = Time(f.event_last_seen.0 + jiff_secs(count as i64));
        f.updated_at = f.event_last_seen.clone();
        f
    }

    fn jiff_secs(s: i64) -> k8s_openapi::jiff::SignedDuration {
        k8s_openapi::jiff::SignedDuration::from_secs(s)
    }

    pub(crate) fn config() -> PublishConfig {
        PublishConfig {
            event_min_severity: SeverityLabel::High,
            publishing_frequency: Duration::from_secs(300),
            max_new_findings_per_minute: 100,
            max_events_per_minute: 100,
            host_namespace: "vigil-system".into(),
            node: "node-a".into(),
            reporting_instance: "vigil-agent-x1".into(),
        }
    }

    /// `A ns/name count [archived_by]` or `E ns/name reason regarding-kind/name`, for tables.
    fn summary(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .map(|a| match a {
                Action::Apply {
                    namespace,
                    name,
                    finding,
                    archived_by,
                    ..
                } => format!(
                    "A {namespace}/{name} {}{}",
                    finding.count,
                    archived_by
                        .as_ref()
                        .map(|r| format!(" archived_by={r}"))
                        .unwrap_or_default()
                ),
                Action::Event { namespace, event } => {
                    let r = event.regarding.as_ref().unwrap();
                    format!(
                        "E {namespace} {} {}/{}",
                        event.reason.as_deref().unwrap(),
                        r.kind.as_deref().unwrap(),
                        r.name.as_deref().unwrap()
                    )
                }
            })
            .collect()
    }

    #[test]
    fn new_findings_apply_and_announce_above_threshold() {
        // (severity, archived_by, event threshold, want)
        let table: [(f64, Option<&str>, SeverityLabel, &[&str]); 6] = [
            (
                8.0,
                None,
                SeverityLabel::High,
                &[
                    "A shop/finding-f 1",
                    "E shop ExecutionRuntimeNewBinaryExecuted Pod/web-1",
                ],
            ),
            (
                9.5,
                None,
                SeverityLabel::High,
                &[
                    "A shop/finding-f 1",
                    "E shop ExecutionRuntimeNewBinaryExecuted Pod/web-1",
                ],
            ),
            (5.0, None, SeverityLabel::High, &["A shop/finding-f 1"]),
            (
                5.0,
                None,
                SeverityLabel::Medium,
                &[
                    "A shop/finding-f 1",
                    "E shop ExecutionRuntimeNewBinaryExecuted Pod/web-1",
                ],
            ),
            (
                2.0,
                None,
                SeverityLabel::Low,
                &[
                    "A shop/finding-f 1",
                    "E shop ExecutionRuntimeNewBinaryExecuted Pod/web-1",
                ],
            ),
            (
                9.5,
                Some("allow-ci"),
                SeverityLabel::Low,
                &["A shop/finding-f 1 archived_by=allow-ci"],
            ),
        ];
        for (severity, archived_by, threshold, want) in table {
            let mut p = Publisher::new(PublishConfig {
                event_min_severity: threshold,
                ..config()
            });
            let mut f = finding("f", severity, Some(("shop", "web-1")));
            f.archived = archived_by.is_some();
            let got = p.on_finding(&f, true, archived_by, Instant::now());
            assert_eq!(
                summary(&got),
                want,
                "severity {severity}, archived_by {archived_by:?}, threshold {threshold}"
            );
        }
    }

    #[test]
    fn archived_apply_carries_rule_and_time_on_every_update() {
        let mut p = Publisher::new(config());
        let t0 = Instant::now();
        let mut f = finding("f", 9.0, Some(("shop", "web-1")));
        f.archived = true;
        let first = p.on_finding(&f, true, Some("allow-ci"), t0);
        assert_eq!(summary(&first), ["A shop/finding-f 1 archived_by=allow-ci"]);
        // The detector names the rule once; the publisher keeps it.
        let mut again = repeat(&f, 2);
        again.archived = true;
        let later = p.on_finding(&again, false, None, t0 + Duration::from_secs(600));
        assert_eq!(summary(&later), ["A shop/finding-f 2 archived_by=allow-ci"]);
        let Action::Apply { archived_at, .. } = &later[0] else {
            panic!("{later:?}")
        };
        assert_eq!(archived_at.as_ref(), Some(&f.updated_at));
        assert_eq!(p.stats().events, 0);
    }

    #[test]
    fn repeats_are_coalesced_by_publishing_frequency() {
        let mut p = Publisher::new(config()); // 300 s
        let t0 = Instant::now();
        let f = finding("f", 5.0, Some(("shop", "web-1")));
        let s = |secs| t0 + Duration::from_secs(secs);
        // (seconds after t0, count of the repeat or 0 for a `due` call, want)
        let table: [(u64, u64, &[&str]); 9] = [
            (10, 2, &[]),
            (20, 3, &[]),
            (299, 0, &[]),
            (300, 0, &["A shop/finding-f 3"]),
            (301, 0, &[]),
            (400, 4, &[]),
            (599, 0, &[]),
            (600, 0, &["A shop/finding-f 4"]),
            // Quiet for longer than the frequency: the next repeat goes at once.
            (1000, 5, &["A shop/finding-f 5"]),
        ];
        assert_eq!(
            summary(&p.on_finding(&f, true, None, t0)),
            ["A shop/finding-f 1"]
        );
        for (secs, count, want) in table {
            let got = if count == 0 {
                p.due(s(secs))
            } else {
                p.on_finding(&repeat(&f, count), false, None, s(secs))
            };
            assert_eq!(summary(&got), want, "at {secs}s, count {count}");
        }
        let stats = p.stats();
        assert_eq!((stats.repeats, stats.applies, stats.coalesced), (4, 4, 1));
        assert_eq!(stats.events, 0);
    }

    #[test]
    fn frequency_change_reschedules_pending_repeats() {
        let mut p = Publisher::new(config()); // 300 s
        let t0 = Instant::now();
        let f = finding("f", 5.0, None);
        p.on_finding(&f, true, None, t0);
        assert!(
            p.on_finding(&repeat(&f, 2), false, None, t0 + MIN)
                .is_empty()
        );
        p.set_config(PublishConfig {
            publishing_frequency: Duration::from_secs(90),
            ..config()
        });
        assert!(p.due(t0 + Duration::from_secs(89)).is_empty());
        assert_eq!(
            summary(&p.due(t0 + Duration::from_secs(90))),
            ["A vigil-system/finding-f 2"]
        );
    }

    #[test]
    fn a_stop_flushes_held_findings_and_pending_repeats() {
        let mut p = Publisher::new(PublishConfig {
            max_new_findings_per_minute: 1,
            publishing_frequency: Duration::from_secs(3600),
            ..config()
        });
        let t0 = Instant::now();
        let (a, b) = (
            finding("a", 5.0, Some(("shop", "web-1"))),
            finding("b", 5.0, Some(("shop", "web-1"))),
        );
        assert_eq!(
            summary(&p.on_finding(&a, true, None, t0))[0],
            "A shop/finding-a 1"
        );
        assert!(
            p.on_finding(&b, true, None, t0).is_empty(),
            "b waits for the cap"
        );
        assert!(
            p.on_finding(&repeat(&a, 4), false, None, t0).is_empty(),
            "a's repeat waits"
        );
        let flushed = summary(&p.flush(t0));
        assert_eq!(flushed[0], "A shop/finding-b 1", "{flushed:?}");
        assert!(
            flushed.contains(&"A shop/finding-a 4".to_owned()),
            "{flushed:?}"
        );
        assert_eq!(p.stats().waiting, 0);
        assert!(p.flush(t0).is_empty(), "nothing twice");
    }

    #[test]
    fn caps_count_per_minute_and_over_cap_findings_publish_later() {
        let mut p = Publisher::new(PublishConfig {
            max_new_findings_per_minute: 2,
            max_events_per_minute: 1,
            ..config()
        });
        let t0 = Instant::now();
        let fs: Vec<Finding> = (0..4)
            .map(|i| finding(&format!("f{i}"), 8.0, Some(("shop", "web-1"))))
            .collect();
        let mut got = Vec::new();
        for (i, f) in fs.iter().enumerate() {
            got.push(summary(&p.on_finding(
                f,
                true,
                None,
                t0 + Duration::from_secs(i as u64),
            )));
        }
        let event = "E shop ExecutionRuntimeNewBinaryExecuted Pod/web-1";
        assert_eq!(got[0], ["A shop/finding-f0 1", event]);
        // Second object fits the cap; its Event does not.
        assert_eq!(got[1], ["A shop/finding-f1 1"]);
        assert!(got[2].is_empty() && got[3].is_empty(), "{got:?}");
        let stats = p.stats();
        assert_eq!(
            (
                stats.over_cap_findings,
                stats.over_cap_events,
                stats.waiting
            ),
            (2, 1, 2)
        );
        // A repeat of a waiting finding does not count twice and does not jump the queue.
        assert!(
            p.on_finding(
                &repeat(&fs[3], 2),
                false,
                None,
                t0 + Duration::from_secs(30)
            )
            .is_empty()
        );
        assert_eq!(p.stats().over_cap_findings, 2);
        // Still inside the minute of the first: nothing.
        assert!(p.due(t0 + Duration::from_secs(59)).is_empty());
        // The first slot frees at 60 s: the oldest waiting goes, with its Event (the Event cap
        // frees at 60 s too).
        assert_eq!(
            summary(&p.due(t0 + Duration::from_secs(60))),
            ["A shop/finding-f2 1", event]
        );
        // The second slot frees at 61 s: f3 with its latest count; the Event cap is spent.
        assert_eq!(
            summary(&p.due(t0 + Duration::from_secs(61))),
            ["A shop/finding-f3 2"]
        );
        let stats = p.stats();
        assert_eq!(
            (
                stats.over_cap_findings,
                stats.over_cap_events,
                stats.waiting,
                stats.events,
                stats.applies
            ),
            (2, 2, 0, 2, 4)
        );
    }

    #[test]
    fn waiting_findings_go_before_newer_ones() {
        let mut p = Publisher::new(PublishConfig {
            max_new_findings_per_minute: 1,
            ..config()
        });
        let t0 = Instant::now();
        let a = finding("a", 5.0, None);
        let b = finding("b", 5.0, None);
        let c = finding("c", 5.0, None);
        assert_eq!(p.on_finding(&a, true, None, t0).len(), 1);
        assert!(p.on_finding(&b, true, None, t0).is_empty());
        // When the cap allows one more, the new finding c waits behind b.
        assert_eq!(
            summary(&p.on_finding(&c, true, None, t0 + MIN)),
            ["A vigil-system/finding-b 1"]
        );
        assert_eq!(
            summary(&p.due(t0 + MIN * 2)),
            ["A vigil-system/finding-c 1"]
        );
    }

    #[test]
    fn a_critical_finding_goes_out_at_the_next_free_slot_behind_any_number_of_low_ones() {
        let mut p = Publisher::new(PublishConfig {
            max_new_findings_per_minute: 120,
            ..config()
        });
        let t0 = Instant::now();
        for i in 0..6_000 {
            p.on_finding(&finding(&format!("low{i}"), 2.0, None), true, None, t0);
        }
        assert_eq!(p.stats().waiting, 6_000 - 120);
        let critical = finding("critical", 9.5, None);
        assert!(
            p.on_finding(&critical, true, None, t0).is_empty(),
            "the cap is used up"
        );
        // The first slot to free up goes to the Critical finding, with its Event.
        let next = p.due(t0 + MIN);
        assert_eq!(
            summary(&next[..2]),
            [
                "A vigil-system/finding-critical 1",
                "E default ExecutionRuntimeNewBinaryExecuted Node/node-a"
            ]
        );
        // The Low ones follow, oldest first.
        assert_eq!(summary(&next[2..3]), ["A vigil-system/finding-low120 1"]);
    }

    #[test]
    fn cap_zero_means_no_cap() {
        let mut p = Publisher::new(PublishConfig {
            max_new_findings_per_minute: 0,
            max_events_per_minute: 0,
            ..config()
        });
        let t0 = Instant::now();
        for i in 0..500 {
            let f = finding(&format!("f{i}"), 9.0, None);
            assert_eq!(p.on_finding(&f, true, None, t0).len(), 2, "finding {i}");
        }
        assert_eq!(p.stats().over_cap_findings, 0);
    }

    #[test]
    fn namespace_and_regarding_follow_the_pod_or_the_node() {
        let mut p = Publisher::new(config());
        let t0 = Instant::now();
        let pod = p.on_finding(&finding("p", 9.0, Some(("shop", "web-1"))), true, None, t0);
        let host = p.on_finding(&finding("h", 9.0, None), true, None, t0);
        assert_eq!(
            summary(&pod),
            [
                "A shop/finding-p 1",
                "E shop ExecutionRuntimeNewBinaryExecuted Pod/web-1"
            ]
        );
        assert_eq!(
            summary(&host),
            [
                "A vigil-system/finding-h 1",
                "E default ExecutionRuntimeNewBinaryExecuted Node/node-a"
            ]
        );
        let Action::Event { event, .. } = &pod[1] else {
            panic!("{pod:?}")
        };
        let regarding = event.regarding.as_ref().unwrap();
        assert_eq!(regarding.namespace.as_deref(), Some("shop"));
        assert_eq!(regarding.uid.as_deref(), Some("uid-web-1"));
        let related = event.related.as_ref().unwrap();
        assert_eq!(
            (
                related.kind.as_deref(),
                related.name.as_deref(),
                related.namespace.as_deref()
            ),
            (Some("RuntimeFinding"), Some("finding-p"), Some("shop"))
        );
        assert_eq!(event.type_.as_deref(), Some("Warning"));
        assert_eq!(event.action.as_deref(), Some("Detected"));
        assert_eq!(
            event.reporting_controller.as_deref(),
            Some("vigil.dev/node-agent")
        );
        assert_eq!(event.reporting_instance.as_deref(), Some("vigil-agent-x1"));
        assert!(event.event_time.is_some());
        assert!(
            event.note.as_deref().unwrap().contains("finding-p"),
            "{:?}",
            event.note
        );
        assert_eq!(pod[1].severity(), SeverityLabel::Critical);
        // Node events: the Node has no uid here and no namespace.
        let Action::Event { event, .. } = &host[1] else {
            panic!("{host:?}")
        };
        assert_eq!(event.regarding.as_ref().unwrap().namespace, None);
        assert_eq!(event.metadata.namespace.as_deref(), Some("default"));
    }

    #[test]
    fn event_names_are_deterministic_and_distinct() {
        let f = finding("f", 9.0, Some(("shop", "web-1")));
        let a = event_name("shop", "finding-f", &f);
        assert_eq!(a, event_name("shop", "finding-f", &f));
        assert!(a.starts_with("finding-f."), "{a}");
        assert_eq!(a.len(), "finding-f.".len() + 16);
        let mut later = f.clone();
        later.event_first_seen = at("2026-11-28T10:00:00Z");
        assert_ne!(a, event_name("shop", "finding-f", &later));
        assert_ne!(a, event_name("other", "finding-f", &f));
        // Two publishers (e.g. before and after a restart) name the same Event the same.
        let one = Publisher::new(config()).on_finding(&f, true, None, Instant::now());
        let two = Publisher::new(config()).on_finding(&f, true, None, Instant::now());
        assert_eq!(one[1].key(), two[1].key());
        assert_eq!(one[1].key(), format!("event/shop/{a}"));
    }

    #[test]
    fn event_reason_and_note_fit_the_api_limits() {
        assert_eq!(
            event_reason("CryptoCurrency:Runtime/BitcoinTool"),
            "CryptoCurrencyRuntimeBitcoinTool"
        );
        assert_eq!(event_reason("::/"), "RuntimeFinding");
        assert_eq!(event_reason(&"A".repeat(300)).len(), 128);
        let mut f = finding("f", 9.0, None);
        f.title = "é".repeat(2000);
        let Action::Event { event, .. } = event_for(&config(), "ns", "finding-f", &f) else {
            panic!("not an event")
        };
        assert!(event.note.as_ref().unwrap().len() <= 1024);
    }

    #[test]
    fn unknown_repeat_is_published_without_event() {
        let mut p = Publisher::new(config());
        let f = finding("f", 9.0, None);
        let got = p.on_finding(&repeat(&f, 7), false, None, Instant::now());
        assert_eq!(summary(&got), ["A vigil-system/finding-f 7"]);
    }

    #[test]
    fn idle_findings_are_forgotten_and_the_limit_holds() {
        let mut p = Publisher::with_max_tracked(
            PublishConfig {
                max_new_findings_per_minute: 0,
                ..config()
            },
            16,
        );
        let t0 = Instant::now();
        for i in 0..40 {
            p.on_finding(&finding(&format!("f{i}"), 5.0, None), true, None, t0);
        }
        assert!(p.tracked() <= 16, "{}", p.tracked());
        // All were published, nothing pending: nothing counted as forgotten.
        assert_eq!(p.stats().forgotten, 0);
        p.due(t0 + Duration::from_secs(7200));
        assert_eq!(p.tracked(), 0);
    }

    #[test]
    fn over_limit_pending_findings_are_counted_as_forgotten() {
        let mut p = Publisher::with_max_tracked(
            PublishConfig {
                max_new_findings_per_minute: 1,
                ..config()
            },
            8,
        );
        let t0 = Instant::now();
        for i in 0..20 {
            p.on_finding(&finding(&format!("f{i}"), 5.0, None), true, None, t0);
        }
        // The published f0 (nothing pending) went first, uncounted; then the oldest waiting.
        let stats = p.stats();
        assert_eq!(p.tracked(), 8);
        assert_eq!((stats.forgotten, stats.waiting), (11, 8), "{stats:?}");
        // The newest waiting ones are still there and go out in order when the cap allows.
        assert_eq!(summary(&p.due(t0 + MIN)), ["A vigil-system/finding-f12 1"]);
    }

    #[test]
    fn actions_round_trip_through_json() {
        let mut p = Publisher::new(config());
        let mut f = finding("f", 9.0, Some(("shop", "web-1")));
        let mut actions = p.on_finding(&f, true, None, Instant::now());
        f.archived = true;
        actions.extend(p.on_finding(
            &repeat(&f, 2),
            false,
            Some("rule"),
            Instant::now() + Duration::from_secs(3600),
        ));
        assert_eq!(actions.len(), 3);
        for a in actions {
            let json = serde_json::to_string(&a).unwrap();
            let back: Action = serde_json::from_str(&json).unwrap();
            assert_eq!(back, a, "{json}");
            assert_eq!(back.severity(), SeverityLabel::Critical);
        }
    }

    #[test]
    fn object_carries_node_and_severity_labels() {
        let f = finding("f", 9.0, Some(("shop", "web-1")));
        let o = runtime_finding_object("shop", "finding-f", &f);
        let labels = o.metadata.labels.unwrap();
        assert_eq!(labels[SEVERITY_LABEL], "Critical");
        assert_eq!(labels[NODE_LABEL], "node-a");
        assert_eq!(o.metadata.namespace.as_deref(), Some("shop"));
        let mut long = f.clone();
        long.resource.host.node_name = Some("n".repeat(100));
        let o = runtime_finding_object("shop", "finding-f", &long);
        assert!(!o.metadata.labels.unwrap().contains_key(NODE_LABEL));
    }
}
