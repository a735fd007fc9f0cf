//! Suppression rules: a standalone rules file (`vigil_crds::suppression_rule::parse_rules_file`,
//! the agent's `--suppression-rules` and what `kubectl apply` takes), compiled, then evaluated
//! (`archived_set`) against a finding.
//!
//! Input: the rules YAML, then optionally a NUL and a finding as JSON (else the example finding,
//! `examples/findings/sample-finding.yaml`). Invariants: a compiled rule's regular expressions
//! are valid on their own (the anchoring the matcher adds cannot change their meaning); the
//! evaluation archives a finding only by a matching ARCHIVE rule, the first by name, and counts
//! every match.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use vigil_crds::{
    suppression::{SuppressionAction, archived_set},
    suppression_rule::{SuppressionRule, parse_rules_file},
};

const SAMPLE: &str = include_str!("../../examples/findings/sample-finding.yaml");

fn sample_finding() -> Value {
    let Ok(doc) = serde_yaml::from_str::<Value>(SAMPLE) else {
        panic!("the example finding does not parse");
    };
    doc.get("spec").cloned().unwrap_or(Value::Null)
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let (yaml, finding) = match input.split_once('\0') {
        Some((yaml, json)) => match serde_json::from_str::<Value>(json) {
            Ok(finding) => (yaml, finding),
            Err(_) => return,
        },
        None => (input, sample_finding()),
    };
    let rules = match parse_rules_file("fuzz.yaml", yaml) {
        Ok(rules) => rules,
        Err(error) => {
            assert!(error.to_string().contains("fuzz.yaml"), "{error}");
            return;
        }
    };

    // Every regular expression of an accepted rule stands on its own.
    for doc in serde_yaml::Deserializer::from_str(yaml) {
        let Ok(rule) = <SuppressionRule as serde::Deserialize>::deserialize(doc) else {
            continue;
        };
        for condition in rule.spec.criteria.criterion.values() {
            let patterns = condition
                .matches_regex
                .iter()
                .chain(&condition.not_matches_regex);
            for pattern in patterns.flatten() {
                assert!(
                    regex::Regex::new(pattern).is_ok(),
                    "rule {:?} accepted with the invalid regex {pattern:?}",
                    rule.metadata.name
                );
            }
        }
    }

    let evaluation = archived_set(&rules, [("f", &finding)]);
    let mut names: Vec<&str> = rules.iter().map(|r| r.name()).collect();
    names.sort_unstable();
    let first_archiving = names.iter().copied().find(|name| {
        rules.iter().any(|r| {
            r.name() == *name
                && r.action() == SuppressionAction::Archive
                && r.matches_json(&finding)
        })
    });
    match (evaluation.archived.as_slice(), first_archiving) {
        ([], None) => {}
        ([archival], Some(name)) => assert_eq!(archival.rule, name),
        (archived, expected) => panic!("archived {archived:?}, expected by {expected:?}"),
    }
    let matched: u64 = evaluation.tallies.values().map(|t| t.matched).sum();
    let expected = rules.iter().filter(|r| r.matches_json(&finding)).count() as u64;
    assert_eq!(matched, expected, "matches miscounted");
});
