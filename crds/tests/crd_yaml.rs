//! The committed CRD YAML must be what `crdgen` generates from the Rust types today.

use std::path::Path;

#[test]
fn committed_crds_match_a_fresh_generation() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let crds = vigil_crds::crds();
    assert_eq!(crds.len(), 3);
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
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
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
