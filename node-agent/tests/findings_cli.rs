//! `node-agent findings list` on a store with nothing in it: a person is told so, a script gets
//! an empty JSON-lines stream. No root needed.

use std::process::Command;

use node_agent::store::{Store, StoreLimits};

const AGENT_BIN: &str = env!("CARGO_BIN_EXE_node-agent");

#[test]
fn listing_an_empty_store_says_no_findings_and_json_stays_empty() {
    let dir = std::env::temp_dir().join(format!("vigil-findings-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = dir.join("findings.db");
    drop(Store::open(&db, StoreLimits::default()).expect("create an empty store"));

    let list = |extra: &[&str]| {
        let out = Command::new(AGENT_BIN)
            .args(["findings", "list", "--db"])
            .arg(&db)
            .args(extra)
            .output()
            .expect("findings list runs");
        assert!(out.status.success(), "{extra:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(list(&[]), "no findings (0 stored, 0 archived)\n");
    assert_eq!(
        list(&["--severity", "high"]),
        "no findings (0 stored, 0 archived)\n"
    );
    assert_eq!(list(&["--json"]), "", "JSON lines: no finding, no line");
    let _ = std::fs::remove_dir_all(&dir);
}
