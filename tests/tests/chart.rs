//! The Helm chart, checked without Helm: values against `values.schema.json`, every template
//! rendered (plain subset only) into well-formed objects, CRDs identical to `crds/`, and RBAC that
//! lets the operator grant the agent what it renders (the apiserver's escalation check).

use std::{collections::BTreeSet, path::PathBuf};

use serde_json::{Value, json};
use vigil_crds::RuntimeMonitoringPolicy;
use vigil_e2e::{
    repo_root,
    schema::{check_structure, yaml_documents},
    template::Scope,
};

const NS: &str = "vigil-system";

fn chart() -> PathBuf {
    repo_root().join("charts/vigil")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(chart().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn values() -> Value {
    serde_yaml::from_str(&read("values.yaml")).unwrap()
}

fn schema() -> Value {
    serde_json::from_str(&read("values.schema.json")).unwrap()
}

fn schema_problems(v: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    check_structure(&schema(), v, "", &mut problems);
    problems
}

fn scope(values: Value) -> Scope {
    let chart: Value = serde_yaml::from_str(&read("Chart.yaml")).unwrap();
    Scope {
        root: json!({
            "Values": values,
            "Release": {"Name": "vigil", "Namespace": NS},
            "Chart": {"Name": chart["name"], "Version": chart["version"], "AppVersion": chart["appVersion"]},
        }),
    }
}

/// Every template rendered with `values`, parsed, by file name.
fn render_all(values: Value) -> Vec<(String, Value)> {
    let s = scope(values);
    let mut out = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(chart().join("templates"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    for name in names {
        let rendered = s
            .render(&name, &read(&format!("templates/{name}")))
            .unwrap_or_else(|e| panic!("{e}"));
        if name.ends_with(".txt") {
            assert!(!rendered.contains("{{"), "{name}");
            continue;
        }
        for doc in yaml_documents(&name, &rendered)
            .unwrap_or_else(|e| panic!("{e}: {:?}\n{rendered}", std::error::Error::source(&e)))
        {
            out.push((name.clone(), doc));
        }
    }
    out
}

fn find<'a>(objs: &'a [(String, Value)], kind: &str) -> &'a Value {
    &objs
        .iter()
        .find(|(_, o)| o["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
        .1
}

#[test]
fn default_values_match_the_schema_and_bad_values_do_not() {
    assert_eq!(schema_problems(&values()), Vec::<String>::new());
    let cases = [
        ("/replicas", json!(0), ".replicas: 0 is below the minimum 1"),
        (
            "/logFormat",
            json!("xml"),
            ".logFormat: \"xml\" is not one of",
        ),
        (
            "/image/pullPolicy",
            json!("Sometimes"),
            ".image.pullPolicy: \"Sometimes\" is not one of",
        ),
        (
            "/metrics/port",
            json!("8080"),
            ".metrics.port: expected integer",
        ),
    ];
    for (pointer, bad, want) in cases {
        let mut v = values();
        *v.pointer_mut(pointer).unwrap() = bad;
        let got = schema_problems(&v);
        assert!(
            got.iter().any(|p| p.starts_with(want)),
            "{pointer}: {got:?}"
        );
    }
    let mut v = values();
    v["replica"] = json!(2);
    assert!(schema_problems(&v).contains(&".replica: unknown field".to_owned()));
}

#[test]
fn templates_render_to_well_formed_objects() {
    let objs = render_all(values());
    let kinds: BTreeSet<&str> = objs
        .iter()
        .map(|(_, o)| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding"
        ])
    );
    for (file, o) in &objs {
        assert!(
            o["apiVersion"].is_string() && o["metadata"]["name"].is_string(),
            "{file}: {o}"
        );
        let cluster_scoped = matches!(
            o["kind"].as_str(),
            Some(
                "ClusterRole"
                    | "ClusterRoleBinding"
                    | "ValidatingAdmissionPolicy"
                    | "ValidatingAdmissionPolicyBinding"
            )
        );
        assert_eq!(
            o["metadata"]["namespace"].as_str().is_none(),
            cluster_scoped,
            "{file}"
        );
        if !cluster_scoped {
            assert_eq!(o["metadata"]["namespace"], NS, "{file}");
        }
    }
    let deploy = find(&objs, "Deployment");
    // Typed parse: the rendered Deployment is a valid apps/v1 Deployment.
    let typed: k8s_openapi::api::apps::v1::Deployment =
        serde_json::from_value(deploy.clone()).unwrap();
    let pod = typed.spec.template.spec.unwrap();
    let c = &pod.containers[0];
    assert_eq!(
        c.image.as_deref(),
        Some("ghcr.io/vigil-dev/vigil-operator:0.1.0")
    );
    assert_eq!(
        c.args.as_deref().unwrap(),
        ["--log-format=json", "--http-addr=0.0.0.0:8080"]
    );
    assert_eq!(
        c.resources.as_ref().unwrap().limits.as_ref().unwrap()["memory"].0,
        "256Mi"
    );
    assert_eq!(pod.priority_class_name, None);
    let sa = pod.service_account_name.unwrap();
    assert_eq!(
        find(&objs, "ServiceAccount")["metadata"]["name"],
        sa.as_str()
    );
    assert_eq!(
        find(&objs, "ClusterRoleBinding")["subjects"][0]["name"],
        sa.as_str()
    );
    assert_eq!(
        find(&objs, "RoleBinding")["subjects"][0]["name"],
        sa.as_str()
    );
}

#[test]
fn leader_election_and_options_reach_the_deployment() {
    let mut v = values();
    v["replicas"] = json!(2);
    v["leaderElection"] = json!(true);
    v["priorityClassName"] = json!("system-cluster-critical");
    v["tolerations"] = json!([{"key": "dedicated", "operator": "Exists"}]);
    assert_eq!(schema_problems(&v), Vec::<String>::new());
    let objs = render_all(v);
    let d = find(&objs, "Deployment");
    assert_eq!(d["spec"]["replicas"], 2);
    let pod = &d["spec"]["template"]["spec"];
    assert!(
        pod["containers"][0]["args"]
            .as_array()
            .unwrap()
            .contains(&json!("--leader-election"))
    );
    assert_eq!(pod["priorityClassName"], "system-cluster-critical");
    assert_eq!(pod["tolerations"][0]["key"], "dedicated");
    // The agent image allow-list reaches the operator as the variable its flag reads.
    let env = pod["containers"][0]["env"].as_array().unwrap();
    let allowed = env
        .iter()
        .find(|e| e["name"] == "VIGIL_ALLOWED_AGENT_IMAGES")
        .expect("VIGIL_ALLOWED_AGENT_IMAGES");
    assert_eq!(allowed["value"], "ghcr.io/vigil-dev/vigil-agent");
}

#[test]
fn metrics_authentication_adds_the_flag_and_the_review_rights() {
    let reviews = |objs: &[(String, Value)]| {
        find(objs, "ClusterRole")["rules"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["resources"] == json!(["tokenreviews"])
                    || r["resources"] == json!(["subjectaccessreviews"])
            })
            .count()
    };
    let args = |objs: &[(String, Value)]| {
        find(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .unwrap()
            .contains(&json!("--metrics-auth=kubernetes"))
    };
    let off = render_all(values());
    assert_eq!((args(&off), reviews(&off)), (false, 0));
    let mut v = values();
    v["metrics"]["authenticate"] = json!(true);
    assert_eq!(schema_problems(&v), Vec::<String>::new());
    let on = render_all(v);
    assert_eq!((args(&on), reviews(&on)), (true, 2));
}

#[test]
fn chart_crds_are_the_generated_crds() {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(repo_root().join("crds")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let chart_copy = std::fs::read_to_string(chart().join("crds").join(&name))
                .unwrap_or_else(|e| panic!("charts/vigil/crds/{name}: {e}"));
            assert!(
                chart_copy == std::fs::read_to_string(&path).unwrap(),
                "charts/vigil/crds/{name} differs; run crdgen"
            );
            names.push(name);
        }
    }
    let chart_count = std::fs::read_dir(chart().join("crds")).unwrap().count();
    assert_eq!((names.len(), chart_count), (4, 4));
}

type Grants = BTreeSet<(String, String, String)>;

fn grants(rules: &Value) -> Grants {
    let mut out = BTreeSet::new();
    for r in rules.as_array().unwrap() {
        for g in r["apiGroups"].as_array().unwrap() {
            for res in r["resources"].as_array().unwrap() {
                for v in r["verbs"].as_array().unwrap() {
                    out.insert((
                        g.as_str().unwrap().to_owned(),
                        res.as_str().unwrap().to_owned(),
                        v.as_str().unwrap().to_owned(),
                    ));
                }
            }
        }
    }
    out
}

#[test]
fn operator_rbac_covers_what_it_grants_and_what_it_calls() {
    let objs = render_all(values());
    let cluster = grants(&find(&objs, "ClusterRole")["rules"]);
    let namespaced: Grants = cluster
        .union(&grants(&find(&objs, "Role")["rules"]))
        .cloned()
        .collect();

    let mut policy = RuntimeMonitoringPolicy::new("p", serde_json::from_value(json!({})).unwrap());
    policy.metadata.uid = Some("u".into());
    let agent = vigil_operator::render::render(&policy, NS, &[]).unwrap();
    let agent_cluster = grants(&serde_json::to_value(&agent.cluster_role).unwrap()["rules"]);
    let agent_ns = grants(&serde_json::to_value(&agent.role).unwrap()["rules"]);
    let missing: Vec<_> = agent_cluster.difference(&cluster).collect();
    assert!(
        missing.is_empty(),
        "operator cannot grant the agent ClusterRole: {missing:?}"
    );
    let missing: Vec<_> = agent_ns.difference(&namespaced).collect();
    assert!(
        missing.is_empty(),
        "operator cannot grant the agent Role: {missing:?}"
    );

    // What the controllers call (see policy_controller, suppression_controller, leader, main).
    let calls_cluster = [
        (
            "vigil.dev",
            "runtimemonitoringpolicies",
            ["list", "watch", "patch"].as_slice(),
        ),
        ("vigil.dev", "runtimemonitoringpolicies/status", &["patch"]),
        (
            "vigil.dev",
            "runtimemonitoringpolicies/finalizers",
            &["update"],
        ),
        ("vigil.dev", "suppressionrules", &["list", "watch"]),
        ("vigil.dev", "suppressionrules/status", &["patch"]),
        ("vigil.dev", "runtimefindings", &["list", "watch"]),
        ("vigil.dev", "runtimefindings/status", &["patch"]),
        (
            "vigil.dev",
            "nodecoverages",
            &["list", "watch", "patch", "delete"],
        ),
        ("", "nodes", &["list", "watch"]),
        ("events.k8s.io", "events", &["create", "patch"]),
        (
            "rbac.authorization.k8s.io",
            "clusterroles",
            &["patch", "delete"],
        ),
        (
            "rbac.authorization.k8s.io",
            "clusterrolebindings",
            &["patch", "delete"],
        ),
    ];
    let calls_ns = [
        ("", "pods", ["list", "watch"].as_slice()),
        (
            "coordination.k8s.io",
            "leases",
            &["list", "watch", "get", "create", "update"],
        ),
        ("apps", "daemonsets", &["list", "watch", "patch", "delete"]),
        ("", "serviceaccounts", &["patch", "delete"]),
        ("", "configmaps", &["patch", "delete"]),
        ("rbac.authorization.k8s.io", "roles", &["patch", "delete"]),
        (
            "rbac.authorization.k8s.io",
            "rolebindings",
            &["patch", "delete"],
        ),
    ];
    for (set, calls) in [(&cluster, &calls_cluster[..]), (&namespaced, &calls_ns[..])] {
        for (g, r, verbs) in calls {
            for v in *verbs {
                assert!(
                    set.contains(&((*g).to_owned(), (*r).to_owned(), (*v).to_owned())),
                    "operator lacks {v} {g}/{r}"
                );
            }
        }
    }
    // Least privilege: no wildcards and no secrets.
    assert!(
        namespaced
            .iter()
            .all(|(g, r, v)| g != "*" && r != "*" && v != "*" && r != "secrets")
    );
}
