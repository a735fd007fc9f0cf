//! The sample finding of `examples/`, shared by unit tests.

use crate::finding::{Finding, RuntimeFinding};

/// `examples/findings/sample-finding.yaml`.
pub const RUNTIME_FINDING_YAML: &str = include_str!("../../examples/findings/sample-finding.yaml");

/// The finding document of the sample.
pub fn finding() -> Finding {
    let rf: RuntimeFinding =
        serde_yaml::from_str(RUNTIME_FINDING_YAML).expect("sample finding parses");
    rf.spec
}
