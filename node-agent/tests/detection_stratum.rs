//! A miner found by the protocol it speaks (issue 11, item 3: "tools and miners also by content
//! or behaviour ... stratum on the wire"): a renamed program, not on any hash list, talking to a
//! pool that no threat list names, on a real kernel with the real eBPF programs.
//!
//! The "pool" is a loopback listener this test runs (IPv4 and IPv6); the "miner" is a copy of `vigil-trigger`
//! under an innocuous name that writes real stratum messages (`tcp-send`). Negative controls: an
//! ordinary JSON-RPC call on a bare TCP connection, and an HTTP POST whose JSON body leaves in a
//! segment of its own, raise nothing (and were seen by the sensor, so the silence means
//! something).
//!
//! Root only (eBPF). Network activity stays on loopback.

mod support;

use std::{
    io::Read,
    net::{SocketAddr, TcpListener},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::LazyLock,
    time::Duration,
};

use node_agent::{
    collector::{Collector, root_or_skip as privileged},
    detect::{Detector, NoLookup},
    event::{Event, StreamInfo},
    sensor::SensorOptions,
};
use node_agent_common::STREAM_SEGMENTS;
use vigil_crds::finding::{Finding, SeverityLabel};

/// Generous: a busy machine can take long to hand events over.
const WAIT: Duration = Duration::from_secs(30);
const TRIGGER: &str = env!("CARGO_BIN_EXE_vigil-trigger");
const MINER_TYPE: &str = "CryptoCurrency:Runtime/BitcoinTool.B";

static AGENT: LazyLock<Collector> = LazyLock::new(|| {
    Collector::start(SensorOptions::default()).expect("the sensor starts as root")
});

/// A scratch directory outside the world-writable ones (programs run from /tmp are findings of
/// their own), removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "vigil-stratum-{tag}-{}",
            node_agent::collector::unique_name("st")
        ));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        Self(dir)
    }

    /// A copy of the trigger under `name`: a program no rule, list or hash knows.
    fn program(&self, name: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::copy(TRIGGER, &path).expect("copy the trigger");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A loopback "pool" on `ip`: accepts connections and reads each to its end, in a thread of its
/// own.
fn pool_on(ip: &str) -> SocketAddr {
    let listener = TcpListener::bind((ip, 0)).expect("bind a loopback port");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let mut sink = Vec::new();
            let _ = stream.read_to_end(&mut sink);
        }
    });
    addr
}

fn pool() -> SocketAddr {
    pool_on("127.0.0.1")
}

/// Runs `program tcp-send addr parts...` to completion; returns its pid.
fn send(program: &Path, addr: SocketAddr, parts: &[&str]) -> u32 {
    LazyLock::force(&AGENT);
    let child = support::spawn::spawn(
        Command::new(program)
            .arg("tcp-send")
            .arg(addr.to_string())
            .args(parts)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit()),
    )
    .expect("spawn");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    pid
}

fn detector() -> Detector {
    support::detection::builtin_detector()
}

/// The events of the process `pid` (a child of this test) and its findings, one per id.
fn run_detection(pid: u32) -> (Vec<Event>, Vec<Finding>) {
    let events = AGENT
        .tree_events(pid, WAIT)
        .unwrap_or_else(|| panic!("no exec and exit of {pid} within {WAIT:?}"));
    let mut d = detector();
    let mut by_id = std::collections::BTreeMap::new();
    for event in &events {
        for outcome in d.process(event, &NoLookup) {
            by_id.insert(outcome.finding.id.clone(), outcome.finding);
        }
    }
    (events, by_id.into_values().collect())
}

/// The stream records of `pid`'s connections to `port`.
fn streams(events: &[Event], pid: u32, port: u16) -> Vec<&StreamInfo> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Stream(s) if s.process.pid == pid && s.remote.port() == port => Some(s),
            _ => None,
        })
        .collect()
}

/// Asserts one miner finding naming `program` (pid `pid`) and the pool, with `method`.
fn assert_miner(found: &[Finding], pid: u32, program: &Path, pool: SocketAddr, method: &str) {
    let miners: Vec<&Finding> = found
        .iter()
        .filter(|f| f.finding_type == MINER_TYPE)
        .collect();
    assert_eq!(
        miners.len(),
        1,
        "one {MINER_TYPE} finding for the connection: {found:#?}"
    );
    let f = miners[0];
    let process = f.process.as_ref().expect("process");
    assert_eq!(process.pid, pid);
    assert_eq!(Path::new(&process.executable_path), program);
    let n = f.network.as_ref().expect("network");
    assert_eq!(
        (n.remote_ip.clone(), n.remote_port),
        (pool.ip().to_string(), pool.port())
    );
    assert_eq!(
        f.context
            .additional
            .get("stratumMethod")
            .map(String::as_str),
        Some(method)
    );
    assert_eq!(f.severity_label, SeverityLabel::High);
}

#[test]
fn a_renamed_program_speaking_stratum_v1_to_an_unlisted_pool_is_a_miner() {
    if !privileged("a_renamed_program_speaking_stratum_v1_to_an_unlisted_pool_is_a_miner") {
        return;
    }
    let dir = Scratch::new("v1");
    let program = dir.program("backup-sync");
    let pool = pool();
    let pid = send(
        &program,
        pool,
        &[
            r#"{"id": 1, "method": "mining.subscribe", "params": ["cpuminer/2.5.1"]}\n"#,
            r#"{"id": 2, "method": "mining.authorize", "params": ["wallet.rig1", "x"]}\n"#,
        ],
    );
    let (events, found) = run_detection(pid);
    assert!(
        !streams(&events, pid, pool.port()).is_empty(),
        "the stream sensor saw nothing of {pid}: {:?}",
        AGENT.hooks()
    );
    // Both requests are on one connection to one pool: one finding, named by the first.
    assert_miner(&found, pid, &program, pool, "mining.subscribe");
}

#[test]
fn a_renamed_program_sending_the_xmrig_login_is_a_miner() {
    if !privileged("a_renamed_program_sending_the_xmrig_login_is_a_miner") {
        return;
    }
    let dir = Scratch::new("xmrig");
    let program = dir.program("php-fpm-helper");
    // Over IPv6 (the cgroup connect6 program records the owner).
    let pool = pool_on("::1");
    let login = r#"{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A","pass":"x","agent":"XMRig/6.21.0 (Linux x86_64) libuv/1.44.2 gcc/11.2.0","algo":["rx/0","cn/r"]}}\n"#;
    let pid = send(&program, pool, &[login]);
    let (_, found) = run_detection(pid);
    assert_miner(&found, pid, &program, pool, "login");
    let f = found
        .iter()
        .find(|f| f.finding_type == MINER_TYPE)
        .expect("miner");
    assert_eq!(
        f.context
            .additional
            .get("stratumFlavour")
            .map(String::as_str),
        Some("monero-stratum")
    );
}

#[test]
fn ordinary_json_rpc_and_an_http_post_with_json_raise_nothing() {
    if !privileged("ordinary_json_rpc_and_an_http_post_with_json_raise_nothing") {
        return;
    }
    let dir = Scratch::new("benign");
    let program = dir.program("rpc-client");
    let pool = pool();
    let call = r#"{"jsonrpc":"2.0","method":"eth_blockNumber","params":[],"id":1}\n"#;
    // More JSON segments than the sensor looks at: it stops after the first few.
    let pid = send(&program, pool, &[call, call, call, call, call, call]);
    let (events, found) = run_detection(pid);
    assert!(found.is_empty(), "{found:#?}");
    let mut segments: Vec<u32> = streams(&events, pid, pool.port())
        .iter()
        .map(|s| s.segment)
        .collect();
    segments.sort_unstable();
    assert_eq!(
        segments,
        (0..STREAM_SEGMENTS).collect::<Vec<_>>(),
        "each of the first {STREAM_SEGMENTS} segments once, none after"
    );

    // HTTP: the headers, then the JSON body in a segment of its own (which the sensor sends up,
    // as it starts with `{`).
    let body = r#"{"jsonrpc":"2.0","method":"eth_blockNumber","params":[],"id":1}"#;
    let headers = format!(
        "POST /rpc HTTP/1.1\\r\\nHost: localhost\\r\\nContent-Type: application/json\\r\\nContent-Length: {}\\r\\n\\r\\n",
        body.len()
    );
    let pid = send(&program, pool, &[&headers, body]);
    let (events, found) = run_detection(pid);
    assert!(found.is_empty(), "{found:#?}");
    let seen = streams(&events, pid, pool.port());
    assert_eq!(
        seen.iter().map(|s| s.segment).collect::<Vec<_>>(),
        [1],
        "the body, not the headers"
    );
    assert_eq!(
        seen[0].sender, "socketLock",
        "sent by the task holding the socket"
    );
}
