//! What the console benchmarks share (`#[path]`-included by `node-agent/benches/console.rs`
//! and `operator/benches/console.rs`): the synthetic findings and the findings-page cases,
//! timed through the router, so the host and the cluster backend are measured alike.

use std::time::{Duration, Instant};

use axum::{
    Router,
    body::Body,
    http::{Request, StatusCode, header},
};
use http_body_util::BodyExt;
use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use tower::ServiceExt;
use vigil_crds::finding::{
    ConnectionDirection, Finding, HostDetails, LineageEntry, NetworkAction, PodDetails,
    ProcessDetails, Resource, ResourceRole, RuntimeContext, SeverityLabel,
};

const TYPES: &[&str] = &[
    "Execution:Runtime/SuspiciousTool",
    "Execution:Runtime/NewBinaryExecuted",
    "Backdoor:Runtime/C&CActivity.B",
    "CryptoCurrency:Runtime/BitcoinTool.B!DNS",
    "Execution:Runtime/ReverseShell",
    "Discovery:Runtime/SuspiciousCommand",
    "PrivilegeEscalation:Runtime/ContainerMountsHostDirectory",
    "DefenseEvasion:Runtime/ProcessInjection.Proc",
];
const PROCESSES: &[&str] = &[
    "nc", "nmap", "curl", "bash", "python3", "xmrig", "socat", "sh",
];
const TECHNIQUES: &[&str] = &["T1046", "T1059.004", "T1071", "T1105", "T1496", "T1611"];

fn time(s: i64) -> Time {
    Time(Timestamp::from_second(s).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// The `i`-th synthetic finding: spread over types, severities, processes, namespaces, remote
/// addresses and MITRE techniques, one every 25 seconds.
pub fn finding(i: usize) -> Finding {
    let seen = 1_790_000_000 + (i as i64) * 25;
    let severity = [2.0, 5.0, 5.5, 8.0, 9.5][i % 5];
    let process = PROCESSES[i % PROCESSES.len()];
    let ns = format!("ns-{}", i % 40);
    let mut context = RuntimeContext::default();
    context.additional.insert(
        "mitreTechniques".into(),
        TECHNIQUES[i % TECHNIQUES.len()].into(),
    );
    Finding {
        id: format!("{:016x}", (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        schema_version: "1.0".into(),
        finding_type: TYPES[i % TYPES.len()].into(),
        title: format!("{} by {process}", TYPES[i % TYPES.len()]),
        description: "A synthetic finding of the console benchmark.".into(),
        severity,
        severity_label: SeverityLabel::from_score(severity).unwrap_or(SeverityLabel::Low),
        created_at: time(seen),
        updated_at: time(seen),
        resource: Resource {
            display_name: format!("{ns}/pod-{}/app", i % 500),
            host: HostDetails {
                hostname: format!("node-{}", i % 12),
                node_name: Some(format!("node-{}", i % 12)),
                kernel_version: Some("6.1.0".into()),
                os_image: None,
            },
            container: None,
            pod: Some(PodDetails {
                name: format!("pod-{}", i % 500),
                namespace: ns,
                uid: None,
                labels: Default::default(),
                service_account_name: None,
                host_network: None,
                host_pid: None,
                host_ipc: None,
                host_path_volumes: Vec::new(),
                workload: None,
            }),
        },
        resource_role: ResourceRole::Actor,
        count: 1 + (i % 7) as u64,
        event_first_seen: time(seen),
        event_last_seen: time(seen),
        process: Some(ProcessDetails {
            name: process.into(),
            executable_path: format!("/usr/bin/{process}"),
            executable_sha256: Some(format!("{:064x}", i % 1000)),
            pid: 1000 + (i % 30_000) as u32,
            namespace_pid: None,
            uid: 0,
            euid: 0,
            user: None,
            pwd: None,
            start_time: time(seen - 5),
            uuid: format!("p{i}"),
            parent_uuid: None,
            lineage: vec![LineageEntry {
                name: "bash".into(),
                executable_path: "/usr/bin/bash".into(),
                pid: 900,
                namespace_pid: None,
                uid: 0,
                euid: 0,
                start_time: time(seen - 60),
                uuid: "b".into(),
                parent_uuid: None,
            }],
        }),
        context,
        network: i.is_multiple_of(3).then(|| NetworkAction {
            connection_direction: ConnectionDirection::Outbound,
            protocol: "TCP".into(),
            local_ip: "10.0.0.5".into(),
            local_port: 40000,
            remote_ip: format!("203.0.113.{}", i % 250),
            remote_port: 443,
            remote_domain: None,
        }),
        dns: None,
        evidence: None,
        archived: i.is_multiple_of(11),
        actions_taken: Vec::new(),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Requests each findings-page case `requests` times through `router` (Host `host`) and prints
/// p50, p95, max and each p95 as a ratio to the unfiltered first page; exits on a failure.
pub fn run_cases(
    router: &Router,
    runtime: &tokio::runtime::Runtime,
    requests: usize,
    stored: u64,
    host: &str,
) {
    let cases: &[(&str, &str)] = &[
        ("baseline: unfiltered, first page", "/findings"),
        ("severity=high", "/findings?severity=high"),
        ("process=nc & status=all", "/findings?process=nc&status=all"),
        ("mitre=T1059.004", "/findings?mitre=T1059.004"),
        ("resource=ns-7 (namespace)", "/findings?resource=ns-7"),
        ("remote=203.0.113.9", "/findings?remote=203.0.113.9"),
        (
            "type & sort by severity asc",
            "/findings?type=Execution%3ARuntime%2FReverseShell&sort=severity&order=asc",
        ),
        (
            "severity=critical, page 20",
            "/findings?severity=critical&page=20",
        ),
        (
            "since=2026-09-01, sort by count",
            "/findings?since=2026-09-01T00%3A00%3A00Z&sort=count",
        ),
    ];
    println!(
        "{:<36} {:>8} {:>9} {:>9} {:>9} {:>8}",
        "findings page", "matches", "p50 ms", "p95 ms", "max ms", "p95/base"
    );
    let mut baseline_p95 = None;
    let mut worst_p95 = Duration::ZERO;
    for (name, uri) in cases {
        let mut times = Vec::with_capacity(requests);
        let mut matches = String::new();
        for _ in 0..requests {
            let request = Request::get(*uri)
                .header(header::HOST, host)
                .body(Body::empty())
                .unwrap_or_default();
            let start = Instant::now();
            let (status, body) = runtime.block_on(async {
                match router.clone().oneshot(request).await {
                    Ok(r) => {
                        let status = r.status();
                        let body = r.into_body().collect().await.map(|b| b.to_bytes());
                        (status, body.unwrap_or_default())
                    }
                    Err(never) => match never {},
                }
            });
            times.push(start.elapsed());
            if status != StatusCode::OK {
                eprintln!("console bench: {uri}: {status}");
                std::process::exit(1);
            }
            if matches.is_empty() {
                let html = String::from_utf8_lossy(&body);
                matches = html
                    .split(" of ")
                    .nth(1)
                    .and_then(|s| s.split('<').next())
                    .unwrap_or("0")
                    .to_owned();
            }
        }
        times.sort();
        let p95 = percentile(&times, 0.95);
        let base = *baseline_p95.get_or_insert(p95);
        worst_p95 = worst_p95.max(p95);
        println!(
            "{:<36} {:>8} {:>9.1} {:>9.1} {:>9.1} {:>8.2}",
            name,
            matches,
            ms(percentile(&times, 0.5)),
            ms(p95),
            ms(*times.last().unwrap_or(&Duration::ZERO)),
            p95.as_secs_f64() / base.as_secs_f64().max(1e-9)
        );
    }
    println!(
        "worst p95 over the filtered pages: {:.1} ms ({} requests each, {stored} findings)",
        ms(worst_p95),
        requests
    );
}
