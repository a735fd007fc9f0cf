//! Cluster mode: the agent on a Kubernetes node. The sensor and detection are the standalone
//! agent's; this module adds what a cluster needs around them:
//! - [`pods`]: the pods of this node, to give findings their pod, workload and container context;
//! - [`publish`]: which findings become `RuntimeFinding` objects and Events, and when (pure);
//! - [`spool`]: the bounded on-disk queue of what the API server has not accepted yet;
//! - [`deliver`]: sending the spool, in order, through API outages;
//! - [`heartbeat`]: the per-node Lease the operator reads coverage from;
//! - [`config`]: the operator-rendered configuration and SuppressionRules, applied live.
//!
//! [`run`] wires them: background tasks (pod watch, rule watch, delivery, heartbeat) beside the
//! agent's run loop, which calls back into [`ClusterHooks`] for every finding and between
//! ring-buffer drains.

pub mod config;
pub mod deliver;
pub mod heartbeat;
pub mod pods;
pub mod publish;
pub mod spool;

use std::{
    io::Write,
    path::PathBuf,
    sync::{Arc, Mutex, PoisonError, RwLock},
    time::{Duration, Instant},
};

use vigil_crds::{agent_config::AgentConfig, suppression::CompiledRule};
use vigil_detection::FindingType;

use crate::{
    agent::{self, AgentError, Health, RunHooks, RunOptions},
    detect::{Outcome, host::DetectionRunner},
};

use self::{
    config::{ConfigChange, ConfigWatch},
    deliver::DeliveryStats,
    heartbeat::{Identity, Reported, SharedReport},
    pods::PodIndex,
    publish::{PublishConfig, Publisher},
    spool::{Spool, SpoolLimits},
};

/// How long a deleted pod's context is kept for findings that arrive late.
pub const POD_TOMBSTONE: Duration = Duration::from_secs(600);
/// How often the configuration files are looked at.
const CONFIG_POLL: Duration = Duration::from_secs(5);
/// How often the run loop refreshes what the heartbeat reports.
const REPORT_EVERY: Duration = Duration::from_secs(1);
/// How often due repeats are published.
const DUE_EVERY: Duration = Duration::from_millis(500);

/// What cluster mode needs beyond the standalone agent's options.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// This node's name (`NODE_NAME`, from the downward API).
    pub node: String,
    /// This agent pod's name (`POD_NAME`); the node name when the agent runs outside a pod.
    pub pod: String,
    /// The operator-rendered configuration (`/etc/vigil/agent.yaml`).
    pub config_path: PathBuf,
    /// Where the delivery spool lives (a host directory, so it survives restarts).
    pub spool_path: PathBuf,
    /// Spool bounds.
    pub spool_limits: SpoolLimits,
    /// Per-node caps; `None` keeps the defaults of [`PublishConfig::from_agent_config`].
    pub max_new_findings_per_minute: Option<u32>,
    /// See `max_new_findings_per_minute`.
    pub max_events_per_minute: Option<u32>,
}

/// Cluster mode could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// `NODE_NAME` is not set.
    #[error(
        "cluster mode needs the node name: set NODE_NAME (the DaemonSet passes spec.nodeName through the downward API) or --node-name"
    )]
    NoNodeName,
    /// The configuration file is unusable.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// No API server configuration (neither in-cluster nor KUBECONFIG).
    #[error(
        "cannot reach the Kubernetes API: {0} (in a pod the service account token is needed; outside, set KUBECONFIG)"
    )]
    Client(#[source] kube::Error),
    /// The spool could not be opened.
    #[error(transparent)]
    Spool(#[from] spool::SpoolError),
    /// The agent failed; the heartbeat says so.
    #[error(transparent)]
    Agent(#[from] AgentError),
    /// The policy's `spec.response` is unusable.
    #[error("spec.response of the policy: {0}")]
    Response(#[from] crate::response::ResponseConfigError),
}

/// The run loop's side of cluster mode.
pub struct ClusterHooks {
    client: kube::Client,
    options: ClusterOptions,
    publisher: Publisher,
    spool: Arc<Mutex<Spool>>,
    wake: Arc<tokio::sync::Notify>,
    delivery: Arc<DeliveryStats>,
    report: SharedReport,
    pods: Arc<RwLock<PodIndex>>,
    rules: tokio::sync::watch::Receiver<Vec<CompiledRule>>,
    heartbeat: tokio::sync::watch::Sender<vigil_crds::agent_config::HeartbeatConfig>,
    config: AgentConfig,
    /// Threat intel before the policy's lists are added (built-in, or the command line's).
    base_intel: vigil_detection::IntelConfig,
    watch: ConfigWatch,
    last_config_poll: Instant,
    last_report: Option<Instant>,
    last_due: Instant,
    /// Finding types the policy left out when the agent started, whose hooks were then not
    /// attached ([`types_left_out`]); a policy that enables one later raises it only after a
    /// restart (the operator's DaemonSet restarts its agents when the enabled types change).
    left_out_at_start: std::collections::BTreeSet<FindingType>,
}

/// The finding types a policy's `enabledTypes` leaves out (none when it lists none: all are
/// enabled). Names that are no finding type are ignored here (the operator validates them).
pub fn types_left_out(enabled: &[String]) -> std::collections::BTreeSet<FindingType> {
    if enabled.is_empty() {
        return std::collections::BTreeSet::new();
    }
    FindingType::ALL
        .into_iter()
        .filter(|t| !enabled.iter().any(|e| e == t.as_str()))
        .collect()
}

impl ClusterHooks {
    fn push(&mut self, actions: Vec<publish::Action>) {
        if actions.is_empty() {
            return;
        }
        let mut spool = self.spool.lock().unwrap_or_else(PoisonError::into_inner);
        for action in &actions {
            // The spool itself logs what a full spool evicts; the heartbeat reports the count.
            if let Err(error) = spool.push(action) {
                tracing::error!(%error, action = %action.describe(), "cannot spool a finding for the API server");
                if let Ok(mut r) = self.report.lock() {
                    r.last_error = Some(error.to_string());
                }
            }
        }
        drop(spool);
        self.wake.notify_one();
    }

    /// Events for the response actions taken, and the quarantine labels asked for.
    fn respond(&mut self, detection: &mut DetectionRunner) {
        let mut events = Vec::new();
        for (finding, actions) in detection.take_responses() {
            let namespace = self.publisher.namespace_for(&finding);
            let name = finding.object_name();
            for taken in &actions {
                events.push(publish::response_event(
                    self.publisher.config(),
                    &namespace,
                    &name,
                    &finding,
                    taken,
                ));
            }
        }
        self.push(events);
        let pods = detection
            .responder_mut()
            .map(crate::response::Responder::take_isolate_requests)
            .unwrap_or_default();
        for pod in pods {
            tokio::spawn(label_quarantined(self.client.clone(), pod));
        }
    }

    fn apply_config(&mut self, config: AgentConfig, detection: Option<&mut DetectionRunner>) {
        self.publisher
            .set_config(publish_config(&config, &self.options));
        let _ = self.heartbeat.send(config.heartbeat.clone());
        if let Some(d) = detection {
            d.set_enabled_types(&config.enabled_finding_types);
            reload_intel(d, config::intel_config(&self.base_intel, &config));
        }
        let enabled_later: Vec<&str> = self
            .left_out_at_start
            .iter()
            .filter(|t| !types_left_out(&config.enabled_finding_types).contains(t))
            .map(|t| t.as_str())
            .collect();
        if !enabled_later.is_empty() {
            tracing::warn!(
                types = ?enabled_later,
                "the policy enables finding types whose sensors were not attached at start: they raise once the agent restarts (the operator restarts its agents when the enabled types change)"
            );
        }
        if config.integrations != self.config.integrations {
            tracing::warn!(
                "the policy's integrations changed: the sinks the agent started with run on until it restarts"
            );
        }
        tracing::info!(policy = %config.policy, "applied the agent configuration");
        self.config = config;
    }
}

/// Labels a pod `vigil.dev/quarantined=true`; the operator then isolates it.
async fn label_quarantined(client: kube::Client, pod: crate::response::PodRef) {
    let api: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(client, &pod.namespace);
    let patch = serde_json::json!({"metadata": {"labels": {
        vigil_crds::response::QUARANTINE_LABEL: "true"
    }}});
    match api
        .patch(
            &pod.name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => {
            tracing::warn!(namespace = %pod.namespace, pod = %pod.name, "response: pod labelled for quarantine")
        }
        Err(error) => {
            tracing::error!(%error, namespace = %pod.namespace, pod = %pod.name, "response: cannot label the pod for quarantine")
        }
    }
}

/// The publisher's settings: the policy's, with the caps the command line overrides.
fn publish_config(config: &AgentConfig, cluster: &ClusterOptions) -> PublishConfig {
    let mut p = PublishConfig::from_agent_config(config, &cluster.node, &cluster.pod);
    if let Some(n) = cluster.max_new_findings_per_minute {
        p.max_new_findings_per_minute = n;
    }
    if let Some(n) = cluster.max_events_per_minute {
        p.max_events_per_minute = n;
    }
    p
}

/// Reloads threat intel off the loop's thread: the new snapshot is built beside the old one and
/// swapped in, so detection keeps running meanwhile.
fn reload_intel(detection: &DetectionRunner, intel_config: vigil_detection::IntelConfig) {
    let intel = detection.detector().intel().clone();
    tokio::task::spawn_blocking(move || match intel.reload(&intel_config) {
        Ok(report) => {
            crate::memory::release_builtin_lists();
            tracing::info!(
                lists = intel_config.lists.len(),
                malformed = report.malformed_total,
                "threat intel reloaded"
            )
        }
        Err(error) => {
            tracing::warn!(%error, "threat-intel reload failed; the previous lists stay")
        }
    });
}

impl RunHooks for ClusterHooks {
    fn gauges(&self) -> Vec<crate::metrics::Gauge> {
        let (depth, lost) = {
            let spool = self.spool.lock().unwrap_or_else(PoisonError::into_inner);
            (spool.len(), spool.lost_total())
        };
        let mut gauges = vec![
            (
                "spool_depth",
                "Actions waiting in the delivery spool for the API server.",
                depth as f64,
            ),
            (
                "spool_lost_total",
                "Actions the full spool evicted before delivery.",
                lost as f64,
            ),
            (
                "publisher_waiting",
                "New findings waiting for the per-node cap.",
                self.publisher.stats().waiting as f64,
            ),
        ];
        if let Some(at) = self.report.lock().ok().and_then(|r| r.last_renewal) {
            gauges.push((
                "heartbeat_age_seconds",
                "Seconds since the heartbeat Lease was last written.",
                at.elapsed().as_secs_f64(),
            ));
        }
        gauges
    }

    fn started(&mut self, detection: Option<&mut DetectionRunner>) {
        let Some(d) = detection else { return };
        d.set_enabled_types(&self.config.enabled_finding_types);
        let pods = self.pods.clone();
        d.detector_mut()
            .set_enricher(Box::new(move |resource, pod_uid| {
                let index = pods.read().unwrap_or_else(PoisonError::into_inner);
                pods::enrich_resource(&index, resource, pod_uid);
            }));
        if self.rules.has_changed().unwrap_or(false) {
            d.detector_mut()
                .set_suppression(self.rules.borrow_and_update().clone());
        }
        if let Ok(mut r) = self.report.lock() {
            r.sensors_running = true;
        }
    }

    fn on_outcome(&mut self, outcome: &Outcome) {
        let actions = self.publisher.on_finding(
            &outcome.finding,
            outcome.new,
            outcome.archived_by.as_deref(),
            Instant::now(),
        );
        self.push(actions);
    }

    fn tick(&mut self, health: &dyn Fn() -> Health, mut detection: Option<&mut DetectionRunner>) {
        let now = Instant::now();
        if let Some(d) = detection.as_deref_mut() {
            self.respond(d);
        }
        if now.duration_since(self.last_due) >= DUE_EVERY {
            self.last_due = now;
            let actions = self.publisher.due(now);
            self.push(actions);
        }
        if self.rules.has_changed().unwrap_or(false)
            && let Some(d) = detection.as_deref_mut()
        {
            d.detector_mut()
                .set_suppression(self.rules.borrow_and_update().clone());
        }
        if now.duration_since(self.last_config_poll) >= CONFIG_POLL {
            self.last_config_poll = now;
            match self.watch.poll() {
                Some(Ok(ConfigChange::Config(config))) => self.apply_config(config, detection),
                Some(Ok(ConfigChange::Lists(config))) => {
                    if let Some(d) = detection {
                        reload_intel(d, config::intel_config(&self.base_intel, &config));
                    }
                }
                Some(Err(error)) => {
                    tracing::warn!(%error, "configuration change not applied; the previous one stays");
                    if let Ok(mut r) = self.report.lock() {
                        r.last_error = Some(error.to_string());
                    }
                }
                None => {}
            }
        }
        if self
            .last_report
            .is_none_or(|t| now.duration_since(t) >= REPORT_EVERY)
        {
            self.last_report = Some(now);
            let current = health();
            let (pending, lost) = {
                let spool = self.spool.lock().unwrap_or_else(PoisonError::into_inner);
                (spool.len(), spool.lost_total())
            };
            let delivery = self.delivery.snapshot();
            let publishing =
                deliver::publishing_health(&self.publisher.stats(), &delivery, pending, lost);
            if let Ok(mut r) = self.report.lock() {
                r.health = Some(current);
                r.publishing = publishing;
                if let Some(e) = delivery.last_error {
                    r.last_error = Some(e);
                }
            }
        }
    }
}

/// The node's identity from the environment the DaemonSet gives (`NODE_NAME`, `POD_NAME`).
pub fn identity_from_env(
    node: Option<String>,
    pod: Option<String>,
) -> Result<(String, String), ClusterError> {
    let node = node
        .or_else(|| std::env::var("NODE_NAME").ok())
        .filter(|n| !n.is_empty())
        .ok_or(ClusterError::NoNodeName)?;
    let pod = pod
        .or_else(|| std::env::var("POD_NAME").ok())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| node.clone());
    Ok((node, pod))
}

/// Writes `message` where the kubelet reads a container's termination message, when the agent
/// runs in a container that has one.
fn write_termination_message(message: &str) {
    let path = std::path::Path::new("/dev/termination-log");
    if path.exists() {
        let _ = std::fs::write(path, message);
    }
}

/// Runs the agent in cluster mode until the deadline or a signal.
pub async fn run<W: Write>(
    options: &RunOptions,
    cluster: ClusterOptions,
    out: &mut W,
) -> Result<Health, ClusterError> {
    let config = config::read_config(&cluster.config_path)?;
    // The policy's lists join the command line's threat intel from the start.
    let mut options = options.clone();
    // Hooks that only the types the policy leaves out would read are not attached, when records
    // become findings only (issue 15: programs only for what the active rules need).
    let left_out_at_start = if options.sensor.findings_only {
        types_left_out(&config.enabled_finding_types)
    } else {
        std::collections::BTreeSet::new()
    };
    options
        .sensor
        .disabled_findings
        .extend(left_out_at_start.iter().copied());
    // The policy's automated response, unless the command line set one.
    if options.response.is_none()
        && let Some(spec) = &config.response
    {
        options.response = Some(crate::response::ResponseConfig::from_spec(spec)?);
    }
    let base_intel = match &mut options.detection {
        Some(d) => {
            let base = d.intel_config().map_err(AgentError::from)?;
            d.intel = Some(config::intel_config(&base, &config));
            base
        }
        None => vigil_detection::IntelConfig::default(),
    };
    let client = kube::Client::try_default()
        .await
        .map_err(ClusterError::Client)?;
    let identity = Identity {
        node: cluster.node.clone(),
        pod: cluster.pod.clone(),
        policy: config.policy.clone(),
    };
    let report: SharedReport = Arc::new(Mutex::new(Reported::default()));
    let spool = match Spool::open(&cluster.spool_path, cluster.spool_limits) {
        Ok(s) => Arc::new(Mutex::new(s)),
        Err(error) => {
            fail(&client, &identity, &config, &error.to_string()).await;
            return Err(error.into());
        }
    };
    tracing::info!(
        node = %cluster.node,
        policy = %config.policy,
        spooled = spool.lock().map(|s| s.len()).unwrap_or(0),
        "cluster mode"
    );
    let wake = Arc::new(tokio::sync::Notify::new());
    let delivery = Arc::new(DeliveryStats::default());
    let pods = Arc::new(RwLock::new(PodIndex::new(POD_TOMBSTONE)));
    let (rules_tx, rules_rx) = tokio::sync::watch::channel(Vec::new());
    let (heartbeat_tx, heartbeat_rx) = tokio::sync::watch::channel(config.heartbeat.clone());

    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(pods::watch_pods(
        client.clone(),
        cluster.node.clone(),
        pods.clone(),
    ));
    tasks.spawn(config::watch_suppression_rules(client.clone(), rules_tx));
    tasks.spawn({
        let (client, spool, wake, delivery) = (
            client.clone(),
            spool.clone(),
            wake.clone(),
            delivery.clone(),
        );
        async move {
            deliver::run(client, spool, wake, delivery, heartbeat::FIELD_MANAGER).await;
        }
    });
    // Anything left from before a restart goes out first.
    wake.notify_one();

    let mut hooks = ClusterHooks {
        client: client.clone(),
        publisher: Publisher::new(publish_config(&config, &cluster)),
        watch: ConfigWatch::new(cluster.config_path.clone(), &config),
        options: cluster,
        spool,
        wake,
        delivery,
        report: report.clone(),
        pods,
        rules: rules_rx,
        heartbeat: heartbeat_tx,
        config,
        base_intel,
        last_config_poll: Instant::now(),
        last_report: None,
        last_due: Instant::now(),
        left_out_at_start,
    };

    // The heartbeat starts once the sensor is up (or reports why it is not).
    let result = {
        let beat = tasks.spawn(heartbeat::run(
            client.clone(),
            identity.clone(),
            report.clone(),
            heartbeat_rx,
        ));
        let result = agent::run_with(&options, out, &mut hooks).await;
        beat.abort();
        result
    };
    match result {
        Ok(health) => {
            // A last look, so findings of the final events are spooled and a final beat tells
            // the operator the numbers at exit.
            hooks.tick(&|| health.clone(), None);
            // What the caps or the publishing frequency still hold goes to the spool: the next
            // start delivers it.
            let held = hooks.publisher.flush(Instant::now());
            if !held.is_empty() {
                tracing::info!(
                    actions = held.len(),
                    "spooled held findings for the next start"
                );
            }
            hooks.push(held);
            tasks.abort_all();
            Ok(health)
        }
        Err(error) => {
            fail(&client, &identity, &hooks.config, &error.to_string()).await;
            tasks.abort_all();
            Err(error.into())
        }
    }
}

/// Tells the operator (Lease) and the kubelet (termination message) why the agent stops.
async fn fail(client: &kube::Client, identity: &Identity, config: &AgentConfig, error: &str) {
    write_termination_message(error);
    heartbeat::report_failure(
        client,
        identity,
        &config.heartbeat,
        error,
        Duration::from_secs(10),
    )
    .await;
}
