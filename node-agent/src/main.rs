//! `node-agent`: Vigil's runtime threat-detection agent.

use std::{io::Write, path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand, ValueEnum};
use node_agent::{
    agent::{self, OutputFormat, RunOptions},
    pipeline::Limits,
    sensitive::SensitivePaths,
    sensor::{KERNEL_BTF, Sensor, SensorOptions},
};

#[derive(Parser, Debug)]
#[command(
    name = "node-agent",
    version,
    about = "Vigil runtime threat detection agent"
)]
struct Cli {
    /// Log format on stderr (the filter comes from RUST_LOG, default `info`).
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
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
    Run(RunArgs),
    /// Load and attach every sensor, print which hooks are active, and exit.
    Probe(SensorArgs),
}

#[derive(clap::Args, Debug, Clone)]
struct SensorArgs {
    /// Kernel BTF used to resolve struct offsets.
    #[arg(long, default_value = KERNEL_BTF)]
    btf_path: PathBuf,
    /// Do not attach this hook (repeatable): exec, fork, exit, connect, accept, dns_socket,
    /// dns_egress, dns_ingress.
    #[arg(long = "disable-hook")]
    disabled: Vec<String>,
    /// Wake the reader once this many bytes wait in the ring buffer (0: every record).
    #[arg(long, default_value_t = 256 * 1024)]
    wakeup_bytes: u32,
    /// Extra sensitive paths for the file sensor (YAML: `entries: [{pattern, match, category}]`),
    /// added to the built-in set.
    #[arg(long)]
    sensitive_paths: Option<PathBuf>,
}

#[derive(clap::Args, Debug, Clone)]
struct RunArgs {
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
    /// Where /proc is (a host mount when the agent runs in a container).
    #[arg(long, default_value = "/proc")]
    proc_root: PathBuf,
    /// Print the health summary as JSON on stderr instead of text.
    #[arg(long)]
    health_json: bool,
}

impl SensorArgs {
    fn options(&self) -> Result<SensorOptions, String> {
        let known = node_agent_common::stats::Hook::ALL.map(|h| h.name());
        if let Some(bad) = self.disabled.iter().find(|d| !known.contains(&d.as_str())) {
            return Err(format!(
                "--disable-hook {bad}: no such hook; the hooks are {}",
                known.join(", ")
            ));
        }
        let mut sensitive = SensitivePaths::default();
        if let Some(path) = &self.sensitive_paths {
            sensitive = sensitive.with_file(path).map_err(|e| e.to_string())?;
        }
        Ok(SensorOptions {
            btf_path: self.btf_path.clone(),
            wakeup_bytes: self.wakeup_bytes,
            disabled: self.disabled.clone(),
            synthetic: false,
            sensitive,
        })
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    // `node-agent` alone is `node-agent run` with the defaults.
    let command = cli
        .command
        .or_else(|| Cli::parse_from(["node-agent", "run"]).command);
    match command {
        Some(Command::Probe(args)) => probe(&args),
        Some(Command::Run(args)) => run(&args),
        None => fail("no command"),
    }
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

fn probe(args: &SensorArgs) -> ExitCode {
    let options = match args.options() {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    match Sensor::start(&options) {
        Ok(sensor) => {
            let report = serde_json::json!({
                "host": sensor.setup(),
                "hooks": sensor.hooks(),
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
    let sensor = match args.sensor.options() {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    let options = RunOptions {
        sensor,
        duration: args.duration,
        format: args.format,
        poll: Duration::from_millis(args.poll_ms.max(1)),
        limits: Limits::default(),
        proc_root: args.proc_root.clone(),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let result = runtime.block_on(agent::run(&options, &mut out));
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
