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

mod support;

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use k8s_openapi::api::{coordination::v1::Lease, core::v1::Pod, events::v1::Event};
use node_agent::collector::{root_or_skip, unique_name};
use serde_json::{Value, json};
use support::mock_api::{Fault, MockApi};
use vigil_crds::{
    agent_config::{AgentConfig, HeartbeatConfig},
    finding::{RuntimeFinding, SeverityLabel},
    lease::{AgentHealth, HEALTH_ANNOTATION, lease_name},
};

const AGENT: &str = env!("CARGO_BIN_EXE_node-agent");
const NODE: &str = "test-node";
const AGENT_NS: &str = "vigil-system";
const WAIT: Duration = Duration::from_secs(60);
const TOOL: &str = "Execution:Runtime/SuspiciousTool";

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
    fn tool(&self, name: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::copy("/bin/true", &path).unwrap();
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

    /// Tool findings for executables under `dir` the agent printed (`--findings-only`).
    fn printed(&self, dir: &Path) -> usize {
        std::fs::read_to_string(&self.stdout)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|f| {
                f["type"] == TOOL
                    && f.pointer("/process/executablePath")
                        .and_then(Value::as_str)
                        .is_some_and(|e| Path::new(e).starts_with(dir))
            })
            .count()
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
    let status = Command::new(program)
        .args(["-sS", "127.0.0.1"])
        .status()
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

fn events(api: &MockApi, namespace: &str) -> Vec<Event> {
    api.list(Some(namespace))
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
