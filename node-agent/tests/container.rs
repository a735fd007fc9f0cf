//! The agent under a real container runtime: the DaemonSet the operator renders for the example
//! policy (`examples/policies/all-linux-nodes.yaml` through `vigil_operator::render`), translated
//! into `podman run` flags and run with the agent image `scripts/build-images.sh` builds (its fast
//! path: from the debug binary cargo built for this test). Needs root, and podman with runc
//! (`scripts/bootstrap.sh` installs both); without them it says `skipped` and passes, except under
//! `CI`, where it fails.
//!
//! - Every hook this kernel supports (those `node-agent probe` finds active on the host) is active
//!   in the container, and none failed, as the agent's heartbeat Lease says.
//! - Behaviour in another container (a FROM-scratch image made here with `vigil-trigger`):
//!   fileless execution from a memfd and a scanner run become RuntimeFindings that name that
//!   container.
//!
//! Translated from the rendered pod: the container's securityContext (user, capabilities,
//! seccomp profile, no-new-privileges, read-only root), hostPID/hostNetwork/hostIPC, volumes
//! (hostPath, the rendered ConfigMap, list ConfigMaps that do not exist and are optional,
//! emptyDir), env (downward API), command and args, resource limits, pull policy and grace period.
//! A field the translation does not know fails the test, so a change to render.rs is either run
//! here or noticed. Scheduling fields (node selector, tolerations, affinity, priority class) and
//! the ServiceAccount do not apply to one podman container. What differs from a kubelet: the API
//! server is the mock of `support/mock_api.rs` on loopback, reached over the host network with a
//! kubeconfig (a real pod reaches its cluster's API with its service account); the state hostPath
//! is a scratch directory; podman on the test VM needs `--runtime runc` (crun refuses its hybrid
//! cgroups) and explicit ulimits (podman cannot raise them there).

mod support;

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::{
        apps::v1::DaemonSet,
        coordination::v1::Lease,
        core::v1::{ConfigMap, PodSpec},
    },
    apimachinery::pkg::api::resource::Quantity,
};
use node_agent::collector::unique_name;
use serde_json::Value;
use support::{
    mock_api::MockApi,
    podman::{Scratch, copy_with_libraries, podman, podman_ok, podman_or_skip, ulimits},
};
use vigil_crds::{
    RuntimeFinding, RuntimeMonitoringPolicy,
    lease::{AgentHealth, HEALTH_ANNOTATION, lease_name},
};
use vigil_operator::render::{self, AGENT_STATE_DIR};

const AGENT: &str = env!("CARGO_BIN_EXE_node-agent");
const TRIGGER: &str = env!("CARGO_BIN_EXE_vigil-trigger");
const NODE: &str = "podman-node";
const NS: &str = "vigil-system";
/// Generous: image builds and a debug agent verifying its programs under the policy's one-CPU
/// limit, on a busy shared machine. A passing run returns as soon as the condition holds.
const WAIT: Duration = Duration::from_secs(300);
const FILELESS: &str = "DefenseEvasion:Runtime/FilelessExecution";
const TOOL: &str = "Execution:Runtime/SuspiciousTool";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The agent image, built by `scripts/build-images.sh` from this test's agent binary and tagged
/// under `registry` (so a user's own build of the real name is left alone).
fn build_agent_image(scratch: &mut Scratch, registry: &str) -> String {
    let script = repo().join("scripts/build-images.sh");
    let run = |extra: &[&str]| {
        let out = Command::new(&script)
            .args(["--only", "agent"])
            .args(extra)
            .env("VIGIL_REGISTRY", registry)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} {extra:?}: {}\n{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let image = run(&["--print-names"]);
    scratch.images.push(image.clone());
    let out = scratch.path("images");
    run(&[
        "--agent-bin",
        AGENT,
        "--no-archive",
        "--out",
        out.to_str().unwrap(),
    ]);
    image
}

/// A FROM-scratch image with `vigil-trigger`, `/bin/true` (which `memfd-exec` copies), a
/// scanner named `nmap` (a copy of `/bin/true`: the rules know tools by name) and `/bin/sleep`.
fn build_workload_image(scratch: &mut Scratch, registry: &str) -> String {
    let context = scratch.path("workload");
    let rootfs = context.join("rootfs");
    copy_with_libraries(Path::new(TRIGGER), &rootfs, "usr/bin/vigil-trigger");
    copy_with_libraries(Path::new("/bin/true"), &rootfs, "bin/true");
    copy_with_libraries(Path::new("/bin/sleep"), &rootfs, "bin/sleep");
    std::fs::copy("/bin/true", rootfs.join("usr/bin/nmap")).unwrap();
    let image = format!("{registry}/workload:test");
    scratch.build_image(&context, &image);
    image
}

/// The hooks `node-agent probe --findings-only` finds active on the host: what this kernel
/// supports of what an agent that prints findings only (cluster mode) attaches.
fn host_hooks() -> BTreeSet<String> {
    let out = Command::new(AGENT)
        .args(["probe", "--findings-only"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "node-agent probe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    report["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["state"] == "active")
        .map(|h| h["hook"].as_str().unwrap().to_owned())
        .collect()
}

/// What a kubelet would give the pod, and this test gives instead.
struct Node<'a> {
    /// Where ConfigMap and emptyDir volumes are materialised.
    dir: &'a Path,
    /// The ConfigMaps that exist (a missing optional one is an empty directory, as the kubelet
    /// makes it).
    config_maps: &'a [ConfigMap],
    /// hostPath redirections: the state directory goes to scratch, not the host's.
    host_paths: &'a [(&'a str, PathBuf)],
    pod_name: &'a str,
}

/// `podman run` flags for the single container of `ds`'s pod, image and args last. Panics on a
/// field it does not translate.
fn podman_run_args(ds: &DaemonSet, node: &Node<'_>) -> Vec<String> {
    let pod: &PodSpec = ds.spec.template.spec.as_ref().expect("pod spec");
    let untranslated = |what: &str| -> ! {
        panic!("the rendered pod uses {what}, which this test does not translate: teach it")
    };
    if pod.init_containers.is_some() || pod.containers.len() != 1 {
        untranslated("init containers or more than one container");
    }
    if pod.security_context.is_some() {
        untranslated("a pod securityContext");
    }
    if pod.dns_policy.is_some()
        || pod.host_aliases.is_some()
        || pod.share_process_namespace.is_some()
    {
        untranslated("dnsPolicy, hostAliases or shareProcessNamespace");
    }
    let mut args: Vec<String> = Vec::new();
    if pod.host_pid == Some(true) {
        flag(&mut args, "--pid", "host".into());
    }
    if pod.host_ipc == Some(true) {
        flag(&mut args, "--ipc", "host".into());
    }
    if pod.host_network == Some(true) {
        flag(&mut args, "--network", "host".into());
    }
    if let Some(grace) = pod.termination_grace_period_seconds {
        flag(&mut args, "--stop-timeout", grace.to_string());
    }

    // Volumes: name -> directory on this host.
    let mut sources = Vec::new();
    for v in pod.volumes.iter().flatten() {
        let source = if let Some(hp) = &v.host_path {
            let redirected = node
                .host_paths
                .iter()
                .find(|(from, _)| *from == hp.path)
                .map(|(_, to)| to.clone());
            let path = redirected.unwrap_or_else(|| PathBuf::from(&hp.path));
            match hp.type_.as_deref() {
                Some("Directory") => {
                    assert!(path.is_dir(), "hostPath {} is not a directory", hp.path)
                }
                Some("DirectoryOrCreate") => std::fs::create_dir_all(&path).unwrap(),
                other => untranslated(&format!("hostPath type {other:?}")),
            }
            path
        } else if let Some(cm) = &v.config_map {
            if cm.items.is_some() || cm.default_mode.is_some() {
                untranslated("configMap items or defaultMode");
            }
            let dir = node.dir.join("configmaps").join(&v.name);
            std::fs::create_dir_all(&dir).unwrap();
            match node
                .config_maps
                .iter()
                .find(|c| c.metadata.name.as_deref() == Some(cm.name.as_str()))
            {
                Some(found) => {
                    for (key, value) in found.data.iter().flatten() {
                        std::fs::write(dir.join(key), value).unwrap();
                    }
                }
                None => assert_eq!(
                    cm.optional,
                    Some(true),
                    "ConfigMap {} is missing and not optional: the pod would not start",
                    cm.name
                ),
            }
            dir
        } else if let Some(projected) = &v.projected {
            if projected.default_mode.is_some() {
                untranslated("projected defaultMode");
            }
            let dir = node.dir.join("projected").join(&v.name);
            std::fs::create_dir_all(&dir).unwrap();
            for source in projected.sources.iter().flatten() {
                let Some(cm) = &source.config_map else {
                    untranslated(&format!("a projected source of another kind in {}", v.name))
                };
                let Some(found) = node
                    .config_maps
                    .iter()
                    .find(|c| c.metadata.name.as_deref() == Some(cm.name.as_str()))
                else {
                    assert_eq!(
                        cm.optional,
                        Some(true),
                        "ConfigMap {} is missing and not optional: the pod would not start",
                        cm.name
                    );
                    continue;
                };
                let data = found.data.clone().unwrap_or_default();
                let files: Vec<(String, String)> = match &cm.items {
                    Some(items) => items
                        .iter()
                        .map(|i| {
                            let value = data.get(&i.key).unwrap_or_else(|| {
                                panic!("ConfigMap {} has no key {}", cm.name, i.key)
                            });
                            (i.path.clone(), value.clone())
                        })
                        .collect(),
                    None => data.into_iter().collect(),
                };
                for (path, value) in files {
                    let file = dir.join(path);
                    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                    std::fs::write(file, value).unwrap();
                }
            }
            dir
        } else if v.empty_dir.is_some() {
            let dir = node.dir.join("emptydir").join(&v.name);
            std::fs::create_dir_all(&dir).unwrap();
            dir
        } else {
            untranslated(&format!("volume {} of another kind", v.name))
        };
        sources.push((v.name.clone(), source));
    }

    let c = &pod.containers[0];
    if c.ports.is_some()
        || c.liveness_probe.is_some()
        || c.readiness_probe.is_some()
        || c.startup_probe.is_some()
        || c.lifecycle.is_some()
        || c.working_dir.is_some()
        || c.env_from.is_some()
        || c.volume_devices.is_some()
    {
        untranslated("ports, probes, lifecycle hooks, workingDir, envFrom or volumeDevices");
    }
    for m in c.volume_mounts.iter().flatten() {
        if m.sub_path.is_some() || m.sub_path_expr.is_some() || m.mount_propagation.is_some() {
            untranslated("subPath or mountPropagation");
        }
        let (_, source) = sources
            .iter()
            .find(|(name, _)| *name == m.name)
            .unwrap_or_else(|| panic!("mount of unknown volume {}", m.name));
        let ro = if m.read_only == Some(true) { ":ro" } else { "" };
        flag(
            &mut args,
            "--volume",
            format!("{}:{}{ro}", source.display(), m.mount_path),
        );
    }
    for e in c.env.iter().flatten() {
        let value = match (&e.value, &e.value_from) {
            (Some(v), None) => v.clone(),
            (None, Some(from)) => match from.field_ref.as_ref().map(|f| f.field_path.as_str()) {
                Some("spec.nodeName") => NODE.to_owned(),
                Some("metadata.name") => node.pod_name.to_owned(),
                Some("metadata.namespace") => NS.to_owned(),
                other => untranslated(&format!("env {} from {other:?}", e.name)),
            },
            _ => untranslated(&format!("env {} without a value", e.name)),
        };
        flag(&mut args, "--env", format!("{}={value}", e.name));
    }
    if let Some(limits) = c.resources.as_ref().and_then(|r| r.limits.as_ref()) {
        for (resource, q) in limits {
            match resource.as_str() {
                "cpu" => flag(&mut args, "--cpus", cpus(q)),
                "memory" => flag(&mut args, "--memory", bytes(q).to_string()),
                other => untranslated(&format!("a {other} limit")),
            }
        }
    }
    if let Some(sc) = &c.security_context {
        if sc.privileged == Some(true) {
            args.push("--privileged".into());
        }
        if sc.allow_privilege_escalation == Some(false) {
            args.extend(["--security-opt".into(), "no-new-privileges".into()]);
        }
        if sc.read_only_root_filesystem == Some(true) {
            // A kubelet mounts no tmpfs of its own; the pod's volumes are all it gets.
            args.extend(["--read-only".into(), "--read-only-tmpfs=false".into()]);
        }
        if sc.run_as_non_root.is_some() || sc.se_linux_options.is_some() || sc.proc_mount.is_some()
        {
            untranslated("runAsNonRoot, seLinuxOptions or procMount");
        }
        match (sc.run_as_user, sc.run_as_group) {
            (Some(u), Some(g)) => flag(&mut args, "--user", format!("{u}:{g}")),
            (Some(u), None) => flag(&mut args, "--user", u.to_string()),
            (None, Some(_)) => untranslated("runAsGroup without runAsUser"),
            (None, None) => {}
        }
        if let Some(caps) = &sc.capabilities {
            for d in caps.drop.iter().flatten() {
                let d = if d == "ALL" {
                    d.clone()
                } else {
                    format!("CAP_{d}")
                };
                flag(&mut args, "--cap-drop", d);
            }
            for a in caps.add.iter().flatten() {
                flag(&mut args, "--cap-add", format!("CAP_{a}"));
            }
        }
        match sc.seccomp_profile.as_ref().map(|p| p.type_.as_str()) {
            None | Some("RuntimeDefault") => {}
            Some("Unconfined") => flag(&mut args, "--security-opt", "seccomp=unconfined".into()),
            Some(other) => untranslated(&format!("seccomp profile {other}")),
        }
    }
    let pull = match c.image_pull_policy.as_deref() {
        Some("Always") => "always",
        Some("Never") => "never",
        _ => "missing",
    };
    flag(&mut args, "--pull", pull.into());
    if let Some(command) = &c.command {
        // podman takes the first word as the entrypoint, the rest go before the args.
        flag(
            &mut args,
            "--entrypoint",
            serde_json::to_string(command).unwrap(),
        );
    }
    args.push(c.image.clone().expect("container image"));
    args.extend(c.args.iter().flatten().cloned());
    args
}

fn flag(args: &mut Vec<String>, name: &str, value: String) {
    args.push(name.to_owned());
    args.push(value);
}

/// A CPU quantity as podman's `--cpus` (`"1"`, `"500m"`).
fn cpus(q: &Quantity) -> String {
    match q.0.strip_suffix('m') {
        Some(milli) => format!("{:.3}", milli.parse::<f64>().unwrap() / 1000.0),
        None => q.0.clone(),
    }
}

/// A memory quantity in bytes (`"1Gi"`, `"512Mi"`, `"256M"`, `"1000"`).
fn bytes(q: &Quantity) -> u64 {
    let s = q.0.as_str();
    let units: [(&str, u64); 6] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
    ];
    for (suffix, factor) in units {
        if let Some(n) = s.strip_suffix(suffix) {
            return n.parse::<u64>().unwrap() * factor;
        }
    }
    s.parse()
        .unwrap_or_else(|e| panic!("memory quantity {s}: {e}"))
}

/// The running agent container: its name and, for failure messages, its log.
struct AgentContainer(String);

impl AgentContainer {
    fn log(&self) -> String {
        let out = podman(&["logs", "--tail", "60", &self.0]);
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        text
    }

    fn running(&self) -> bool {
        podman(&["inspect", "--format", "{{.State.Running}}", &self.0]).stdout == b"true\n"
    }
}

/// Polls `check` every 250 ms until it gives `Some`; fails at once (with the agent's log) when
/// the agent container stops, or after [`WAIT`].
fn wait_for<T>(what: &str, agent: &AgentContainer, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            agent.running(),
            "{what}: the agent container stopped; its log:\n{}",
            agent.log()
        );
        assert!(
            Instant::now() < deadline,
            "{what}: did not happen within {WAIT:?}; the agent's log:\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn health(api: &MockApi) -> Option<AgentHealth> {
    let lease: Lease = api.get(Some(NS), &lease_name(NODE))?;
    serde_json::from_str(lease.metadata.annotations?.get(HEALTH_ANNOTATION)?).ok()
}

/// The finding of `finding_type` for an executable at `exe`, in any namespace.
fn finding(api: &MockApi, finding_type: &str, exe: &str) -> Option<RuntimeFinding> {
    api.list::<RuntimeFinding>(None).into_iter().find(|f| {
        f.spec.finding_type == finding_type
            && f.spec
                .process
                .as_ref()
                .is_some_and(|p| p.executable_path == exe)
    })
}

#[test]
fn rendered_daemon_set_runs_under_podman_with_every_hook_and_sees_other_containers() {
    let test = "rendered_daemon_set_under_podman";
    if !podman_or_skip(test) {
        return;
    }
    let started = Instant::now();
    let mut scratch = Scratch::new("vigil-container");
    let registry = format!("localhost/{}", unique_name("vigil-e2e"));

    // What this kernel supports, from the host, while the images build.
    let expected = std::thread::spawn(host_hooks);
    let agent_image = build_agent_image(&mut scratch, &registry);
    let workload_image = build_workload_image(&mut scratch, &registry);
    let mut expected = expected.join().unwrap();
    assert!(!expected.is_empty(), "the host probe found no active hook");
    // The rendered pod has no CAP_SYS_ADMIN, which fanotify needs to be told other processes'
    // pids: file_dirents is off there with that reason (sensor_breadth.rs checks it).
    expected.remove(node_agent::sensor::dirents::HOOK_NAME);
    eprintln!(
        "{test}: images built, host probed after {:?}",
        started.elapsed()
    );

    // The operator's rendering of the example policy, with the image just built.
    let (policy, objects) = rendered_example(Some(&agent_image));

    let api = MockApi::start();
    let kubeconfig = api.kubeconfig(&scratch.dir);
    let state = scratch.path("state");
    let pod_name = format!("{}-podman", render::agent_object_name(&policy));
    let run_args = podman_run_args(
        &objects.daemon_set,
        &Node {
            dir: &scratch.dir,
            config_maps: std::slice::from_ref(&objects.config_map),
            host_paths: &[(AGENT_STATE_DIR, state)],
            pod_name: &pod_name,
        },
    );

    let name = unique_name("vigil-agent");
    scratch.containers.push(name.clone());
    let mut args: Vec<String> = ["run", "--detach", "--name", &name]
        .map(str::to_owned)
        .to_vec();
    args.extend(ulimits());
    // Not from the rendered pod: the mock API on this host's loopback, in place of the
    // cluster's API server and the pod's service account.
    args.extend(
        [
            "--network",
            "host",
            "--env",
            "KUBECONFIG=/run/vigil-test/kubeconfig",
            "--volume",
        ]
        .map(str::to_owned),
    );
    args.push(format!(
        "{}:/run/vigil-test/kubeconfig:ro",
        kubeconfig.display()
    ));
    args.extend(run_args.iter().cloned());
    podman_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let agent = AgentContainer(name);

    let health = wait_for("a heartbeat Lease with running sensors", &agent, || {
        health(&api).filter(|h| h.sensors_running && !h.active_hooks.is_empty())
    });
    eprintln!("{test}: sensors running after {:?}", started.elapsed());
    let active: BTreeSet<String> = health.active_hooks.iter().cloned().collect();
    assert_eq!(
        active, expected,
        "hooks active in the container differ from those the kernel supports"
    );
    assert!(
        health.probe_failures.is_empty(),
        "hooks failed in the container: {:?}",
        health.probe_failures
    );

    // Behaviour in another container: a long-lived one (as workloads are), the behaviours
    // executed in it.
    let workload = unique_name("vigil-workload");
    scratch.containers.push(workload.clone());
    let mut args = vec!["run", "--detach", "--name", &workload, "--network", "none"];
    let limits = ulimits();
    args.extend(limits.iter().map(String::as_str));
    args.extend([workload_image.as_str(), "/bin/sleep", "600"]);
    let workload_id = podman_ok(&args);
    for command in [
        &["/usr/bin/vigil-trigger", "memfd-exec"][..],
        &["/usr/bin/nmap", "-sS", "127.0.0.1"],
    ] {
        let mut args = vec!["exec", workload.as_str()];
        args.extend(command);
        podman_ok(&args);
    }

    let fileless = wait_for("a FilelessExecution RuntimeFinding", &agent, || {
        api.list::<RuntimeFinding>(None).into_iter().find(|f| {
            f.spec.finding_type == FILELESS
                && f.spec
                    .process
                    .as_ref()
                    .is_some_and(|p| p.name.starts_with("memfd:vigil"))
        })
    });
    let scanner = wait_for("a SuspiciousTool RuntimeFinding for nmap", &agent, || {
        finding(&api, TOOL, "/usr/bin/nmap")
    });
    eprintln!(
        "{test}: findings {:?} after {:?}",
        [FILELESS, TOOL],
        started.elapsed()
    );
    for f in [&fileless, &scanner] {
        let c = f.spec.resource.container.as_ref().unwrap_or_else(|| {
            panic!(
                "{}: no container details: {:#?}",
                f.spec.finding_type, f.spec.resource
            )
        });
        assert_eq!(c.id, workload_id, "{}", f.spec.finding_type);
        assert_eq!(
            c.container_runtime.as_deref(),
            Some("podman"),
            "{}",
            f.spec.finding_type
        );
    }
}

/// The example policy as the operator renders it, with `image`.
fn rendered_example(image: Option<&str>) -> (RuntimeMonitoringPolicy, render::AgentObjects) {
    let example =
        std::fs::read_to_string(repo().join("examples/policies/all-linux-nodes.yaml")).unwrap();
    let mut policy: RuntimeMonitoringPolicy = serde_yaml::from_str(&example).unwrap();
    policy.metadata.uid = Some("policy-uid".into());
    if let Some(image) = image {
        policy.spec.agent.image = image.to_owned();
    }
    let objects = render::render(&policy, NS, &[]).unwrap();
    (policy, objects)
}

/// No root, no podman: the translation keeps every privilege setting of the rendered pod (and
/// adds none), and the list files land where the agent configuration says they are.
#[test]
fn translation_carries_the_rendered_security_settings() {
    let scratch = Scratch::new("vigil-translation");
    let (_, objects) = rendered_example(None);
    let intel: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "vigil-threat-intel"},
        "data": {"feodo-ips.txt": "192.0.2.1\n"}
    }))
    .unwrap();
    let args = podman_run_args(
        &objects.daemon_set,
        &Node {
            dir: &scratch.dir,
            config_maps: &[objects.config_map.clone(), intel],
            host_paths: &[(AGENT_STATE_DIR, scratch.path("state"))],
            pod_name: "agent-pod",
        },
    );
    let pairs: BTreeSet<String> = args.windows(2).map(|w| w.join(" ")).collect();
    for expected in [
        "--pid host",
        "--cap-drop ALL",
        "--cap-add CAP_BPF",
        "--cap-add CAP_PERFMON",
        "--cap-add CAP_NET_ADMIN",
        "--cap-add CAP_SYS_PTRACE",
        "--cap-add CAP_DAC_READ_SEARCH",
        "--security-opt seccomp=unconfined",
        "--security-opt no-new-privileges",
        "--user 0",
        "--volume /sys/kernel/btf:/sys/kernel/btf:ro",
        "--volume /proc:/host/proc:ro",
        "--env NODE_NAME=podman-node",
    ] {
        assert!(pairs.contains(expected), "{expected} missing from {args:?}");
    }
    assert!(args.iter().any(|a| a == "--read-only"), "{args:?}");
    let caps = args.iter().filter(|a| a.starts_with("CAP_")).count();
    assert_eq!(caps, render::AGENT_CAPABILITIES.len(), "{args:?}");
    assert!(!args.iter().any(|a| a == "--privileged"), "{args:?}");
    let container = &objects
        .daemon_set
        .spec
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0];
    assert!(args.ends_with(container.args.as_ref().unwrap()), "{args:?}");

    let config: vigil_crds::agent_config::AgentConfig =
        serde_json::from_str(&objects.config_map.data.as_ref().unwrap()["agent.yaml"]).unwrap();
    let volume = scratch.dir.join("projected/config");
    assert!(volume.join("agent.yaml").is_file());
    let in_container = |path: &str| {
        volume.join(
            Path::new(path)
                .strip_prefix(vigil_crds::agent_config::CONFIG_DIR)
                .unwrap(),
        )
    };
    let intel = &config.threat_intel_lists[0];
    assert_eq!(
        std::fs::read_to_string(in_container(&intel.path)).unwrap(),
        "192.0.2.1\n"
    );
    // The trusted-IP ConfigMap does not exist: optional, so nothing is there and the pod starts.
    assert!(!in_container(&config.trusted_ip_lists[0].path).exists());
}
