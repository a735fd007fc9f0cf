//! Table tests of scripts a running shell reads (`sourced.rs`): a shell's `openScript` is held
//! until the shell forks, execs, exits or opens another; a `redirect` of the same file drops it.

use std::path::PathBuf;

use super::{
    pipes_tests::{detector, exec, x},
    *,
};
use crate::event::{ExitInfo, FileInfo, ForkInfo, ProcessRef, Writer};

fn process(pid: u32, comm: &str) -> ProcessRef {
    ProcessRef {
        pid,
        tid: pid,
        ppid: 100,
        comm: comm.into(),
        start_time_ns: u64::from(pid) * 1000,
        uuid: format!("uuid-{pid}"),
        host_namespaces: true,
        ..ProcessRef::default()
    }
}

/// A shell's read-only open of `path` (inode `ino`), written by `writer` or on a tmpfs.
fn open_script(pid: u32, path: &str, ino: u64, writer: Option<u32>, memory: bool) -> Event {
    let mut matched_by = Vec::new();
    if writer.is_some() {
        matched_by.push("writtenByOther");
    }
    if memory {
        matched_by.push("memoryFs");
    }
    Event::File(FileInfo {
        time: "2026-12-05T01:00:01Z".into(),
        process: process(pid, "sh"),
        operation: "openScript",
        path: path.into(),
        resolved_path: Some(PathBuf::from(path)),
        path2: None,
        resolved_path2: None,
        ret: 3,
        error: None,
        open_flags: None,
        mode: None,
        owner: None,
        inode: Some(ino),
        matched_by,
        proc_mem_pid: None,
        sysctl_value: None,
        sysctl_setting: None,
        sysctl_by_hook: false,
        git_config: None,
        sysctl_file: None,
        accounts_changed: None,
        hashes_owner: None,
        program_written: None,
        truncated: false,
        written_by: writer.map(|pid| Writer {
            pid,
            uid: 0,
            comm: "curl".into(),
            time: "2026-12-05T01:00:00Z".into(),
        }),
    })
}

/// The same shell `dup2`ing a file (inode `ino`) from fd 3.
fn redirect(pid: u32, ino: u64) -> Event {
    let Event::File(mut f) = open_script(pid, "", ino, None, false) else {
        unreachable!()
    };
    f.operation = "redirect";
    f.resolved_path = None;
    f.matched_by.clear();
    Event::File(f)
}

fn exit(pid: u32) -> Event {
    Event::Exit(ExitInfo {
        time: "2026-12-05T01:00:02Z".into(),
        process: process(pid, "sh"),
        exit_status: Some(0),
        signal: None,
    })
}

fn fork(pid: u32, child: u32) -> Event {
    Event::Fork(ForkInfo {
        time: "2026-12-05T01:00:02Z".into(),
        process: process(pid, "sh"),
        child_pid: child,
    })
}

/// `(ruleId, filePath, executedFile)` of what `events` raise, in order.
fn run(d: &mut Detector, events: &[Event]) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for e in events {
        for o in d.process(e, &NoLookup) {
            let a = &o.finding.context.additional;
            out.push((
                a.get("ruleId").cloned().unwrap_or_default(),
                o.finding.context.file_path.clone().unwrap_or_default(),
                a.get("executedFile").cloned().unwrap_or_default(),
            ));
        }
    }
    out
}

const WHAT: &str = "script read by a running shell";

fn curl(d: &mut Detector) {
    run(
        d,
        &[exec(&x(
            20,
            "/usr/bin/curl",
            &["curl", "-so", "x.sh", "http://h/x.sh"],
            None,
            None,
        ))],
    );
}

fn bash(pid: u32) -> Event {
    exec(&x(pid, "/usr/bin/bash", &["bash", "job.sh"], None, None))
}

#[test]
fn a_downloaded_script_sourced_by_the_shell_is_download_and_execute() {
    let sourced = |end: Event| {
        let mut d = detector();
        curl(&mut d);
        run(&mut d, &[bash(30)]);
        // Nothing until the shell shows what it did with the file.
        assert!(
            run(
                &mut d,
                &[open_script(30, "/srv/app/x.sh", 7, Some(20), false)]
            )
            .is_empty()
        );
        run(&mut d, &[end])
    };
    let want = vec![(
        "behaviour-download-exec".to_owned(),
        "/srv/app/x.sh".to_owned(),
        WHAT.to_owned(),
    )];
    // Judged at the shell's exit, its next fork, its next script open, or its next exec (as the
    // old image).
    assert_eq!(sourced(exit(30)), want);
    assert_eq!(sourced(fork(30, 31)), want);
    assert_eq!(sourced(open_script(30, "/srv/app/y", 8, None, false)), want);
    assert_eq!(
        sourced(exec(&x(30, "/usr/bin/true", &["true"], None, None))),
        want
    );
    // Another shell's fork or exit does not judge it.
    assert!(sourced(exit(99)).is_empty());
}

#[test]
fn a_redirected_file_is_data() {
    // `while read l; do :; done < x.sh`: the same file dup2ed, nothing.
    let mut d = detector();
    curl(&mut d);
    let found = run(
        &mut d,
        &[
            bash(30),
            open_script(30, "/srv/app/list.txt", 7, Some(20), false),
            redirect(30, 7),
            exit(30),
        ],
    );
    assert!(found.is_empty(), "{found:?}");
    // Another file dup2ed (`ls > /dev/null` reusing the closed fd's number): still sourced.
    let mut d = detector();
    curl(&mut d);
    let found = run(
        &mut d,
        &[
            bash(30),
            open_script(30, "/srv/app/x.sh", 7, Some(20), false),
            redirect(30, 8),
            fork(30, 31),
        ],
    );
    assert_eq!(found.len(), 1, "{found:?}");
}

#[test]
fn only_downloads_and_memory_backed_directories_read_by_shells_count() {
    let one = |events: &[Event]| {
        let mut d = detector();
        curl(&mut d);
        run(
            &mut d,
            &[exec(&x(21, "/usr/bin/cp", &["cp", "a", "b"], None, None))],
        );
        run(&mut d, events)
    };
    // Written by a program that is not a downloader, or by a pid never seen.
    assert!(
        one(&[
            bash(30),
            open_script(30, "/srv/b", 7, Some(21), false),
            exit(30)
        ])
        .is_empty()
    );
    assert!(
        one(&[
            bash(30),
            open_script(30, "/srv/b", 7, Some(99), false),
            exit(30)
        ])
        .is_empty()
    );
    // Read by a program that is not a shell (the kernel marks by executable name; user space
    // checks again), or by python.
    for exe in ["/usr/bin/cat", "/usr/bin/python3.11"] {
        let found = one(&[
            exec(&x(30, exe, &["p", "x"], None, None)),
            open_script(30, "/srv/app/x.sh", 7, Some(20), false),
            exit(30),
        ]);
        assert!(found.is_empty(), "{exe}: {found:?}");
    }
    // Memory-backed: /dev/shm and /run/user are the rule's directories; the rest of a tmpfs
    // (/run, a tmpfs /tmp) is not.
    let memory = |path: &str| {
        one(&[
            exec(&x(30, "/usr/bin/dash", &["sh", "job.sh"], None, None)),
            open_script(30, path, 7, None, true),
            exit(30),
        ])
    };
    assert_eq!(
        memory("/dev/shm/x.sh"),
        vec![(
            "behaviour-exec-from-memory-dir".to_owned(),
            "/dev/shm/x.sh".to_owned(),
            WHAT.to_owned()
        )]
    );
    assert_eq!(memory("/run/user/1000/x.sh").len(), 1);
    assert!(memory("/run/systemd/x.conf").is_empty());
    assert!(memory("/tmp/x.sh").is_empty());
    // A shell reading a sensitive file is not a change to it.
    assert!(
        one(&[
            bash(30),
            open_script(30, "/etc/ld.so.preload", 7, Some(21), false),
            exit(30),
        ])
        .is_empty()
    );
    // On a tmpfs but not flagged so (a disk file in /dev/shm's path cannot be).
    assert!(
        one(&[
            bash(30),
            open_script(30, "/dev/shm/x.sh", 7, None, false),
            exit(30)
        ])
        .is_empty()
    );
}

#[test]
fn perl_doing_a_download_is_download_and_execute_and_its_data_reads_are_not() {
    let perl = |events: &[Event]| {
        let mut d = detector();
        curl(&mut d);
        let mut all = vec![exec(&x(
            40,
            "/usr/bin/perl",
            &["perl", "-e", "do './x.pl'"],
            None,
            None,
        ))];
        all.extend_from_slice(events);
        run(&mut d, &all)
    };
    // `do FILE`: no fstat of the fd, so no redirect from the kernel.
    assert_eq!(
        perl(&[
            open_script(40, "/srv/app/x.pl", 7, Some(20), false),
            exit(40)
        ]),
        vec![(
            "behaviour-download-exec".to_owned(),
            "/srv/app/x.pl".to_owned(),
            "script read by a running interpreter".to_owned()
        )]
    );
    // `open(my $f, '<', ...)` fstats it: the kernel sends a redirect.
    assert!(
        perl(&[
            open_script(40, "/srv/app/list.txt", 7, Some(20), false),
            redirect(40, 7),
            exit(40),
        ])
        .is_empty()
    );
}

#[test]
fn busybox_counts_as_a_shell_only_as_its_shell_applets() {
    let with = |argv0: &'static [&'static str]| {
        let mut d = detector();
        run(
            &mut d,
            &[
                exec(&x(30, "/bin/busybox", argv0, None, None)),
                open_script(30, "/dev/shm/x.sh", 7, None, true),
                exit(30),
            ],
        )
    };
    assert_eq!(with(&["sh", "job.sh"]).len(), 1);
    assert_eq!(with(&["/bin/ash", "job.sh"]).len(), 1);
    assert!(with(&["cat", "/dev/shm/x.sh"]).is_empty());
    // A busybox shell's subshell (a fork) is a shell too.
    let mut d = detector();
    let found = run(
        &mut d,
        &[
            exec(&x(30, "/bin/busybox", &["sh", "job.sh"], None, None)),
            fork(30, 31),
            open_script(31, "/dev/shm/x.sh", 7, None, true),
            exit(31),
        ],
    );
    assert_eq!(found.len(), 1, "{found:?}");
}

#[test]
fn held_opens_are_bounded() {
    let mut d = detector();
    for pid in 0..(sourced::MAX_HELD as u32 + 10) {
        run(
            &mut d,
            &[open_script(1000 + pid, "/dev/shm/x.sh", 7, None, true)],
        );
    }
    let t = d
        .tracked()
        .into_iter()
        .find(|t| t.table == "sourcedScripts")
        .expect("tracked");
    assert_eq!(t.entries, sourced::MAX_HELD as u64);
    assert_eq!(t.shed, 10);
}

/// A shell's open of a pipe (`source <(curl URL)`, `curl URL | source /dev/stdin`).
fn open_pipe(pid: u32, path: &str, ino: u64) -> Event {
    let Event::File(mut f) = open_script(pid, path, ino, None, false) else {
        unreachable!()
    };
    f.resolved_path = Some(PathBuf::from(format!("pipe:[{ino}]")));
    f.matched_by = vec!["pipe"];
    Event::File(f)
}

#[test]
fn a_pipe_sourced_by_the_shell_is_judged_by_its_writer() {
    let sourced = |writer: &[Event], pipe: u64, end: Event| {
        let mut d = detector();
        run(&mut d, writer);
        run(&mut d, &[bash(30)]);
        assert!(run(&mut d, &[open_pipe(30, "/dev/fd/63", pipe)]).is_empty());
        let mut found = Vec::new();
        for e in [end] {
            for o in d.process(&e, &NoLookup) {
                let a = &o.finding.context.additional;
                found.push((
                    a.get("ruleId").cloned().unwrap_or_default(),
                    a.get("pipeWriter").cloned().unwrap_or_default(),
                    a.get("programReadFrom").cloned().unwrap_or_default(),
                ));
            }
        }
        found
    };
    let curl = [exec(&x(
        20,
        "/usr/bin/curl",
        &["curl", "-s", "http://h/x.sh"],
        None,
        Some(63),
    ))];
    assert_eq!(
        sourced(&curl, 63, exit(30)),
        vec![(
            "behaviour-download-pipe-exec".to_owned(),
            "/usr/bin/curl".to_owned(),
            "/dev/fd/63".to_owned()
        )]
    );
    // Through a decoder: the downloader still decides; a decoder alone is a decode.
    let decoded = [
        exec(&x(
            20,
            "/usr/bin/curl",
            &["curl", "-s", "http://h/x.b64"],
            None,
            Some(61),
        )),
        exec(&x(
            21,
            "/usr/bin/base64",
            &["base64", "-d"],
            Some(61),
            Some(63),
        )),
    ];
    assert_eq!(
        sourced(&decoded, 63, fork(30, 31))[0].0,
        "behaviour-download-pipe-exec"
    );
    let decoder = [exec(&x(
        21,
        "/usr/bin/base64",
        &["base64", "-d", "f"],
        None,
        Some(63),
    ))];
    assert_eq!(
        sourced(&decoder, 63, exit(30))[0].0,
        "behaviour-decode-pipe-exec"
    );
    // A local file through cat, a pipe no exec wrote (a builtin's output), another pipe.
    let cat = [exec(&x(
        22,
        "/usr/bin/cat",
        &["cat", "local.sh"],
        None,
        Some(63),
    ))];
    assert!(sourced(&cat, 63, exit(30)).is_empty());
    assert!(sourced(&[], 63, exit(30)).is_empty());
    assert!(sourced(&curl, 64, exit(30)).is_empty());
    // Redirected (read as data): nothing.
    let mut d = detector();
    run(&mut d, &curl);
    let found = run(
        &mut d,
        &[
            bash(30),
            open_pipe(30, "/dev/fd/63", 63),
            redirect(30, 63),
            exit(30),
        ],
    );
    assert!(found.is_empty(), "{found:?}");
}
