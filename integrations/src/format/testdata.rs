//! Findings for the format tests: the sample of `examples/`, and variants that exercise every
//! part of the document (network, DNS, threat intel, rules, unknown values, a host finding).

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
