//! A findings store for the console tests, filled through the store's own API, and a fake
//! `/proc` with or without a running agent.

#![allow(dead_code, reason = "each test file uses part of the fixture")]

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use node_agent::store::{Store, StoreLimits};
use vigil_crds::finding::{
    ConnectionDirection, ContainerDetails, DnsAction, Evidence, Finding, HostDetails, LineageEntry,
    NetworkAction, PodDetails, ProcessDetails, Resource, ResourceRole, RuntimeContext,
    SeverityLabel, ThreatIntelligenceDetail,
};

pub const SHA_NC: &str = "aa11bb22cc33dd44ee55ff6600112233445566778899aabbccddeeff00112233";

pub fn at(s: &str) -> Time {
    Time(s.parse().expect("a test time"))
}

/// A fresh directory for one test, removed when the guard is dropped.
pub fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("vigil-console-{name}-"))
        .tempdir()
        .expect("create a test directory")
}

fn lineage(names: &[(&str, &str, u32)]) -> Vec<LineageEntry> {
    names
        .iter()
        .map(|(name, exe, pid)| LineageEntry {
            name: (*name).into(),
            executable_path: (*exe).into(),
            pid: *pid,
            namespace_pid: None,
            uid: 0,
            euid: 0,
            start_time: at("2026-11-27T09:00:00Z"),
            uuid: format!("u{pid}"),
            parent_uuid: None,
        })
        .collect()
}

/// One finding; `seen` is its last (and first) event.
pub fn finding(id: &str, finding_type: &str, severity: f64, seen: &str) -> Finding {
    Finding {
        id: id.into(),
        schema_version: "1.0".into(),
        finding_type: finding_type.into(),
        title: format!("{finding_type} by {id}"),
        description: format!("Test finding {id}."),
        severity,
        severity_label: SeverityLabel::from_score(severity).expect("a valid score"),
        created_at: at(seen),
        updated_at: at(seen),
        resource: Resource {
            display_name: "host-a".into(),
            host: HostDetails {
                hostname: "host-a".into(),
                kernel_version: Some("6.1.0-test".into()),
                ..Default::default()
            },
            container: None,
            pod: None,
        },
        resource_role: ResourceRole::Actor,
        count: 1,
        event_first_seen: at(seen),
        event_last_seen: at(seen),
        process: None,
        context: RuntimeContext::default(),
        network: None,
        dns: None,
        evidence: None,
        archived: false,
        actions_taken: Vec::new(),
    }
}

fn process(name: &str, exe: &str, sha: Option<&str>) -> ProcessDetails {
    ProcessDetails {
        name: name.into(),
        executable_path: exe.into(),
        executable_sha256: sha.map(str::to_owned),
        pid: 4242,
        namespace_pid: None,
        uid: 1000,
        euid: 1000,
        user: Some("dev".into()),
        pwd: Some("/home/dev".into()),
        start_time: at("2026-11-27T09:59:00Z"),
        uuid: "p4242".into(),
        parent_uuid: Some("u4000".into()),
        lineage: lineage(&[
            ("bash", "/usr/bin/bash", 4000),
            ("sshd", "/usr/sbin/sshd", 900),
            ("systemd", "/usr/lib/systemd/systemd", 1),
        ]),
    }
}

/// The named findings of the fixture, by id:
/// - `c2aaaa01`: Backdoor C&C, High 8, nc with a SHA-256, remote 203.0.113.7, threat list;
/// - `dns00002`: DNS request to a mining domain, Medium 5, in pod shop/web (image
///   registry.example/web:1), domain pool.example.com;
/// - `tool0003`: SuspiciousTool nmap, Medium 5, MITRE T1046, count 7;
/// - `shell004`: ReverseShell, Critical 9.5, MITRE T1059.004;
/// - `old00005`: SuspiciousTool nmap, Low 2, seen long ago, archived by rule `old-rule`.
pub fn named_findings() -> Vec<(Finding, Option<&'static str>)> {
    let mut c2 = finding(
        "c2aaaa01",
        "Backdoor:Runtime/C&CActivity.B",
        8.0,
        "2026-11-27T10:00:00Z",
    );
    c2.process = Some(process("nc", "/usr/bin/nc", Some(SHA_NC)));
    c2.network = Some(NetworkAction {
        connection_direction: ConnectionDirection::Outbound,
        protocol: "TCP".into(),
        local_ip: "10.0.0.5".into(),
        local_port: 40000,
        remote_ip: "203.0.113.7".into(),
        remote_port: 4444,
        remote_domain: None,
    });
    c2.evidence = Some(Evidence {
        threat_intelligence_details: vec![ThreatIntelligenceDetail {
            threat_list_name: "c2-ips".into(),
            indicator: "203.0.113.7".into(),
        }],
    });

    let mut dns = finding(
        "dns00002",
        "CryptoCurrency:Runtime/BitcoinTool.B!DNS",
        5.0,
        "2026-11-27T11:00:00Z",
    );
    dns.resource.display_name = "shop/web/app".into();
    dns.resource.pod = Some(PodDetails {
        name: "web".into(),
        namespace: "shop".into(),
        uid: None,
        labels: BTreeMap::new(),
        service_account_name: Some("default".into()),
        host_network: None,
        host_pid: None,
        host_ipc: None,
        host_path_volumes: Vec::new(),
        workload: None,
    });
    dns.resource.container = Some(ContainerDetails {
        name: "app".into(),
        id: "c0ffee".into(),
        image: Some("registry.example/web:1".into()),
        image_prefix: None,
        container_runtime: Some("containerd".into()),
        privileged: Some(false),
        image_id: None,
        allow_privilege_escalation: None,
    });
    dns.process = Some(process("xmrig", "/tmp/xmrig", None));
    dns.dns = Some(DnsAction {
        domain: "pool.example.com".into(),
        protocol: "UDP".into(),
    });

    let mut tool = finding(
        "tool0003",
        "Execution:Runtime/SuspiciousTool",
        5.0,
        "2026-11-27T12:00:00Z",
    );
    tool.process = Some(process("nmap", "/usr/bin/nmap", None));
    tool.context.tool_name = Some("nmap".into());
    tool.context
        .additional
        .insert("mitreTechniques".into(), "T1046".into());
    tool.context
        .additional
        .insert("ruleId".into(), "scanner-nmap".into());

    let mut shell = finding(
        "shell004",
        "Execution:Runtime/ReverseShell",
        9.5,
        "2026-11-27T13:00:00Z",
    );
    shell.process = Some(process("bash", "/usr/bin/bash", None));
    shell
        .context
        .additional
        .insert("mitreTechniques".into(), "T1059.004, T1071".into());

    let mut old = finding(
        "old00005",
        "Execution:Runtime/SuspiciousTool",
        2.0,
        "2026-10-01T08:00:00Z",
    );
    old.process = Some(process("nmap", "/usr/bin/nmap", None));
    old.archived = true;

    vec![
        (c2, None),
        (dns, None),
        (tool, None),
        (shell, None),
        (old, Some("old-rule")),
    ]
}

/// A store at `dir/findings.db` with the named findings (`tool0003` seen 7 times) and
/// `extra` filler findings (Low, type `Discovery:Runtime/Filler`, one second apart, before
/// the named ones).
pub fn filled_store(dir: &Path, extra: usize) -> Store {
    let mut store =
        Store::open(&dir.join("findings.db"), StoreLimits::default()).expect("open the test store");
    for i in 0..extra {
        let seen = k8s_openapi::jiff::Timestamp::from_second(1_795_000_000 + i as i64)
            .expect("a time")
            .to_string();
        let f = finding(
            &format!("fill{i:06}"),
            "Discovery:Runtime/Filler",
            1.5,
            &seen,
        );
        store.upsert(&f, 1, None).expect("store a filler finding");
    }
    for (f, by) in named_findings() {
        store.upsert(&f, 1, by).expect("store a finding");
        if f.id == "tool0003" {
            let mut again = f.clone();
            for _ in 0..6 {
                again.event_last_seen = at("2026-11-27T12:00:00Z");
                store.upsert(&again, 1, None).expect("store a repeat");
            }
        }
    }
    store.flush().expect("write the findings");
    store
}

/// A fake `/proc` with `btime`, and one `node-agent run` process when `agent` is set.
pub fn fake_proc(dir: &Path, agent: bool) -> PathBuf {
    let proc_root = dir.join("proc");
    std::fs::create_dir_all(proc_root.join("self")).expect("fake /proc");
    std::fs::write(proc_root.join("stat"), "cpu 1 2 3\nbtime 1764547200\n").expect("fake stat");
    // Another program, which must not count.
    let other = proc_root.join("77");
    std::fs::create_dir_all(&other).expect("fake pid");
    std::fs::write(other.join("cmdline"), b"/usr/bin/sleep\x0010\x00").expect("fake cmdline");
    // A console, which must not count either.
    let console = proc_root.join("78");
    std::fs::create_dir_all(&console).expect("fake pid");
    std::fs::write(
        console.join("cmdline"),
        b"/usr/local/bin/node-agent\x00console\x00--db\x00x\x00",
    )
    .expect("fake cmdline");
    if agent {
        let pid = proc_root.join("4321");
        std::fs::create_dir_all(&pid).expect("fake pid");
        std::fs::write(
            pid.join("cmdline"),
            b"/usr/local/bin/node-agent\x00run\x00--findings-only\x00",
        )
        .expect("fake cmdline");
        // starttime (field 22) = 100 ticks after boot.
        let fields: Vec<String> = (3..=52)
            .map(|i| if i == 22 { "100".into() } else { "0".into() })
            .collect();
        std::fs::write(
            pid.join("stat"),
            format!("4321 (node-agent) {}\n", fields.join(" ")),
        )
        .expect("fake stat");
    }
    proc_root
}
