//! The images the repository builds are the images it names: what `scripts/build-images.sh
//! --print-names` reports (no podman, no cargo needed) against the chart (its version, appVersion
//! and the operator image of values.yaml), the operator's default agent image
//! (`DEFAULT_AGENT_IMAGE`), every agent image under `examples/`, every image reference in the
//! README and docs/, and the Cargo version.

use std::{path::Path, process::Command};

use serde_json::Value;
use vigil_crds::policy::DEFAULT_AGENT_IMAGE;
use vigil_e2e::{repo_root, schema::yaml_documents};

const REPOSITORIES: [&str; 2] = [
    "ghcr.io/vigil-dev/vigil-agent",
    "ghcr.io/vigil-dev/vigil-operator",
];

/// (agent, operator) as the script tags them by default.
fn built_names() -> (String, String) {
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/build-images.sh"))
        .arg("--print-names")
        .env_remove("VIGIL_REGISTRY")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "build-images.sh --print-names: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    match lines.as_slice() {
        [agent, operator] => ((*agent).to_owned(), (*operator).to_owned()),
        other => panic!("expected the agent and the operator image, got {other:?}"),
    }
}

fn yaml(rel: &str) -> Value {
    let text = std::fs::read_to_string(repo_root().join(rel)).unwrap();
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn files(dir: &Path, ext: &str, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, ext, out);
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
}

#[test]
fn chart_examples_and_operator_name_the_images_the_script_builds() {
    let (agent, operator) = built_names();
    let chart = yaml("charts/vigil/Chart.yaml");
    let app_version = chart["appVersion"].as_str().unwrap();
    assert_eq!(chart["version"].as_str(), Some(app_version));
    assert_eq!(
        env!("CARGO_PKG_VERSION"),
        app_version,
        "Cargo workspace version"
    );
    assert_eq!(agent, format!("{}:{app_version}", REPOSITORIES[0]));
    assert_eq!(operator, format!("{}:{app_version}", REPOSITORIES[1]));

    // The operator's image in the chart: repository, and the tag defaulting to appVersion.
    let values = yaml("charts/vigil/values.yaml");
    let tag = values["image"]["tag"].as_str().unwrap_or_default();
    let tag = if tag.is_empty() { app_version } else { tag };
    let repository = values["image"]["repository"].as_str().unwrap();
    assert_eq!(
        format!("{repository}:{tag}"),
        operator,
        "charts/vigil/values.yaml"
    );

    // The agent image a policy gets by default.
    assert_eq!(
        DEFAULT_AGENT_IMAGE, agent,
        "crds/src/policy.rs DEFAULT_AGENT_IMAGE"
    );

    // Every policy under examples/ that names an agent image names this one.
    let mut yamls = Vec::new();
    files(&repo_root().join("examples"), "yaml", &mut yamls);
    let mut named = 0;
    for path in &yamls {
        let rel = path
            .strip_prefix(repo_root())
            .unwrap()
            .display()
            .to_string();
        let text = std::fs::read_to_string(path).unwrap();
        for doc in yaml_documents(&rel, &text).unwrap_or_else(|e| panic!("{e}")) {
            if doc["kind"] == "RuntimeMonitoringPolicy"
                && let Some(image) = doc["spec"]["agent"]["image"].as_str()
            {
                assert_eq!(image, agent, "{rel}");
                named += 1;
            }
        }
    }
    assert!(named > 0, "no example policy names the agent image");

    // Every reference to either repository in the README and docs/ has the built tag.
    let mut docs = vec![repo_root().join("README.md")];
    files(&repo_root().join("docs"), "md", &mut docs);
    for path in &docs {
        let text = std::fs::read_to_string(path).unwrap();
        for repository in REPOSITORIES {
            for (i, _) in text.match_indices(&format!("{repository}:")) {
                let reference: String = text[i..]
                    .chars()
                    .take_while(|c| !c.is_whitespace() && !matches!(c, '`' | '"' | ')' | ',' | ';'))
                    .collect();
                assert!(
                    reference == agent || reference == operator,
                    "{}: {reference} is not an image the script builds ({agent}, {operator})",
                    path.display()
                );
            }
        }
    }
}
