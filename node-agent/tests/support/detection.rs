//! The detector the root tests run their events through: as the agent builds one on this host
//! (its details, boot id and accounts), with the rules, intel and DGA model a test chooses.

use std::{
    io::{BufRead, BufReader},
    os::unix::fs::PermissionsExt,
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, mpsc::Receiver},
    time::{Duration, Instant},
};

use node_agent::{
    agent::boot_id,
    detect::{
        Detector, DetectorConfig, RuleSet,
        host::{host_details, privileged_programs, read_users},
    },
    event::Clock,
};
use vigil_crds::finding::Finding;
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

/// The built-in rules, compiled once per test binary (several hundred patterns: a detector per
/// case would compile them each time).
pub fn builtin_rules() -> RuleSet {
    static RULES: std::sync::OnceLock<RuleSet> = std::sync::OnceLock::new();
    RULES
        .get_or_init(|| RuleSet::builtin().expect("built-in rules"))
        .clone()
}

/// A detector with the built-in rules and no threat intel.
pub fn builtin_detector() -> Detector {
    detector_with(ThreatIntel::empty(), None, builtin_rules())
}

/// The agent binary run with `run --findings-only` and `args`, and its findings as it prints
/// them.
pub fn agent_findings(args: &[&str]) -> (Child, Receiver<Finding>) {
    let mut agent = Command::new(env!("CARGO_BIN_EXE_node-agent"))
        .args(["run", "--findings-only"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the agent");
    let stdout = agent.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<Finding>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(serde_json::from_str(&line).expect("a finding document per line"));
        }
    });
    (agent, rx)
}

/// [`agent_findings`], returned once the agent reads records: it reported a tool it knows by
/// name (`masscan`, a copy of `/bin/true` in `dir`) that this function runs until it does.
pub fn agent_attached(args: &[&str], dir: &Path) -> (Child, Receiver<Finding>) {
    let (agent, rx) = agent_findings(args);
    let tool = dir.join("masscan");
    std::fs::copy(
        std::fs::canonicalize("/bin/true").expect("/bin/true"),
        &tool,
    )
    .expect("copy");
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let deadline = Instant::now() + Duration::from_secs(300);
    while Instant::now() < deadline {
        let _ = Command::new(&tool).status();
        while let Ok(f) = rx.recv_timeout(Duration::from_millis(500)) {
            if f.context.additional.get("ruleId").map(String::as_str) == Some("tool-masscan") {
                return (agent, rx);
            }
        }
    }
    panic!("the agent reported no run of {}", tool.display());
}
