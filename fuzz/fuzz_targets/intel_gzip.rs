//! Gzip-compressed lists (`vigil_detection::loader::gunzip_bounded`), the path a `.gz` list file
//! takes, with a small output bound so that a bomb is cut off quickly.
//!
//! Invariants: the output never exceeds the bound; a list refused as too large under one bound
//! is a prefix-consistent read under a larger one (same bytes up to the bound); what unpacks
//! under the bound unpacks the same under a larger one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_detection::loader::{IntelError, Origin, gunzip_bounded};

const LIMIT: u64 = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let origin = Origin::Builtin("fuzz.txt.gz");
    let small = gunzip_bounded(data, &origin, LIMIT);
    let large = gunzip_bounded(data, &origin, 4 * LIMIT);
    match (&small, &large) {
        (Ok(a), Ok(b)) => {
            assert!(a.len() as u64 <= LIMIT);
            assert_eq!(a, b, "the bound changed what a list unpacks to");
        }
        (
            Err(IntelError::TooLarge {
                limit, compressed, ..
            }),
            Ok(b),
        ) => {
            assert_eq!(*limit, LIMIT);
            assert!(*compressed);
            assert!(
                b.len() as u64 > LIMIT,
                "refused at {LIMIT} but {} bytes",
                b.len()
            );
        }
        (Err(IntelError::TooLarge { .. }), Err(_)) => {}
        (Ok(a), Err(error)) => panic!("{} bytes under {LIMIT} but {error} under more", a.len()),
        (Err(IntelError::Read { .. }), Err(IntelError::Read { .. })) => {}
        (Err(a), b) => panic!("unexpected outcome: {a} / {:?}", b.as_ref().map(Vec::len)),
    }
    if let Err(error) = &small {
        let _ = error.to_string();
    }
});
