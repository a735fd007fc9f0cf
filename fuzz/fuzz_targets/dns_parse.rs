//! The DNS message parser (`node_agent::dns::parse`), over UDP payloads and DNS-over-TCP
//! segments, as the DNS sensor hands them over.
//!
//! Invariants: never more questions or answers than the header announces; names are
//! lower-case printable ASCII of at most 255 wire bytes; a parsed message, encoded again without
//! compression, parses to the same questions and answers (round trip).
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_agent::dns::{self, DnsMessage, MAX_NAME_LEN, RecordData};
use vigil_fuzz::{encode_dns, name_to_wire};

fn check_name(name: &str) {
    assert!(
        name.bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && !b.is_ascii_uppercase()),
        "name {name:?} is not lower-case printable ASCII"
    );
    let wire = name_to_wire(name).unwrap_or_else(|| panic!("name {name:?} does not re-encode"));
    assert!(
        wire.len() <= MAX_NAME_LEN,
        "name {name:?} is {} wire bytes",
        wire.len()
    );
}

fn check(message: &DnsMessage) {
    assert!(message.questions.len() <= usize::from(message.header.question_count));
    assert!(message.answers.len() <= usize::from(message.header.answer_count));
    for q in &message.questions {
        check_name(&q.name);
    }
    for rr in &message.answers {
        check_name(&rr.name);
        if let RecordData::Cname(target) = &rr.data {
            check_name(target);
        }
    }
    // Round trip: the same content, every header count now exact and nothing compressed.
    let Some(wire) = encode_dns(message) else {
        panic!("parsed message does not re-encode: {message:?}");
    };
    match dns::parse(&wire) {
        Ok(again) => {
            assert!(!again.incomplete, "re-encoded message is incomplete");
            assert_eq!(again.questions, message.questions);
            assert_eq!(again.answers, message.answers);
            assert_eq!(again.header.id, message.header.id);
            assert_eq!(again.header.rcode, message.header.rcode);
            assert_eq!(again.header.opcode, message.header.opcode);
        }
        Err(error) => panic!("re-encoded message does not parse: {error}; {message:?}"),
    }
    let _ = serde_json::to_string(message);
}

fuzz_target!(|data: &[u8]| {
    match dns::parse(data) {
        Ok(message) => check(&message),
        // Every error renders (the agent reports it in the event).
        Err(error) => drop(error.to_string()),
    }
    if let Some(inner) = dns::strip_tcp_length_prefix(data) {
        assert!(inner.len() <= data.len() - 2);
        if let Ok(message) = dns::parse(inner) {
            check(&message);
        }
    }
});
