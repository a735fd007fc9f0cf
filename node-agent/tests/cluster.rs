//! The agent in cluster mode, as a separate process, against the mock API server
//! (`support/mock_api.rs`): real eBPF sensors, real behaviours on this host, the Kubernetes API
//! faked. Needs root (the agent loads eBPF programs); under `CI` a non-root run fails.
//!
//! - A pod's container is a real cgroup made here, named the way containerd names it under the
//!   kubelet's `kubepods` hierarchy, and the behaviour runs inside it: the finding lands in the
//!   pod's namespace with the pod, workload and container details from the pod watch; repeats
//!   are one object with a growing count; an Event goes to the pod only at or above the policy's
//!   threshold, which changes live with the configuration file; a SuppressionRule archives.
//! - The API answers 500s and 429s for a while, and the agent is killed and restarted with a
//!   spool that is not empty: every finding arrives, in order.
//! - Sensors that cannot start: the Lease says so, with the reason.
//! - A SuppressionRule created while the agent runs (the watch, no restart) archives the
//!   findings raised after it, and once deleted archives no more.
//! - A policy threat list that gains an address while the agent runs: a real TCP connect to it
//!   raises the list's C&C finding. Detection does not skip loopback destinations, so listed
//!   addresses are 127.x ones no other test uses, with a listener made here.
//! - The per-node cap on new findings: the finding over it waits, is counted in the Lease and is
//!   still printed by the agent; a graceful stop spools the held finding and the next agent on
//!   the node publishes it.

mod support;

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use k8s_openapi::api::{coordination::v1::Lease, core::v1::Pod, events::v1::Event};
use node_agent::collector::{root_or_skip, unique_name};
use serde_json::{Value, json};
use support::mock_api::{Fault, MockApi};
use vigil_crds::{
    agent_config::{AgentConfig, HeartbeatConfig, ListFile},
    finding::{RuntimeFinding, SeverityLabel},
    lease::{AgentHealth, HEALTH_ANNOTATION, PublishingHealth, lease_name},
    suppression_rule::SuppressionRule,
};

const AGENT: &str = env!("CARGO_BIN_EXE_node-agent");
const TRIGGER: &str = env!("CARGO_BIN_EXE_vigil-trigger");
const NODE: &str = "test-node";
const AGENT_NS: &str = "vigil-system";
/// Generous: on a busy 2-core machine several agents verify their programs at once, which alone
/// can take tens of seconds; a passing run returns as soon as the condition holds.
const WAIT: Duration = Duration::from_secs(240);
const TOOL: &str = "Execution:Runtime/SuspiciousTool";
/// What a connect to an address on a policy IP list raises (`cluster::config::feeds_for`).
const CC: &str = "Backdoor:Runtime/C&CActivity.B";
/// Where the Events about host findings go (they regard the Node).
const NODE_EVENTS_NS: &str = "default";

/// A directory of its own per test, removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(unique_name(test));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// A copy of `/bin/true` named `name`: the rules know tools by their executable's name.
    /// Made before the agent starts, so running it is not also a newly written binary.
    /// `name` may have directories in it, made here.
    fn tool(&self, name: &str) -> PathBuf {
        self.copy_of("/bin/true", name)
    }

    /// A copy of `vigil-trigger` named `name`, to make connects from an executable of this
    /// test's own (findings are told apart by it); made before the agent starts, as `tool`.
    fn trigger(&self, name: &str) -> PathBuf {
        self.copy_of(TRIGGER, name)
    }

    fn copy_of(&self, from: &str, name: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::copy(from, &path).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config(event_min_severity: SeverityLabel) -> AgentConfig {
    AgentConfig {
        policy: "test-policy".into(),
        enabled_finding_types: vec![],
        event_min_severity,
        publishing_frequency_seconds: 1,
        heartbeat: HeartbeatConfig {
            namespace: AGENT_NS.into(),
            lease_duration_seconds: 30,
            renew_interval_seconds: 1,
        },
        threat_intel_lists: vec![],
        trusted_ip_lists: vec![],
        integrations: None,
        response: None,
    }
}

fn write_config(dir: &Path, config: &AgentConfig) -> PathBuf {
    let path = dir.join("agent.yaml");
    // Replace atomically, as the kubelet does with a mounted ConfigMap.
    let tmp = dir.join("agent.yaml.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(config).unwrap()).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    path
}

/// The agent process, killed (SIGKILL) when dropped.
struct Agent {
    child: Child,
    stderr: PathBuf,
    stdout: PathBuf,
}

impl Agent {
    fn start(api: &MockApi, dir: &Path, extra: &[&str]) -> Self {
        let kubeconfig = api.kubeconfig(dir);
        // Built-in intel off: the tests do not need it, and loading it takes a while.
        let intel = dir.join("intel.yaml");
        std::fs::write(&intel, "builtin: false\n").unwrap();
        let run = std::fs::read_dir(dir).unwrap().count();
        let stderr = dir.join(format!("agent-{run}.stderr"));
        let stdout = dir.join(format!("agent-{run}.stdout"));
        let child = Command::new(AGENT)
            .args(["run", "--mode", "kubernetes", "--findings-only", "--config"])
            .arg(dir.join("agent.yaml"))
            .arg("--state-dir")
            .arg(dir.join("state"))
            .arg("--intel-config")
            .arg(&intel)
            .args(extra)
            .env("KUBECONFIG", kubeconfig)
            .env("NODE_NAME", NODE)
            .env("POD_NAME", "vigil-agent-test")
            .env("RUST_LOG", "info")
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        Self {
            child,
            stderr,
            stdout,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Every finding the agent printed so far (`--findings-only`: one JSON object a line).
    fn printed_findings(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.stdout)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .collect()
    }

    /// Tool findings for executables under `dir` the agent printed (`--findings-only`).
    fn printed(&self, dir: &Path) -> usize {
        self.printed_findings()
            .iter()
            .filter(|f| {
                f["type"] == TOOL
                    && f.pointer("/process/executablePath")
                        .and_then(Value::as_str)
                        .is_some_and(|e| Path::new(e).starts_with(dir))
            })
            .count()
    }

    /// The C&C finding for a connect to `ip` the agent printed, if it did.
    fn printed_cc(&self, ip: &str) -> Option<Value> {
        self.printed_findings()
            .into_iter()
            .find(|f| f["type"] == CC && f.pointer("/network/remoteIp") == Some(&json!(ip)))
    }

    /// How many lines of the agent's log contain `text`.
    fn log_count(&self, text: &str) -> usize {
        self.log().lines().filter(|l| l.contains(text)).count()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `check` every 50 ms until it gives `Some` or `WAIT` passes; the failure message says
/// what did not happen and shows the agent's log.
fn wait_for<T>(what: &str, agent: &Agent, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: did not happen within {WAIT:?}; agent log:\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn health(api: &MockApi) -> Option<AgentHealth> {
    let lease: Lease = api.get(Some(AGENT_NS), &lease_name(NODE))?;
    serde_json::from_str(lease.metadata.annotations?.get(HEALTH_ANNOTATION)?).ok()
}

/// Waits until the agent's Lease says its sensors run.
fn wait_running(api: &MockApi, agent: &Agent) -> AgentHealth {
    wait_for("a heartbeat Lease with running sensors", agent, || {
        health(api).filter(|h| h.sensors_running && !h.active_hooks.is_empty())
    })
}

fn findings(api: &MockApi, namespace: &str) -> Vec<RuntimeFinding> {
    api.list(Some(namespace))
}

fn tool_finding(api: &MockApi, namespace: &str, exe: &Path) -> Option<RuntimeFinding> {
    findings(api, namespace).into_iter().find(|f| {
        f.spec.finding_type == TOOL
            && f.spec
                .process
                .as_ref()
                .is_some_and(|p| p.executable_path == exe.display().to_string())
    })
}

/// A cgroup that looks like a containerd container of pod `uid` under the kubelet's systemd
/// hierarchy, removed when dropped.
struct ContainerCgroup {
    leaf: PathBuf,
    created: Vec<PathBuf>,
}

impl ContainerCgroup {
    fn new(pod_uid: &str, container_id: &str) -> Self {
        let root = node_agent::sensor::cgroup2_root().expect("a cgroup v2 mount");
        let pod = format!("kubepods-besteffort-pod{}.slice", pod_uid.replace('-', "_"));
        let mut path = root.clone();
        let mut created = Vec::new();
        for part in [
            "kubepods.slice",
            "kubepods-besteffort.slice",
            pod.as_str(),
            &format!("cri-containerd-{container_id}.scope"),
        ] {
            path.push(part);
            if !path.exists() {
                std::fs::create_dir(&path).unwrap();
                created.push(path.clone());
            }
        }
        Self {
            leaf: path,
            created,
        }
    }

    /// Runs `program` inside the cgroup (the shell moves itself in, then execs) and waits.
    fn run(&self, program: &Path) {
        let script = format!(
            "echo $$ > '{}/cgroup.procs' && exec '{}' -sS 127.0.0.1",
            self.leaf.display(),
            program.display()
        );
        let status = Command::new("/bin/sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "{script}");
    }
}

impl Drop for ContainerCgroup {
    fn drop(&mut self) {
        for dir in self.created.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

fn run(program: &Path) {
    let status = support::spawn::spawn(Command::new(program).args(["-sS", "127.0.0.1"]))
        .and_then(|mut child| child.wait())
        .unwrap();
    assert!(status.success());
}

const POD_UID: &str = "5f0c1c0e-7b1a-4d2b-9c3e-0a1b2c3d4e5f";

fn pod(container_id: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": "web-7d4b9c6f5d-x2x9q", "namespace": "shop", "uid": POD_UID,
            "labels": {"app": "web", "pod-template-hash": "7d4b9c6f5d"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": "web-7d4b9c6f5d", "uid": "rs-uid", "controller": true}]
        },
        "spec": {
            "nodeName": NODE, "serviceAccountName": "web-sa",
            "containers": [{"name": "app", "image": "registry.example/shop/web:1.2",
                "securityContext": {"privileged": false, "allowPrivilegeEscalation": true}}],
            "volumes": [{"name": "logs", "hostPath": {"path": "/var/log"}}]
        },
        "status": {
            "phase": "Running",
            "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0,
                "image": "registry.example/shop/web:1.2",
                "imageID": "registry.example/shop/web@sha256:0123456789abcdef",
                "containerID": format!("containerd://{container_id}")}]
        }
    }))
    .unwrap()
}

/// The Events about scanner tools in `namespace`. The test's programs live in the temporary
/// directory, so they also raise "ran from a world-writable directory"; those Events are not
/// what these tests count.
fn events(api: &MockApi, namespace: &str) -> Vec<Event> {
    api.list::<Event>(Some(namespace))
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("ExecutionRuntimeSuspiciousTool"))
        .collect()
}

#[test]
fn pod_findings_carry_workload_context_repeat_as_one_object_and_raise_events_by_threshold() {
    if !root_or_skip("pod_findings_carry_workload_context") {
        return;
    }
    let scratch = Scratch::new("vigil-cluster-pod");
    let dir = &scratch.0;
    let container_id = format!("{:0>64}", format!("{:x}", std::process::id()));
    let api = MockApi::start();
    api.put(&pod(&container_id));
    api.put_json(
        "suppressionrules.vigil.dev",
        json!({"apiVersion": "vigil.dev/v1alpha1", "kind": "SuppressionRule",
            "metadata": {"name": "accept-crackers"},
            "spec": {"description": "the red team", "action": "ARCHIVE",
                "criteria": {"criterion": {"context.toolName": {"equals": ["password cracker"]}}}}}),
    );
    write_config(dir, &config(SeverityLabel::Low));
    let cgroup = ContainerCgroup::new(POD_UID, &container_id);
    let [nmap, john, masscan, nikto] =
        ["nmap", "john", "masscan", "nikto"].map(|t| scratch.tool(t));
    let agent = Agent::start(&api, dir, &[]);
    wait_running(&api, &agent);

    cgroup.run(&nmap);
    let found = wait_for("a RuntimeFinding in the pod's namespace", &agent, || {
        tool_finding(&api, "shop", &nmap)
    });
    let resource = &found.spec.resource;
    assert_eq!(resource.display_name, "shop/web-7d4b9c6f5d-x2x9q/app");
    let p = resource.pod.as_ref().expect("pod details");
    assert_eq!(p.uid.as_deref(), Some(POD_UID));
    assert_eq!(p.labels.get("app").map(String::as_str), Some("web"));
    let workload = p.workload.as_ref().expect("workload");
    assert_eq!(
        (workload.kind.as_str(), workload.name.as_str()),
        ("Deployment", "web")
    );
    assert_eq!(p.service_account_name.as_deref(), Some("web-sa"));
    assert_eq!(p.host_path_volumes, vec!["/var/log".to_owned()]);
    let c = resource.container.as_ref().expect("container details");
    assert_eq!(c.name, "app");
    assert_eq!(c.id, container_id);
    assert_eq!(c.image.as_deref(), Some("registry.example/shop/web:1.2"));
    assert_eq!(
        c.image_id.as_deref(),
        Some("registry.example/shop/web@sha256:0123456789abcdef")
    );
    assert_eq!(c.allow_privilege_escalation, Some(true));
    assert_eq!(resource.host.node_name.as_deref(), Some(NODE));

    // Repeats: the same object, its count growing (published at most once a second).
    cgroup.run(&nmap);
    cgroup.run(&nmap);
    let counted = wait_for(
        "the count of the repeated finding reaching 3",
        &agent,
        || tool_finding(&api, "shop", &nmap).filter(|f| f.spec.count >= 3),
    );
    assert_eq!(counted.metadata.name, found.metadata.name);
    let same_type = findings(&api, "shop")
        .into_iter()
        .filter(|f| tool_finding_exe(f) == Some(nmap.display().to_string()))
        .count();
    assert_eq!(same_type, 1, "repeats are one object");

    // One Event, on the pod, for the finding (Medium >= Low).
    let event = wait_for("an Event on the pod", &agent, || {
        events(&api, "shop").into_iter().next()
    });
    let regarding = event.regarding.as_ref().unwrap();
    assert_eq!(regarding.kind.as_deref(), Some("Pod"));
    assert_eq!(regarding.name.as_deref(), Some("web-7d4b9c6f5d-x2x9q"));
    assert_eq!(event.type_.as_deref(), Some("Warning"));

    // Archived by the SuppressionRule: kept and marked, no Event.
    cgroup.run(&john);
    let archived = wait_for("the archived finding, marked", &agent, || {
        tool_finding(&api, "shop", &john).filter(|f| f.status.as_ref().is_some_and(|s| s.archived))
    });
    assert_eq!(
        archived.status.unwrap().archived_by.as_deref(),
        Some("accept-crackers")
    );

    // The threshold rises to Critical, live: a new Medium finding makes no Event.
    write_config(dir, &config(SeverityLabel::Critical));
    wait_for("the new configuration applied", &agent, || {
        agent
            .log()
            .matches("applied the agent configuration")
            .next()
            .map(|_| ())
    });
    cgroup.run(&masscan);
    wait_for(
        "the finding published under the new threshold",
        &agent,
        || tool_finding(&api, "shop", &masscan),
    );
    // Delivery is in order: once a later finding is in, an Event for masscan would be too.
    cgroup.run(&nikto);
    wait_for("a later finding", &agent, || {
        tool_finding(&api, "shop", &nikto)
    });
    let in_shop = events(&api, "shop");
    assert_eq!(
        in_shop.len(),
        1,
        "only the first finding reached the threshold: {in_shop:#?}"
    );
}

fn tool_finding_exe(f: &RuntimeFinding) -> Option<String> {
    (f.spec.finding_type == TOOL)
        .then(|| f.spec.process.as_ref().map(|p| p.executable_path.clone()))
        .flatten()
}

/// The executables (under `dir`) of host tool findings in the order the API server first
/// accepted them. Other tests' agents and behaviours run beside this one: they are ignored.
fn accepted_order(api: &MockApi, dir: &Path) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    for request in api.requests_matching(
        "PATCH",
        &format!("/apis/vigil.dev/v1alpha1/namespaces/{AGENT_NS}/runtimefindings/"),
    ) {
        if request.path.ends_with("/status") || !(200..300).contains(&request.status) {
            continue;
        }
        let body = request.json().unwrap_or_default();
        if body.pointer("/spec/type").and_then(Value::as_str) != Some(TOOL) {
            continue;
        }
        let exe = body
            .pointer("/spec/process/executablePath")
            .and_then(Value::as_str)
            .filter(|e| Path::new(e).starts_with(dir))
            .map(str::to_owned);
        if let Some(exe) = exe
            && !order.contains(&exe)
        {
            order.push(exe);
        }
    }
    order
}

#[test]
fn findings_survive_api_outages_and_restarts_and_arrive_in_order() {
    if !root_or_skip("findings_survive_api_outages_and_restarts") {
        return;
    }
    let scratch = Scratch::new("vigil-cluster-outage");
    let dir = &scratch.0;
    let api = MockApi::start();
    write_config(dir, &config(SeverityLabel::High));
    let tools: Vec<PathBuf> = ["nmap", "masscan", "nikto", "zmap"]
        .iter()
        .map(|t| scratch.tool(t))
        .collect();
    let mut agent = Agent::start(&api, dir, &[]);
    wait_running(&api, &agent);

    // An outage while the agent runs: 500s (kube-rs retries 429s by itself, so the client
    // sees them only as delay; both are in the mix).
    api.fail_all(500);
    run(&tools[0]);
    run(&tools[1]);
    wait_for("both findings detected", &agent, || {
        (agent.printed(dir) >= 2).then_some(())
    });
    api.clear_faults();
    api.inject(Fault::status(429).times(3));
    api.inject(Fault::status(500).times(3));
    wait_for("both findings delivered after the outage", &agent, || {
        (accepted_order(&api, dir).len() >= 2).then_some(())
    });

    // Another outage, and the agent dies before it ends: the spool on disk keeps the findings.
    api.fail_all(500);
    run(&tools[2]);
    run(&tools[3]);
    wait_for("two more findings detected", &agent, || {
        (agent.printed(dir) >= 4).then_some(())
    });
    // Spooling happens as the finding is raised; give the loop one more drain.
    std::thread::sleep(Duration::from_millis(200));
    agent.kill();
    assert_eq!(
        accepted_order(&api, dir).len(),
        2,
        "nothing got through the outage"
    );
    api.clear_faults();
    api.inject(Fault::status(500).times(2));
    let agent = Agent::start(&api, dir, &[]);
    wait_for(
        "the spooled findings delivered after the restart",
        &agent,
        || (accepted_order(&api, dir).len() >= 4).then_some(()),
    );
    let want: Vec<String> = tools.iter().map(|t| t.display().to_string()).collect();
    assert_eq!(
        accepted_order(&api, dir),
        want,
        "delivered in the order raised"
    );
    assert!(!agent.log().contains("panicked"), "{}", agent.log());
}

#[test]
fn sensors_that_cannot_start_are_reported_in_the_lease() {
    if !root_or_skip("sensors_that_cannot_start_are_reported_in_the_lease") {
        return;
    }
    let scratch = Scratch::new("vigil-cluster-fail");
    let dir = &scratch.0;
    let api = MockApi::start();
    write_config(dir, &config(SeverityLabel::High));
    let mut agent = Agent::start(&api, dir, &["--btf-path", "/nonexistent/vmlinux"]);
    let status = agent.child.wait().unwrap();
    assert!(!status.success(), "the agent cannot run without BTF");
    let log = agent.log();
    assert!(!log.contains("panicked"), "{log}");
    let h = health(&api).unwrap_or_else(|| panic!("no Lease written; agent log:\n{log}"));
    assert!(!h.sensors_running);
    let error = h.last_error.unwrap_or_default();
    assert!(error.contains("/nonexistent/vmlinux"), "{error}");
    let lease: Value = api
        .object(
            "leases.coordination.k8s.io",
            Some(AGENT_NS),
            &lease_name(NODE),
        )
        .unwrap();
    assert_eq!(lease["metadata"]["labels"]["vigil.dev/node"], NODE);
}

#[test]
fn hooks_only_the_policys_finding_types_read_are_attached() {
    if !root_or_skip("hooks_only_the_policys_finding_types_read_are_attached") {
        return;
    }
    const PTRACE: &str = "DefenseEvasion:Runtime/ProcessInjection.Ptrace";
    let scratch = Scratch::new("vigil-cluster-hooks");
    let dir = &scratch.0;
    let api = MockApi::start();
    let mut cfg = config(SeverityLabel::High);
    cfg.enabled_finding_types = vec![CC.into()];
    write_config(dir, &cfg);
    let mut agent = Agent::start(&api, dir, &[]);
    let h = wait_running(&api, &agent);
    let active = |h: &AgentHealth, hook: &str| h.active_hooks.iter().any(|a| a == hook);
    assert!(
        active(&h, "connect"),
        "C&C activity reads connects: {:?}",
        h.active_hooks
    );
    for off in ["ptrace", "vm_write", "userfaultfd", "library_load"] {
        assert!(
            !active(&h, off),
            "{off} is read by no enabled type: {:?}",
            h.active_hooks
        );
    }

    // Enabled later: said in the log; attached when the agent starts again (the operator's
    // DaemonSet restarts its agents when the enabled types change).
    cfg.enabled_finding_types = vec![CC.into(), PTRACE.into()];
    write_config(dir, &cfg);
    wait_for(
        "the log saying the new type waits for a restart",
        &agent,
        || (agent.log_count("sensors were not attached at start") > 0).then_some(()),
    );
    agent.kill();
    let agent = Agent::start(&api, dir, &[]);
    let h = wait_for("a Lease with the ptrace hook", &agent, || {
        health(&api).filter(|h| h.sensors_running && active(h, "ptrace"))
    });
    assert!(!active(&h, "library_load"), "{:?}", h.active_hooks);
}

/// The RuntimeFinding of a host tool finding for `exe`, in the agent's namespace.
fn host_tool_finding(api: &MockApi, exe: &Path) -> Option<RuntimeFinding> {
    tool_finding(api, AGENT_NS, exe)
}

/// The Event announcing the RuntimeFinding named `finding` (host findings: on the Node).
fn event_about(api: &MockApi, finding: &str) -> Option<Event> {
    events(api, NODE_EVENTS_NS).into_iter().find(|e| {
        e.related
            .as_ref()
            .is_some_and(|r| r.name.as_deref() == Some(finding))
    })
}

fn object_name(f: &RuntimeFinding) -> String {
    f.metadata.name.clone().unwrap_or_default()
}

/// Runs the probes one after the other until one's finding is (`archived`) or is not archived:
/// a rule change reaches the detector between two ring-buffer drains, so a probe run right after
/// the agent logged the change may still be judged by the old rules.
fn probe_until(api: &MockApi, agent: &Agent, probes: &[PathBuf], archived: bool) {
    for probe in probes {
        run(probe);
        let found = wait_for("a probe's finding", agent, || host_tool_finding(api, probe));
        if found.spec.archived == archived {
            return;
        }
    }
    panic!(
        "none of {} probes was judged with archived = {archived}; agent log:\n{}",
        probes.len(),
        agent.log()
    )
}

#[test]
fn a_suppression_rule_created_and_deleted_while_the_agent_runs_archives_only_meanwhile() {
    if !root_or_skip("a_suppression_rule_created_and_deleted_while_the_agent_runs") {
        return;
    }
    const RULE: &str = "accept-test-tools";
    const PROBES: usize = 5;
    let scratch = Scratch::new("vigil-cluster-rule-watch");
    let dir = &scratch.0;
    let api = MockApi::start();
    write_config(dir, &config(SeverityLabel::Low));
    // The rule matches the tools under `suppressed/`: this test's executables only.
    let before = scratch.tool("suppressed/before/nmap");
    let probes_on: Vec<PathBuf> = (0..PROBES)
        .map(|i| scratch.tool(&format!("suppressed/on-{i}/nmap")))
        .collect();
    let probes_off: Vec<PathBuf> = (0..PROBES)
        .map(|i| scratch.tool(&format!("suppressed/off-{i}/nmap")))
        .collect();
    let john = scratch.tool("suppressed/crackers/john");
    let hashcat = scratch.tool("suppressed/crackers/hashcat");
    let agent = Agent::start(&api, dir, &[]);
    wait_running(&api, &agent);
    // The watch has listed the (no) rules: the rule below comes as a watch event.
    wait_for("the initial list of SuppressionRules", &agent, || {
        (agent.log_count("suppression rules updated") > 0).then_some(())
    });

    // No rule yet: a matching tool is published as it is, and announced by an Event (Low
    // threshold), so the missing Events below are the rule's doing.
    run(&before);
    let plain = wait_for("the finding raised before the rule", &agent, || {
        host_tool_finding(&api, &before)
    });
    assert!(!plain.spec.archived, "{plain:#?}");
    assert!(!plain.status.as_ref().is_some_and(|s| s.archived));
    wait_for(
        "the Event of the finding raised before the rule",
        &agent,
        || event_about(&api, &object_name(&plain)),
    );

    // The rule is created while the agent runs.
    let seen = agent.log_count("suppression rules updated");
    let ours = format!("{}/suppressed/*", dir.display());
    api.put_json(
        "suppressionrules.vigil.dev",
        json!({"apiVersion": "vigil.dev/v1alpha1", "kind": "SuppressionRule",
            "metadata": {"name": RULE},
            "spec": {"description": "the test's own tools", "action": "ARCHIVE",
                "criteria": {"criterion": {
                    "type": {"equals": [TOOL]},
                    "process.executablePath": {"matches": [ours]}}}}}),
    );
    wait_for("the agent to see the new rule", &agent, || {
        (agent.log_count("suppression rules updated") > seen).then_some(())
    });
    probe_until(&api, &agent, &probes_on, true);
    // In force: the next matching finding is archived, marked in spec and status.
    run(&john);
    let archived = wait_for("the finding raised under the rule", &agent, || {
        host_tool_finding(&api, &john)
    });
    assert!(
        archived.spec.archived,
        "raised while the rule is in force: {archived:#?}"
    );
    let status = wait_for("the archived status of that finding", &agent, || {
        host_tool_finding(&api, &john)
            .and_then(|f| f.status)
            .filter(|s| s.archived)
    });
    assert_eq!(status.archived_by.as_deref(), Some(RULE));
    assert!(status.archived_at.is_some(), "{status:#?}");

    // The rule is deleted: matching findings raised afterwards are not archived any more.
    let seen = agent.log_count("suppression rules updated");
    assert!(api.delete::<SuppressionRule>(None, RULE));
    wait_for("the agent to see the rule deleted", &agent, || {
        (agent.log_count("suppression rules updated") > seen).then_some(())
    });
    probe_until(&api, &agent, &probes_off, false);
    run(&hashcat);
    let after = wait_for("the finding raised after the deletion", &agent, || {
        host_tool_finding(&api, &hashcat)
    });
    assert!(
        !after.spec.archived,
        "raised after the deletion: {after:#?}"
    );
    assert!(!after.status.as_ref().is_some_and(|s| s.archived));
    wait_for(
        "the Event of the finding raised after the deletion",
        &agent,
        || event_about(&api, &object_name(&after)),
    );
    // Delivery is in order: an Event for the archived finding would be in by now.
    assert!(
        event_about(&api, &object_name(&archived)).is_none(),
        "an archived finding raises no Event"
    );
    // Archival is not undone by the deletion.
    let still = host_tool_finding(&api, &john).unwrap();
    assert!(still.spec.archived && still.status.is_some_and(|s| s.archived));
}

/// An address of 127.0.0.0/8 (this host's loopback) for list `test` and entry `n`, different
/// from other tests' (detection.rs uses 127.66.x) and, through the pid, other runs'.
fn listed_ip(test: u8, n: u8) -> String {
    format!("127.{}.{}.{n}", 90 + test, std::process::id() % 251)
}

/// A real TCP connect from `program` (a copy of `vigil-trigger`) to a listener on `ip` made
/// here; returns the port.
fn connect(program: &Path, ip: &str) -> u16 {
    let listener = std::net::TcpListener::bind((ip, 0)).expect("bind a loopback address");
    let addr = listener.local_addr().unwrap();
    let out = support::spawn::spawn(
        Command::new(program)
            .args(["connect", &addr.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .and_then(|child| child.wait_with_output())
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "ok",
        "connect to {addr}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    addr.port()
}

/// The published C&C finding about `ip` (host findings: the agent's namespace).
fn cc_finding(api: &MockApi, ip: &str) -> Option<RuntimeFinding> {
    findings(api, AGENT_NS).into_iter().find(|f| {
        f.spec.finding_type == CC && f.spec.network.as_ref().is_some_and(|n| n.remote_ip == ip)
    })
}

/// Replaces a file the way the kubelet updates a mounted ConfigMap key: all at once.
fn replace_file(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn a_threat_list_that_gains_an_address_raises_cc_activity_for_connects_to_it() {
    if !root_or_skip("a_threat_list_that_gains_an_address_raises_cc_activity") {
        return;
    }
    const LIST: &str = "test-c2-feed";
    let scratch = Scratch::new("vigil-cluster-intel");
    let dir = &scratch.0;
    let api = MockApi::start();
    let target = listed_ip(1, 1);
    // The list ConfigMap's key exists but holds no indicator yet.
    let list = dir.join("c2-feed.txt");
    std::fs::write(&list, "# command-and-control addresses\n").unwrap();
    let mut cfg = config(SeverityLabel::High);
    cfg.threat_intel_lists = vec![ListFile {
        list_name: LIST.into(),
        path: list.display().to_string(),
    }];
    write_config(dir, &cfg);
    let beacon = scratch.trigger("beacon");
    let marker = scratch.tool("nmap");
    let agent = Agent::start(&api, dir, &[]);
    wait_running(&api, &agent);

    // Not listed yet: the connect raises nothing. Findings are printed in the order of the
    // events, so once the marker run after the connect is printed, the connect went through.
    connect(&beacon, &target);
    run(&marker);
    wait_for("the marker's finding printed", &agent, || {
        (agent.printed(dir) >= 1).then_some(())
    });
    assert_eq!(
        agent.printed_cc(&target),
        None,
        "{target} is not listed yet"
    );

    // The list gains the address, while the agent runs.
    let reloads = agent.log_count("threat intel reloaded");
    replace_file(
        &list,
        &format!("# command-and-control addresses\n{target} # added\n"),
    );
    wait_for(
        "threat intel reloaded with the changed list",
        &agent,
        || (agent.log_count("threat intel reloaded") > reloads).then_some(()),
    );
    let port = connect(&beacon, &target);
    let found = wait_for("the C&C finding published", &agent, || {
        cc_finding(&api, &target)
    });
    let spec = &found.spec;
    assert_eq!(spec.severity_label, SeverityLabel::High);
    let network = spec.network.as_ref().expect("network details");
    assert_eq!(
        (network.remote_ip.as_str(), network.remote_port),
        (target.as_str(), port)
    );
    let process = spec.process.as_ref().expect("process details");
    assert_eq!(process.executable_path, beacon.display().to_string());
    let evidence = spec.evidence.as_ref().expect("evidence");
    let lists: Vec<(&str, &str)> = evidence
        .threat_intelligence_details
        .iter()
        .map(|d| (d.threat_list_name.as_str(), d.indicator.as_str()))
        .collect();
    assert_eq!(lists, [(LIST, target.as_str())]);
    let printed = agent.printed_cc(&target).expect("the finding printed too");
    assert_eq!(printed["id"], json!(spec.id));
}

fn publishing(api: &MockApi) -> Option<PublishingHealth> {
    health(api)?.publishing
}

/// An agent allowed one new RuntimeFinding a minute, whose only finding type is the C&C activity
/// of a list of two addresses (`listed_ip(test, 1)` and `(test, 2)`): other tests' behaviours
/// cannot take the cap, nothing but this test's connects raises that type for these addresses.
struct CappedAgent {
    agent: Agent,
    beacon: PathBuf,
    first: String,
    second: String,
}

const CAP_ARGS: [&str; 2] = ["--max-new-findings-per-minute", "1"];

impl CappedAgent {
    fn start(scratch: &Scratch, api: &MockApi, test: u8) -> Self {
        let dir = &scratch.0;
        let (first, second) = (listed_ip(test, 1), listed_ip(test, 2));
        let list = dir.join("c2-feed.txt");
        std::fs::write(&list, format!("{first}\n{second}\n")).unwrap();
        let mut cfg = config(SeverityLabel::High);
        cfg.threat_intel_lists = vec![ListFile {
            list_name: "test-cap-feed".into(),
            path: list.display().to_string(),
        }];
        cfg.enabled_finding_types = vec![CC.into()];
        write_config(dir, &cfg);
        let beacon = scratch.trigger("beacon");
        let agent = Agent::start(api, dir, &CAP_ARGS);
        wait_running(api, &agent);
        Self {
            agent,
            beacon,
            first,
            second,
        }
    }

    /// Connects to the first address, waits for its finding to be published, connects to the
    /// second and waits for the agent to print that one (detected, whatever publishing does).
    fn raise_two(&self, api: &MockApi) -> Value {
        connect(&self.beacon, &self.first);
        wait_for("the first new finding published", &self.agent, || {
            cc_finding(api, &self.first)
        });
        connect(&self.beacon, &self.second);
        wait_for("the second new finding printed", &self.agent, || {
            self.agent.printed_cc(&self.second)
        })
    }

    /// Waits for the Lease to count a finding over the cap.
    fn over_cap(&self, api: &MockApi) -> PublishingHealth {
        wait_for(
            "the Lease counting the finding over the cap",
            &self.agent,
            || publishing(api).filter(|p| p.findings_over_cap >= 1 && p.findings_published >= 1),
        )
    }
}

#[test]
fn a_new_finding_over_the_per_node_cap_waits_and_is_counted_in_the_lease() {
    if !root_or_skip("a_new_finding_over_the_per_node_cap_waits") {
        return;
    }
    /// The cap's window: a held finding goes out once the first one is this old.
    const CAP_WINDOW: Duration = Duration::from_secs(60);
    let scratch = Scratch::new("vigil-cluster-cap");
    let api = MockApi::start();
    let capped = CappedAgent::start(&scratch, &api, 2);
    let window_opened_after = Instant::now();
    let held = capped.raise_two(&api);
    assert_eq!(
        held.pointer("/process/executablePath"),
        Some(&json!(capped.beacon.display().to_string()))
    );
    let counted = capped.over_cap(&api);
    let published_second = cc_finding(&api, &capped.second);
    assert_eq!(counted.findings_over_cap, 1, "{counted:#?}");
    let log = capped.agent.log();
    assert!(
        log.contains("publishing over the per-node cap: findings wait"),
        "the held finding is logged: {log}"
    );
    // Held back: it may go out only when the first publication is a minute old, and that
    // came after `window_opened_after`. (On a machine so slow that a minute has passed,
    // there is nothing to tell.)
    if window_opened_after.elapsed() < CAP_WINDOW {
        assert_eq!(published_second, None, "held back by the cap");
        assert_eq!(counted.findings_published, 1, "{counted:#?}");
    }
}

#[test]
fn a_finding_held_by_the_cap_is_published_after_the_agent_restarts() {
    if !root_or_skip("a_finding_held_by_the_cap_is_published_after_the_agent_restarts") {
        return;
    }
    let scratch = Scratch::new("vigil-cluster-cap-restart");
    let api = MockApi::start();
    let mut capped = CappedAgent::start(&scratch, &api, 3);
    capped.raise_two(&api);
    capped.over_cap(&api);
    // A graceful stop (a rolling update sends SIGTERM), then the next agent on the node, whose
    // cap window is empty: nothing holds the finding back any more.
    let status = Command::new("kill")
        .args(["-TERM", &capped.agent.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = capped.agent.child.wait().unwrap();
    assert!(exit.success(), "a clean stop: {}", capped.agent.log());
    let agent = Agent::start(&api, &scratch.0, &CAP_ARGS);
    wait_for(
        "the held finding published after the restart",
        &agent,
        || cc_finding(&api, &capped.second),
    );
}

/// Each request's head and body.
type Requests = std::sync::Arc<std::sync::Mutex<Vec<(String, Vec<u8>)>>>;

/// A loopback HTTP receiver on a thread: keeps every request's head and body, answers 200 and
/// closes the connection.
struct Webhook {
    addr: std::net::SocketAddr,
    got: Requests,
}

impl Webhook {
    fn start() -> Self {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let got = Requests::default();
        let keep = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                let length = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_ok() {
                    keep.lock().unwrap().push((head, body));
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        });
        Self { addr, got }
    }
}

/// The policy's sinks in the agent configuration (as the operator renders them, the Secret a
/// file): a host finding arrives at the webhook, signed with the secret, beside its
/// RuntimeFinding object.
#[test]
fn the_policys_webhook_receives_signed_findings() {
    if !root_or_skip("the_policys_webhook_receives_signed_findings") {
        return;
    }
    let scratch = Scratch::new("vigil-cluster-sinks");
    let dir = &scratch.0;
    let api = MockApi::start();
    let webhook = Webhook::start();
    let secret = dir.join("secrets").join("webhook");
    std::fs::create_dir_all(secret.parent().unwrap()).unwrap();
    std::fs::write(&secret, "cluster-key\n").unwrap();
    let mut cfg = config(SeverityLabel::High);
    cfg.integrations = Some(
        serde_json::from_value(json!({
            "sinks": [
                {"name": "siem", "type": "webhook", "url": format!("http://{}/hook", webhook.addr),
                 "secretFile": secret.display().to_string(), "findingTypes": [TOOL]},
                {"name": "broken", "type": "webhook", "url": "http://127.0.0.1:9/x",
                 "secretFile": dir.join("no-such-secret").display().to_string()}
            ]
        }))
        .unwrap(),
    );
    write_config(dir, &cfg);
    let tool = scratch.tool("hydra");
    let agent = Agent::start(&api, dir, &[]);
    wait_running(&api, &agent);
    run(&tool);
    let (head, body) = wait_for("the finding at the webhook", &agent, || {
        webhook.got.lock().unwrap().iter().find_map(|(head, body)| {
            let f: Value = serde_json::from_slice(body).ok()?;
            (f.pointer("/process/executablePath") == Some(&json!(tool.display().to_string())))
                .then(|| (head.clone(), body.clone()))
        })
    });
    let signature = head
        .lines()
        .find_map(|l| l.strip_prefix("x-vigil-signature: "))
        .unwrap_or_default()
        .trim()
        .to_owned();
    assert!(
        vigil_integrations::http::verify_signature(b"cluster-key", &body, &signature),
        "{head}"
    );
    // The same finding is also a RuntimeFinding object; the broken sink is named in the log.
    wait_for("the RuntimeFinding object", &agent, || {
        host_tool_finding(&api, &tool)
    });
    let log = agent.log();
    assert!(
        log.contains("sink broken") && log.contains("no-such-secret"),
        "{log}"
    );
}
