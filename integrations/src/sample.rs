//! A sample finding (the one in `examples/findings/`), for tests of sinks and formats here and
//! in the agent.

use vigil_crds::finding::{Finding, RuntimeFinding};

/// `examples/findings/sample-finding.yaml`.
const SAMPLE_YAML: &str = include_str!("../../examples/findings/sample-finding.yaml");

/// The finding document of `examples/findings/sample-finding.yaml`.
pub fn finding() -> Result<Finding, serde_yaml::Error> {
    serde_yaml::from_str::<RuntimeFinding>(SAMPLE_YAML).map(|rf| rf.spec)
}
