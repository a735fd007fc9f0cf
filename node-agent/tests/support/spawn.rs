//! Starting a program that this test process may have just written.

use std::io;
use std::process::{Child, Command};
use std::time::Duration;

/// How long a program just written may stay busy before the error is the test's.
const BUSY_TRIES: u32 = 400;

/// Spawns `cmd`, waiting out `ETXTBSY`. Tests run on several threads: another thread that forks
/// while this one holds a program open for writing leaves the descriptor open in its child until
/// that child execs, and an exec of the program meanwhile fails with "Text file busy". The wait
/// ends as soon as the exec succeeds; no other error is retried.
pub fn spawn(cmd: &mut Command) -> io::Result<Child> {
    for _ in 0..BUSY_TRIES {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(Duration::from_millis(25));
            }
            other => return other,
        }
    }
    cmd.spawn()
}
