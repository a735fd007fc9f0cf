//! Plain-text threat lists (`vigil_detection::loader::load_plain_text`): one IP/CIDR, domain or
//! SHA-256 per line, `#` comments, as a list ConfigMap or file holds them. The first byte picks
//! the kind; the agent's format sniffing (`cluster::config::sniff_format`) runs on the text too.
//!
//! Invariants: every line is either loaded or reported malformed (never both, never neither),
//! and every indicator that parses is found by a lookup in the snapshot built from the list.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_agent::cluster::config::sniff_format;
use vigil_detection::{
    indicator::{Indicator, IndicatorKind},
    intel::{IntelBuilder, ListFormat},
    loader::{LoadReport, Origin, load_plain_text},
};

const KINDS: [IndicatorKind; 3] = [
    IndicatorKind::Ip,
    IndicatorKind::Domain,
    IndicatorKind::Sha256,
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let kind = KINDS[usize::from(pick) % KINDS.len()];
    let mut builder = IntelBuilder::new();
    let Ok(id) = builder.add_list("fuzz", ListFormat::PlainText(kind), Vec::new(), "fuzz") else {
        panic!("the first list of a builder is refused");
    };
    let origin = Origin::Builtin("fuzz.txt");
    let mut report = LoadReport::default();
    if let Err(error) = load_plain_text(&mut builder, id, kind, bytes, &origin, &mut report) {
        // Only a snapshot over 4 GiB of names fails as a whole.
        panic!("a small list failed to load: {error}");
    }
    let intel = builder.build();
    for m in &report.malformed {
        let _ = m.to_string();
    }

    // The oracle: the list format, read line by line.
    let (mut good, mut bad) = (0usize, 0usize);
    for raw in bytes.split(|&b| b == b'\n') {
        let raw = raw
            .split(|&b| b == b'#')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        if raw.is_empty() {
            continue;
        }
        let Ok(text) = std::str::from_utf8(raw) else {
            bad += 1;
            continue;
        };
        match Indicator::parse(kind, text) {
            Ok(Indicator::Ip(net)) => {
                good += 1;
                assert!(
                    intel.lookup_ip(net.addr()).contains("fuzz"),
                    "{text:?} not found"
                );
            }
            Ok(Indicator::Domain(name)) => {
                good += 1;
                assert!(
                    intel.lookup_domain(&name).contains("fuzz"),
                    "{text:?} not found"
                );
            }
            Ok(Indicator::Sha256(digest)) => {
                good += 1;
                assert!(
                    intel.lookup_sha256(&digest).contains("fuzz"),
                    "{text:?} not found"
                );
            }
            Err(_) => bad += 1,
        }
    }
    assert_eq!(report.malformed_total, bad, "malformed lines miscounted");
    assert_eq!(intel.lists()[0].indicators, good, "loaded lines miscounted");

    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = sniff_format(text);
    }
});
