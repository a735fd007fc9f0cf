//! `vigil-operator`: runs the policy and suppression controllers, `/metrics` and `/healthz`.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use futures::{Stream, StreamExt, future::Either, stream};
use k8s_openapi::{
    api::{
        apps::v1::DaemonSet,
        coordination::v1::Lease,
        core::v1::{Node, Pod},
    },
    jiff::{SignedDuration, Timestamp},
};
use kube::{
    Api, Client,
    core::DeserializeGuard,
    runtime::{
        Controller, WatchStreamExt,
        controller::Config as ControllerConfig,
        events::{Recorder, Reporter},
        reflector,
        reflector::ObjectRef,
        watcher,
    },
};
use tracing::{error, info, warn};
use vigil_crds::{
    NodeCoverage, RuntimeFinding, RuntimeMonitoringPolicy, SuppressionRule,
    lease::{COMPONENT_LABEL, HEARTBEAT_COMPONENT},
};
use vigil_operator::{
    Context, Metrics, Stores, facts,
    finding_gc::{self, GcLimits},
    health::{Health, Phase},
    http,
    image_policy::{self, ImageAllowList},
    leader::Elector,
    policy_controller,
    render::{AGENT_APP, FIELD_MANAGER},
    suppression_controller, triggers,
};

/// Time in-flight reconciles get after SIGTERM or Ctrl+C.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

async fn shutdown_signal() {
    let ctrl_c = Box::pin(async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            warn!(%error, "cannot listen for Ctrl+C");
            futures::future::pending::<()>().await;
        }
    });
    let term = Box::pin(async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(error) => {
                warn!(%error, "cannot listen for SIGTERM");
                futures::future::pending::<()>().await;
            }
        }
    });
    futures::future::select(ctrl_c, term).await;
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum MetricsAuthMode {
    None,
    Kubernetes,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// The Vigil operator.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Namespace of the operator, the agents and their heartbeat Leases.
    #[arg(long, env = "POD_NAMESPACE", default_value = "vigil-system")]
    namespace: String,
    /// Log format; the filter comes from RUST_LOG (default `info`).
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Address of the /metrics, /healthz and /livez endpoints.
    #[arg(long, default_value = "0.0.0.0:8080")]
    http_addr: SocketAddr,
    /// Who may read /metrics: `none` (anyone who reaches the address) or `kubernetes` (a bearer
    /// token the API server authenticates and authorizes for `get /metrics`).
    #[arg(long, value_enum, default_value = "none")]
    metrics_auth: MetricsAuthMode,
    /// Hold a Lease before running the controllers (needed with more than one replica).
    #[arg(long)]
    leader_election: bool,
    /// Name of the leader election Lease.
    #[arg(long, default_value = "vigil-operator-leader")]
    leader_lease: String,
    /// Identity in the leader Lease and in Events, usually the pod name.
    #[arg(long, env = "POD_NAME", default_value = "vigil-operator")]
    identity: String,
    /// Validity of the leader Lease, in seconds.
    #[arg(long, default_value_t = 15)]
    lease_duration_seconds: i32,
    /// Agent images policies may run: a whole reference, a repository (any tag or digest of
    /// it), a registry path ending in `/`, or `*` for any. Repeat the flag, or separate with
    /// commas. A policy naming another image is refused (condition Degraded, reason
    /// ImageNotAllowed) and nothing is rolled out for it.
    #[arg(
        long = "allowed-agent-image",
        env = "VIGIL_ALLOWED_AGENT_IMAGES",
        value_delimiter = ',',
        default_value = image_policy::DEFAULT_AGENT_REPOSITORY
    )]
    allowed_agent_images: Vec<String>,
    /// RuntimeFindings not seen for this many days are deleted.
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..=3650))]
    finding_retention_days: u32,
    /// At most this many RuntimeFindings are kept per namespace; over it, archived ones go
    /// first, then the lowest severity, then the longest unseen.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u32).range(1..))]
    max_findings_per_namespace: u32,
    /// Serve the console (docs/CONSOLE.md) on this address; off unless given. Callers act only
    /// as far as the API server authorizes their bearer token.
    #[arg(long)]
    console_listen: Option<SocketAddr>,
    /// Run the console alone: no controllers, no leader election, no /metrics; the console
    /// watches what it reads itself (the chart's console Deployment). Needs --console-listen.
    #[arg(long, requires = "console_listen")]
    console_only: bool,
    /// Host names (without port) the console answers to, against DNS rebinding; repeat or
    /// separate with commas. `*` answers to any.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "localhost,127.0.0.1,[::1]"
    )]
    console_allowed_hosts: Vec<String>,
    /// Default price per vCPU-hour on the console's usage page.
    #[arg(long, default_value_t = 0.0)]
    console_price_per_vcpu_hour: f64,
    /// The cluster's name in the console's header.
    #[arg(long, env = "VIGIL_CLUSTER_NAME", default_value = "cluster")]
    cluster_name: String,
}

/// How often findings are collected.
const FINDING_GC_PERIOD: Duration = Duration::from_secs(300);

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// A stream of `()` per change of the watched objects, keeping `writer`'s store up to date.
fn trigger<K>(
    api: Api<K>,
    config: watcher::Config,
    writer: reflector::store::Writer<K>,
    health: Watch,
) -> impl futures::Stream<Item = ()> + Send
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    reflector(writer, watcher(api, config))
        .default_backoff()
        .touched_objects()
        .filter_map(move |r| {
            let seen = health.saw(r.as_ref().map(|_| ()));
            async move { seen.then_some(()) }
        })
}

/// One watch's line to [`Health`]: a success clears its failure, a failure is logged and
/// recorded with its time.
#[derive(Clone)]
struct Watch {
    health: Arc<Health>,
    name: &'static str,
}

impl Watch {
    fn new(health: &Arc<Health>, name: &'static str) -> Self {
        Self {
            health: health.clone(),
            name,
        }
    }

    /// Records `result`; true when it was a success.
    fn saw<E: std::fmt::Display>(&self, result: Result<(), &E>) -> bool {
        match result {
            Ok(()) => {
                self.health.watch_ok(self.name);
                true
            }
            Err(error) => {
                warn!(watch = self.name, %error, "watch failed, retrying");
                self.health.watch_failed(self.name, error, Timestamp::now());
                false
            }
        }
    }
}

/// Writers of the caches that also wake the policy controller.
struct Watched {
    nodes: reflector::store::Writer<Node>,
    pods: reflector::store::Writer<Pod>,
    leases: reflector::store::Writer<Lease>,
    daemon_sets: reflector::store::Writer<DaemonSet>,
}

/// The subjects (see [`triggers::Seen`]) of the changes in a watch that matter to coverage.
fn subjects<K>(
    events: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    read: impl Fn(&K) -> Option<(String, triggers::Seen)> + Send + 'static,
    health: Watch,
) -> impl Stream<Item = String> + Send + 'static
where
    K: Send + 'static,
{
    let mut filter = triggers::ChangeFilter::default();
    events
        .map(move |event| match event {
            Ok(event) => {
                health.saw::<watcher::Error>(Ok(()));
                filter.on_event(&event, &read)
            }
            Err(error) => {
                health.saw(Err(&error));
                Vec::new()
            }
        })
        .flat_map(stream::iter)
}

/// What wakes the policy controller besides its own objects: nodes, agent pods, heartbeat Leases
/// and agent DaemonSets, each change mapped to the policies it concerns and only when it changes
/// what coverage reads, coalesced per policy over [`triggers::COALESCE_PERIOD`]. Keeps the node,
/// pod, Lease and DaemonSet caches up to date.
fn policy_triggers(
    client: &Client,
    ns: &str,
    stores: Stores,
    watched: Watched,
    health: &Arc<Health>,
) -> impl Stream<Item = ObjectRef<DeserializeGuard<RuntimeMonitoringPolicy>>> + Send + 'static {
    let node_changes = subjects(
        reflector(
            watched.nodes,
            watcher(Api::<Node>::all(client.clone()), watcher::Config::default())
                .modify(facts::slim_node),
        )
        .default_backoff(),
        triggers::node_seen,
        Watch::new(health, "nodes"),
    );
    let lease_stores = stores.clone();
    let lease_changes = subjects(
        reflector(
            watched.leases,
            watcher(
                Api::<Lease>::namespaced(client.clone(), ns),
                watcher::Config::default()
                    .labels(&format!("{COMPONENT_LABEL}={HEARTBEAT_COMPONENT}")),
            )
            .modify(facts::slim_lease),
        )
        .default_backoff(),
        move |lease| {
            triggers::lease_seen(lease, |policy| {
                triggers::max_dropped_percent(&lease_stores, policy)
            })
        },
        Watch::new(health, "heartbeat leases"),
    );
    let pod_changes = subjects(
        reflector(
            watched.pods,
            watcher(
                Api::<Pod>::namespaced(client.clone(), ns),
                watcher::Config::default().labels(&format!("app.kubernetes.io/name={AGENT_APP}")),
            )
            .modify(facts::slim_pod),
        )
        .default_backoff(),
        triggers::pod_seen,
        Watch::new(health, "agent pods"),
    );
    let daemon_set_changes = subjects(
        reflector(
            watched.daemon_sets,
            watcher(
                Api::<DaemonSet>::namespaced(client.clone(), ns),
                watcher::Config::default()
                    .labels(&format!("app.kubernetes.io/managed-by={FIELD_MANAGER}")),
            )
            .modify(|ds| ds.metadata.managed_fields = None),
        )
        .default_backoff(),
        triggers::daemon_set_seen,
        Watch::new(health, "agent daemonsets"),
    );
    // Nodes and Leases name a node; the policies concerned are looked up when the change comes.
    let by_node = stream::select(node_changes, lease_changes)
        .flat_map(move |node| stream::iter(triggers::policies_for_node(&node, &stores)));
    let policies = stream::select(by_node, stream::select(pod_changes, daemon_set_changes));
    triggers::coalesce(policies, triggers::COALESCE_PERIOD).map(|policy| ObjectRef::new(&policy))
}

/// Serves the console over `stores` on `addr` until the process stops.
async fn start_console(
    args: &Args,
    client: &Client,
    stores: vigil_operator::console::ConsoleStores,
) -> anyhow::Result<()> {
    use vigil_operator::console::{ClusterBackend, KubeGate};
    let Some(addr) = args.console_listen else {
        return Ok(());
    };
    let backend = Arc::new(ClusterBackend::new(
        client.clone(),
        stores,
        &args.namespace,
        &args.cluster_name,
    ));
    let gate = Arc::new(KubeGate::new(client.clone(), backend.clone()));
    let options = vigil_console::ConsoleOptions {
        read_only: None,
        allowed_hosts: if args.console_allowed_hosts.iter().any(|h| h == "*") {
            Vec::new()
        } else {
            args.console_allowed_hosts.clone()
        },
        price_per_vcpu_hour: args.console_price_per_vcpu_hour,
        gate: Some(gate),
    };
    let router = vigil_console::router(backend, options).context("console")?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the console to {addr}"))?;
    info!(%addr, "serving the console");
    tokio::spawn(async move {
        if let Err(error) = vigil_console::serve(listener, router, shutdown_signal()).await {
            error!(%error, "console stopped");
        }
    });
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logging(args.log_format);
    if !(args.console_price_per_vcpu_hour.is_finite()
        && (0.0..1000.0).contains(&args.console_price_per_vcpu_hour))
    {
        anyhow::bail!("--console-price-per-vcpu-hour: want a price from 0 to 1000");
    }
    if args.console_only {
        let client = Client::try_default()
            .await
            .context("no Kubernetes configuration (in-cluster or KUBECONFIG)")?;
        let (stores, watches) =
            vigil_operator::console::ConsoleStores::watch(&client, &args.namespace);
        start_console(&args, &client, stores).await?;
        futures::future::select(Box::pin(watches), Box::pin(shutdown_signal())).await;
        return Ok(());
    }
    let agent_images = ImageAllowList::new(args.allowed_agent_images.iter().cloned())
        .context("--allowed-agent-image")?;
    info!(allowed = %agent_images, "agent images policies may run");
    let client = Client::try_default()
        .await
        .context("no Kubernetes configuration (in-cluster or KUBECONFIG)")?;
    let metrics = Arc::new(Metrics::default());

    let listener = tokio::net::TcpListener::bind(args.http_addr)
        .await
        .with_context(|| format!("binding {}", args.http_addr))?;
    let health = Arc::new(Health::default());
    let auth = match args.metrics_auth {
        MetricsAuthMode::None => http::MetricsAuth::None,
        MetricsAuthMode::Kubernetes => http::MetricsAuth::Kubernetes(client.clone()),
    };
    let router = http::router(metrics.clone(), health.clone(), auth);
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            error!(%error, "http server stopped");
        }
    });
    info!(addr = %args.http_addr, "serving /metrics, /healthz and /livez");

    let elector = args.leader_election.then(|| {
        Elector::new(
            client.clone(),
            &args.namespace,
            &args.leader_lease,
            &args.identity,
            args.lease_duration_seconds,
        )
    });
    if let Some(e) = &elector {
        health.set_phase(Phase::Standby);
        info!(lease = %args.leader_lease, identity = %args.identity, "waiting for leadership");
        e.acquire(Duration::from_secs(2))
            .await
            .context("leader election")?;
        info!("leading");
    }

    let ns = args.namespace.as_str();
    let (nodes, nodes_w) = reflector::store::<Node>();
    let (pods, pods_w) = reflector::store::<Pod>();
    let (leases, leases_w) = reflector::store::<Lease>();
    let (findings, findings_w) = reflector::store::<DeserializeGuard<RuntimeFinding>>();
    let (node_coverage, node_coverage_w) = reflector::store::<DeserializeGuard<NodeCoverage>>();
    let (daemon_sets, daemon_sets_w) = reflector::store::<DaemonSet>();
    let finding_changes = trigger(
        Api::<DeserializeGuard<RuntimeFinding>>::all(client.clone()),
        watcher::Config::default(),
        findings_w,
        Watch::new(&health, "runtimefindings"),
    );
    // The NodeCoverage cache only informs reconciles; the operator's own writes wake nothing.
    let coverage_cache = reflector(
        node_coverage_w,
        watcher(
            Api::<DeserializeGuard<NodeCoverage>>::all(client.clone()),
            watcher::Config::default(),
        )
        .modify(|g| {
            if let Ok(o) = &mut g.0 {
                o.metadata.managed_fields = None;
            }
        }),
    )
    .default_backoff()
    .for_each({
        let watch = Watch::new(&health, "nodecoverages");
        move |r| {
            watch.saw(r.as_ref().map(|_| ()));
            async {}
        }
    });
    tokio::spawn(coverage_cache);
    // Pods labelled vigil.dev/quarantined=true get a deny-all NetworkPolicy (docs/RESPONSE.md).
    tokio::spawn(vigil_operator::quarantine::run(client.clone()));
    // One signal stops both controllers; see `shutdown`.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            // An error means the sender is gone, which also means stop.
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    tokio::spawn(async move {
        shutdown_signal().await;
        info!("shutdown requested");
        let _ = stop_tx.send(true);
    });

    // Debounce finding bursts for the rule controller. The policy controller has no debounce:
    // its triggers are filtered and coalesced (see `policy_triggers`).
    let controller_config = ControllerConfig::default().debounce(Duration::from_secs(2));
    let policy_ctrl = Controller::new(
        Api::<DeserializeGuard<RuntimeMonitoringPolicy>>::all(client.clone()),
        watcher::Config::default(),
    );
    let stores = Stores {
        nodes,
        pods,
        leases,
        policies: policy_ctrl.store(),
        findings,
        node_coverage,
        daemon_sets,
    };
    health.set_caches_ready({
        let stores = stores.clone();
        move || stores.ready()
    });
    let policy_ctrl = policy_ctrl
        .reconcile_on(policy_triggers(
            &client,
            ns,
            stores.clone(),
            Watched {
                nodes: nodes_w,
                pods: pods_w,
                leases: leases_w,
                daemon_sets: daemon_sets_w,
            },
            &health,
        ))
        .graceful_shutdown_on(stopped());
    let rule_ctrl = Controller::new(
        Api::<DeserializeGuard<SuppressionRule>>::all(client.clone()),
        watcher::Config::default(),
    );
    // The console reads the controllers' caches: no second copy of the findings.
    start_console(
        &args,
        &client,
        vigil_operator::console::ConsoleStores {
            findings: stores.findings.clone(),
            node_coverage: stores.node_coverage.clone(),
            rules: rule_ctrl.store(),
            policies: stores.policies.clone(),
            nodes: stores.nodes.clone(),
            leases: stores.leases.clone(),
        },
    )
    .await?;
    let rule_ctrl = rule_ctrl
        .with_config(controller_config)
        .reconcile_all_on(finding_changes)
        .graceful_shutdown_on(stopped());

    let reporter = Reporter {
        controller: FIELD_MANAGER.to_owned(),
        instance: Some(args.identity.clone()),
    };
    let ctx = Arc::new(Context {
        client: client.clone(),
        recorder: Recorder::new(client.clone(), reporter),
        metrics,
        namespace: args.namespace.clone(),
        stores,
        clock: Arc::new(Timestamp::now),
        failures: Default::default(),
        coverage_log: Default::default(),
        agent_objects: Default::default(),
        agent_images,
    });

    let policies = policy_ctrl
        .run(
            policy_controller::reconcile,
            policy_controller::error_policy,
            ctx.clone(),
        )
        .for_each(|_| async {});
    let limits = GcLimits {
        retention: SignedDuration::from_hours(i64::from(args.finding_retention_days) * 24),
        per_namespace: usize::try_from(args.max_findings_per_namespace).unwrap_or(usize::MAX),
    };
    let gc_ctx = ctx.clone();
    let gc_stopped = stopped();
    let finding_gc = async move {
        let collect = async {
            let mut tick = tokio::time::interval(FINDING_GC_PERIOD);
            loop {
                tick.tick().await;
                if let Err(error) = finding_gc::collect(&gc_ctx, limits).await {
                    warn!(error = %error, "finding collection failed; trying again next period");
                }
            }
        };
        futures::future::select(Box::pin(collect), Box::pin(gc_stopped)).await;
    };
    let rules = rule_ctrl
        .run(
            suppression_controller::reconcile,
            suppression_controller::error_policy,
            ctx,
        )
        .for_each(|_| async {});
    // Requeued reconciles keep kube's graceful drain alive indefinitely, so after a signal the
    // controllers get a grace period and then the process exits.
    let stop_after_grace = {
        let stopped = stopped();
        async move {
            stopped.await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
            info!("grace period over, stopping");
        }
    };
    health.set_phase(Phase::Running);
    let controllers = futures::future::select(
        Box::pin(futures::future::join3(policies, rules, finding_gc)),
        Box::pin(stop_after_grace),
    );
    let stopped_health = health.clone();
    let controllers = async move {
        controllers.await;
        stopped_health.set_phase(Phase::Stopped);
    };
    match &elector {
        None => {
            controllers.await;
            Ok(())
        }
        Some(e) => {
            let renew = Duration::from_secs(
                u64::try_from(args.lease_duration_seconds / 3)
                    .unwrap_or(5)
                    .max(1),
            );
            match futures::future::select(Box::pin(controllers), Box::pin(e.hold(renew))).await {
                Either::Left(_) => Ok(()),
                // Another replica may already be writing: stop at once; the pod restarts as a follower.
                Either::Right((lost, _)) => Err(lost).context("leader election"),
            }
        }
    }
}
