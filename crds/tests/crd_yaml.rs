//! The committed CRD YAML must be what `crdgen` generates from the Rust types today.

use std::path::Path;

#[test]
fn committed_crds_match_a_fresh_generation() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let crds = vigil_crds::crds();
    assert_eq!(crds.len(), 4);
    for (file, crd) in crds {
        let fresh = vigil_crds::crd_yaml(&crd).unwrap();
        let committed = std::fs::read_to_string(dir.join(&file)).unwrap_or_else(|e| {
            panic!("crds/{file}: {e}; run `cargo run -p vigil-crds --bin crdgen`")
        });
        assert!(
            committed == fresh,
            "crds/{file} is stale; run `cargo run -p vigil-crds --bin crdgen`"
        );
    }
}

#[test]
fn crds_have_vigil_category_short_names_and_status() {
    for (file, crd) in vigil_crds::crds() {
        assert_eq!(crd.spec.group, "vigil.dev", "{file}");
        assert_eq!(
            crd.spec.names.categories.as_deref(),
            Some(&["vigil".to_owned()][..]),
            "{file}"
        );
        assert!(
            crd.spec
                .names
                .short_names
                .as_ref()
                .is_some_and(|s| !s.is_empty()),
            "{file}"
        );
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        // A NodeCoverage is a report the operator writes whole, in one request: it has no spec
        // for anyone to edit and so no separate status.
        let report = crd.spec.names.kind == "NodeCoverage";
        assert_eq!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            !report,
            "{file}: status subresource"
        );
        assert!(
            version
                .additional_printer_columns
                .as_ref()
                .is_some_and(|c| c.len() >= 4),
            "{file}: printer columns"
        );
    }
}

#[test]
fn policy_schema_carries_defaults_and_cel_rules() {
    let (_, crd) = vigil_crds::crds()
        .into_iter()
        .find(|(f, _)| f.starts_with("runtimemonitoringpolicies"))
        .unwrap();
    let json = serde_json::to_string(&crd).unwrap();
    for needle in [
        "\"200m\"",
        "\"256Mi\"",
        "\"1Gi\"",
        "x-kubernetes-validations",
        "tolerationSeconds is only allowed",
    ] {
        assert!(json.contains(needle), "missing {needle}");
    }
    assert_eq!(crd.spec.scope, "Cluster");
}

#[test]
fn node_coverage_is_cluster_scoped_with_columns_for_people() {
    let (_, crd) = vigil_crds::crds()
        .into_iter()
        .find(|(f, _)| f == "nodecoverages.vigil.dev.yaml")
        .unwrap();
    assert_eq!(crd.spec.scope, "Cluster");
    assert_eq!(
        crd.spec.names.short_names.as_deref(),
        Some(&["ncov".to_owned()][..])
    );
    let columns: Vec<(&str, &str, i32)> = crd.spec.versions[0]
        .additional_printer_columns
        .as_deref()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                c.json_path.as_str(),
                c.priority.unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        columns,
        [
            ("Policy", ".spec.policy", 0),
            ("Status", ".spec.status", 0),
            ("Issue", ".spec.issueType", 0),
            ("Agent", ".spec.agentVersion", 0),
            ("Kernel", ".spec.kernelVersion", 0),
            ("Hooks", ".spec.activeHookCount", 0),
            ("Since", ".spec.since", 0),
            ("Detail", ".spec.issue", 1),
        ]
    );
    // Nothing that changes on every heartbeat.
    let json = serde_json::to_string(&crd).unwrap();
    for volatile in ["lastHeartbeat", "eventsPerSecond", "renewTime"] {
        assert!(!json.contains(volatile), "{volatile}");
    }
}

#[test]
fn policy_status_lists_a_bounded_number_of_nodes() {
    let (_, crd) = vigil_crds::crds()
        .into_iter()
        .find(|(f, _)| f.starts_with("runtimemonitoringpolicies"))
        .unwrap();
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .unwrap();
    let coverage = &schema.properties.as_ref().unwrap()["status"]
        .properties
        .as_ref()
        .unwrap()["coverage"];
    let props = coverage.properties.as_ref().unwrap();
    assert!(
        !props.contains_key("nodes"),
        "no per-node list in the status"
    );
    assert_eq!(
        props["unhealthy"].max_items,
        Some(i64::from(vigil_crds::limits::UNHEALTHY_LISTED))
    );
    assert!(props.contains_key("unhealthyNotListed"));
}
