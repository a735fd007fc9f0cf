//! The agent's exec rules (`node_agent::detect::rules::RuleSet::from_text`): a
//! `node-agent/rules/*.yaml` document, as the agent loads built-in files and a `--rules-dir`.
//!
//! Input: the YAML text, then optionally a NUL and an exec to match (`exe parent args...`).
//! Invariants: loading never panics; the indexed lookup (`matching`) finds exactly the rules
//! that `Rule::matches` accepts, in load order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_agent::detect::rules::{ExecFacts, RuleSet};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let (yaml, exec) = input
        .split_once('\0')
        .unwrap_or((input, "nmap sshd nmap -sS 10.0.0.0/8"));
    let rules = match RuleSet::from_text("fuzz.yaml", yaml) {
        Ok(rules) => rules,
        Err(error) => {
            // Every error names the file.
            assert!(error.to_string().contains("fuzz.yaml"), "{error}");
            return;
        }
    };
    let mut words = exec.split(' ');
    let exe = words.next().unwrap_or_default();
    let parent = words.next().unwrap_or_default();
    let cmdline = words.collect::<Vec<_>>().join(" ");
    for (elevated, stdio_socket) in [(false, false), (true, true)] {
        let facts = ExecFacts {
            exe_name: exe,
            argv0_name: exe,
            filename_name: exe,
            // A renamed copy of an installed tool: its content names the parent word's program.
            content_name: if elevated { parent } else { "" },
            cmdline: &cmdline,
            parent_exe_name: parent,
            parent_comm: parent,
            elevated,
            stdio_socket,
        };
        let indexed: Vec<&str> = rules
            .matching(&facts)
            .iter()
            .map(|r| r.id.as_str())
            .collect();
        let scanned: Vec<&str> = rules
            .rules()
            .iter()
            .filter(|r| r.matches(&facts))
            .map(|r| r.id.as_str())
            .collect();
        assert_eq!(indexed, scanned, "the exe index and the rules disagree");
    }
});
