//! Every file under `examples/` is parsed and validated: custom resources against the committed
//! CRDs (structure and CEL rules, as the apiserver would), typed parsing, rule compilation, and the
//! kustomization and Argo CD Application pointing at what exists.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use vigil_crds::{RuntimeFinding, RuntimeMonitoringPolicy, SuppressionRule};
use vigil_e2e::{
    repo_root,
    schema::{CrdSet, SchemaError, yaml_documents},
};

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

fn crds() -> CrdSet {
    let set = CrdSet::load(&repo_root().join("crds")).unwrap();
    assert_eq!(set.len(), 4);
    set
}

fn validate_vigil_object(crds: &CrdSet, file: &str, doc: &Value) {
    crds.validate(file, doc).unwrap_or_else(|e| panic!("{e}"));
    match doc["kind"].as_str() {
        Some("RuntimeMonitoringPolicy") => {
            serde_json::from_value::<RuntimeMonitoringPolicy>(doc.clone())
                .unwrap_or_else(|e| panic!("{file}: {e}"));
        }
        Some("SuppressionRule") => {
            let r: SuppressionRule =
                serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{file}: {e}"));
            r.spec
                .compile(r.metadata.name.as_deref().unwrap())
                .unwrap_or_else(|e| panic!("{file}: {e}"));
        }
        Some("RuntimeFinding") => {
            let f: RuntimeFinding =
                serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(
                f.spec.schema_version,
                vigil_crds::finding::SCHEMA_VERSION,
                "{file}"
            );
        }
        other => panic!("{file}: unexpected kind {other:?}"),
    }
}

#[test]
fn every_example_is_valid() {
    let root = repo_root().join("examples");
    let crds = crds();
    let mut files = Vec::new();
    yaml_files(&root, &mut files);
    files.sort();
    assert!(files.len() >= 8, "{files:?}");
    let mut vigil_files = Vec::new();
    let mut kinds = Vec::new();
    for path in &files {
        let rel = path
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(path).unwrap();
        let docs = yaml_documents(&rel, &text)
            .unwrap_or_else(|e| panic!("{e}: {:?}", std::error::Error::source(&e)));
        assert!(!docs.is_empty(), "{rel} is empty");
        for doc in docs {
            let api = doc["apiVersion"].as_str().unwrap_or_default();
            kinds.push(doc["kind"].as_str().unwrap_or_default().to_owned());
            if api.starts_with("vigil.dev/") {
                validate_vigil_object(&crds, &rel, &doc);
                vigil_files.push(rel.clone());
            } else if doc["kind"] == "Kustomization" {
                for r in doc["resources"].as_array().unwrap() {
                    let r = r.as_str().unwrap();
                    assert!(root.join(r).is_file(), "{rel}: resource {r} does not exist");
                }
            } else if doc["kind"] == "Application" {
                assert_eq!(api, "argoproj.io/v1alpha1", "{rel}");
                let p = doc["spec"]["source"]["path"].as_str().unwrap();
                assert!(
                    repo_root().join(p).join("kustomization.yaml").is_file(),
                    "{rel}: {p} has no kustomization"
                );
            } else {
                panic!("{rel}: no validation for {api} {}", doc["kind"]);
            }
        }
    }
    for kind in [
        "RuntimeMonitoringPolicy",
        "SuppressionRule",
        "RuntimeFinding",
        "Kustomization",
        "Application",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "no example of {kind}");
    }
    // Every policy and rule is in the kustomization Argo CD syncs.
    let kustomization = std::fs::read_to_string(root.join("kustomization.yaml")).unwrap();
    for f in vigil_files
        .iter()
        .filter(|f| f.starts_with("policies/") || f.starts_with("suppression-rules/"))
    {
        assert!(
            kustomization.contains(f.as_str()),
            "{f} is missing from kustomization.yaml"
        );
    }
}

fn example(rel: &str) -> Value {
    let text = std::fs::read_to_string(repo_root().join("examples").join(rel)).unwrap();
    yaml_documents(rel, &text).unwrap().remove(0)
}

fn problems(crds: &CrdSet, doc: &Value) -> Vec<String> {
    match crds.validate("mutated", doc) {
        Ok(()) => Vec::new(),
        Err(SchemaError::Invalid { problems, .. }) => problems,
        Err(e) => panic!("{e}"),
    }
}

/// The validator catches what the apiserver would reject, so the examples test means something.
#[test]
fn broken_examples_are_rejected_with_the_schema_message() {
    let crds = crds();
    let mut cases: Vec<(&str, Value, &str)> = Vec::new();

    let mut p = example("policies/all-linux-nodes.yaml");
    p["spec"]["tolerations"][0]["tolerationSeconds"] = json!(30);
    cases.push((
        "tolerationSeconds on NoSchedule",
        p,
        "tolerationSeconds is only allowed with effect NoExecute",
    ));

    let mut p = example("policies/all-linux-nodes.yaml");
    p["spec"]["findings"]["enabledTypes"] = json!(["NewBinaryExecuted"]);
    cases.push((
        "bad finding type",
        p,
        ".spec.findings.enabledTypes[0]: \"NewBinaryExecuted\" should match",
    ));

    let mut p = example("policies/all-linux-nodes.yaml");
    p["spec"]["agentManagment"] = json!("Manual");
    cases.push(("typo", p, ".spec.agentManagment: unknown field"));

    let mut p = example("policies/gpu-pool-manual.yaml");
    p["spec"]["agentManagement"] = json!("Sometimes");
    cases.push((
        "enum",
        p,
        ".spec.agentManagement: \"Sometimes\" is not one of",
    ));

    let mut p = example("policies/gpu-pool-manual.yaml");
    p["metadata"]["name"] = json!("x".repeat(51));
    cases.push(("long name", p, "policy names are at most 50 characters"));

    let mut p = example("policies/gpu-pool-manual.yaml");
    p["spec"]["coverage"]["heartbeatTimeoutSeconds"] = json!(5);
    cases.push((
        "timeout",
        p,
        ".spec.coverage.heartbeatTimeoutSeconds: 5 is below the minimum 10",
    ));

    let mut f = example("findings/sample-finding.yaml");
    f["spec"]["severity"] = json!(9.5);
    cases.push(("label mismatch", f, "severityLabel must match severity"));

    let mut r = example("suppression-rules/package-managers-in-ci.yaml");
    r["spec"]["criteria"]["criterion"] = json!({});
    cases.push((
        "empty criteria",
        r,
        ".spec.criteria.criterion: 0 properties, fewer than the minimum 1",
    ));

    let mut r = example("suppression-rules/package-managers-in-ci.yaml");
    r["spec"]["criteria"]["criterion"]["type"] = json!({});
    cases.push((
        "empty condition",
        r,
        "a condition needs at least one operator",
    ));

    let mut r = example("suppression-rules/package-managers-in-ci.yaml");
    r["spec"]["action"] = json!("DELETE");
    cases.push(("action", r, ".spec.action: \"DELETE\" is not one of"));

    for (name, doc, want) in cases {
        let got = problems(&crds, &doc);
        assert!(
            got.iter().any(|p| p.contains(want)),
            "{name}: want {want:?}, got {got:?}"
        );
    }
}

#[test]
fn schema_defaults_fill_an_empty_policy() {
    let crds = crds();
    let doc = json!({"apiVersion": "vigil.dev/v1alpha1", "kind": "RuntimeMonitoringPolicy", "metadata": {"name": "p"}, "spec": {}});
    crds.validate("empty", &doc).unwrap();
    let p: RuntimeMonitoringPolicy = serde_json::from_value(doc).unwrap();
    assert_eq!(p.spec.agent.resources.limits.memory.0, "1Gi");
}
