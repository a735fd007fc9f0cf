//! Policy to agent objects: the DaemonSet and its ConfigMap, least privilege.
//!
//! The agent's identity and rights are not rendered: the chart ships them once
//! (`charts/vigil/templates/agent-rbac.yaml`), so the operator needs no right to write RBAC
//! objects or ServiceAccounts. The DaemonSet names [`AGENT_SERVICE_ACCOUNT`], or
//! [`RESPONDER_SERVICE_ACCOUNT`] when the policy's response isolates pods in `enforce` mode.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::{
    api::{
        apps::v1::{DaemonSet, DaemonSetSpec},
        core::v1::{
            Affinity, Capabilities, ConfigMap, ConfigMapProjection, Container, EnvVar,
            EnvVarSource, HostPathVolumeSource, KeyToPath, NodeAffinity, NodeSelector,
            NodeSelectorRequirement, NodeSelectorTerm, ObjectFieldSelector, PodSpec,
            PodTemplateSpec, ProjectedVolumeSource, ResourceRequirements, SeccompProfile,
            SecretProjection, SecurityContext, Volume, VolumeMount, VolumeProjection,
        },
    },
    apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference},
};
use kube::{Resource, ResourceExt};
use thiserror::Error;
use vigil_crds::{
    RuntimeMonitoringPolicy,
    agent_config::{AgentConfig, CONFIG_DIR, CONFIG_KEY, LISTS_DIR},
    integrations::SECRETS_DIR,
    lease::POLICY_LABEL,
    policy::{AgentSpec, RuntimeMonitoringPolicySpec},
    response::ResponseMode,
};

use crate::facts::OS_LABEL;

/// Field manager of every server-side apply the operator does.
pub const FIELD_MANAGER: &str = "vigil-operator";
/// `app.kubernetes.io/name` of agent objects.
pub const AGENT_APP: &str = "vigil-agent";
/// The ServiceAccount the agent pods run as, in the agent namespace. The chart creates it and
/// binds it to the agent's rights: pods `get/list/watch`, nodes `get`, runtimefindings
/// `get/list/watch/create/patch/update` (and their status `patch/update`), suppressionrules
/// `get/list/watch`, events `create/patch`, and heartbeat Leases in the namespace. Not of the
/// form `vigil-agent-<policy>`, so it cannot meet a ServiceAccount that an older operator made
/// for a policy.
pub const AGENT_SERVICE_ACCOUNT: &str = "vigil-agent";
/// The ServiceAccount of agents whose policy isolates pods (`spec.response.isolate` with
/// `mode: enforce`): the agent's rights plus `patch` on pods, to label a pod quarantined. A
/// separate identity, since `patch` on pods can change any pod's images; the chart creates it
/// only with `agentResponder.enabled`. In `dryRun` nothing is patched, so the agent needs no
/// more than [`AGENT_SERVICE_ACCOUNT`].
pub const RESPONDER_SERVICE_ACCOUNT: &str = "vigil-responder";
/// Capabilities the agent has on every node, and nothing else (measured under runc, see
/// docs/CLUSTER.md): BPF and PERFMON load and attach the programs, NET_ADMIN attaches the cgroup
/// network (DNS) hooks, SYS_PTRACE and DAC_READ_SEARCH read other processes' `/proc` entries
/// and executables for the context of findings. No SYS_ADMIN: nothing needs it.
pub const AGENT_CAPABILITIES: &[&str] = &[
    "BPF",
    "PERFMON",
    "NET_ADMIN",
    "SYS_PTRACE",
    "DAC_READ_SEARCH",
];
/// Added only with `spec.agent.raiseMemlockLimit`: lifts RLIMIT_MEMLOCK, which kernels before
/// 5.11 charge eBPF maps to. Not by default: newer kernels do not need it, and a runtime whose
/// bounding set lacks it refuses to start the container ("unable to apply caps").
pub const MEMLOCK_CAPABILITY: &str = "SYS_RESOURCE";
/// The agent's seccomp profile type. Not `RuntimeDefault`: the runtimes' default profiles
/// disagree about `bpf()` and `perf_event_open()` (podman's and older Docker's allow them only
/// with CAP_SYS_ADMIN, containerd's with CAP_BPF/CAP_PERFMON), so the same pod would load
/// nothing on some nodes, or need SYS_ADMIN. A `Localhost` profile would first have to be
/// installed on every node. The capabilities above bound what the agent can do (docs/CLUSTER.md).
pub const AGENT_SECCOMP_PROFILE: &str = "Unconfined";
/// Where the agent keeps its findings store and its delivery spool on the host, so both
/// survive an agent restart.
pub const AGENT_STATE_DIR: &str = "/var/lib/vigil";

/// A policy that cannot be rendered.
#[derive(Debug, Error)]
pub enum RenderError {
    /// The policy lacks metadata an owner reference needs.
    #[error("policy {policy}: metadata.{field} is missing, cannot own the agent objects")]
    MissingMetadata {
        /// Policy name, if any.
        policy: String,
        /// `name` or `uid`.
        field: &'static str,
    },
    /// The agent configuration did not serialise.
    #[error("policy {policy}: agent configuration does not serialise")]
    Config {
        /// Policy name.
        policy: String,
        /// Serialiser error.
        #[source]
        source: serde_json::Error,
    },
}

/// Everything Automated mode runs for one policy.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentObjects {
    /// The (chart-made) ServiceAccount the DaemonSet runs as: [`service_account`].
    pub service_account: &'static str,
    /// Agent configuration.
    pub config_map: ConfigMap,
    /// The agent itself.
    pub daemon_set: DaemonSet,
}

/// The ServiceAccount the agents of a policy with `spec` run as: [`RESPONDER_SERVICE_ACCOUNT`]
/// when its response isolates pods for real, else [`AGENT_SERVICE_ACCOUNT`].
pub fn service_account(spec: &RuntimeMonitoringPolicySpec) -> &'static str {
    if spec
        .response
        .as_ref()
        .is_some_and(|r| r.isolate.is_some() && r.mode == ResponseMode::Enforce)
    {
        RESPONDER_SERVICE_ACCOUNT
    } else {
        AGENT_SERVICE_ACCOUNT
    }
}

/// What to install when the ServiceAccount `name` is missing, for the operator's report.
pub fn missing_service_account_hint(name: &str) -> &'static str {
    if name == RESPONDER_SERVICE_ACCOUNT {
        "the policy isolates pods (spec.response.isolate, mode enforce), which needs the \
         responder's identity and rights: install the Vigil chart with \
         agentResponder.enabled=true (templates/agent-rbac.yaml), or use mode dryRun"
    } else {
        "the agent's identity and rights are not installed: install or upgrade the Vigil chart \
         in this namespace (templates/agent-rbac.yaml ships them; the operator creates no RBAC)"
    }
}

/// Name of every agent object of `policy`.
pub fn agent_name(policy: &str) -> String {
    format!("{AGENT_APP}-{policy}")
}

/// Labels selecting the agent pods of `policy`.
pub fn selector_labels(policy: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), AGENT_APP.to_owned()),
        ("app.kubernetes.io/instance".to_owned(), policy.to_owned()),
    ])
}

fn labels(policy: &str) -> BTreeMap<String, String> {
    let mut l = selector_labels(policy);
    l.insert(
        "app.kubernetes.io/managed-by".to_owned(),
        FIELD_MANAGER.to_owned(),
    );
    l.insert(POLICY_LABEL.to_owned(), policy.to_owned());
    l
}

/// Render the agent objects of `policy` in `namespace`, keeping off `excluded_nodes` (nodes
/// another policy covers).
pub fn render(
    policy: &RuntimeMonitoringPolicy,
    namespace: &str,
    excluded_nodes: &[String],
) -> Result<AgentObjects, RenderError> {
    let name = policy
        .metadata
        .name
        .clone()
        .ok_or_else(|| RenderError::MissingMetadata {
            policy: String::new(),
            field: "name",
        })?;
    let owner = owner_reference(policy).ok_or_else(|| RenderError::MissingMetadata {
        policy: name.clone(),
        field: "uid",
    })?;
    let object_name = agent_name(&name);
    let meta = || ObjectMeta {
        name: Some(object_name.clone()),
        namespace: Some(namespace.to_owned()),
        labels: Some(labels(&name)),
        owner_references: Some(vec![owner.clone()]),
        ..ObjectMeta::default()
    };
    let config = AgentConfig::for_policy(&name, &policy.spec, namespace);
    let config_yaml =
        serde_json::to_string_pretty(&config).map_err(|source| RenderError::Config {
            policy: name.clone(),
            source,
        })?;
    let config_map = ConfigMap {
        metadata: meta(),
        data: Some(BTreeMap::from([(
            CONFIG_KEY.to_owned(),
            config_yaml.clone(),
        )])),
        ..ConfigMap::default()
    };

    Ok(AgentObjects {
        service_account: service_account(&policy.spec),
        daemon_set: daemon_set(policy, &name, meta(), excluded_nodes),
        config_map,
    })
}

fn owner_reference(policy: &RuntimeMonitoringPolicy) -> Option<OwnerReference> {
    let mut owner = policy.controller_owner_ref(&())?;
    // Children block the policy's foreground deletion until they are gone.
    owner.block_owner_deletion = Some(true);
    Some(owner)
}

fn host_path(name: &str, path: &str) -> Volume {
    Volume {
        name: name.to_owned(),
        host_path: Some(HostPathVolumeSource {
            path: path.to_owned(),
            type_: Some("Directory".to_owned()),
        }),
        ..Volume::default()
    }
}

fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        read_only: Some(true),
        ..VolumeMount::default()
    }
}

fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.to_owned(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// One projected volume, mounted read-only at `CONFIG_DIR`, with the agent configuration and,
/// under `LISTS_DIR`, each list key the policy references. One volume, because a mount inside a
/// read-only mount cannot be made (the runtime cannot create its mount point: runc fails with
/// "read-only file system"), and the kubelet updates projected ConfigMaps live. The list sources
/// are optional: a missing list degrades detection but must not keep the agent from starting.
/// So are the Secrets the sinks reference (under `SECRETS_DIR`, readable by the owner only): a
/// missing one leaves that sink out, with an error naming it, and never the agent.
fn config_volume(policy: &str, spec: &RuntimeMonitoringPolicySpec) -> Volume {
    let lists_subdir = LISTS_DIR
        .strip_prefix(CONFIG_DIR)
        .unwrap_or(LISTS_DIR)
        .trim_start_matches('/');
    let mut keys: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for list in spec.threat_intel_lists.iter().chain(&spec.trusted_ip_lists) {
        keys.entry(list.config_map_name.as_str())
            .or_default()
            .insert(list.key.as_str());
    }
    let agent_config = VolumeProjection {
        config_map: Some(ConfigMapProjection {
            name: agent_name(policy),
            ..ConfigMapProjection::default()
        }),
        ..VolumeProjection::default()
    };
    let lists = keys.into_iter().map(|(config_map, keys)| VolumeProjection {
        config_map: Some(ConfigMapProjection {
            name: config_map.to_owned(),
            items: Some(
                keys.into_iter()
                    .map(|key| KeyToPath {
                        key: key.to_owned(),
                        path: format!("{lists_subdir}/{config_map}/{key}"),
                        ..KeyToPath::default()
                    })
                    .collect(),
            ),
            optional: Some(true),
        }),
        ..VolumeProjection::default()
    });
    let secrets_subdir = SECRETS_DIR
        .strip_prefix(CONFIG_DIR)
        .unwrap_or(SECRETS_DIR)
        .trim_start_matches('/');
    let mut secret_keys: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    if let Some(integrations) = &spec.integrations {
        for (secret, key) in integrations.secret_references() {
            secret_keys.entry(secret).or_default().insert(key);
        }
    }
    let secrets = secret_keys
        .into_iter()
        .map(|(secret, keys)| VolumeProjection {
            secret: Some(SecretProjection {
                name: secret.to_owned(),
                items: Some(
                    keys.into_iter()
                        .map(|key| KeyToPath {
                            key: key.to_owned(),
                            path: format!("{secrets_subdir}/{secret}/{key}"),
                            mode: Some(0o400),
                            ..KeyToPath::default()
                        })
                        .collect(),
                ),
                optional: Some(true),
            }),
            ..VolumeProjection::default()
        })
        .collect::<Vec<_>>();
    Volume {
        name: "config".into(),
        projected: Some(ProjectedVolumeSource {
            sources: Some(
                std::iter::once(agent_config)
                    .chain(lists)
                    .chain(secrets)
                    .collect(),
            ),
            ..ProjectedVolumeSource::default()
        }),
        ..Volume::default()
    }
}

/// The capabilities the agent container adds (after dropping ALL): [`AGENT_CAPABILITIES`], and
/// [`MEMLOCK_CAPABILITY`] when the policy asks for it.
pub fn agent_capabilities(agent: &AgentSpec) -> Vec<String> {
    AGENT_CAPABILITIES
        .iter()
        .copied()
        .chain(agent.raise_memlock_limit.then_some(MEMLOCK_CAPABILITY))
        .map(str::to_owned)
        .collect()
}

/// Pod template annotation with the policy's enabled finding types: the agent attaches only the
/// hooks those read, so changing them must restart it.
pub const ENABLED_TYPES_ANNOTATION: &str = "vigil.dev/enabled-finding-types";

/// The annotation's value: the enabled types sorted, comma-separated; `all` when the policy
/// lists none.
fn enabled_types_annotation(enabled: &[String]) -> String {
    if enabled.is_empty() {
        return "all".to_owned();
    }
    let mut sorted: Vec<&str> = enabled.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    sorted.join(",")
}

fn daemon_set(
    policy: &RuntimeMonitoringPolicy,
    name: &str,
    metadata: ObjectMeta,
    excluded: &[String],
) -> DaemonSet {
    let spec = &policy.spec;
    let mut node_selector = spec.node_selector.clone();
    node_selector.insert(OS_LABEL.to_owned(), "linux".to_owned());
    let affinity = (!excluded.is_empty()).then(|| Affinity {
        node_affinity: Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: vec![NodeSelectorTerm {
                    match_fields: Some(vec![NodeSelectorRequirement {
                        key: "metadata.name".into(),
                        operator: "NotIn".into(),
                        values: Some(excluded.to_vec()),
                    }]),
                    ..NodeSelectorTerm::default()
                }],
            }),
            ..NodeAffinity::default()
        }),
        ..Affinity::default()
    });

    let volumes = vec![
        config_volume(name, spec),
        host_path("btf", "/sys/kernel/btf"),
        host_path("cgroup", "/sys/fs/cgroup"),
        host_path("proc", "/proc"),
        host_path("tracefs", "/sys/kernel/tracing"),
        Volume {
            name: "tmp".into(),
            empty_dir: Some(Default::default()),
            ..Volume::default()
        },
        Volume {
            name: "state".into(),
            host_path: Some(HostPathVolumeSource {
                path: AGENT_STATE_DIR.to_owned(),
                type_: Some("DirectoryOrCreate".to_owned()),
            }),
            ..Volume::default()
        },
    ];
    let mounts = vec![
        mount("config", CONFIG_DIR),
        mount("btf", "/sys/kernel/btf"),
        mount("cgroup", "/host/sys/fs/cgroup"),
        mount("proc", "/host/proc"),
        mount("tracefs", "/sys/kernel/tracing"),
        VolumeMount {
            name: "tmp".into(),
            mount_path: "/tmp".into(),
            ..VolumeMount::default()
        },
        VolumeMount {
            name: "state".into(),
            mount_path: AGENT_STATE_DIR.into(),
            ..VolumeMount::default()
        },
    ];
    let res = &spec.agent.resources;
    let container = Container {
        name: "agent".into(),
        image: Some(spec.agent.image.clone()),
        image_pull_policy: Some(spec.agent.image_pull_policy.as_str().to_owned()),
        args: Some(
            [
                "run",
                "--mode",
                "kubernetes",
                "--config",
                &format!("{CONFIG_DIR}/{CONFIG_KEY}"),
                "--proc-root",
                "/host/proc",
                "--cgroup-root",
                "/host/sys/fs/cgroup",
                "--state-dir",
                AGENT_STATE_DIR,
            ]
            .map(str::to_owned)
            .to_vec(),
        ),
        env: Some(vec![
            field_env("NODE_NAME", "spec.nodeName"),
            field_env("POD_NAME", "metadata.name"),
            field_env("POD_NAMESPACE", "metadata.namespace"),
        ]),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".into(), res.requests.cpu.clone()),
                ("memory".into(), res.requests.memory.clone()),
            ])),
            limits: Some(BTreeMap::from([
                ("cpu".into(), res.limits.cpu.clone()),
                ("memory".into(), res.limits.memory.clone()),
            ])),
            ..ResourceRequirements::default()
        }),
        security_context: Some(SecurityContext {
            privileged: Some(false),
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            // Root inside the container, but only the listed capabilities.
            run_as_user: Some(0),
            capabilities: Some(Capabilities {
                add: Some(agent_capabilities(&spec.agent)),
                drop: Some(vec!["ALL".into()]),
            }),
            seccomp_profile: Some(SeccompProfile {
                type_: AGENT_SECCOMP_PROFILE.into(),
                ..SeccompProfile::default()
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(mounts),
        ..Container::default()
    };

    let mut pod_labels = labels(name);
    pod_labels.retain(|k, _| k != "app.kubernetes.io/managed-by");
    DaemonSet {
        metadata,
        spec: DaemonSetSpec {
            selector: LabelSelector {
                match_labels: Some(selector_labels(name)),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                // No configuration hash here: the agent applies a changed ConfigMap live, so a
                // policy edit does not restart (and blind) every agent. The enabled finding
                // types are the exception: an agent attaches only the hooks they read, so a
                // change of them rolls the agents out again (one node at a time).
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(BTreeMap::from([(
                        ENABLED_TYPES_ANNOTATION.to_owned(),
                        enabled_types_annotation(&spec.findings.enabled_types),
                    )])),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(service_account(spec).to_owned()),
                    host_pid: Some(true),
                    priority_class_name: spec.agent.priority_class_name.clone(),
                    node_selector: Some(node_selector),
                    tolerations: (!spec.tolerations.is_empty()).then(|| spec.tolerations.clone()),
                    affinity,
                    containers: vec![container],
                    volumes: Some(volumes),
                    termination_grace_period_seconds: Some(30),
                    ..PodSpec::default()
                }),
            },
            ..DaemonSetSpec::default()
        },
        ..DaemonSet::default()
    }
}

/// The name and namespace of the objects, for deletion when a policy switches to Manual.
pub fn agent_object_name(policy: &RuntimeMonitoringPolicy) -> String {
    agent_name(&policy.name_any())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Toleration;

    use super::*;

    fn policy(spec: serde_json::Value) -> RuntimeMonitoringPolicy {
        let mut p =
            RuntimeMonitoringPolicy::new("all-linux", serde_json::from_value(spec).unwrap());
        p.metadata.uid = Some("uid-1".into());
        p
    }

    fn pod_spec(o: &AgentObjects) -> &PodSpec {
        o.daemon_set.spec.template.spec.as_ref().unwrap()
    }

    #[test]
    fn agent_is_least_privileged() {
        let o = render(&policy(serde_json::json!({})), "vigil-system", &[]).unwrap();
        let ps = pod_spec(&o);
        assert_eq!(ps.host_pid, Some(true));
        let sc = ps.containers[0].security_context.as_ref().unwrap();
        assert_eq!(sc.privileged, Some(false));
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        let caps = sc.capabilities.as_ref().unwrap();
        assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_owned()][..]));
        assert_eq!(
            caps.add.as_deref().unwrap(),
            [
                "BPF",
                "PERFMON",
                "NET_ADMIN",
                "SYS_PTRACE",
                "DAC_READ_SEARCH"
            ]
        );
        assert_eq!(
            sc.seccomp_profile.as_ref().map(|p| p.type_.as_str()),
            Some("Unconfined")
        );
        for m in ps.containers[0].volume_mounts.as_ref().unwrap() {
            if m.name != "tmp" && m.name != "state" {
                assert_eq!(m.read_only, Some(true), "{} must be read-only", m.name);
            }
        }
        for v in ps.volumes.as_ref().unwrap() {
            if let Some(hp) = &v.host_path {
                assert!(
                    [
                        "/sys/kernel/btf",
                        "/sys/fs/cgroup",
                        "/proc",
                        "/sys/kernel/tracing",
                        AGENT_STATE_DIR
                    ]
                    .contains(&hp.path.as_str()),
                    "{}",
                    hp.path
                );
            }
        }
        // The identity is the chart's ServiceAccount: nothing with rights is rendered.
        assert_eq!(ps.service_account_name.as_deref(), Some("vigil-agent"));
        assert_eq!(o.service_account, AGENT_SERVICE_ACCOUNT);
    }

    #[test]
    fn only_a_policy_that_isolates_pods_for_real_runs_as_the_responder() {
        let isolate = serde_json::json!({"findingTypes": ["Execution:Runtime/ReverseShell"]});
        // (case, spec, ServiceAccount)
        let table = [
            ("no response", serde_json::json!({}), "vigil-agent"),
            (
                "kill only, enforced",
                serde_json::json!({"response": {"mode": "enforce", "kill": isolate}}),
                "vigil-agent",
            ),
            (
                "isolate in dry run (nothing is patched)",
                serde_json::json!({"response": {"isolate": isolate}}),
                "vigil-agent",
            ),
            (
                "isolate, enforced",
                serde_json::json!({"response": {"mode": "enforce", "isolate": isolate}}),
                "vigil-responder",
            ),
        ];
        for (case, spec, want) in table {
            let o = render(&policy(spec), "ns", &[]).unwrap();
            assert_eq!(
                pod_spec(&o).service_account_name.as_deref(),
                Some(want),
                "{case}"
            );
            assert_eq!(o.service_account, want, "{case}");
        }
    }

    #[test]
    fn sys_resource_only_when_the_policy_raises_the_memlock_limit() {
        let caps = |spec| {
            let o = render(&policy(spec), "ns", &[]).unwrap();
            pod_spec(&o).containers[0]
                .security_context
                .as_ref()
                .and_then(|sc| sc.capabilities.as_ref())
                .and_then(|c| c.add.clone())
                .unwrap()
        };
        for spec in [
            serde_json::json!({}),
            serde_json::json!({"agent": {"raiseMemlockLimit": false}}),
        ] {
            let add = caps(spec);
            assert!(!add.iter().any(|c| c == "SYS_RESOURCE"), "{add:?}");
            assert!(!add.iter().any(|c| c == "SYS_ADMIN"), "{add:?}");
        }
        let add = caps(serde_json::json!({"agent": {"raiseMemlockLimit": true}}));
        assert_eq!(add.last().map(String::as_str), Some("SYS_RESOURCE"));
        assert_eq!(add.len(), AGENT_CAPABILITIES.len() + 1);
        assert!(!add.iter().any(|c| c == "SYS_ADMIN"), "{add:?}");
    }

    #[test]
    fn render_table() {
        let gpu = policy(serde_json::json!({
            "nodeSelector": {"pool": "gpu"},
            "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "agent": {"image": "reg/agent:2", "imagePullPolicy": "Always", "priorityClassName": "system-node-critical",
                      "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}}},
            "threatIntelLists": [{"listName": "a", "configMapName": "intel", "key": "a.txt"}],
            "trustedIpLists": [{"listName": "b", "configMapName": "intel", "key": "b.txt"}]
        }));
        let o = render(&gpu, "vigil-system", &["node-x".to_owned()]).unwrap();
        let ps = pod_spec(&o);
        assert_eq!(ps.node_selector.as_ref().unwrap()["pool"], "gpu");
        assert_eq!(ps.node_selector.as_ref().unwrap()[OS_LABEL], "linux");
        assert_eq!(
            ps.tolerations.as_ref().unwrap(),
            &vec![Toleration {
                key: Some("gpu".into()),
                operator: Some("Exists".into()),
                effect: Some("NoSchedule".into()),
                ..Toleration::default()
            }]
        );
        assert_eq!(
            ps.priority_class_name.as_deref(),
            Some("system-node-critical")
        );
        let c = &ps.containers[0];
        assert_eq!(c.image.as_deref(), Some("reg/agent:2"));
        assert_eq!(c.image_pull_policy.as_deref(), Some("Always"));
        assert_eq!(
            c.resources.as_ref().unwrap().limits.as_ref().unwrap()["memory"].0,
            "512Mi"
        );
        let excluded = &ps
            .affinity
            .as_ref()
            .unwrap()
            .node_affinity
            .as_ref()
            .unwrap()
            .required_during_scheduling_ignored_during_execution
            .as_ref()
            .unwrap()
            .node_selector_terms[0]
            .match_fields
            .as_ref()
            .unwrap()[0];
        assert_eq!(
            (excluded.operator.as_str(), excluded.values.as_deref()),
            ("NotIn", Some(&["node-x".to_owned()][..]))
        );
        // One ConfigMap referenced twice is one optional source with both keys, in the
        // configuration's volume, where the agent configuration says the lists are.
        let config = ps
            .volumes
            .as_ref()
            .unwrap()
            .iter()
            .find(|v| v.name == "config");
        let sources = config
            .and_then(|v| v.projected.as_ref())
            .and_then(|p| p.sources.as_ref())
            .unwrap();
        assert_eq!(sources.len(), 2);
        let lists = sources[1].config_map.as_ref().unwrap();
        assert_eq!((lists.name.as_str(), lists.optional), ("intel", Some(true)));
        let projected: Vec<String> = lists
            .items
            .iter()
            .flatten()
            .map(|i| format!("{CONFIG_DIR}/{}", i.path))
            .collect();
        let config: AgentConfig =
            serde_json::from_str(&o.config_map.data.as_ref().unwrap()[CONFIG_KEY]).unwrap();
        let configured: Vec<String> = config
            .threat_intel_lists
            .iter()
            .chain(&config.trusted_ip_lists)
            .map(|l| l.path.clone())
            .collect();
        assert_eq!(projected, configured);
        assert_eq!(
            projected,
            [
                "/etc/vigil/lists/intel/a.txt",
                "/etc/vigil/lists/intel/b.txt"
            ]
        );

        let defaults = render(&policy(serde_json::json!({})), "ns", &[]).unwrap();
        let config: AgentConfig =
            serde_json::from_str(&defaults.config_map.data.as_ref().unwrap()[CONFIG_KEY]).unwrap();
        assert_eq!(config.integrations, None);
        let ps = pod_spec(&defaults);
        assert!(ps.affinity.is_none() && ps.tolerations.is_none());
        let r = ps.containers[0].resources.as_ref().unwrap();
        assert_eq!(
            (
                r.requests.as_ref().unwrap()["cpu"].0.as_str(),
                r.limits.as_ref().unwrap()["cpu"].0.as_str()
            ),
            ("200m", "1")
        );
        assert_eq!(
            defaults
                .daemon_set
                .metadata
                .owner_references
                .as_ref()
                .unwrap()[0]
                .uid,
            "uid-1"
        );
        assert_eq!(
            defaults.daemon_set.metadata.name.as_deref(),
            Some("vigil-agent-all-linux")
        );
    }

    #[test]
    fn no_mount_inside_a_read_only_mount() {
        // runc cannot create a mount point inside a read-only mount ("read-only file system"):
        // such a pod never starts.
        let o = render(
            &policy(serde_json::json!({
                "threatIntelLists": [{"listName": "a", "configMapName": "intel", "key": "a.txt"}],
                "trustedIpLists": [{"listName": "b", "configMapName": "egress", "key": "b.txt"}]
            })),
            "ns",
            &[],
        )
        .unwrap();
        let mounts = pod_spec(&o).containers[0].volume_mounts.as_ref().unwrap();
        for outer in mounts.iter().filter(|m| m.read_only == Some(true)) {
            for inner in mounts {
                assert!(
                    inner.mount_path == outer.mount_path
                        || !std::path::Path::new(&inner.mount_path).starts_with(&outer.mount_path),
                    "{} is inside the read-only mount {}",
                    inner.mount_path,
                    outer.mount_path
                );
            }
        }
    }

    #[test]
    fn config_change_reaches_the_config_map_without_rolling_pods() {
        let a = render(&policy(serde_json::json!({})), "ns", &[]).unwrap();
        let b = render(
            &policy(serde_json::json!({"findings": {"eventMinSeverity": "Low"}})),
            "ns",
            &[],
        )
        .unwrap();
        assert_ne!(a.config_map.data, b.config_map.data);
        assert_eq!(a.daemon_set.spec.template, b.daemon_set.spec.template);
    }

    #[test]
    fn a_change_of_the_enabled_types_rolls_the_agents_and_their_order_does_not() {
        let template = |spec: serde_json::Value| {
            render(&policy(spec), "ns", &[])
                .unwrap()
                .daemon_set
                .spec
                .template
        };
        let all = template(serde_json::json!({}));
        let two = template(serde_json::json!({"findings": {"enabledTypes": [
            "Execution:Runtime/SuspiciousTool", "Backdoor:Runtime/C&CActivity.B"]}}));
        let same_two = template(serde_json::json!({"findings": {"enabledTypes": [
            "Backdoor:Runtime/C&CActivity.B", "Execution:Runtime/SuspiciousTool",
            "Backdoor:Runtime/C&CActivity.B"]}}));
        assert_ne!(all, two, "the pods restart to attach other hooks");
        assert_eq!(two, same_two, "order and repeats change nothing");
        let annotation = |t: &PodTemplateSpec| {
            t.metadata.as_ref().unwrap().annotations.as_ref().unwrap()[ENABLED_TYPES_ANNOTATION]
                .clone()
        };
        assert_eq!(annotation(&all), "all");
        assert_eq!(
            annotation(&two),
            "Backdoor:Runtime/C&CActivity.B,Execution:Runtime/SuspiciousTool"
        );
    }

    #[test]
    fn agent_runs_in_cluster_mode_with_host_state() {
        let o = render(&policy(serde_json::json!({})), "ns", &[]).unwrap();
        let ps = pod_spec(&o);
        let args = ps.containers[0].args.as_ref().unwrap();
        assert_eq!(&args[..3], &["run", "--mode", "kubernetes"]);
        let state = ps.containers[0]
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.mount_path == AGENT_STATE_DIR)
            .unwrap();
        assert_ne!(state.read_only, Some(true), "the spool is written");
    }

    #[test]
    fn policy_without_uid_is_an_error_naming_it() {
        let mut p = policy(serde_json::json!({}));
        p.metadata.uid = None;
        let err = render(&p, "ns", &[]).unwrap_err();
        assert!(
            err.to_string().contains("all-linux") && err.to_string().contains("uid"),
            "{err}"
        );
    }

    #[test]
    fn sink_secrets_are_mounted_where_the_agent_configuration_says() {
        let o = render(
            &policy(serde_json::json!({
                "integrations": {"sinks": [
                    {"name": "siem", "type": "webhook", "url": "https://siem.example/hook",
                     "secretRef": {"name": "vigil-sinks", "key": "webhook"}},
                    {"name": "splunk", "type": "splunk-hec", "url": "https://splunk:8088",
                     "secretRef": {"name": "vigil-sinks", "key": "hec"}},
                    {"name": "chat", "type": "slack", "url": "https://hooks.slack.example/x"}
                ]}
            })),
            "vigil-system",
            &[],
        )
        .unwrap();
        let config: AgentConfig =
            serde_json::from_str(&o.config_map.data.as_ref().unwrap()[CONFIG_KEY]).unwrap();
        let configured: BTreeSet<String> = config
            .integrations
            .unwrap()
            .sinks
            .iter()
            .filter_map(|s| s.secret_file.clone())
            .collect();
        let ps = pod_spec(&o);
        let sources = ps
            .volumes
            .as_ref()
            .unwrap()
            .iter()
            .find(|v| v.name == "config")
            .and_then(|v| v.projected.as_ref())
            .and_then(|p| p.sources.as_ref())
            .unwrap();
        let secrets: Vec<&SecretProjection> =
            sources.iter().filter_map(|s| s.secret.as_ref()).collect();
        assert_eq!(
            secrets.len(),
            1,
            "one Secret referenced twice is one source"
        );
        assert_eq!(
            (secrets[0].name.as_str(), secrets[0].optional),
            ("vigil-sinks", Some(true))
        );
        let mounted: BTreeSet<String> = secrets[0]
            .items
            .iter()
            .flatten()
            .inspect(|i| assert_eq!(i.mode, Some(0o400)))
            .map(|i| format!("{CONFIG_DIR}/{}", i.path))
            .collect();
        assert_eq!(mounted, configured);
        assert_eq!(
            mounted.into_iter().collect::<Vec<_>>(),
            [
                "/etc/vigil/secrets/vigil-sinks/hec",
                "/etc/vigil/secrets/vigil-sinks/webhook"
            ]
        );
    }
}
