//! Detection: event + context -> findings (the `vigil_crds::finding::Finding` document).
//!
//! Pure logic: [`Detector::process`] does no I/O. It checks
//! - connects, accepts and DNS messages against threat intelligence ([`reputation`]),
//! - the first bytes of outgoing TCP connections for mining protocols (stratum) ([`stratum`]),
//! - execs against the rules of `node-agent/rules/*.yaml` and the SHA-256 lists ([`exec`]),
//! - exec context, file operations on the sensitive-path set and kernel activity (ptrace,
//!   memory writes, userfaultfd, modules, mounts, library loads) ([`behaviour`]),
//! - execs and file operations for technique classes shown by behaviour: persistence writes,
//!   defence evasion, execution from writable directories, shells started by interpreters
//!   (`technique`),
//! - execs for shells and interpreters reading their program from a pipe that a downloader or a
//!   decoder writes (`pipes`),
//!
//! then aggregates (same type, resource and key context: one finding whose `count` and
//! `eventLastSeen` grow), redacts secrets from command lines ([`redact`]) and applies suppression
//! rules (`vigil_crds::suppression`): archived findings are kept and marked.
//! The edges (reading `/etc/passwd`, host facts, rule and suppression files) are in [`host`].

pub mod accounts;
pub mod behaviour;
#[cfg(test)]
mod behaviour_tests;
mod bounded;
mod command_loop;
mod competitor;
pub mod coverage;
mod evaluated;
pub mod exec;
pub mod host;
mod pipes;
#[cfg(test)]
mod pipes_tests;
pub mod redact;
pub mod report;
pub mod reputation;
pub mod rules;
mod scan;
pub mod selfprotect;
mod served;
mod sourced;
#[cfg(test)]
mod sourced_tests;
mod stdio_dup;
pub mod stratum;
mod technique;
#[cfg(test)]
mod tests;

use std::{
    collections::{BTreeSet, HashMap, VecDeque},
    net::IpAddr,
    path::{Path, PathBuf},
    sync::Arc,
};

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use sha2::{Digest as _, Sha256};
use vigil_crds::{
    finding::{
        ContainerDetails, DnsAction, Evidence, Finding, HostDetails, LineageEntry, NetworkAction,
        PodDetails, ProcessDetails, Resource, ResourceRole, RuntimeContext, SCHEMA_VERSION,
        SeverityLabel, ThreatIntelligenceDetail,
    },
    suppression::{CompiledRule, SuppressionAction},
};
use vigil_detection::{DgaModel, FindingType, SharedIntel};

use crate::{
    container::Runtime,
    event::{Ancestor, Clock, Event, ProcessRef},
    proctable::{self, ProcessTable},
    sensitive::SensitivePaths,
};
pub use competitor::miner_process;
pub use evaluated::evaluated_substitutions;
pub use rules::{RuleError, RuleSet};
pub use sourced::SOURCING_INTERPRETERS;
pub use technique::{is_git_config, is_password_hashes, is_sysctl_file, system_program_dir};

/// The script file an exec of a shell or interpreter runs from its operand (`sh x.sh`), by the
/// built-in and configured `shells` and `interpreters`: for the edge to look up who wrote it.
pub fn script_operand<'a>(rules: &RuleSet, argv: &'a [String]) -> Option<&'a str> {
    technique::script_operand_of(rules.behaviour(), argv)
}

/// Operands of a filter writing into a pipe that may name the named FIFO it reads (`cat f |
/// sh`), for the edge to `stat` ([`crate::event::ExecInfo::input_fifo`]); empty for any other
/// exec.
pub fn fifo_operands<'a>(rules: &RuleSet, e: &'a crate::event::ExecInfo) -> Vec<&'a str> {
    pipes::fifo_operands(rules.behaviour(), e)
}

/// Whether an executable's path is in one of the rules' memory-backed or world-writable
/// directories (`memoryExecDirs`, `worldWritableExecDirs`): for the edge to watch whether the
/// file is deleted while it runs ([`crate::deleted_exe`]).
pub fn runs_from_writable_dir(rules: &RuleSet, exe: &str) -> bool {
    technique::placed_dir(rules.behaviour(), exe)
}

/// Whether an executable is one of the rules' `shells` (by its name without a version): the
/// edge reads such a program's script for the substitutions it evaluates.
pub fn runs_shell(rules: &RuleSet, exe: &std::path::Path) -> bool {
    technique::listed(
        &rules.behaviour().shells,
        technique::program_name(path_basename(exe)),
    )
}

/// Whether `argv` is a shell or interpreter (the rules' `shells` and `interpreters`) that reads
/// its program on standard input: no script operand, no command string (`sh`, `bash -s`,
/// `python3 -`).
pub fn reads_program_on_stdin(rules: &RuleSet, argv: &[String]) -> bool {
    technique::reads_program_on_stdin(rules.behaviour(), argv)
}

/// What a process looked like, from the pipeline's process table or the detector's memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownProcess {
    /// Process id.
    pub pid: u32,
    /// Parent process id.
    pub ppid: u32,
    /// Start time, ns since boot.
    pub start_time_ns: u64,
    /// `comm`.
    pub comm: String,
    /// Executable.
    pub exe: Option<PathBuf>,
    /// SHA-256 of the executable, hex.
    pub sha256: Option<String>,
    /// Working directory.
    pub cwd: Option<PathBuf>,
    /// Real uid.
    pub uid: u32,
    /// Effective uid.
    pub euid: u32,
}

/// Where the detector looks up processes it has not seen exec (older than the agent, or
/// evicted): the pipeline's process table in the agent, nothing in replays.
pub trait ProcessLookup {
    /// The process with this pid, if known.
    fn get(&self, pid: u32) -> Option<KnownProcess>;
}

/// A lookup that knows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLookup;

impl ProcessLookup for NoLookup {
    fn get(&self, _pid: u32) -> Option<KnownProcess> {
        None
    }
}

impl ProcessLookup for ProcessTable {
    fn get(&self, pid: u32) -> Option<KnownProcess> {
        ProcessTable::get(self, pid).map(|p| KnownProcess {
            pid: p.tgid,
            ppid: p.ppid,
            start_time_ns: p.start_time_ns,
            comm: p.comm.clone(),
            exe: p.exe.clone(),
            sha256: p.exe_sha256.map(|d| d.to_string()),
            cwd: p.cwd.clone(),
            uid: p.uid,
            euid: p.euid,
        })
    }
}

/// Settings of a detector.
#[derive(Debug, Clone)]
pub struct DetectorConfig {
    /// The host findings are about.
    pub host: HostDetails,
    /// `/proc/sys/kernel/random/boot_id`, for process uuids of looked-up processes.
    pub boot_id: String,
    /// Distinct DGA-looking names one process must query, answered NXDOMAIN, within
    /// `dga_window` before a DGA finding (one odd name is noise; malware walks a list of them,
    /// most of them unregistered).
    pub dga_nxdomain_names: usize,
    /// Distinct DGA-looking names within `dga_window` that raise the finding whatever the
    /// answers said (generators whose names resolve, answers not seen).
    pub dga_names_any_answer: usize,
    /// How far back a process's DGA-looking names count.
    pub dga_window: std::time::Duration,
    /// Findings kept in memory for aggregation; the oldest are forgotten beyond this (the
    /// store still merges them by id).
    pub max_aggregates: usize,
    /// Processes remembered from their exec.
    pub max_processes: usize,
    /// uid to user name.
    pub users: HashMap<u32, String>,
    /// The setuid and setgid programs in the system program directories when the agent
    /// started (`host::privileged_programs`): one replaced later is High, whatever mode the
    /// replacement has.
    pub privileged_programs: BTreeSet<PathBuf>,
    /// Finding types never raised (`--disable-finding`): their candidates are dropped before
    /// aggregation, suppression and the store.
    pub disabled_types: BTreeSet<FindingType>,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            host: HostDetails::default(),
            boot_id: String::new(),
            dga_nxdomain_names: 3,
            dga_names_any_answer: 10,
            dga_window: std::time::Duration::from_secs(600),
            max_aggregates: 4_096,
            max_processes: 32_768,
            users: HashMap::new(),
            privileged_programs: BTreeSet::new(),
            disabled_types: BTreeSet::new(),
        }
    }
}

/// A finding after one event: its whole current document.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The finding, with `count` and `eventLastSeen` as of this event.
    pub finding: Finding,
    /// First time this detector raised it (otherwise an aggregated repeat).
    pub new: bool,
    /// The suppression rule that archived it, if one did.
    pub archived_by: Option<String>,
}

impl Outcome {
    /// Whether to show it to a person: new and not archived.
    pub fn is_shown(&self) -> bool {
        self.new && !self.finding.archived
    }
}

/// What the detector counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DetectorStats {
    /// Events looked at.
    pub events: u64,
    /// New findings.
    pub new_findings: u64,
    /// Repeats aggregated into an existing finding.
    pub repeats: u64,
    /// Findings archived by a suppression rule.
    pub archived: u64,
    /// Remembered execs forgotten to stay within `max_processes`.
    pub processes_shed: u64,
    /// Fork parents forgotten to stay within `max_processes`.
    pub parents_shed: u64,
    /// Findings dropped from the aggregation table to stay within `max_aggregates` (a later
    /// occurrence is a new finding with the same id: the store still merges it).
    pub findings_shed: u64,
    /// Occurrences of disabled finding types (`--disable-finding`) not raised.
    pub disabled_skipped: u64,
}

/// A finding before aggregation: one occurrence.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub finding_type: FindingType,
    pub severity: f64,
    pub title: String,
    pub description: String,
    /// The key context: with type and resource, what makes two occurrences the same finding.
    pub key: String,
    pub role: ResourceRole,
    pub process: Option<ProcessDetails>,
    pub context: RuntimeContext,
    pub network: Option<NetworkAction>,
    pub dns: Option<DnsAction>,
    pub evidence: Vec<ThreatIntelligenceDetail>,
    /// The container the acting process runs in, when known.
    pub container: Option<crate::container::Container>,
}

/// What the detector remembers of a process from its exec.
#[derive(Debug, Clone)]
pub(crate) struct Remembered {
    pub start_time_ns: u64,
    pub uid: u32,
    pub euid: u32,
    pub exe: Option<PathBuf>,
    /// The path exec'd, absolute: a script's for an interpreted program.
    pub exec_path: Option<PathBuf>,
    pub sha256: Option<crate::exe_hash::Digest>,
    pub cwd: Option<PathBuf>,
    pub lineage: Arc<[Ancestor]>,
    pub uuid: String,
}

/// The detection engine. One per agent; not shared between threads (the intel it reads is).
pub struct Detector {
    intel: Arc<SharedIntel>,
    dga: Option<DgaModel>,
    /// Shared with the pipeline, which reads script operands with them (one compiled copy).
    rules: Arc<RuleSet>,
    sensitive: SensitivePaths,
    /// The installed programs the exec rules name, by the SHA-256 of their bytes: a renamed
    /// or copied tool is still that tool ([`Detector::with_tool_hashes`]).
    tool_hashes: HashMap<crate::exe_hash::Digest, String>,
    suppression: Vec<CompiledRule>,
    config: DetectorConfig,
    clock: Clock,
    resource: Resource,
    procs: crate::PidMap<u32, Remembered>,
    /// Parent pid of each forked process, from fork events (the tracer-of-its-own-child check
    /// of ptrace findings needs it before the child execs).
    parents: crate::PidMap<u32, u32>,
    aggregates: HashMap<String, Finding>,
    aggregate_order: VecDeque<String>,
    dns: reputation::DnsMemory,
    /// Which name each address was an answer for, newest [`reputation::MAX_ANSWERS`].
    answers: bounded::FifoMap<IpAddr, String>,
    /// Pipes seen at execs: who reads and who writes each.
    pipes: pipes::PipeTable,
    /// Shells' opens of downloaded or memory-backed files, until the shell shows what it did.
    sourced: sourced::SourcedTable,
    /// Refused connects per program and host, for port scans.
    scans: scan::ScanTable,
    /// Processes that put a connected socket on their standard streams, for reverse shells
    /// started on a terminal of their own.
    stdio_dups: stdio_dup::StdioDups,
    /// Interpreters connected out, for reverse shells that are an interpreter's command loop.
    command_loops: command_loop::CommandLoops,
    /// Shells whose script evaluates command substitutions.
    eval_shells: evaluated::EvalShells,
    /// Interpreters' processes that accepted TCP connections (web applications).
    servers: served::Servers,
    /// Pipes of process-list pipelines that end in `xargs kill`.
    kill_pipes: competitor::KillPipes,
    stats: DetectorStats,
    enricher: Option<ResourceEnricher>,
    /// The agent itself, for the self-protection checks (unknown until the sensor starts).
    agent: Option<selfprotect::AgentSelf>,
}

/// Adds what the node knows beyond the cgroup (pod, workload, image) to a container resource;
/// called with the pod uid the cgroup path gave, if any. Runs before suppression and before the
/// finding id is computed, so rules can match pod fields.
pub type ResourceEnricher = Box<dyn Fn(&mut Resource, Option<&str>)>;

/// Severity score and label of a finding type's default severity.
pub fn default_severity(finding_type: FindingType) -> f64 {
    rules::default_score(finding_type)
}

impl Detector {
    /// A detector over shared intel, an optional DGA model, exec rules and suppression rules.
    pub fn new(
        intel: Arc<SharedIntel>,
        dga: Option<DgaModel>,
        rules: RuleSet,
        suppression: Vec<CompiledRule>,
        config: DetectorConfig,
        clock: Clock,
    ) -> Self {
        let resource = Resource {
            display_name: Resource::display_name_for(&config.host, None, None),
            host: config.host.clone(),
            container: None,
            pod: None,
        };
        Self {
            intel,
            dga,
            rules: Arc::new(rules),
            sensitive: SensitivePaths::default(),
            tool_hashes: HashMap::new(),
            suppression,
            config,
            clock,
            resource,
            procs: crate::PidMap::default(),
            parents: crate::PidMap::default(),
            aggregates: HashMap::new(),
            aggregate_order: VecDeque::new(),
            dns: reputation::DnsMemory::default(),
            answers: bounded::FifoMap::new(reputation::MAX_ANSWERS),
            pipes: pipes::PipeTable::default(),
            sourced: sourced::SourcedTable::default(),
            scans: scan::ScanTable::default(),
            stdio_dups: stdio_dup::StdioDups::default(),
            command_loops: command_loop::CommandLoops::default(),
            eval_shells: evaluated::EvalShells::default(),
            servers: served::Servers::default(),
            kill_pipes: competitor::KillPipes::default(),
            stats: DetectorStats::default(),
            enricher: None,
            agent: None,
        }
    }

    /// Sets the resource enricher (cluster mode: pod context from the API server).
    pub fn set_enricher(&mut self, enricher: ResourceEnricher) {
        self.enricher = Some(enricher);
    }

    /// Who the agent is, for the self-protection checks (`SecurityAgentTampered`).
    pub fn set_agent(&mut self, agent: selfprotect::AgentSelf) {
        self.agent = Some(agent);
    }

    /// Counters so far.
    pub fn stats(&self) -> &DetectorStats {
        &self.stats
    }

    /// Bytes the DNS checks hold (names asked, DGA-flagged names, resolvers, answers), counted
    /// as names plus a fixed overhead per entry; never above
    /// [`reputation::DNS_TRACKED_BYTES_BOUND`] whatever a DNS flood sends.
    pub fn dns_tracked_bytes(&self) -> usize {
        self.dns.tracked_bytes()
            + self.answers.len() * reputation::ENTRY_OVERHEAD
            + self.answers.values().map(String::len).sum::<usize>()
    }

    /// Entries the DNS tables dropped to stay within their bounds.
    pub fn dns_evicted(&self) -> u64 {
        self.dns.evicted() + self.answers.evicted()
    }

    /// Pipes the download- and decode-and-execute check holds (at most 4,096), and how many it
    /// dropped to stay within that bound.
    pub fn pipes_tracked(&self) -> (usize, u64) {
        (self.pipes.len(), self.pipes.evicted())
    }

    /// Every table the detector keeps, against its bounds (the health summary).
    pub fn tracked(&self) -> Vec<crate::tracked::TrackedTable> {
        use crate::tracked::TrackedTable;
        vec![
            TrackedTable::by_entries(
                "detectorProcesses",
                self.procs.len() as u64,
                self.config.max_processes as u64,
                self.stats.processes_shed,
            ),
            TrackedTable::by_entries(
                "processParents",
                self.parents.len() as u64,
                self.config.max_processes as u64,
                self.stats.parents_shed,
            ),
            TrackedTable::by_entries(
                "findings",
                self.aggregates.len() as u64,
                self.config.max_aggregates as u64,
                self.stats.findings_shed,
            ),
            TrackedTable::by_entries(
                "pipes",
                self.pipes.len() as u64,
                pipes::MAX_PIPES as u64,
                self.pipes.evicted(),
            ),
            TrackedTable::by_entries(
                "downloaders",
                self.pipes.downloaders().0 as u64,
                pipes::MAX_DOWNLOADERS as u64,
                self.pipes.downloaders().1,
            ),
            TrackedTable::by_entries(
                "inlinePrograms",
                self.pipes.inline().0 as u64,
                pipes::MAX_INLINE as u64,
                self.pipes.inline().1,
            ),
            TrackedTable::by_entries(
                "capturedDownloads",
                self.pipes.captured().0 as u64,
                pipes::MAX_CAPTURED as u64,
                self.pipes.captured().1,
            ),
            TrackedTable::by_entries(
                "sourcedScripts",
                self.sourced.held().0 as u64,
                sourced::MAX_HELD as u64,
                self.sourced.held().1,
            ),
            TrackedTable::by_entries(
                "portScans",
                self.scans.tracked().0 as u64,
                scan::MAX_SCANNERS as u64,
                self.scans.tracked().1,
            ),
            TrackedTable::by_entries(
                "stdioSockets",
                self.stdio_dups.tracked().0 as u64,
                stdio_dup::MAX_DUPERS as u64,
                self.stdio_dups.tracked().1,
            ),
            TrackedTable::by_entries(
                "commandLoops",
                self.command_loops.tracked().0 as u64,
                command_loop::MAX_CONNECTED as u64,
                self.command_loops.tracked().1,
            ),
            TrackedTable::by_entries(
                "evaluatingShells",
                self.eval_shells.tracked().0 as u64,
                evaluated::MAX_SHELLS as u64,
                self.eval_shells.tracked().1,
            ),
            TrackedTable::by_entries(
                "networkServers",
                self.servers.tracked().0 as u64,
                served::MAX_SERVERS as u64,
                self.servers.tracked().1,
            ),
            TrackedTable::by_entries(
                "killPipes",
                self.kill_pipes.tracked().0 as u64,
                competitor::MAX_PIPES as u64,
                self.kill_pipes.tracked().1,
            ),
            TrackedTable {
                table: "dns",
                entries: self.dns.len() as u64 + self.answers.len() as u64,
                max_entries: reputation::DNS_TRACKED_ENTRIES_BOUND as u64,
                bytes: Some(self.dns_tracked_bytes() as u64),
                max_bytes: Some(reputation::DNS_TRACKED_BYTES_BOUND as u64),
                shed: self.dns_evicted(),
            },
        ]
    }

    /// The exec rules in use.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// The exec rules in use, shared (the pipeline reads script operands with them).
    pub fn shared_rules(&self) -> Arc<RuleSet> {
        Arc::clone(&self.rules)
    }

    /// The threat intelligence it reads (reload it in place: the next event sees the new one).
    pub fn intel(&self) -> &Arc<SharedIntel> {
        &self.intel
    }

    /// The sensitive-path set file findings are classified with: the one the file sensor
    /// reports from (the built-in set unless replaced), so categories agree.
    pub fn with_sensitive_paths(mut self, sensitive: SensitivePaths) -> Self {
        self.sensitive = sensitive;
        self
    }

    /// The SHA-256 of the installed programs the exec rules name, each with its name
    /// (`crate::tool_hashes::installed` computes them at start): an executable with those
    /// bytes matches the rules for that name whatever it is called.
    pub fn with_tool_hashes(mut self, hashes: HashMap<crate::exe_hash::Digest, String>) -> Self {
        self.tool_hashes = hashes;
        self
    }

    /// Replaces the suppression rules (a reloaded file); findings raised later use them.
    pub fn set_suppression(&mut self, rules: Vec<CompiledRule>) {
        self.suppression = rules;
    }

    /// Looks at one event and returns the findings it raised or repeated.
    pub fn process(&mut self, event: &Event, lookup: &dyn ProcessLookup) -> Vec<Outcome> {
        self.stats.events += 1;
        let candidates = match event {
            Event::Exec(e) => {
                let remembered = Remembered {
                    start_time_ns: e.process.start_time_ns,
                    uid: e.process.uid,
                    euid: e.process.euid,
                    exe: Some(e.exe.clone()),
                    exec_path: Some(crate::event::normalize(&crate::event::resolve_exe(
                        &e.filename,
                        e.cwd.as_deref(),
                    ))),
                    sha256: e.sha256,
                    cwd: e.cwd.clone(),
                    lineage: e.lineage.clone(),
                    uuid: e.process.uuid.clone(),
                };
                // The image this process ran before the exec, when the detector saw it exec
                // (a re-exec in place, `perl -e 'exec "/bin/sh"'`); a fork's first exec has
                // none here (its parent is in the lineage).
                let previous = self
                    .procs
                    .get(&e.process.pid)
                    .filter(|r| r.start_time_ns == e.process.start_time_ns)
                    .and_then(|r| r.exe.clone());
                // What the old image held is judged as it: before it is forgotten.
                let mut held = std::mem::take(&mut self.sourced);
                let judged = sourced::on_exec(self, &mut held, &self.pipes, e, lookup);
                self.sourced = held;
                self.remember(e.process.pid, remembered);
                let mut found = exec::check(self, e, lookup);
                found.extend(exec::check_script_lines(self, e, lookup));
                found.extend(judged);
                found.extend(behaviour::check_exec(self, e, lookup));
                found.extend(technique::check_exec(self, e, previous.as_deref(), lookup));
                let mut table = std::mem::take(&mut self.pipes);
                found.extend(pipes::check_exec(self, &mut table, e, lookup));
                self.pipes = table;
                let mut kills = std::mem::take(&mut self.kill_pipes);
                found.extend(competitor::check_exec(self, &mut kills, e, lookup));
                self.kill_pipes = kills;
                found.extend(stdio_dup::check_exec(
                    self,
                    &self.stdio_dups,
                    e,
                    previous.as_deref(),
                    lookup,
                ));
                // The new image did not put those sockets there.
                self.stdio_dups.forget(e.process.pid);
                found.extend(command_loop::check_exec(
                    self,
                    &self.command_loops,
                    e,
                    lookup,
                ));
                self.command_loops.forget(e.process.pid);
                found.extend(evaluated::check_exec(self, &self.eval_shells, e, lookup));
                let mut evals = std::mem::take(&mut self.eval_shells);
                evals.on_exec(self, e);
                self.eval_shells = evals;
                // The new image has accepted nothing yet.
                self.servers.forget(e.process.pid);
                found
            }
            Event::Fork(f) => {
                // The parent: so ancestors of later execs have uid and start time.
                if !self.procs.contains_key(&f.process.pid) {
                    let r = remembered_from_ref(&f.process);
                    self.remember(f.process.pid, r);
                }
                if self.parents.len() >= self.config.max_processes
                    && let Some(&victim) = self.parents.keys().next()
                {
                    self.parents.remove(&victim);
                    self.stats.parents_shed += 1;
                }
                self.parents.insert(f.child_pid, f.process.pid);
                let mut held = std::mem::take(&mut self.sourced);
                let found = sourced::on_fork(self, &mut held, &self.pipes, f, lookup);
                self.sourced = held;
                found
            }
            Event::Exit(x) => {
                let mut held = std::mem::take(&mut self.sourced);
                let found = sourced::on_exit(self, &mut held, &self.pipes, x.process.pid, lookup);
                self.sourced = held;
                // A process' events all come before its exit: forget it, so the tables hold
                // live processes only.
                self.dns.forget(x.process.pid);
                self.scans.forget(x.process.pid);
                self.stdio_dups.forget(x.process.pid);
                self.command_loops.forget(x.process.pid);
                self.eval_shells.forget(x.process.pid);
                self.servers.forget(x.process.pid);
                self.parents.remove(&x.process.pid);
                if self
                    .procs
                    .get(&x.process.pid)
                    .is_some_and(|r| r.start_time_ns == x.process.start_time_ns)
                {
                    self.procs.remove(&x.process.pid);
                }
                found
            }
            Event::Connect(n) => {
                let mut found = reputation::check_connect(self, n, lookup);
                found.extend(behaviour::check_connect(self, n, lookup));
                found.extend(scan::check_connect(self, n, lookup));
                // Borrowed, not cloned: this runs for every connect.
                let exe = self
                    .procs
                    .get(&n.process.pid)
                    .filter(|r| r.uuid.is_empty() || r.uuid == n.process.uuid)
                    .and_then(|r| r.exe.as_deref());
                self.command_loops
                    .on_connect(self.rules.behaviour(), n, exe);
                if self.pipes.runs_inline(n.process.pid) {
                    let mut table = std::mem::take(&mut self.pipes);
                    found.extend(pipes::check_connect(self, &mut table, n, lookup));
                    self.pipes = table;
                }
                found
            }
            // Only a scan reads how a handshake ended; the connect itself was judged already.
            Event::ConnectOutcome(n) => scan::check_connect(self, n, lookup).into_iter().collect(),
            Event::Accept(n) => {
                // Known from its exec, else from the pipeline's table (a server started
                // before the agent).
                let exe = self
                    .procs
                    .get(&n.process.pid)
                    .filter(|r| r.uuid.is_empty() || r.uuid == n.process.uuid)
                    .and_then(|r| r.exe.clone())
                    .or_else(|| {
                        lookup
                            .get(n.process.pid)
                            .filter(|k| k.start_time_ns == n.process.start_time_ns)
                            .and_then(|k| k.exe)
                    });
                self.servers
                    .on_accept(self.rules.behaviour(), n, exe.as_deref());
                reputation::check_accept(self, n, lookup)
            }
            Event::Dns(d) => reputation::check_dns(self, d, lookup),
            Event::Stream(s) => stratum::check_stream(self, s, lookup),
            Event::File(f) if matches!(f.operation, "openScript" | "redirect") => {
                // A shell reading a file, not a change to it: only the sourcing check reads it.
                let mut held = std::mem::take(&mut self.sourced);
                let found = sourced::on_file(self, &mut held, &self.pipes, f, lookup);
                self.sourced = held;
                found
            }
            Event::File(f) => {
                let mut found = Vec::new();
                // A container's own file, changed from the host (an image unpacked, a container
                // removed): not the host's file of that name. A move or link out of the layers
                // onto a host path is still judged.
                let container_file = f
                    .resolved_path
                    .as_deref()
                    .is_some_and(technique::in_container_layers)
                    && (f.operation == "symlink"
                        || f.resolved_path2
                            .as_deref()
                            .is_none_or(technique::in_container_layers));
                if !container_file {
                    found.extend(behaviour::check_file(self, f, lookup));
                    found.extend(technique::check_file(self, f, lookup));
                }
                found.extend(selfprotect::check_file(self, f, lookup));
                found
            }
            Event::Activity(a) => {
                self.stdio_dups.on_activity(a);
                let mut found = behaviour::check_activity(self, a, lookup);
                found.extend(selfprotect::check_activity(self, a, lookup));
                found.extend(technique::check_activity(self, a, lookup));
                found.extend(exec::check_uid_change(self, a, lookup));
                found
            }
        };
        if candidates.is_empty() {
            return Vec::new();
        }
        let time = event_time(event);
        let occurrences = occurrences(event);
        let mut candidates = candidates;
        let raised = candidates.len();
        candidates.retain(|c| !self.config.disabled_types.contains(&c.finding_type));
        self.stats.disabled_skipped += (raised - candidates.len()) as u64;
        candidates
            .into_iter()
            .map(|c| self.aggregate(c, time, occurrences))
            .collect()
    }

    fn remember(&mut self, pid: u32, r: Remembered) {
        if self.procs.len() >= self.config.max_processes && !self.procs.contains_key(&pid) {
            // Forget an arbitrary entry: the pipeline's table is the complete one; this is
            // only the fast path for recent execs.
            if let Some(&victim) = self.procs.keys().next() {
                self.procs.remove(&victim);
                self.stats.processes_shed += 1;
            }
        }
        self.procs.insert(pid, r);
    }

    /// The acting process as a finding's `process`.
    pub(crate) fn process_details(
        &self,
        p: &ProcessRef,
        lookup: &dyn ProcessLookup,
    ) -> ProcessDetails {
        let remembered = self
            .procs
            .get(&p.pid)
            .filter(|r| r.start_time_ns == p.start_time_ns);
        let looked_up = || {
            lookup
                .get(p.pid)
                .filter(|k| k.start_time_ns == p.start_time_ns)
        };
        let (exe, sha256, cwd, lineage) = match remembered {
            Some(r) => (
                r.exe.clone(),
                r.sha256.map(|d| d.to_string()),
                r.cwd.clone(),
                self.lineage_entries(&r.lineage, lookup),
            ),
            None => match looked_up() {
                Some(k) => (
                    k.exe.clone(),
                    k.sha256.clone(),
                    k.cwd.clone(),
                    self.lineage_entries(&self.walk_lineage(k.ppid, lookup), lookup),
                ),
                None => (None, None, None, Vec::new()),
            },
        };
        ProcessDetails {
            name: p.comm.clone(),
            executable_path: exe.map(|e| e.display().to_string()).unwrap_or_default(),
            executable_sha256: sha256,
            pid: p.pid,
            namespace_pid: None,
            uid: p.uid,
            euid: p.euid,
            user: self.config.users.get(&p.uid).cloned(),
            pwd: cwd.map(|c| c.display().to_string()),
            start_time: Time(self.wall(p.start_time_ns)),
            uuid: p.uuid.clone(),
            parent_uuid: lineage.first().map(|a| a.uuid.clone()),
            lineage,
        }
    }

    /// Ancestors from the lookup, parent first (for processes whose exec was not seen).
    fn walk_lineage(&self, mut pid: u32, lookup: &dyn ProcessLookup) -> Vec<Ancestor> {
        let mut out = Vec::new();
        while pid != 0 && out.len() < crate::pipeline::LINEAGE_DEPTH {
            let Some(k) = lookup.get(pid) else { break };
            out.push(Ancestor {
                pid: k.pid,
                ppid: k.ppid,
                comm: k.comm.clone(),
                exe: k.exe.clone(),
                uuid: proctable::process_uuid(&self.config.boot_id, k.pid, k.start_time_ns),
            });
            if k.ppid == pid {
                break;
            }
            pid = k.ppid;
        }
        out
    }

    fn lineage_entries(
        &self,
        ancestors: &[Ancestor],
        lookup: &dyn ProcessLookup,
    ) -> Vec<LineageEntry> {
        ancestors
            .iter()
            .enumerate()
            .map(|(i, a)| {
                // uid, euid and start time of an ancestor: from its exec or fork seen here, or
                // the pipeline's table; u32::MAX and the epoch when neither knows it.
                let known = self
                    .procs
                    .get(&a.pid)
                    .filter(|r| r.uuid.is_empty() || r.uuid == a.uuid)
                    .map(|r| (r.uid, r.euid, r.start_time_ns))
                    .or_else(|| lookup.get(a.pid).map(|k| (k.uid, k.euid, k.start_time_ns)));
                let (uid, euid, start) = known.unwrap_or((u32::MAX, u32::MAX, 0));
                LineageEntry {
                    name: a.comm.clone(),
                    executable_path: a
                        .exe
                        .as_ref()
                        .map(|e| e.display().to_string())
                        .unwrap_or_default(),
                    pid: a.pid,
                    namespace_pid: None,
                    uid,
                    euid,
                    start_time: Time(if known.is_some() {
                        self.wall(start)
                    } else {
                        Timestamp::UNIX_EPOCH
                    }),
                    uuid: a.uuid.clone(),
                    parent_uuid: ancestors.get(i + 1).map(|p| p.uuid.clone()),
                }
            })
            .collect()
    }

    fn wall(&self, boot_ns: u64) -> Timestamp {
        let wall = self.clock.wall(boot_ns);
        Timestamp::try_from(wall).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    /// The finding id for a key: stable across restarts, so the store merges repeats. The
    /// resource counts by identity (the container id, else the host), not by display name, which
    /// gains pod and container names once the pod watch knows them.
    fn finding_id(&self, finding_type: FindingType, resource: &Resource, key: &str) -> String {
        let mut h = Sha256::new();
        h.update(finding_type.as_str().as_bytes());
        h.update([0]);
        match &resource.container {
            Some(c) => h.update(c.id.as_bytes()),
            None => h.update(resource.host.hostname.as_bytes()),
        }
        h.update([0]);
        h.update(key.as_bytes());
        h.finalize()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The host, and the container when the process runs in one: its name and image from the
    /// runtime's state where the node could read it (else the short id stands for the name),
    /// the pod's name and namespace from CRI annotations; the enricher (cluster mode) adds what
    /// the API server knows.
    fn resource_for(&self, container: Option<&crate::container::Container>) -> Resource {
        let Some(c) = container else {
            return self.resource.clone();
        };
        let described = c.described.as_deref();
        let image = described.and_then(|d| d.image.clone());
        let details = ContainerDetails {
            name: described
                .and_then(|d| d.name.clone())
                .unwrap_or_else(|| c.id.chars().take(12).collect()),
            id: c.id.clone(),
            image_prefix: image.as_deref().map(crate::container::image_prefix),
            image,
            container_runtime: Some(
                match c.runtime {
                    Runtime::Docker => "docker",
                    Runtime::Containerd => "containerd",
                    Runtime::Crio => "cri-o",
                    Runtime::Podman => "podman",
                }
                .to_owned(),
            ),
            privileged: described.and_then(|d| d.privileged),
            image_id: None,
            allow_privilege_escalation: None,
        };
        let pod = described.and_then(|d| {
            Some(PodDetails {
                name: d.pod_name.clone()?,
                namespace: d.pod_namespace.clone()?,
                uid: c.pod_uid.clone(),
                ..PodDetails::default()
            })
        });
        let mut resource = Resource {
            display_name: Resource::display_name_for(
                &self.config.host,
                Some(&details),
                pod.as_ref(),
            ),
            host: self.config.host.clone(),
            container: Some(details),
            pod,
        };
        if let Some(enrich) = &self.enricher {
            enrich(&mut resource, c.pod_uid.as_deref());
        }
        resource
    }

    /// Adds `occurrences` of a candidate (more than one for a record that carries repeats the
    /// kernel counted) to its finding.
    fn aggregate(&mut self, mut c: Candidate, time: Timestamp, occurrences: u64) -> Outcome {
        let resource = self.resource_for(c.container.as_ref());
        if let Some(uid) = c.container.as_ref().and_then(|k| k.pod_uid.clone()) {
            c.context.additional.insert("podUid".into(), uid);
        }
        let id = self.finding_id(c.finding_type, &resource, &c.key);
        if let Some(existing) = self.aggregates.get_mut(&id) {
            existing.count += occurrences;
            if time > existing.event_last_seen.0 {
                existing.event_last_seen = Time(time);
                existing.updated_at = Time(time);
            }
            let mut finding = existing.clone();
            self.stats.repeats += 1;
            let archived_by = if finding.archived {
                None
            } else {
                self.suppress(&mut finding)
            };
            if let Some(slot) = self.aggregates.get_mut(&id) {
                slot.archived = finding.archived;
            }
            return Outcome {
                finding,
                new: false,
                archived_by,
            };
        }
        let severity = c.severity.clamp(1.0, 10.0);
        let mut finding = Finding {
            id: id.clone(),
            schema_version: SCHEMA_VERSION.to_owned(),
            finding_type: c.finding_type.as_str().to_owned(),
            title: c.title,
            description: c.description,
            severity,
            severity_label: SeverityLabel::from_score(severity).unwrap_or(SeverityLabel::Medium),
            created_at: Time(time),
            updated_at: Time(time),
            resource,
            resource_role: c.role,
            count: occurrences,
            event_first_seen: Time(time),
            event_last_seen: Time(time),
            process: c.process,
            context: c.context,
            network: c.network,
            dns: c.dns,
            evidence: (!c.evidence.is_empty()).then_some(Evidence {
                threat_intelligence_details: c.evidence,
            }),
            archived: false,
            actions_taken: Vec::new(),
        };
        let archived_by = self.suppress(&mut finding);
        self.stats.new_findings += 1;
        if self.aggregates.len() >= self.config.max_aggregates
            && let Some(oldest) = self.aggregate_order.pop_front()
        {
            self.aggregates.remove(&oldest);
            self.stats.findings_shed += 1;
        }
        self.aggregates.insert(id.clone(), finding.clone());
        self.aggregate_order.push_back(id);
        Outcome {
            finding,
            new: true,
            archived_by,
        }
    }

    /// Marks the finding archived when an ARCHIVE rule matches; returns the rule's name.
    fn suppress(&mut self, finding: &mut Finding) -> Option<String> {
        if self.suppression.is_empty() {
            return None;
        }
        let json = serde_json::to_value(&*finding).ok()?;
        let eval = vigil_crds::suppression::archived_set(&self.suppression, [("f", &json)]);
        let rule = eval.archived.into_iter().next()?.rule;
        debug_assert!(
            self.suppression
                .iter()
                .any(|r| r.name() == rule && r.action() == SuppressionAction::Archive)
        );
        finding.archived = true;
        self.stats.archived += 1;
        Some(rule)
    }
}

fn remembered_from_ref(p: &ProcessRef) -> Remembered {
    Remembered {
        start_time_ns: p.start_time_ns,
        uid: p.uid,
        euid: p.euid,
        exe: None,
        exec_path: None,
        sha256: None,
        cwd: None,
        lineage: Vec::new().into(),
        uuid: p.uuid.clone(),
    }
}

/// When the event happened (its `time`), or now for an event that does not say.
/// How many occurrences one event stands for: a connect or accept record also carries the
/// identical ones the kernel counted instead of sending (`NetInfo::repeats`).
pub(crate) fn occurrences(event: &Event) -> u64 {
    match event {
        Event::Connect(n) | Event::Accept(n) => 1 + u64::from(n.repeats),
        _ => 1,
    }
}

fn event_time(event: &Event) -> Timestamp {
    let text = match event {
        Event::Exec(e) => Some(e.time.as_str()),
        Event::Fork(e) => Some(e.time.as_str()),
        Event::Exit(e) => Some(e.time.as_str()),
        Event::Connect(e) | Event::ConnectOutcome(e) | Event::Accept(e) => Some(e.time.as_str()),
        Event::Dns(e) => Some(e.time.as_str()),
        Event::Stream(e) => Some(e.time.as_str()),
        Event::File(e) => Some(e.time.as_str()),
        Event::Activity(e) => Some(e.time.as_str()),
    };
    text.and_then(|t| t.parse().ok())
        .unwrap_or_else(Timestamp::now)
}

/// The basename of a path as text.
pub(crate) fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The basename of a path.
pub(crate) fn path_basename(path: &Path) -> &str {
    path.file_name().and_then(|n| n.to_str()).unwrap_or("")
}
