//! Ring-buffer records: `node_agent_common::decode::decode` on any bytes, then the agent's
//! conversions of a decoded record into an event (`node_agent::event::*_info`) and its JSON form.
//!
//! Invariants: a record that decodes is exactly the bytes it was decoded from (round trip); any
//! body under a well-formed header of a known kind decodes. A stream record's head also goes
//! through the stratum matcher (`detect::stratum::recognise`), which must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_agent::{
    detect::stratum::recognise,
    event::{
        Clock, ProcessRef, activity_info, dns_info, exec_info, exit_info, file_info, net_info,
        stream_info,
    },
};
use node_agent_common::decode::{DecodeError, Record, bytes_of, decode};
use vigil_fuzz::{Aligned, RECORD_KINDS};

/// 2026-01-01T00:00:00Z minus a boot time, so times render as the agent would print them.
const CLOCK_OFFSET_NS: i128 = 1_767_225_600 * 1_000_000_000;

fn convert(record: Record<'_>) {
    let clock = Clock::with_offset(CLOCK_OFFSET_NS);
    let json = match record {
        Record::Exec(ev) => serde_json::to_string(&exec_info(ev, &clock)),
        Record::Fork(ev) => serde_json::to_string(&ProcessRef::from(&ev.task)),
        Record::Exit(ev) => serde_json::to_string(&exit_info(ev, &clock)),
        Record::Connect(ev) | Record::ConnectOutcome(ev) | Record::Accept(ev) => {
            serde_json::to_string(&net_info(ev, &clock))
        }
        Record::Dns(ev) => serde_json::to_string(&dns_info(ev, &clock)),
        Record::Stream(ev) => {
            let info = stream_info(ev, &clock);
            let _ = recognise(&info.head);
            serde_json::to_string(&info)
        }
        Record::File(ev) => serde_json::to_string(&file_info(ev, &clock)),
        Record::Activity(ev) => serde_json::to_string(&activity_info(ev, &clock)),
        Record::Synthetic(ev) => Ok(ev.seq.to_string()),
    };
    if let Err(error) = json {
        panic!("an event from a record does not serialise: {error}");
    }
}

fn record_bytes<'a>(record: &Record<'a>) -> &'a [u8] {
    match record {
        Record::Exec(ev) => bytes_of(*ev),
        Record::Fork(ev) => bytes_of(*ev),
        Record::Exit(ev) => bytes_of(*ev),
        Record::Connect(ev) | Record::ConnectOutcome(ev) | Record::Accept(ev) => bytes_of(*ev),
        Record::Dns(ev) => bytes_of(*ev),
        Record::Stream(ev) => bytes_of(*ev),
        Record::File(ev) => bytes_of(*ev),
        Record::Activity(ev) => bytes_of(*ev),
        Record::Synthetic(ev) => bytes_of(*ev),
    }
}

fuzz_target!(|data: &[u8]| {
    // 1. The bytes as they are, as the ring buffer would hand them over.
    let raw = Aligned::new(data, 0);
    match decode(raw.bytes()) {
        Ok(record) => {
            let back = record_bytes(&record);
            assert_eq!(back, &raw.bytes()[..back.len()], "decode is not a view");
            convert(record);
        }
        Err(DecodeError::Short { len }) => assert!(len < 16, "a full header read as short"),
        Err(_) => {}
    }

    // 2. The same bytes under a well-formed header: the kind they name when it is known, else
    //    one the first byte picks, and that kind's size. Every field the kernel fills is then
    //    the fuzzer's, and decoding must succeed.
    let Some(&pick) = data.first() else {
        return;
    };
    let named = data
        .get(..2)
        .map(|k| u16::from_ne_bytes([k[0], k[1]]))
        .and_then(|k| RECORD_KINDS.iter().find(|(kind, _)| *kind == k));
    let (kind, size) = *named.unwrap_or(&RECORD_KINDS[usize::from(pick) % RECORD_KINDS.len()]);
    let mut framed = Aligned::new(&data[..data.len().min(size)], size);
    let bytes = framed.bytes_mut();
    bytes[0..2].copy_from_slice(&kind.to_ne_bytes());
    bytes[4..8].copy_from_slice(&(size as u32).to_ne_bytes());
    match decode(&framed.bytes()[..size]) {
        Ok(record) => convert(record),
        Err(error) => panic!("a well-formed record of kind {kind:#06x} does not decode: {error}"),
    }
});
