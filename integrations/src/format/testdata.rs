//! Findings for the format tests: the sample of `examples/`, and variants that exercise every
//! part of the document (network, DNS, threat intel, rules, unknown values, a host finding).

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use serde_json::{Value, json};
use vigil_crds::finding::{Finding, RuntimeFinding};

use super::Origin;

/// `examples/findings/sample-finding.yaml`: a new binary executed in a pod's container.
pub(crate) fn sample() -> Finding {
    let rf: RuntimeFinding = serde_yaml::from_str(include_str!(
        "../../../examples/findings/sample-finding.yaml"
    ))
    .expect("the sample finding parses");
    rf.spec
}

fn with(edit: impl FnOnce(&mut Value)) -> Finding {
    let mut v = serde_json::to_value(sample()).expect("the sample serialises");
    edit(&mut v);
    serde_json::from_value(v).expect("the edited sample parses")
}

/// An outbound connection to a listed C&C address, from a host process (no container) whose
/// parent the agent never saw exec: unknown uid, euid, start time and path.
pub(crate) fn network_on_host() -> Finding {
    with(|v| {
        v["id"] = json!("c2-node-a-203.0.113.7");
        v["type"] = json!("Backdoor:Runtime/C&CActivity.B");
        v["title"] = json!("A process connected to a command-and-control server.");
        v["severity"] = json!(8);
        v["severityLabel"] = json!("High");
        v["count"] = json!(1);
        v["updatedAt"] = v["createdAt"].clone();
        v["eventLastSeen"] = v["eventFirstSeen"].clone();
        v["resource"] = json!({
            "displayName": "node-a",
            "host": {"hostname": "node-a", "kernelVersion": "6.8.0-45-generic"}
        });
        v["process"]["lineage"] = json!([{"name": "sshd", "pid": 900}]);
        if let Some(p) = v["process"].as_object_mut() {
            p.remove("namespacePid");
            p.remove("executableSha256");
        }
        v["context"] = json!({"additional": {"connectResult": "-111"}});
        v["network"] = json!({
            "connectionDirection": "OUTBOUND", "protocol": "TCP",
            "remoteIp": "203.0.113.7", "remotePort": 4444, "remoteDomain": "c2.example.invalid"
        });
        v["evidence"] = json!({"threatIntelligenceDetails": [
            {"threatListName": "c2-ips", "indicator": "203.0.113.7"}
        ]});
    })
}

/// A DNS query for a mining pool from a container of no known pod, IPv6 resolver.
pub(crate) fn dns_in_container() -> Finding {
    with(|v| {
        v["id"] = json!("btc-dns-3b5f0c9e6d2a");
        v["type"] = json!("CryptoCurrency:Runtime/BitcoinTool.B!DNS");
        v["severity"] = json!(8);
        v["severityLabel"] = json!("High");
        if let Some(r) = v["resource"].as_object_mut() {
            r.remove("pod");
        }
        v["resource"]["displayName"] = json!("node-a/web");
        v["context"] = json!({});
        v["dns"] = json!({"domain": "pool.minexmr.example", "protocol": "UDP"});
        v["evidence"] = json!({"threatIntelligenceDetails": [
            {"threatListName": "mining-domains", "indicator": "pool.minexmr.example"}
        ]});
    })
}

/// A rule-based finding with ATT&CK techniques and a rule id, archived by a suppression rule,
/// on a Critical score, with the process known only by name and pid.
pub(crate) fn rule_archived() -> Finding {
    with(|v| {
        v["id"] = json!("tool-hydra-web-1");
        v["type"] = json!("Execution:Runtime/SuspiciousTool");
        v["severity"] = json!(9.5);
        v["severityLabel"] = json!("Critical");
        v["archived"] = json!(true);
        v["process"] = json!({"name": "hydra", "pid": 77, "lineage": []});
        v["context"] = json!({
            "toolName": "hydra", "toolCategory": "Brute-forcer",
            "commandLineExample": "hydra -l root -P words.txt ssh://10.0.0.1",
            "additional": {"ruleId": "tool-hydra", "mitreTechniques": "T1110.001,T1046", "ruleOrigin": "builtin"}
        });
    })
}

/// Every test finding.
pub(crate) fn all() -> Vec<Finding> {
    vec![
        sample(),
        network_on_host(),
        dns_in_container(),
        rule_archived(),
    ]
}

/// An origin with an account, a region and a cluster.
pub(crate) fn aws_origin() -> Origin {
    Origin {
        account_id: Some("123456789012".into()),
        region: Some("eu-west-1".into()),
        cluster: Some("prod-eu".into()),
    }
}

/// The interpreter scripts/bootstrap.sh installs with the schemas the formats are validated
/// against (`ocsf-json-schema`, `jsonschema`, `botocore`), or `None` after saying why the test
/// did not run; under `CI` a missing one fails the test.
pub(crate) fn schema_python(test: &str) -> Option<PathBuf> {
    let python = std::env::var_os("VIGIL_OCSF_PYTHON")
        .map(PathBuf::from)
        .or_else(|| {
            let tools = std::env::var_os("VIGIL_TOOLS")
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/share/vigil-tools"))
                })?;
            Some(tools.join("ocsf-venv/bin/python"))
        });
    let why = match &python {
        None => "neither VIGIL_OCSF_PYTHON nor HOME is set".to_owned(),
        Some(python) => match Command::new(python)
            .args(["-c", "import ocsf_json_schema, jsonschema, botocore"])
            .output()
        {
            Ok(out) if out.status.success() => return Some(python.clone()),
            Ok(out) => format!(
                "{} cannot import the schema packages: {}",
                python.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(e) => format!("{}: {e}", python.display()),
        },
    };
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: the schemas are missing ({why}): scripts/bootstrap.sh installs them"
    );
    eprintln!("NOT RUN: {test}: {why}; run scripts/bootstrap.sh to install the schemas");
    None
}

/// Each document's errors from the validator `script` of `integrations/tests/`.
pub(crate) fn validate(
    python: &Path,
    script: &str,
    args: &[&str],
    docs: &[Value],
) -> Vec<Vec<String>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(script);
    let mut child = Command::new(python)
        .arg(&script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the validator starts");
    let input = serde_json::to_vec(docs).expect("documents serialise");
    child
        .stdin
        .take()
        .expect("the validator's stdin")
        .write_all(&input)
        .expect("the documents are written to the validator");
    let out = child.wait_with_output().expect("the validator ends");
    assert!(
        out.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<Vec<String>> =
        serde_json::from_slice(&out.stdout).expect("the validator prints a JSON array");
    assert_eq!(results.len(), docs.len());
    results
}
