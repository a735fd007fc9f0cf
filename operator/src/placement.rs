//! Which policy covers which node. Two policies selecting the same node conflict: the older one
//! (by creation time, then name) keeps the node and the later one reports the conflict.

use std::collections::BTreeMap;

use kube::ResourceExt;
use vigil_crds::RuntimeMonitoringPolicy;

use crate::facts::NodeFacts;

/// The nodes of one policy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Placement {
    /// Linux nodes the policy selects and owns, sorted by name.
    pub compatible: Vec<NodeFacts>,
    /// Nodes the policy selects but another policy owns: node name to that policy.
    pub conflicts: BTreeMap<String, String>,
}

/// Place `policy` among `all` policies (which should include it) on `nodes`.
pub fn place(
    policy: &RuntimeMonitoringPolicy,
    all: &[&RuntimeMonitoringPolicy],
    nodes: &[NodeFacts],
) -> Placement {
    let mut claimants: Vec<&RuntimeMonitoringPolicy> = all
        .iter()
        .copied()
        .filter(|p| p.metadata.deletion_timestamp.is_none() && p.name_any() != policy.name_any())
        .collect();
    claimants.push(policy);
    claimants.sort_by(|a, b| {
        let ta = a.metadata.creation_timestamp.as_ref().map(|t| t.0);
        let tb = b.metadata.creation_timestamp.as_ref().map(|t| t.0);
        // Objects not yet stored have no timestamp and sort last.
        (ta.is_none(), ta, a.name_any()).cmp(&(tb.is_none(), tb, b.name_any()))
    });
    let mut placement = Placement::default();
    let mut sorted: Vec<&NodeFacts> = nodes.iter().filter(|n| n.linux).collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    for node in sorted {
        if !policy.spec.selects(&node.labels) {
            continue;
        }
        let owner = claimants.iter().find(|p| p.spec.selects(&node.labels));
        match owner {
            Some(o) if o.name_any() != policy.name_any() => {
                placement.conflicts.insert(node.name.clone(), o.name_any());
            }
            _ => placement.compatible.push(node.clone()),
        }
    }
    placement
}

#[cfg(test)]
mod tests {
    use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};

    use super::*;

    fn policy(name: &str, created: i64, selector: &[(&str, &str)]) -> RuntimeMonitoringPolicy {
        let mut p = RuntimeMonitoringPolicy::new(
            name,
            serde_json::from_value(serde_json::json!({
                "nodeSelector": selector.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<BTreeMap<_, _>>()
            }))
            .unwrap(),
        );
        p.metadata.creation_timestamp = Some(Time(Timestamp::from_second(created).unwrap()));
        p
    }

    fn node(name: &str, labels: &[(&str, &str)], linux: bool) -> NodeFacts {
        NodeFacts {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            not_ready: None,
            kernel_version: None,
            linux,
        }
    }

    #[test]
    fn placement_table() {
        let all_linux = policy("all-linux", 100, &[]);
        let gpu = policy("gpu", 200, &[("pool", "gpu")]);
        let older_gpu = policy("gpu-old", 50, &[("pool", "gpu")]);
        let nodes = vec![
            node("a", &[], true),
            node("b", &[("pool", "gpu")], true),
            node("w", &[], false),
        ];
        let names = |p: &Placement| {
            p.compatible
                .iter()
                .map(|n| n.name.clone())
                .collect::<Vec<_>>()
        };

        // Alone, a policy takes every Linux node it selects; Windows nodes are never compatible.
        let alone = place(&all_linux, &[&all_linux], &nodes);
        assert_eq!(names(&alone), ["a", "b"]);
        assert!(alone.conflicts.is_empty());

        // The later policy loses the shared node and reports who owns it.
        let later = place(&gpu, &[&all_linux, &gpu], &nodes);
        assert!(later.compatible.is_empty());
        assert_eq!(
            later.conflicts,
            BTreeMap::from([("b".to_owned(), "all-linux".to_owned())])
        );
        let earlier = place(&all_linux, &[&all_linux, &gpu], &nodes);
        assert_eq!(names(&earlier), ["a", "b"]);

        // An older policy wins even if created with a later name.
        let won = place(&older_gpu, &[&all_linux, &older_gpu], &nodes);
        assert_eq!(names(&won), ["b"]);
        let lost = place(&all_linux, &[&all_linux, &older_gpu], &nodes);
        assert_eq!(names(&lost), ["a"]);
        assert_eq!(lost.conflicts["b"], "gpu-old");

        // A policy being deleted releases its nodes.
        let mut deleting = older_gpu.clone();
        deleting.metadata.deletion_timestamp = Some(Time(Timestamp::from_second(300).unwrap()));
        assert_eq!(
            names(&place(&all_linux, &[&all_linux, &deleting], &nodes)),
            ["a", "b"]
        );
    }
}
