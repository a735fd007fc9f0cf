//! `node-agent`: Vigil's runtime threat-detection agent.

use std::{io::Write, path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand, ValueEnum};
use node_agent::{
    agent::{self, OutputFormat, RunOptions},
    detect::{host::DetectionOptions, report},
    pipeline::Limits,
    sensitive::SensitivePaths,
    sensor::{KERNEL_BTF, Sensor, SensorOptions},
    store::{self, Store, StoreLimits},
};

#[derive(Parser, Debug)]
#[command(
    name = "node-agent",
    version,
    about = "Vigil runtime threat detection agent"
)]
struct Cli {
    /// Log format on stderr (the filter comes from RUST_LOG, default `info`); default `json` in
    /// cluster mode, where logs go to a collector, and `text` elsewhere.
    #[arg(long, value_enum, global = true)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the agent in standalone mode, printing events (the default).
    Run(Box<RunArgs>),
    /// Load and attach every sensor, print which hooks are active, and exit.
    Probe(ProbeArgs),
    /// Read the findings store (standalone mode).
    #[command(subcommand)]
    Findings(FindingsCommand),
    /// Serve the web console over the findings store (standalone mode).
    Console(ConsoleArgs),
}

#[derive(clap::Args, Debug, Clone)]
struct ConsoleArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Address to listen on. A loopback address (the default) allows actions (archive,
    /// suppress); any other serves the pages read-only.
    #[arg(long, default_value = "127.0.0.1:8765")]
    listen: std::net::SocketAddr,
    /// The suppression rules the agent reads (`node-agent run --suppression-rules`): shown on
    /// the settings page, and "suppress findings like this" appends to it.
    #[arg(long)]
    suppression_rules: Option<PathBuf>,
    /// The agent's threat-intel configuration (`node-agent run --intel-config`), shown on the
    /// settings page.
    #[arg(long)]
    intel_config: Option<PathBuf>,
    /// Price per vCPU-hour for the usage page's estimate.
    #[arg(long, default_value_t = 0.0)]
    price_per_vcpu_hour: f64,
}

#[derive(Subcommand, Debug)]
enum FindingsCommand {
    /// List findings, most recently seen first.
    List(FindingsListArgs),
    /// Show one finding, with its process lineage as a tree.
    Show(FindingsShowArgs),
}

#[derive(clap::Args, Debug, Clone)]
struct StoreArgs {
    /// The findings database.
    #[arg(long, default_value = store::DEFAULT_PATH)]
    db: PathBuf,
}

#[derive(clap::Args, Debug, Clone)]
struct FindingsListArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// At least this severity: low, medium, high, critical.
    #[arg(long, value_enum)]
    severity: Option<SeverityArg>,
    /// Exactly this finding type (`Execution:Runtime/SuspiciousTool`).
    #[arg(long = "type")]
    finding_type: Option<String>,
    /// Resource display name (host name, or namespace/pod/container).
    #[arg(long)]
    resource: Option<String>,
    /// Seen within this long (`1h`, `7d`) or since this RFC 3339 time.
    #[arg(long)]
    since: Option<String>,
    /// Only archived findings (`--archived`) or only active ones (`--archived=false`).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    archived: Option<bool>,
    /// At most this many.
    #[arg(long)]
    limit: Option<u64>,
    /// One JSON document per line instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug, Clone)]
struct FindingsShowArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Finding id (or a unique prefix of at least 6 characters).
    id: String,
    /// The JSON document instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum SeverityArg {
    Low,
    Medium,
    High,
    Critical,
}

#[derive(clap::Args, Debug, Clone)]
struct DetectionArgs {
    /// Do not run detection (events only).
    #[arg(long)]
    no_detection: bool,
    /// Print new findings on stdout instead of events (always so in cluster mode, unless
    /// --print-events).
    #[arg(long)]
    findings_only: bool,
    /// Cluster mode: print every event on stdout too. Off by default there: the container log
    /// would then hold every command line of the node, unredacted.
    #[arg(long, conflicts_with = "findings_only")]
    print_events: bool,
    /// The findings database.
    #[arg(long, default_value = store::DEFAULT_PATH)]
    db: PathBuf,
    /// Keep findings in memory only (no database).
    #[arg(long)]
    no_store: bool,
    /// Findings last seen longer ago than this are removed from the database.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "90days")]
    retention: Duration,
    /// Most findings kept in the database.
    #[arg(long, default_value_t = store::DEFAULT_MAX_FINDINGS)]
    max_findings: u64,
    /// Threat-intel configuration (YAML: builtin, lists, trustedIps).
    #[arg(long)]
    intel_config: Option<PathBuf>,
    /// Extra exec rules: every *.yaml file in this directory.
    #[arg(long)]
    rules_dir: Option<PathBuf>,
    /// Do not load the built-in exec rules.
    #[arg(long)]
    no_builtin_rules: bool,
    /// Suppression rules (SuppressionRule YAML documents).
    #[arg(long)]
    suppression_rules: Option<PathBuf>,
    /// Sinks to deliver new findings to (YAML, see docs/INTEGRATIONS.md). A sink with a mistake
    /// is reported and left out; a file that cannot be read or parsed stops the agent.
    #[arg(long)]
    integrations: Option<PathBuf>,
    /// Where each sink's queue lives (`<name>.db`). Default: `sinks/` beside the findings
    /// database (`/var/lib/vigil/sinks`; the state directory's in cluster mode).
    #[arg(long)]
    sinks_dir: Option<PathBuf>,
}

impl DetectionArgs {
    fn options(&self) -> Option<DetectionOptions> {
        (!self.no_detection).then(|| DetectionOptions {
            intel_config: self.intel_config.clone(),
            intel: None,
            rules_dir: self.rules_dir.clone(),
            no_builtin_rules: self.no_builtin_rules,
            suppression: self.suppression_rules.clone(),
            database: (!self.no_store).then(|| self.db.clone()),
            limits: StoreLimits {
                retention: self.retention,
                max_findings: self.max_findings,
            },
            disabled_types: std::collections::BTreeSet::new(),
        })
    }
}

#[derive(clap::Args, Debug, Clone)]
struct SensorArgs {
    /// Kernel BTF used to resolve struct offsets.
    #[arg(long, default_value = KERNEL_BTF)]
    btf_path: PathBuf,
    /// Do not attach this hook (repeatable): exec, fork, exit, connect, connect_outcome, accept, dns_socket,
    /// dns_egress, dns_ingress, file_open, file_change, memfd, ptrace, vm_write, vm_read,
    /// userfaultfd, module, mount, namespace, privilege, dup, library_load, bpf_agent,
    /// signal_agent, stream_egress, open_by_handle, mknod, sysctl, rename, cgroup, file_dirents
    /// (fanotify).
    #[arg(long = "disable-hook")]
    disabled: Vec<String>,
    /// Never raise this finding type (repeatable), e.g. `Execution:Runtime/NewLibraryLoaded`
    /// (docs/FINDINGS.md lists them). When events are not printed (--findings-only, cluster
    /// mode), hooks that no enabled type reads are not attached either.
    #[arg(long = "disable-finding", value_name = "TYPE")]
    disabled_findings: Vec<String>,
    /// Wake the reader once this many bytes wait in the ring buffer (0: every record).
    #[arg(long, default_value_t = 256 * 1024)]
    wakeup_bytes: u32,
    /// Ring buffers the programs write to, one per group of CPUs: 1, 2, 4, 8 or 16. Default:
    /// one per four CPUs (1 up to 4 CPUs, 4 on 16, 16 from 64); 8 MiB for one, 4 MiB each for
    /// more.
    #[arg(long, value_parser = parse_rings)]
    rings: Option<u32>,
    /// Count a repeated connection (the same process, peer, port, protocol and result) in the
    /// kernel instead of sending it when its last record went out less than this many ms ago;
    /// the next record carries the count (`repeats`). 0 sends every connect and accept.
    #[arg(long, default_value_t = SensorOptions::DEFAULT_REPEAT_WINDOW_MS)]
    repeat_window_ms: u32,
    /// Extra sensitive paths for the file sensor (YAML: `entries: [{pattern, match, category}]`),
    /// added to the built-in set.
    #[arg(long)]
    sensitive_paths: Option<PathBuf>,
}

#[derive(clap::Args, Debug, Clone)]
struct ProbeArgs {
    #[command(flatten)]
    sensor: SensorArgs,
    /// Attach what `run --findings-only` attaches: only the hooks some enabled finding type
    /// (or the pipeline) reads.
    #[arg(long)]
    findings_only: bool,
}

#[derive(clap::Args, Debug, Clone)]
struct RunArgs {
    /// The file form of these flags (`key: value` per flag, see docs/HOST.md); read when it
    /// exists, and a flag on the command line wins over its key.
    #[arg(long, default_value = node_agent::settings::DEFAULT_PATH)]
    settings: PathBuf,
    #[command(flatten)]
    sensor: SensorArgs,
    /// Stop after this long (`30s`, `5m`, `1h`); runs until SIGINT/SIGTERM when absent.
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Event output format on stdout.
    #[arg(long, value_enum, default_value_t = OutputFormat::Json)]
    format: OutputFormat,
    /// Longest a record waits in the kernel before the reader picks it up, in milliseconds.
    #[arg(long, default_value_t = 10)]
    poll_ms: u64,
    /// Most processes the agent tracks, live and recently exited (a quarter of them exited);
    /// with their command lines they also stay within 16 MiB. At least 64.
    #[arg(long, default_value_t = Limits::default().processes as u32, value_parser = clap::value_parser!(u32).range(64..))]
    max_processes: u32,
    /// Where /proc is (a host mount when the agent runs in a container).
    #[arg(long, default_value = "/proc")]
    proc_root: PathBuf,
    /// The host's cgroup v2 hierarchy (a host mount when the agent runs in a container; a
    /// hybrid host's `unified/` below it is found). Default: this mount namespace's cgroup2.
    #[arg(long)]
    cgroup_root: Option<PathBuf>,
    /// Print the health summary as JSON on stderr instead of text.
    #[arg(long)]
    health_json: bool,
    /// Serve /metrics (Prometheus) and /healthz on this address, e.g. 127.0.0.1:9464; `off`
    /// serves nothing. Default: off on a host, 0.0.0.0:9464 in cluster mode (counters only, no
    /// finding contents).
    #[arg(long)]
    metrics_addr: Option<String>,
    /// Opt-in automated response on this host: a YAML file (`mode: dryRun | enforce`, the
    /// `deny`, `kill` actions, the rate limit); docs/RESPONSE.md.
    #[arg(long)]
    response: Option<PathBuf>,
    #[command(flatten)]
    detection: DetectionArgs,
    #[command(flatten)]
    cluster: ClusterArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Kubernetes when the agent runs in a pod (KUBERNETES_SERVICE_HOST and NODE_NAME are
    /// set), standalone otherwise.
    Auto,
    /// A plain host: findings in the embedded store only.
    Standalone,
    /// A Kubernetes node: pod context, heartbeat Lease, RuntimeFinding objects and Events.
    Kubernetes,
}

#[derive(clap::Args, Debug, Clone)]
struct ClusterArgs {
    /// Where the agent runs.
    #[arg(long, value_enum, default_value_t = Mode::Auto)]
    mode: Mode,
    /// Cluster mode: the configuration the operator renders.
    #[arg(long, default_value = "/etc/vigil/agent.yaml")]
    config: PathBuf,
    /// Cluster mode: where the findings store and the delivery spool live (a host directory,
    /// so both survive a restart).
    #[arg(long, default_value = "/var/lib/vigil")]
    state_dir: PathBuf,
    /// Cluster mode: this node's name.
    #[arg(long, env = "NODE_NAME")]
    node_name: Option<String>,
    /// Cluster mode: this agent pod's name (the Lease holder and the Events' reporter).
    #[arg(long, env = "POD_NAME")]
    pod_name: Option<String>,
    /// Cluster mode: most new RuntimeFinding objects per minute from this node.
    #[arg(long)]
    max_new_findings_per_minute: Option<u32>,
    /// Cluster mode: most Kubernetes Events per minute from this node.
    #[arg(long)]
    max_events_per_minute: Option<u32>,
    /// Cluster mode: most entries waiting in the delivery spool.
    #[arg(long, default_value_t = node_agent::cluster::spool::DEFAULT_MAX_ENTRIES)]
    spool_max_entries: u64,
}

impl ClusterArgs {
    fn kubernetes(&self) -> bool {
        match self.mode {
            Mode::Standalone => false,
            Mode::Kubernetes => true,
            Mode::Auto => {
                std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
                    && self.node_name.as_deref().is_some_and(|n| !n.is_empty())
            }
        }
    }
}

impl SensorArgs {
    /// The sensor's options; `findings_only` when records become findings only, never
    /// printed events.
    fn options(&self, findings_only: bool) -> Result<SensorOptions, String> {
        let mut known = node_agent_common::stats::Hook::ALL
            .map(|h| h.name())
            .to_vec();
        known.push(node_agent::sensor::dirents::HOOK_NAME);
        if let Some(bad) = self.disabled.iter().find(|d| !known.contains(&d.as_str())) {
            return Err(format!(
                "--disable-hook {bad}: no such hook; the hooks are {}",
                known.join(", ")
            ));
        }
        let mut disabled_findings = std::collections::BTreeSet::new();
        for name in &self.disabled_findings {
            match name.parse::<vigil_detection::FindingType>() {
                Ok(t) => {
                    disabled_findings.insert(t);
                }
                Err(_) => {
                    return Err(format!(
                        "--disable-finding {name:?} (or `disable-finding:` in the settings file): \
                         no such finding type; the types are {}",
                        vigil_detection::FindingType::ALL
                            .map(|t| t.as_str())
                            .join(", ")
                    ));
                }
            }
        }
        // Every account's user systemd units and XDG autostart entries (persistence), from the
        // host's accounts.
        let mut sensitive = SensitivePaths::default().with_user_persistence_dirs(
            node_agent::sensitive::home_directories(std::path::Path::new("/etc/passwd")),
        );
        if let Some(path) = &self.sensitive_paths {
            sensitive = sensitive.with_file(path).map_err(|e| e.to_string())?;
        }
        Ok(SensorOptions {
            btf_path: self.btf_path.clone(),
            wakeup_bytes: self.wakeup_bytes,
            repeat_window_ms: self.repeat_window_ms,
            disabled: self.disabled.clone(),
            disabled_findings,
            findings_only,
            synthetic: false,
            rings: self.rings,
            sensitive,
            agent_files: Vec::new(),
            host_root: PathBuf::from("/"),
            shells: SensorOptions::default_shells(),
        })
    }
}

/// `--rings`: a ring count the programs can spread records over.
fn parse_rings(text: &str) -> Result<u32, String> {
    let max = node_agent_common::maps::MAX_RINGS;
    match text.parse::<u32>() {
        Ok(rings) if node_agent_common::maps::valid_rings(rings) => Ok(rings),
        _ => Err(format!(
            "want a power of two from 1 to {max} (1, 2, 4, 8, 16)"
        )),
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal, not in files and pipes.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    // Before any thread starts or any large block is allocated (docs/PERFORMANCE.md, "Memory").
    node_agent::memory::tune_allocator();
    let argv: Vec<String> = std::env::args().collect();
    let cli = match with_settings(argv) {
        Ok(argv) => Cli::parse_from(argv),
        Err(e) => return fail(e),
    };
    // `node-agent` alone is `node-agent run` with the defaults.
    let command = cli
        .command
        .or_else(|| Cli::parse_from(["node-agent", "run"]).command);
    let in_cluster = matches!(&command, Some(Command::Run(args)) if args.cluster.kubernetes());
    init_logging(cli.log_format.unwrap_or(if in_cluster {
        LogFormat::Json
    } else {
        LogFormat::Text
    }));
    match command {
        Some(Command::Probe(args)) => probe(&args),
        Some(Command::Run(args)) => run(&args),
        Some(Command::Findings(command)) => findings(&command),
        Some(Command::Console(args)) => console(&args),
        None => fail("no command"),
    }
}

/// `argv` with the settings file's flags added after `run` (or `run` and them, when no command
/// is given), when the command is `run` and the file exists; a `--settings` file that does not
/// exist is an error, the default one is optional.
fn with_settings(argv: Vec<String>) -> Result<Vec<String>, node_agent::settings::SettingsError> {
    use clap::CommandFactory;
    let Ok(cli) = Cli::try_parse_from(&argv) else {
        // clap reports it with the parse that follows.
        return Ok(argv);
    };
    let path = match &cli.command {
        Some(Command::Run(args)) => args.settings.clone(),
        None => PathBuf::from(node_agent::settings::DEFAULT_PATH),
        Some(_) => return Ok(argv),
    };
    let explicit = argv
        .iter()
        .any(|a| a == "--settings" || a.starts_with("--settings="));
    if !explicit && !path.exists() {
        return Ok(argv);
    }
    let known: Vec<String> = Cli::command()
        .find_subcommand("run")
        .map(|run| {
            run.get_arguments()
                .filter_map(|a| a.get_long())
                .filter(|l| !matches!(*l, "settings" | "help"))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let extra =
        node_agent::settings::read(&path, &known, &node_agent::settings::given_flags(&argv))?;
    let mut out = argv;
    match out.iter().position(|a| a == "run") {
        Some(i) => {
            out.splice(i + 1..i + 1, extra);
        }
        None => {
            out.push("run".to_owned());
            out.extend(extra);
        }
    }
    Ok(out)
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

fn probe(args: &ProbeArgs) -> ExitCode {
    let options = match args.sensor.options(args.findings_only) {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    match Sensor::start(&options) {
        Ok(sensor) => {
            let report = serde_json::json!({
                "host": sensor.setup(),
                "hooks": sensor.hooks(),
                "findingTypesThatCannotFire": sensor.unreachable_finding_types(),
            });
            match serde_json::to_string_pretty(&report) {
                Ok(text) => println!("{text}"),
                Err(e) => return fail(e),
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

fn run(args: &RunArgs) -> ExitCode {
    // In a cluster, stdout is the container log: findings (redacted) only, unless asked.
    let findings_only =
        args.detection.findings_only || (args.cluster.kubernetes() && !args.detection.print_events);
    let mut detection = args.detection.options();
    // Hooks are cut by the finding types only when records become findings and nothing else.
    let mut sensor = match args.sensor.options(findings_only && detection.is_some()) {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    if let Some(d) = detection.as_mut() {
        d.disabled_types = sensor.disabled_findings.clone();
    }
    let (sensitive, agent_files) =
        std::mem::take(&mut sensor.sensitive).with_agent_files(&agent_files(args));
    sensor.sensitive = sensitive;
    sensor.agent_files = agent_files;
    sensor.host_root = node_agent::sensor::host_root(&args.proc_root);
    let mut options = RunOptions {
        sensor,
        duration: args.duration,
        format: args.format,
        poll: Duration::from_millis(args.poll_ms.max(1)),
        limits: Limits {
            processes: args.max_processes as usize,
            ..Limits::default()
        },
        proc_root: args.proc_root.clone(),
        cgroup_root: args.cgroup_root.clone(),
        detection,
        findings_only,
        telemetry: None,
        sinks: None,
        response: None,
    };
    match sinks_options(args) {
        Ok(sinks) => options.sinks = sinks,
        Err(e) => return fail(e),
    }
    if let Some(path) = &args.response {
        match node_agent::response::ResponseConfig::from_file(path) {
            Ok(config) => options.response = Some(config),
            Err(e) => return fail(e),
        }
    }
    let metrics_addr = match args.metrics_addr.as_deref() {
        Some("off") => None,
        Some(addr) => match addr.parse::<std::net::SocketAddr>() {
            Ok(a) => Some(a),
            Err(e) => {
                return fail(format!(
                    "--metrics-addr {addr}: {e} (want ADDRESS:PORT or off)"
                ));
            }
        },
        None if args.cluster.kubernetes() => Some(std::net::SocketAddr::from((
            [0, 0, 0, 0],
            node_agent::metrics::DEFAULT_CLUSTER_PORT,
        ))),
        None => None,
    };
    if let Some(addr) = metrics_addr {
        let telemetry = std::sync::Arc::new(node_agent::metrics::Telemetry::default());
        match node_agent::metrics::serve(addr, telemetry.clone()) {
            Ok(_) => options.telemetry = Some(telemetry),
            // Asked for by name: a mistake to fix. By default (cluster mode): detection matters
            // more than its metrics, so the agent runs on and says why there are none.
            Err(e) if args.metrics_addr.is_some() => return fail(e),
            Err(e) => tracing::error!(error = %e, "running without /metrics and /healthz"),
        }
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let result = if args.cluster.kubernetes() {
        let cluster = match cluster_options(args, &mut options) {
            Ok(c) => c,
            Err(e) => return fail(e),
        };
        runtime
            .block_on(node_agent::cluster::run(&options, cluster, &mut out))
            .map_err(|e| e.to_string())
    } else {
        runtime
            .block_on(agent::run(&options, &mut out))
            .map_err(|e| e.to_string())
    };
    let _ = out.flush();
    match result {
        Ok(health) => {
            let summary = if args.health_json {
                serde_json::to_string(&health).unwrap_or_default()
            } else {
                health.to_text()
            };
            eprintln!("{}", summary.trim_end());
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// The agent's own binary and the configuration it reads, absolute: writes to them are
/// tampering (docs/SENSORS.md, "Self-protection").
fn agent_files(args: &RunArgs) -> Vec<PathBuf> {
    let d = &args.detection;
    let mut files: Vec<PathBuf> = std::env::current_exe().into_iter().collect();
    files.extend(
        [
            Some(&args.settings),
            d.intel_config.as_ref(),
            d.rules_dir.as_ref(),
            d.suppression_rules.as_ref(),
            d.integrations.as_ref(),
            args.sensor.sensitive_paths.as_ref(),
            args.response.as_ref(),
            args.cluster.kubernetes().then_some(&args.cluster.config),
        ]
        .into_iter()
        .flatten()
        .filter_map(|p| std::fs::canonicalize(p).ok()),
    );
    files.sort();
    files.dedup();
    files
}

/// The sinks: `--integrations FILE`, or in cluster mode the `integrations` of the agent
/// configuration the operator renders. A host file that cannot be read or parsed stops the agent
/// (the user asked for it); in cluster mode a whole-document mistake is logged and the agent
/// detects without sinks, and a configuration that cannot be read is reported by cluster mode
/// itself. Mistakes in single sinks are reported when delivery starts, and never stop anything.
fn sinks_options(args: &RunArgs) -> Result<Option<node_agent::sinks::SinksOptions>, String> {
    let in_cluster = args.cluster.kubernetes();
    let integrations = match &args.detection.integrations {
        Some(path) => vigil_integrations::config::load(path).map_err(|e| e.to_string())?,
        None if in_cluster => {
            let path = &args.cluster.config;
            let Some(document) = node_agent::cluster::config::read_config(path)
                .ok()
                .and_then(|c| c.integrations)
            else {
                return Ok(None);
            };
            match vigil_integrations::config::validate(&document, path) {
                Ok(i) => i,
                Err(error) => {
                    tracing::error!(%error, "integrations left out: findings are not delivered to any sink");
                    return Ok(None);
                }
            }
        }
        None => return Ok(None),
    };
    let database = if in_cluster {
        Some(args.cluster.state_dir.join("findings.db"))
    } else {
        (!args.detection.no_store).then(|| args.detection.db.clone())
    };
    let dir = args
        .detection
        .sinks_dir
        .clone()
        .unwrap_or_else(|| node_agent::sinks::default_dir(database.as_deref()));
    Ok(Some(node_agent::sinks::SinksOptions { integrations, dir }))
}

/// Cluster mode's options; the findings store moves to the state directory (unless `--db` or
/// `--no-store` say otherwise).
fn cluster_options(
    args: &RunArgs,
    options: &mut RunOptions,
) -> Result<node_agent::cluster::ClusterOptions, String> {
    let c = &args.cluster;
    let (node, pod) =
        node_agent::cluster::identity_from_env(c.node_name.clone(), c.pod_name.clone())
            .map_err(|e| e.to_string())?;
    if let Some(d) = options.detection.as_mut()
        && d.database.as_deref() == Some(std::path::Path::new(store::DEFAULT_PATH))
    {
        d.database = Some(c.state_dir.join("findings.db"));
    }
    let Some(_) = options.detection else {
        return Err(
            "cluster mode publishes findings: --no-detection cannot be used with --mode kubernetes"
                .into(),
        );
    };
    Ok(node_agent::cluster::ClusterOptions {
        node,
        pod,
        config_path: c.config.clone(),
        spool_path: c.state_dir.join("spool.db"),
        spool_limits: node_agent::cluster::spool::SpoolLimits {
            max_entries: c.spool_max_entries.max(1),
            ..Default::default()
        },
        max_new_findings_per_minute: c.max_new_findings_per_minute,
        max_events_per_minute: c.max_events_per_minute,
    })
}

fn findings(command: &FindingsCommand) -> ExitCode {
    let db = match command {
        FindingsCommand::List(a) => &a.store.db,
        FindingsCommand::Show(a) => &a.store.db,
    };
    if !db.exists() {
        return fail(format!("{}: no findings database", db.display()));
    }
    let store = match Store::open(db, StoreLimits::default()) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let written = match command {
        FindingsCommand::List(args) => {
            let since = match args.since.as_deref().map(parse_since).transpose() {
                Ok(s) => s,
                Err(e) => return fail(e),
            };
            let filter = store::Filter {
                min_severity: args.severity.map(|s| match s {
                    SeverityArg::Low => vigil_crds::finding::SeverityLabel::Low,
                    SeverityArg::Medium => vigil_crds::finding::SeverityLabel::Medium,
                    SeverityArg::High => vigil_crds::finding::SeverityLabel::High,
                    SeverityArg::Critical => vigil_crds::finding::SeverityLabel::Critical,
                }),
                finding_type: args.finding_type.clone(),
                resource: args.resource.clone(),
                since,
                archived: args.archived,
                limit: args.limit,
                ..Default::default()
            };
            let found = match store.list(&filter) {
                Ok(f) => f,
                Err(e) => return fail(e),
            };
            // JSON lines stay an empty stream; a person is told that nothing matched.
            if found.is_empty() && !args.json {
                let counts = store.len().and_then(|n| Ok((n, store.archived_len()?)));
                let (stored, archived) = match counts {
                    Ok(c) => c,
                    Err(e) => return fail(e),
                };
                let text = report::no_findings_text(stored, archived, args.archived);
                return match writeln!(out, "{text}").and_then(|()| out.flush()) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => fail(format!("cannot write: {e}")),
                };
            }
            found.iter().try_for_each(|s| {
                if args.json {
                    serde_json::to_writer(&mut out, &s.finding).map_err(std::io::Error::other)?;
                    writeln!(out)
                } else {
                    writeln!(out, "{}", report::text_line(&s.finding))
                }
            })
        }
        FindingsCommand::Show(args) => match store.get(&args.id) {
            Ok(Some(s)) if args.json => serde_json::to_writer_pretty(&mut out, &s.finding)
                .map_err(std::io::Error::other)
                .and_then(|()| writeln!(out)),
            Ok(Some(s)) => write!(
                out,
                "{}",
                report::show_text(&s.finding, s.archived_by.as_deref())
            ),
            Ok(None) => return fail(format!("no finding {} in {}", args.id, db.display())),
            Err(e) => return fail(e),
        },
    };
    match written.and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(format!("cannot write: {e}")),
    }
}

fn console(args: &ConsoleArgs) -> ExitCode {
    let db = &args.store.db;
    if !db.exists() {
        return fail(format!("{}: no findings database", db.display()));
    }
    if !(args.price_per_vcpu_hour.is_finite() && args.price_per_vcpu_hour >= 0.0) {
        return fail("--price-per-vcpu-hour: want a price of 0 or more");
    }
    let store = match Store::open(db, StoreLimits::default()) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let backend = node_agent::console::HostBackend::new(
        store,
        args.suppression_rules.clone(),
        args.intel_config.clone(),
    );
    let mut options = vigil_console::ConsoleOptions::for_listen_address(args.listen);
    options.price_per_vcpu_hour = args.price_per_vcpu_hour;
    let router = match vigil_console::router(std::sync::Arc::new(backend), options) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| format!("--listen {}: {e}", args.listen))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        // The address on stdout, for a person and for scripts started with port 0.
        println!("console: http://{addr}/");
        let _ = std::io::stdout().flush();
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        vigil_console::serve(listener, router, shutdown)
            .await
            .map_err(|e| e.to_string())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

/// `--since`: a duration back from now (`1h`, `7days`) or an RFC 3339 time.
fn parse_since(text: &str) -> Result<k8s_openapi::jiff::Timestamp, String> {
    if let Ok(t) = text.parse::<k8s_openapi::jiff::Timestamp>() {
        return Ok(t);
    }
    let back = humantime::parse_duration(text).map_err(|e| {
        format!("--since {text}: neither a duration (1h, 7days) nor an RFC 3339 time: {e}")
    })?;
    let back = k8s_openapi::jiff::SignedDuration::try_from(back)
        .map_err(|e| format!("--since {text}: {e}"))?;
    k8s_openapi::jiff::Timestamp::now()
        .checked_sub(back)
        .map_err(|e| format!("--since {text}: {e}"))
}
