//! Spool entries: the `action` column of the cluster-mode spool (`node_agent::cluster::spool`),
//! JSON of a `publish::Action`, which `Spool::peek` deserialises from each SQLite row (a
//! damaged or foreign database hands it anything), then the object delivery writes from it.
//!
//! Invariants: an entry that parses serialises again, and that parses to the same action
//! (round trip, so a replaced or re-spooled entry keeps its content); its spool key and
//! severity do not depend on the round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_agent::cluster::publish::{Action, runtime_finding_object};

fuzz_target!(|data: &[u8]| {
    let Ok(json) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(action) = serde_json::from_str::<Action>(json) else {
        return;
    };
    let again = match serde_json::to_string(&action) {
        Ok(again) => again,
        Err(error) => panic!("a spooled action does not serialise again: {error}"),
    };
    let back = match serde_json::from_str::<Action>(&again) {
        Ok(back) => back,
        Err(error) => panic!("a re-serialised action does not parse: {error}\n{again}"),
    };
    assert_eq!(back.key(), action.key());
    assert_eq!(back.severity(), action.severity());
    match serde_json::to_string(&back) {
        Ok(third) => assert_eq!(third, again, "the round trip is not stable"),
        Err(error) => panic!("{error}"),
    }
    let _ = action.describe();
    if let Action::Apply {
        namespace,
        name,
        finding,
        ..
    } = &action
    {
        let object = runtime_finding_object(namespace, name, finding);
        if let Err(error) = serde_json::to_string(&object) {
            panic!("the RuntimeFinding of a spooled action does not serialise: {error}");
        }
    }
});
