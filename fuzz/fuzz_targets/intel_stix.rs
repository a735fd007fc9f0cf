//! STIX 2.1 bundles (`vigil_detection::stix::parse_bundle`), as a list file or ConfigMap key of
//! format `stix` holds them, then into a snapshot as the loader does.
//!
//! Invariants: every indicator accepted is found by a lookup; every skipped object's line is
//! within the file; the counts add up to the objects that are indicators at most.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_detection::{
    indicator::Indicator,
    intel::{IntelBuilder, ListFormat},
    stix::{Timestamp, parse_bundle},
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some(now) = Timestamp::parse("2026-06-01T00:00:00Z") else {
        panic!("the fixed timestamp does not parse");
    };
    let Ok(contents) = parse_bundle(text, &now) else {
        return;
    };
    let lines = text.lines().count().max(1);
    for (line, error) in &contents.errors {
        assert!((1..=lines).contains(line), "error line {line} of {lines}");
        let _ = error.to_string();
    }
    let mut builder = IntelBuilder::new();
    let Ok(id) = builder.add_list("fuzz", ListFormat::Stix, Vec::new(), "fuzz") else {
        panic!("the first list of a builder is refused");
    };
    for (line, indicator) in &contents.indicators {
        assert!(
            (1..=lines).contains(line),
            "indicator line {line} of {lines}"
        );
        if let Err(error) = builder.insert(id, indicator) {
            panic!("a small bundle does not fit a snapshot: {error}");
        }
    }
    let intel = builder.build();
    for (_, indicator) in &contents.indicators {
        let found = match indicator {
            Indicator::Ip(net) => intel.lookup_ip(net.addr()).contains("fuzz"),
            Indicator::Domain(name) => intel.lookup_domain(name).contains("fuzz"),
            Indicator::Sha256(digest) => intel.lookup_sha256(digest).contains("fuzz"),
        };
        assert!(found, "{indicator:?} accepted but not found");
    }
});
