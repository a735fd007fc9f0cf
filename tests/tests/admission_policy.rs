//! The chart's ValidatingAdmissionPolicy ("one node, one voice"), evaluated with a CEL
//! interpreter as the API server would: match conditions, then the variables, then every
//! validation (an expression that errors denies, as `failurePolicy: Fail` does). The objects are
//! the ones the agent really writes (its heartbeat Lease from `vigil_crds::lease::agent_lease`,
//! the example RuntimeFinding) and forged ones.

use cel::{Context, Program, Value as CelValue};
use k8s_openapi::{apimachinery::pkg::apis::meta::v1::MicroTime, jiff::Timestamp};
use serde_json::{Value, json};
use vigil_crds::lease::{AgentHealth, HEALTH_SCHEMA_VERSION, Renewal, agent_lease};
use vigil_e2e::{repo_root, schema::yaml_documents, template::Scope};

const NS: &str = "vigil-system";
/// The agents' ServiceAccount, as the chart ships it and the operator's DaemonSets name it.
const AGENT: &str = "system:serviceaccount:vigil-system:vigil-agent";
const NODE_CLAIM: &str = "authentication.kubernetes.io/node-name";

/// The policy as the chart renders it with its default values.
fn policy() -> Value {
    let chart = repo_root().join("charts/vigil");
    let read = |rel: &str| std::fs::read_to_string(chart.join(rel)).unwrap();
    let meta: Value = serde_yaml::from_str(&read("Chart.yaml")).unwrap();
    let values: Value = serde_yaml::from_str(&read("values.yaml")).unwrap();
    let scope = Scope {
        root: json!({
            "Values": values,
            "Release": {"Name": "vigil", "Namespace": NS},
            "Chart": {"Name": meta["name"], "Version": meta["version"], "AppVersion": meta["appVersion"]},
        }),
    };
    let file = "agent-admission-policy.yaml";
    let text = scope
        .render(file, &read(&format!("templates/{file}")))
        .unwrap();
    yaml_documents(file, &text)
        .unwrap()
        .into_iter()
        .find(|d| d["kind"] == "ValidatingAdmissionPolicy")
        .expect("the chart renders a ValidatingAdmissionPolicy by default")
}

/// `Ok(())` when admitted (or not matched), else the denial's message.
fn admit(policy: &Value, request: &Value, object: &Value) -> Result<(), String> {
    admit_update(policy, request, &Value::Null, object)
}

/// [`admit`] for an update of `old` to `object`.
fn admit_update(
    policy: &Value,
    request: &Value,
    old: &Value,
    object: &Value,
) -> Result<(), String> {
    let eval = |expr: &str, variables: &Value| -> Result<CelValue, String> {
        let program = Program::compile(expr).map_err(|e| format!("{expr}: {e}"))?;
        let mut ctx = Context::default();
        ctx.add_variable("request", request).unwrap();
        ctx.add_variable("object", object).unwrap();
        ctx.add_variable("oldObject", old).unwrap();
        ctx.add_variable("variables", variables).unwrap();
        program.execute(&ctx).map_err(|e| format!("{expr}: {e}"))
    };
    let spec = &policy["spec"];
    for c in spec["matchConditions"].as_array().unwrap() {
        match eval(c["expression"].as_str().unwrap(), &json!({}))? {
            CelValue::Bool(true) => {}
            CelValue::Bool(false) => return Ok(()),
            other => return Err(format!("match condition gave {other:?}")),
        }
    }
    let mut variables = serde_json::Map::new();
    for v in spec["variables"].as_array().unwrap() {
        let value = eval(
            v["expression"].as_str().unwrap(),
            &Value::Object(variables.clone()),
        )?;
        let CelValue::String(s) = value else {
            return Err(format!("variable {} gave {value:?}", v["name"]));
        };
        variables.insert(
            v["name"].as_str().unwrap().to_owned(),
            Value::String(s.to_string()),
        );
    }
    let variables = Value::Object(variables);
    for v in spec["validations"].as_array().unwrap() {
        match eval(v["expression"].as_str().unwrap(), &variables) {
            Ok(CelValue::Bool(true)) => {}
            Ok(CelValue::Bool(false)) => {
                return Err(match v.get("messageExpression").and_then(Value::as_str) {
                    Some(m) => match eval(m, &variables)? {
                        CelValue::String(s) => s.to_string(),
                        other => format!("{other:?}"),
                    },
                    None => v["message"].as_str().unwrap_or("denied").to_owned(),
                });
            }
            Ok(other) => return Err(format!("validation gave {other:?}")),
            Err(e) => return Err(format!("error (failurePolicy Fail): {e}")),
        }
    }
    Ok(())
}

fn request(user: &str, node: Option<&str>, resource: &str) -> Value {
    let mut extra = json!({});
    if let Some(n) = node {
        extra[NODE_CLAIM] = json!([n]);
    }
    json!({
        "userInfo": {"username": user, "extra": extra},
        "resource": {"group": "", "version": "v1", "resource": resource},
        "operation": "CREATE",
    })
}

fn lease(node: &str, duration: i32) -> Value {
    let health = AgentHealth {
        schema_version: HEALTH_SCHEMA_VERSION,
        agent_version: "0.1.0".into(),
        kernel_version: "6.18.0".into(),
        btf_available: true,
        active_hooks: vec![],
        probe_failures: vec![],
        events_per_second: 0.0,
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
    };
    let renewal = Renewal {
        node,
        namespace: NS,
        policy: "all-linux",
        holder: "vigil-agent-all-linux-abcde",
        renew_time: MicroTime(Timestamp::from_second(1_800_000_000).unwrap()),
        lease_duration_seconds: duration,
    };
    serde_json::to_value(agent_lease(&renewal, &health).unwrap()).unwrap()
}

fn finding(node: Option<&str>) -> Value {
    let text =
        std::fs::read_to_string(repo_root().join("examples/findings/sample-finding.yaml")).unwrap();
    let mut f: Value = serde_yaml::from_str(&text).unwrap();
    match node {
        Some(n) => f["spec"]["resource"]["host"]["nodeName"] = json!(n),
        None => {
            f["spec"]["resource"]["host"]
                .as_object_mut()
                .unwrap()
                .remove("nodeName");
        }
    }
    f
}

fn event(kind: &str, name: &str) -> Value {
    json!({
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": "x", "namespace": "default"},
        "reason": "CryptoMinerExecuted",
        "regarding": {"apiVersion": "v1", "kind": kind, "name": name},
    })
}

#[test]
fn each_agent_writes_only_its_own_nodes_objects() {
    let p = policy();
    use vigil_operator::render::{AGENT_SERVICE_ACCOUNT, RESPONDER_SERVICE_ACCOUNT};
    assert_eq!(
        (AGENT_SERVICE_ACCOUNT, RESPONDER_SERVICE_ACCOUNT),
        ("vigil-agent", "vigil-responder"),
        "the names the table uses"
    );
    let a = |node: Option<&str>, resource: &str| request(AGENT, node, resource);
    // (case, request, object, Ok or a fragment of the denial)
    let table: Vec<(&str, Value, Value, Result<(), &str>)> = vec![
        (
            "own heartbeat",
            a(Some("node-a"), "leases"),
            lease("node-a", 40),
            Ok(()),
        ),
        (
            "another node's heartbeat",
            a(Some("node-a"), "leases"),
            lease("node-b", 40),
            Err("may write only its own heartbeat Lease, vigil-agent-node-a"),
        ),
        (
            "own name, another node's label",
            a(Some("node-a"), "leases"),
            {
                let mut l = lease("node-a", 40);
                l["metadata"]["labels"]["vigil.dev/node"] = json!("node-b");
                l
            },
            Err("may write only its own heartbeat Lease"),
        ),
        (
            "the operator's leader Lease",
            a(Some("node-a"), "leases"),
            json!({"metadata": {"name": "vigil-operator-leader"}, "spec": {"holderIdentity": "x"}}),
            Err("may write only its own heartbeat Lease"),
        ),
        (
            "an absurd lease duration",
            a(Some("node-a"), "leases"),
            lease("node-a", i32::MAX),
            Err("leaseDurationSeconds must be between 1 and 300"),
        ),
        (
            "a token not bound to a node",
            a(None, "leases"),
            lease("node-a", 40),
            Err("must be bound to a pod on a node"),
        ),
        (
            "own finding",
            a(Some("node-a"), "runtimefindings"),
            finding(Some("node-a")),
            Ok(()),
        ),
        (
            "another node's finding",
            a(Some("node-a"), "runtimefindings"),
            finding(Some("node-b")),
            Err("whose spec.resource.host.nodeName is node-a"),
        ),
        (
            "archiving own finding (status)",
            {
                let mut r = a(Some("node-a"), "runtimefindings");
                r["subResource"] = json!("status");
                r
            },
            finding(Some("node-a")),
            Ok(()),
        ),
        (
            "archiving another node's finding (status), which would hide it",
            {
                let mut r = a(Some("node-a"), "runtimefindings");
                r["subResource"] = json!("status");
                r
            },
            {
                let mut f = finding(Some("node-b"));
                f["status"] = json!({"archived": true, "archivedBy": "forged"});
                f
            },
            Err("whose spec.resource.host.nodeName is node-a"),
        ),
        (
            "a finding naming no node",
            a(Some("node-a"), "runtimefindings"),
            finding(None),
            Err("whose spec.resource.host.nodeName is node-a"),
        ),
        (
            "an Event about its own Node",
            a(Some("node-a"), "events"),
            event("Node", "node-a"),
            Ok(()),
        ),
        (
            "an Event about another Node",
            a(Some("node-a"), "events"),
            event("Node", "node-b"),
            Err("may write Events only about its own Node"),
        ),
        (
            "an Event about a pod (its node cannot be looked up here)",
            a(Some("node-a"), "events"),
            event("Pod", "web-1"),
            Ok(()),
        ),
        (
            "the operator is not an agent",
            request(
                "system:serviceaccount:vigil-system:vigil-operator",
                None,
                "leases",
            ),
            lease("node-b", 40),
            Ok(()),
        ),
        (
            "the responder (isolating agents) is an agent",
            request(
                "system:serviceaccount:vigil-system:vigil-responder",
                Some("node-a"),
                "leases",
            ),
            lease("node-b", 40),
            Err("may write only its own heartbeat Lease, vigil-agent-node-a"),
        ),
        (
            "a per-policy ServiceAccount of an older operator is an agent until cleaned up",
            request(
                "system:serviceaccount:vigil-system:vigil-agent-all-linux",
                Some("node-a"),
                "runtimefindings",
            ),
            finding(Some("node-b")),
            Err("whose spec.resource.host.nodeName is node-a"),
        ),
        (
            "a ServiceAccount whose name only begins like the agent's is not matched",
            request(
                "system:serviceaccount:vigil-system:vigil-agents",
                Some("node-a"),
                "leases",
            ),
            lease("node-b", 40),
            Ok(()),
        ),
        (
            "an agent ServiceAccount of another namespace is not matched",
            request(
                "system:serviceaccount:other:vigil-agent",
                Some("node-a"),
                "leases",
            ),
            lease("node-b", 40),
            Ok(()),
        ),
    ];
    // The status subresource is matched: RBAC lets every agent patch any finding's status.
    let rules = p["spec"]["matchConstraints"]["resourceRules"]
        .as_array()
        .unwrap();
    assert!(
        rules.iter().any(|r| r["resources"]
            .as_array()
            .unwrap()
            .contains(&json!("runtimefindings/status"))),
        "{rules:?}"
    );
    for (case, req, obj, want) in table {
        let got = admit(&p, &req, &obj);
        match (want, &got) {
            (Ok(()), Ok(())) => {}
            (Err(fragment), Err(message)) => {
                assert!(message.contains(fragment), "{case}: {message}")
            }
            _ => panic!("{case}: want {want:?}, got {got:?}"),
        }
    }
}

/// A pod as the API server holds it, on `node`.
fn pod(node: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-1", "namespace": "shop", "labels": {"app": "web"},
                     "annotations": {"team": "shop"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d9", "uid": "u1", "controller": true}]},
        "spec": {"nodeName": node, "containers": [{"name": "web", "image": "shop/web:1"}]},
    })
}

/// `pod` after the merge patch `patch` (RFC 7386), as the API server would store it.
fn merged(pod: &Value, patch: &Value) -> Value {
    fn merge(target: &mut Value, patch: &Value) {
        match (target, patch) {
            (Value::Object(t), Value::Object(p)) => {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
            (t, p) => *t = p.clone(),
        }
    }
    let mut out = pod.clone();
    merge(&mut out, patch);
    out
}

/// The isolate action: the responder may patch pods (RBAC cannot narrow that to a label or a
/// node), so the policy admits only what the agent sends, `{"metadata": {"labels":
/// {"vigil.dev/quarantined": "true"}}}`, to a pod on its own node.
#[test]
fn a_responder_only_labels_pods_on_its_own_node_quarantined() {
    let p = policy();
    let mut req = request(
        "system:serviceaccount:vigil-system:vigil-responder",
        Some("node-a"),
        "pods",
    );
    req["operation"] = json!("UPDATE");
    let quarantine =
        json!({"metadata": {"labels": {vigil_crds::response::QUARANTINE_LABEL: "true"}}});
    // (case, pod before, merge patch, Ok or a fragment of the denial)
    let table: Vec<(&str, Value, Value, Result<(), &str>)> = vec![
        (
            "the agent's label, own node",
            pod("node-a"),
            quarantine.clone(),
            Ok(()),
        ),
        (
            "the agent's label on a pod without labels",
            {
                let mut p = pod("node-a");
                p["metadata"].as_object_mut().unwrap().remove("labels");
                p
            },
            quarantine.clone(),
            Ok(()),
        ),
        (
            "the agent's label, another node's pod",
            pod("node-b"),
            quarantine.clone(),
            Err("may label only pods on its own node"),
        ),
        (
            "a changed image",
            pod("node-a"),
            json!({"metadata": {"labels": {"vigil.dev/quarantined": "true"}},
                   "spec": {"containers": [{"name": "web", "image": "evil/web:1"}]}}),
            Err("only by setting the label vigil.dev/quarantined=true"),
        ),
        (
            "another label changed",
            pod("node-a"),
            json!({"metadata": {"labels": {"vigil.dev/quarantined": "true", "app": "db"}}}),
            Err("only by setting the label"),
        ),
        (
            "another label removed",
            pod("node-a"),
            json!({"metadata": {"labels": {"vigil.dev/quarantined": "true", "app": null}}}),
            Err("only by setting the label"),
        ),
        (
            "the quarantine lifted",
            merged(&pod("node-a"), &quarantine),
            json!({"metadata": {"labels": {"vigil.dev/quarantined": null}}}),
            Err("only by setting the label"),
        ),
        (
            "an annotation changed",
            pod("node-a"),
            json!({"metadata": {"labels": {"vigil.dev/quarantined": "true"}, "annotations": {"team": "x"}}}),
            Err("only by setting the label"),
        ),
        (
            "a finalizer added",
            pod("node-a"),
            json!({"metadata": {"labels": {"vigil.dev/quarantined": "true"}, "finalizers": ["x/block"]}}),
            Err("only by setting the label"),
        ),
        (
            "owners removed",
            pod("node-a"),
            json!({"metadata": {"labels": {"vigil.dev/quarantined": "true"}, "ownerReferences": null}}),
            Err("only by setting the label"),
        ),
    ];
    for (case, before, patch, want) in table {
        let after = merged(&before, &patch);
        let got = admit_update(&p, &req, &before, &after);
        match (want, &got) {
            (Ok(()), Ok(())) => {}
            (Err(fragment), Err(message)) => {
                assert!(message.contains(fragment), "{case}: {message}")
            }
            _ => panic!("{case}: want {want:?}, got {got:?}"),
        }
    }
    // Someone else's pod updates are not matched.
    let mut kubelet = req.clone();
    kubelet["userInfo"]["username"] = json!("system:node:node-b");
    let before = pod("node-a");
    let after = merged(
        &before,
        &json!({"spec": {"containers": [{"name": "web", "image": "shop/web:2"}]}}),
    );
    assert_eq!(admit_update(&p, &kubelet, &before, &after), Ok(()));
    assert!(
        p["spec"]["matchConstraints"]["resourceRules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["resources"] == json!(["pods"]) && r["operations"] == json!(["UPDATE"]))
    );
}

#[test]
fn the_policy_is_bound_and_can_be_turned_off() {
    let p = policy();
    assert_eq!(p["spec"]["failurePolicy"], "Fail");
    let chart = repo_root().join("charts/vigil");
    let template =
        std::fs::read_to_string(chart.join("templates/agent-admission-policy.yaml")).unwrap();
    assert!(template.contains("kind: ValidatingAdmissionPolicyBinding"));
    assert!(template.contains("validationActions: [Deny]"));
    let meta: Value =
        serde_yaml::from_str(&std::fs::read_to_string(chart.join("Chart.yaml")).unwrap()).unwrap();
    let mut values: Value =
        serde_yaml::from_str(&std::fs::read_to_string(chart.join("values.yaml")).unwrap()).unwrap();
    values["agentAdmissionPolicy"]["enabled"] = json!(false);
    let scope = Scope {
        root: json!({
            "Values": values,
            "Release": {"Name": "vigil", "Namespace": NS},
            "Chart": {"Name": meta["name"], "Version": meta["version"], "AppVersion": meta["appVersion"]},
        }),
    };
    let off = scope
        .render("agent-admission-policy.yaml", &template)
        .unwrap();
    assert!(
        yaml_documents("agent-admission-policy.yaml", &off)
            .unwrap()
            .is_empty()
    );
}
