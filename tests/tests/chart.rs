//! The Helm chart, checked without Helm: values against `values.schema.json`, every template
//! rendered (plain subset only) into well-formed objects, CRDs identical to `crds/`, an operator
//! that may write no RBAC object or ServiceAccount, and the agent's identities with exactly the
//! rights the agent needs.

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

fn named<'a>(objs: &'a [(String, Value)], kind: &str, name: &str) -> Option<&'a Value> {
    objs.iter()
        .map(|(_, o)| o)
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}

fn operator_object<'a>(objs: &'a [(String, Value)], kind: &str) -> &'a Value {
    named(objs, kind, "vigil-operator").unwrap_or_else(|| panic!("no {kind} vigil-operator"))
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
    assert_eq!(sa, "vigil-operator");
    operator_object(&objs, "ServiceAccount");
    assert_eq!(
        operator_object(&objs, "ClusterRoleBinding")["subjects"],
        json!([{"kind": "ServiceAccount", "name": sa, "namespace": NS}])
    );
    assert_eq!(
        operator_object(&objs, "RoleBinding")["subjects"],
        json!([{"kind": "ServiceAccount", "name": sa, "namespace": NS}])
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
        operator_object(objs, "ClusterRole")["rules"]
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

/// What a ServiceAccount of the release namespace holds through the chart's bindings:
/// (cluster-wide grants, grants in the namespace).
fn grants_of(objs: &[(String, Value)], service_account: &str) -> (Grants, Grants) {
    let bound = |o: &Value| {
        o["subjects"].as_array().into_iter().flatten().any(|s| {
            s["kind"] == "ServiceAccount" && s["name"] == service_account && s["namespace"] == NS
        })
    };
    let (mut cluster, mut namespaced) = (Grants::new(), Grants::new());
    for (binding, role, out) in [
        ("ClusterRoleBinding", "ClusterRole", &mut cluster),
        ("RoleBinding", "Role", &mut namespaced),
    ] {
        for (_, b) in objs.iter().filter(|(_, o)| o["kind"] == binding) {
            if !bound(b) {
                continue;
            }
            assert_eq!(b["roleRef"]["kind"], role, "{b}");
            let name = b["roleRef"]["name"].as_str().unwrap();
            let r = named(objs, role, name)
                .unwrap_or_else(|| panic!("{role} {name} is bound, not shipped"));
            out.extend(grants(&r["rules"]));
        }
    }
    (cluster, namespaced)
}

fn grant_set(list: &[(&str, &str, &[&str])]) -> Grants {
    list.iter()
        .flat_map(|(g, r, verbs)| {
            verbs
                .iter()
                .map(|v| ((*g).to_owned(), (*r).to_owned(), (*v).to_owned()))
        })
        .collect()
}

/// What the agent needs: the rules the operator rendered per policy before the chart shipped
/// them (pods get/list/watch, nodes get, runtimefindings and their status, suppressionrules
/// read, events; heartbeat Leases in the namespace).
fn agent_needs() -> (Grants, Grants) {
    (
        grant_set(&[
            ("", "pods", &["get", "list", "watch"]),
            ("", "nodes", &["get"]),
            (
                "vigil.dev",
                "runtimefindings",
                &["get", "list", "watch", "create", "patch", "update"],
            ),
            ("vigil.dev", "runtimefindings/status", &["patch", "update"]),
            ("vigil.dev", "suppressionrules", &["get", "list", "watch"]),
            ("events.k8s.io", "events", &["create", "patch"]),
        ]),
        grant_set(&[(
            "coordination.k8s.io",
            "leases",
            &["get", "create", "update", "patch"],
        )]),
    )
}

#[test]
fn agent_identities_hold_exactly_what_the_agent_needs() {
    use vigil_operator::render::{AGENT_SERVICE_ACCOUNT, RESPONDER_SERVICE_ACCOUNT};

    let (need_cluster, need_ns) = agent_needs();
    let mut v = values();
    v["agentResponder"]["enabled"] = json!(true);
    let objs = render_all(v);
    for sa in [AGENT_SERVICE_ACCOUNT, RESPONDER_SERVICE_ACCOUNT] {
        let account = named(&objs, "ServiceAccount", sa).unwrap_or_else(|| panic!("no {sa}"));
        assert_eq!(account["metadata"]["namespace"], NS);
        // Never a name an older operator gave a policy's ServiceAccount.
        assert!(!sa.starts_with("vigil-agent-"), "{sa}");
    }
    let agent = grants_of(&objs, AGENT_SERVICE_ACCOUNT);
    assert_eq!(agent, (need_cluster.clone(), need_ns.clone()));
    // The responder: the same, plus patch on pods (labelling a pod quarantined).
    let mut responder_cluster = need_cluster.clone();
    responder_cluster.insert(("".into(), "pods".into(), "patch".into()));
    assert_eq!(
        grants_of(&objs, RESPONDER_SERVICE_ACCOUNT),
        (responder_cluster, need_ns.clone())
    );

    // By default no responder: no such ServiceAccount, and nothing may patch pods.
    let objs = render_all(values());
    assert!(named(&objs, "ServiceAccount", RESPONDER_SERVICE_ACCOUNT).is_none());
    assert_eq!(
        grants_of(&objs, RESPONDER_SERVICE_ACCOUNT),
        (Grants::new(), Grants::new())
    );
    assert_eq!(
        grants_of(&objs, AGENT_SERVICE_ACCOUNT),
        (need_cluster, need_ns)
    );
    for (_, o) in objs
        .iter()
        .filter(|(_, o)| o["kind"] == "ClusterRole" || o["kind"] == "Role")
    {
        assert!(
            !grants(&o["rules"]).contains(&("".into(), "pods".into(), "patch".into())),
            "{}",
            o["metadata"]["name"]
        );
    }
}

#[test]
fn the_daemon_set_runs_as_a_service_account_the_chart_ships() {
    let mut v = values();
    v["agentResponder"]["enabled"] = json!(true);
    let objs = render_all(v);
    let isolate = json!({"findingTypes": ["Execution:Runtime/ReverseShell"]});
    for spec in [
        json!({}),
        json!({"response": {"isolate": isolate}}),
        json!({"response": {"mode": "enforce", "isolate": isolate}}),
    ] {
        let mut policy = RuntimeMonitoringPolicy::new("p", serde_json::from_value(spec).unwrap());
        policy.metadata.uid = Some("u".into());
        let rendered = vigil_operator::render::render(&policy, NS, &[]).unwrap();
        let sa = rendered
            .daemon_set
            .spec
            .template
            .spec
            .unwrap()
            .service_account_name
            .unwrap();
        assert!(named(&objs, "ServiceAccount", &sa).is_some(), "{sa}");
    }
}

#[test]
fn upgrade_cleanup_selects_none_of_the_charts_objects() {
    // NOTES.txt and docs/OPERATOR.md delete the per-policy objects of older operators by these
    // labels; the chart's own agent objects must not match.
    let notes = read("templates/NOTES.txt");
    let selector = "app.kubernetes.io/managed-by=vigil-operator,app.kubernetes.io/name=vigil-agent";
    assert_eq!(notes.matches(selector).count(), 2, "{notes}");
    let mut v = values();
    v["agentResponder"]["enabled"] = json!(true);
    for (file, o) in render_all(v) {
        let labels = &o["metadata"]["labels"];
        assert!(
            !(labels["app.kubernetes.io/managed-by"] == "vigil-operator"
                && labels["app.kubernetes.io/name"] == "vigil-agent"),
            "{file}: {}",
            o["metadata"]["name"]
        );
    }
}

/// RBAC verbs that change an object or widen what a subject may do.
const WRITE_VERBS: &[&str] = &[
    "*",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "bind",
    "escalate",
    "impersonate",
];

#[test]
fn operator_rbac_writes_no_rbac_and_covers_what_it_calls() {
    for authenticate in [false, true] {
        let mut v = values();
        v["metrics"]["authenticate"] = json!(authenticate);
        v["agentResponder"]["enabled"] = json!(true);
        let objs = render_all(v);
        let role = operator_object(&objs, "Role");
        let cluster = grants(&operator_object(&objs, "ClusterRole")["rules"]);
        let namespaced = grants(&role["rules"]);
        for (g, r, verb) in cluster.iter().chain(&namespaced) {
            assert!(
                !(g == "rbac.authorization.k8s.io" && WRITE_VERBS.contains(&verb.as_str())),
                "operator may {verb} {g}/{r}"
            );
            assert!(
                !(g.is_empty()
                    && r.starts_with("serviceaccounts")
                    && WRITE_VERBS.contains(&verb.as_str())),
                "operator may {verb} {r}"
            );
            assert!(
                g != "*" && r != "*" && verb != "*" && r != "secrets",
                "{verb} {g}/{r}"
            );
        }
        // ServiceAccounts: read, and only the agent's, by name.
        for rule in role["rules"].as_array().unwrap() {
            if rule["resources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r == "serviceaccounts")
            {
                assert_eq!(
                    rule["resourceNames"],
                    json!([
                        vigil_operator::render::AGENT_SERVICE_ACCOUNT,
                        vigil_operator::render::RESPONDER_SERVICE_ACCOUNT
                    ])
                );
                assert_eq!(rule["verbs"], json!(["get"]));
            }
        }
        assert!(
            !cluster.iter().any(|(_, r, _)| r == "serviceaccounts"),
            "{cluster:?}"
        );
        let namespaced: Grants = cluster.union(&namespaced).cloned().collect();

        // What the controllers call (see policy_controller, suppression_controller,
        // finding_gc, quarantine, leader, main).
        let calls_cluster = grant_set(&[
            (
                "vigil.dev",
                "runtimemonitoringpolicies",
                &["list", "watch", "patch"],
            ),
            ("vigil.dev", "runtimemonitoringpolicies/status", &["patch"]),
            (
                "vigil.dev",
                "runtimemonitoringpolicies/finalizers",
                &["update"],
            ),
            ("vigil.dev", "suppressionrules", &["list", "watch"]),
            ("vigil.dev", "suppressionrules/status", &["patch"]),
            ("vigil.dev", "runtimefindings", &["list", "watch", "delete"]),
            ("vigil.dev", "runtimefindings/status", &["patch"]),
            (
                "vigil.dev",
                "nodecoverages",
                &["list", "watch", "patch", "delete"],
            ),
            ("", "nodes", &["list", "watch"]),
            ("", "pods", &["list", "watch"]),
            ("networking.k8s.io", "networkpolicies", &["patch", "delete"]),
            ("events.k8s.io", "events", &["create", "patch"]),
        ]);
        let calls_ns = grant_set(&[
            ("", "pods", &["list", "watch"]),
            (
                "coordination.k8s.io",
                "leases",
                &["list", "watch", "get", "create", "update"],
            ),
            ("apps", "daemonsets", &["list", "watch", "patch", "delete"]),
            ("", "configmaps", &["patch", "delete"]),
            ("", "serviceaccounts", &["get"]),
        ]);
        let missing: Vec<_> = calls_cluster.difference(&cluster).collect();
        assert!(missing.is_empty(), "operator lacks {missing:?}");
        let missing: Vec<_> = calls_ns.difference(&namespaced).collect();
        assert!(
            missing.is_empty(),
            "operator lacks {missing:?} in its namespace"
        );
    }
}

#[test]
fn the_console_deployment_is_opt_in_with_its_own_account_and_exactly_its_rights() {
    let off = render_all(values());
    assert!(named(&off, "Deployment", "vigil-console").is_none());
    let mut v = values();
    v["console"]["enabled"] = json!(true);
    v["console"]["extraAllowedHosts"] = json!("vigil.example.com");
    assert_eq!(schema_problems(&v), Vec::<String>::new());
    let on = render_all(v);
    let deployment = named(&on, "Deployment", "vigil-console").expect("the console Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "vigil-console");
    let args = pod["containers"][0]["args"].as_array().unwrap();
    for want in [
        "--console-only",
        "--console-listen=0.0.0.0:8765",
        "--console-allowed-hosts=localhost,127.0.0.1,[::1],vigil-console,vigil-console.vigil-system,vigil-console.vigil-system.svc,vigil-console.vigil-system.svc.cluster.local,vigil.example.com",
    ] {
        assert!(args.contains(&json!(want)), "{want}: {args:?}");
    }
    assert!(named(&on, "ServiceAccount", "vigil-console").is_some());
    let service = named(&on, "Service", "vigil-console").expect("the console Service");
    assert_eq!(service["spec"]["ports"][0]["port"], 8765);
    let cluster = grants(&named(&on, "ClusterRole", "vigil-console").unwrap()["rules"]);
    let namespaced = grants(&named(&on, "Role", "vigil-console").unwrap()["rules"]);
    // What the console calls (operator/src/console.rs): exactly these, nothing more.
    let mut want_cluster = Grants::new();
    for r in [
        "runtimefindings",
        "nodecoverages",
        "runtimemonitoringpolicies",
        "suppressionrules",
    ] {
        for v in ["get", "list", "watch"] {
            want_cluster.insert(("vigil.dev".into(), r.into(), v.into()));
        }
    }
    for (g, r, v) in [
        ("", "nodes", "get"),
        ("", "nodes", "list"),
        ("", "nodes", "watch"),
        ("vigil.dev", "runtimefindings", "patch"),
        ("vigil.dev", "runtimefindings/status", "patch"),
        ("vigil.dev", "suppressionrules", "create"),
        ("authentication.k8s.io", "tokenreviews", "create"),
        ("authorization.k8s.io", "subjectaccessreviews", "create"),
    ] {
        want_cluster.insert((g.into(), r.into(), v.into()));
    }
    assert_eq!(cluster, want_cluster);
    let want_ns: Grants = [
        ("coordination.k8s.io", "leases", "get"),
        ("coordination.k8s.io", "leases", "list"),
        ("coordination.k8s.io", "leases", "watch"),
        ("", "configmaps", "get"),
        ("", "configmaps", "create"),
        ("", "configmaps", "update"),
    ]
    .into_iter()
    .map(|(g, r, v)| (g.into(), r.into(), v.into()))
    .collect();
    assert_eq!(namespaced, want_ns);
    let binding = named(&on, "ClusterRoleBinding", "vigil-console").unwrap();
    assert_eq!(binding["subjects"][0]["name"], "vigil-console");
    assert_eq!(binding["roleRef"]["name"], "vigil-console");
}
