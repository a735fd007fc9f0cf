//! The opt-in end-to-end suite: runs the operator against the cluster `KUBECONFIG` points at.
//!
//! Enabled only with `--features e2e` (see docs/OPERATOR.md); without `KUBECONFIG` it fails with
//! a message saying so rather than passing silently. Every step is also covered, against a mock
//! API server, by `operator/tests/reconcile.rs`, which runs under plain `cargo test`.
#![cfg(feature = "e2e")]

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use k8s_openapi::{
    api::{
        apps::v1::DaemonSet,
        coordination::v1::Lease,
        core::v1::{Namespace, Node, ServiceAccount},
    },
    apimachinery::pkg::apis::meta::v1::MicroTime,
    jiff::Timestamp,
};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use serde_json::json;
use vigil_crds::{
    NodeCoverage, RuntimeFinding, RuntimeMonitoringPolicy, SuppressionRule,
    lease::{AgentHealth, HEALTH_SCHEMA_VERSION, Renewal, agent_lease},
    policy::CoverageStatus,
};
use vigil_e2e::cluster::{
    FIELD_MANAGER, Operator, apply_crds, connect, start_agent, start_operator, wait_for,
};

const NS: &str = "vigil-e2e";
const POLICY: &str = "vigil-e2e";
const LABEL: &str = "vigil.dev/e2e";
const WAIT: Duration = Duration::from_secs(120);
/// Both tests label the same node and a node may belong to one policy only: one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn health() -> AgentHealth {
    AgentHealth {
        schema_version: HEALTH_SCHEMA_VERSION,
        agent_version: "e2e".into(),
        kernel_version: "e2e".into(),
        btf_available: true,
        active_hooks: vec!["e2e".into()],
        probe_failures: vec![],
        events_per_second: 1.0,
        dropped_events_per_second: 0.0,
        dropped_events_total: 0,
        dropped_since_last_renewal: 0,
        sensors_running: true,
        last_error: None,
        publishing: None,
        tampering_total: 0,
        last_tampering: None,
        tracked_bytes: 0,
        tracked_shed_total: 0,
    }
}

/// The namespace `ns` with the agent's ServiceAccount (which the chart ships: the operator only
/// checks it exists), the CRDs and an operator running there; the cluster's first node, labelled
/// `label` so a policy selecting it picks it up.
async fn prepare(client: &kube::Client, ns: &str, label: &str) -> (Operator, Api<Node>, String) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .patch(
            ns,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            ),
        )
        .await
        .unwrap();
    let account = vigil_operator::render::AGENT_SERVICE_ACCOUNT;
    Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .patch(
            account,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ServiceAccount",
                                 "metadata": {"name": account, "namespace": ns}})),
        )
        .await
        .unwrap();
    apply_crds(client).await.unwrap();
    let operator = start_operator(ns).unwrap();
    let nodes: Api<Node> = Api::all(client.clone());
    let node = nodes
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .next()
        .expect("the cluster has a node")
        .name_any();
    nodes
        .patch(
            &node,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {label: "true"}}})),
        )
        .await
        .unwrap();
    (operator, nodes, node)
}

/// Coverage of `node` under `policy`, from the node's `NodeCoverage` object.
async fn coverage_of(
    policies: &Api<RuntimeMonitoringPolicy>,
    policy: &str,
    node: &str,
) -> Option<(CoverageStatus, Option<String>)> {
    let coverages: Api<NodeCoverage> = Api::all(policies.clone().into_client());
    let c = coverages.get_opt(node).await.ok()??;
    (c.spec.policy == policy).then_some((c.spec.status, c.spec.issue))
}

async fn node_status(
    policies: &Api<RuntimeMonitoringPolicy>,
    node: &str,
) -> Option<(CoverageStatus, Option<String>)> {
    coverage_of(policies, POLICY, node).await
}

#[tokio::test]
async fn operator_end_to_end() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let client = connect().await.unwrap_or_else(|e| panic!("{e}"));
    let ssa = PatchParams::apply(FIELD_MANAGER).force();
    // "Add a node": label the first Linux node so the policy selects it.
    let (_operator, nodes, node) = prepare(&client, NS, LABEL).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());

    // Apply a policy: the DaemonSet and the status appear.
    let policies: Api<RuntimeMonitoringPolicy> = Api::all(client.clone());
    let policy = |mode: &str| {
        json!({"apiVersion": "vigil.dev/v1alpha1", "kind": "RuntimeMonitoringPolicy", "metadata": {"name": POLICY},
               "spec": {"agentManagement": mode, "nodeSelector": {LABEL: "true"}, "coverage": {"heartbeatTimeoutSeconds": 10}}})
    };
    policies
        .patch(POLICY, &ssa, &Patch::Apply(policy("Automated")))
        .await
        .unwrap();
    let daemonsets: Api<DaemonSet> = Api::namespaced(client.clone(), NS);
    let ds_name = format!("vigil-agent-{POLICY}");
    wait_for("agent DaemonSet", WAIT, || async {
        daemonsets.get_opt(&ds_name).await.ok()?
    })
    .await
    .unwrap();
    wait_for("the node's NodeCoverage", WAIT, || {
        node_status(&policies, &node)
    })
    .await
    .unwrap();

    // Manual mode: the user runs the agent; the operator removes its DaemonSet and tracks Leases.
    policies
        .patch(POLICY, &ssa, &Patch::Apply(policy("Manual")))
        .await
        .unwrap();
    wait_for("DaemonSet removed", WAIT, || async {
        daemonsets
            .get_opt(&ds_name)
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await
    .unwrap();

    // Renew a Lease as an agent would: coverage turns Healthy.
    let leases: Api<Lease> = Api::namespaced(client.clone(), NS);
    let renewing = Arc::new(AtomicBool::new(true));
    let renewer = {
        let (leases, renewing, node) = (leases.clone(), renewing.clone(), node.clone());
        tokio::spawn(async move {
            while renewing.load(Ordering::Relaxed) {
                let renewal = Renewal {
                    node: &node,
                    namespace: NS,
                    policy: POLICY,
                    holder: "e2e-agent",
                    renew_time: MicroTime(Timestamp::now()),
                    lease_duration_seconds: 10,
                };
                let lease = agent_lease(&renewal, &health()).unwrap();
                let name = lease.name_any();
                leases
                    .patch(
                        &name,
                        &PatchParams::apply(FIELD_MANAGER).force(),
                        &Patch::Apply(&lease),
                    )
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
        })
    };
    wait_for("node Healthy", WAIT, || async {
        matches!(
            node_status(&policies, &node).await,
            Some((CoverageStatus::Healthy, _))
        )
        .then_some(())
    })
    .await
    .unwrap();

    // Stop renewing: Unhealthy, with the reason.
    renewing.store(false, Ordering::Relaxed);
    renewer.await.unwrap();
    let issue = wait_for("node Unhealthy", WAIT, || async {
        match node_status(&policies, &node).await {
            Some((CoverageStatus::Unhealthy, issue)) => issue,
            _ => None,
        }
    })
    .await
    .unwrap();
    assert!(issue.starts_with("AgentNotReporting:"), "{issue}");

    // A suppression rule archives a matching finding.
    let findings: Api<RuntimeFinding> = Api::namespaced(client.clone(), NS);
    let mut finding: RuntimeFinding =
        serde_yaml::from_str(include_str!("../../examples/findings/sample-finding.yaml")).unwrap();
    finding.metadata = kube::core::ObjectMeta {
        name: Some("e2e-finding".into()),
        namespace: Some(NS.into()),
        ..Default::default()
    };
    finding.spec.resource.host.node_name = Some(node.clone());
    let _ = findings
        .delete("e2e-finding", &DeleteParams::default())
        .await;
    findings
        .create(&PostParams::default(), &finding)
        .await
        .unwrap();
    let rules: Api<SuppressionRule> = Api::all(client.clone());
    let rule = json!({"apiVersion": "vigil.dev/v1alpha1", "kind": "SuppressionRule", "metadata": {"name": "vigil-e2e"},
        "spec": {"description": "e2e", "action": "ARCHIVE", "criteria": {"criterion": {"id": {"equals": [finding.spec.id]}}}}});
    rules
        .patch("vigil-e2e", &ssa, &Patch::Apply(rule))
        .await
        .unwrap();
    wait_for("finding archived", WAIT, || async {
        let f = findings.get_opt("e2e-finding").await.ok()??;
        f.status
            .filter(|s| s.archived && s.archived_by.as_deref() == Some("vigil-e2e"))
    })
    .await
    .unwrap();

    // Clean up while the operator still runs (it removes the policy finalizer).
    rules
        .delete("vigil-e2e", &DeleteParams::default())
        .await
        .unwrap();
    findings
        .delete("e2e-finding", &DeleteParams::default())
        .await
        .unwrap();
    policies
        .delete(POLICY, &DeleteParams::default())
        .await
        .unwrap();
    wait_for("policy deleted", WAIT, || async {
        policies.get_opt(POLICY).await.ok()?.is_none().then_some(())
    })
    .await
    .unwrap();
    nodes
        .patch(
            &node,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {LABEL: null}}})),
        )
        .await
        .unwrap();
    namespaces
        .delete(NS, &DeleteParams::default())
        .await
        .unwrap();
}

/// A real agent process in cluster mode, on this host as if it were the cluster's first node
/// (run as root: the agent loads eBPF programs): its Lease makes the node Healthy, a real
/// behaviour becomes a RuntimeFinding and an Event, and killing it turns the node Unhealthy
/// because it stopped reporting.
#[tokio::test]
async fn agent_end_to_end() {
    const AGENT_POLICY: &str = "vigil-e2e-agent";
    const AGENT_LABEL: &str = "vigil.dev/e2e-agent";
    let _turn = ONE_AT_A_TIME.lock().await;
    let client = connect().await.unwrap_or_else(|e| panic!("{e}"));
    let ssa = PatchParams::apply(FIELD_MANAGER).force();
    // Its own namespace: the operator test deletes its own at the end, and deletion takes time.
    const NS: &str = "vigil-e2e-agent";
    let (_operator, nodes, node) = prepare(&client, NS, AGENT_LABEL).await;
    let policies: Api<RuntimeMonitoringPolicy> = Api::all(client.clone());
    let policy: RuntimeMonitoringPolicy = serde_json::from_value(json!({
        "apiVersion": "vigil.dev/v1alpha1", "kind": "RuntimeMonitoringPolicy",
        "metadata": {"name": AGENT_POLICY},
        "spec": {"agentManagement": "Manual", "nodeSelector": {AGENT_LABEL: "true"},
                 "coverage": {"heartbeatTimeoutSeconds": 15},
                 "findings": {"eventMinSeverity": "Low"}}}))
    .unwrap();
    policies
        .patch(AGENT_POLICY, &ssa, &Patch::Apply(&policy))
        .await
        .unwrap();

    // The agent, configured exactly as the operator renders it for this policy.
    let dir = std::env::temp_dir().join(format!("vigil-e2e-agent-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = vigil_crds::agent_config::AgentConfig::for_policy(AGENT_POLICY, &policy.spec, NS);
    let config_path = dir.join("agent.yaml");
    std::fs::write(&config_path, serde_json::to_string(&config).unwrap()).unwrap();
    let mut agent = start_agent(&node, &config_path, &dir.join("state")).unwrap();
    let status = |policies: Api<RuntimeMonitoringPolicy>, node: String| async move {
        coverage_of(&policies, AGENT_POLICY, &node).await
    };
    wait_for("node Healthy from the agent's own Lease", WAIT, || {
        let (policies, node) = (policies.clone(), node.clone());
        async move {
            matches!(
                status(policies, node).await,
                Some((CoverageStatus::Healthy, _))
            )
            .then_some(())
        }
    })
    .await
    .unwrap();

    // A real behaviour on the host: a scanner runs.
    let nmap = dir.join("nmap");
    std::fs::copy("/bin/true", &nmap).unwrap();
    let ran = std::process::Command::new(&nmap)
        .args(["-sS", "127.0.0.1"])
        .status()
        .unwrap();
    assert!(ran.success());
    let findings: Api<RuntimeFinding> = Api::namespaced(client.clone(), NS);
    let found = wait_for("a RuntimeFinding for the scanner", WAIT, || async {
        findings
            .list(&Default::default())
            .await
            .ok()?
            .items
            .into_iter()
            .find(|f| {
                f.spec.finding_type == "Execution:Runtime/SuspiciousTool"
                    && f.spec.resource.host.node_name.as_deref() == Some(node.as_str())
                    && f.spec
                        .process
                        .as_ref()
                        .is_some_and(|p| p.executable_path == nmap.display().to_string())
            })
    })
    .await
    .unwrap();
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::all(client.clone());
    let object = found.name_any();
    wait_for("an Event on the node for the finding", WAIT, || async {
        events
            .list(&Default::default())
            .await
            .ok()?
            .items
            .into_iter()
            .find(|e| {
                e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(node.as_str())
                    && e.related.as_ref().and_then(|r| r.name.as_deref()) == Some(object.as_str())
            })
    })
    .await
    .unwrap();

    // Kill the agent: no more renewals, the node turns Unhealthy, and says why.
    agent.kill();
    let issue = wait_for("node Unhealthy after the agent died", WAIT, || {
        let (policies, node) = (policies.clone(), node.clone());
        async move {
            match status(policies, node).await {
                Some((CoverageStatus::Unhealthy, issue)) => issue,
                _ => None,
            }
        }
    })
    .await
    .unwrap();
    assert!(issue.starts_with("AgentNotReporting:"), "{issue}");

    let _ = findings.delete(&object, &DeleteParams::default()).await;
    policies
        .delete(AGENT_POLICY, &DeleteParams::default())
        .await
        .unwrap();
    wait_for("policy deleted", WAIT, || async {
        policies
            .get_opt(AGENT_POLICY)
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await
    .unwrap();
    nodes
        .patch(
            &node,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {AGENT_LABEL: null}}})),
        )
        .await
        .unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .delete(NS, &DeleteParams::default())
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
