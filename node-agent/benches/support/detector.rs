//! The detector the benchmarks run: as the agent builds one on a host named `bench`, with the
//! intel, DGA model and rules given and no suppression rules.

use std::sync::Arc;

use node_agent::{
    detect::{Detector, DetectorConfig, RuleSet},
    event::Clock,
};
use vigil_crds::finding::HostDetails;
use vigil_detection::{DgaModel, SharedIntel};

pub fn bench_detector(intel: &Arc<SharedIntel>, dga: &DgaModel, rules: &RuleSet) -> Detector {
    Detector::new(
        Arc::clone(intel),
        Some(dga.clone()),
        rules.clone(),
        Vec::new(),
        DetectorConfig {
            host: HostDetails {
                hostname: "bench".into(),
                ..HostDetails::default()
            },
            ..DetectorConfig::default()
        },
        Clock::with_offset(0),
    )
}
