//! The detector the root tests run their events through: as the agent builds one on this host
//! (its details, boot id and accounts), with the rules, intel and DGA model a test chooses.

use std::{path::Path, sync::Arc};

use node_agent::{
    agent::boot_id,
    detect::{
        Detector, DetectorConfig, RuleSet,
        host::{host_details, privileged_programs, read_users},
    },
    event::Clock,
};
use vigil_detection::{DgaModel, SharedIntel, ThreatIntel};

/// A detector with `rules`, `intel` and, when given, the DGA model.
pub fn detector_with(intel: ThreatIntel, dga: Option<DgaModel>, rules: RuleSet) -> Detector {
    Detector::new(
        Arc::new(SharedIntel::new(intel)),
        dga,
        rules,
        Vec::new(),
        DetectorConfig {
            host: host_details(),
            boot_id: boot_id(),
            users: read_users(Path::new("/etc/passwd")),
            privileged_programs: privileged_programs(Path::new("/")),
            ..DetectorConfig::default()
        },
        Clock::now(),
    )
}

/// A detector with the built-in rules and no threat intel.
pub fn builtin_detector() -> Detector {
    detector_with(
        ThreatIntel::empty(),
        None,
        RuleSet::builtin().expect("built-in rules"),
    )
}
