//! The response actions for real on this machine: the kernel deny hook refuses a `connect()` to
//! a denied loopback address with EPERM while enforcing and lets it through in dry run.
//!
//! These load eBPF programs and need root. Without root they say so and stop; under CI (`CI`
//! set) a missing privilege fails the test instead. Only 127.0.0.0/8 addresses are used, each
//! run picks its own (127.77.x.y), so nothing else on the host is denied.

use std::{
    io::ErrorKind,
    net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use node_agent::{
    collector::root_or_skip as privileged,
    response::{KernelDeny, Mode, config::ThreatListChoice},
    sensor::{HookState, cgroup2_root},
};
use vigil_detection::{
    FindingType, Indicator, IndicatorKind, IntelBuilder, IpNet, ListFormat, ThreatIntel,
};

/// A loopback address of this run's own, and its neighbour (never listed).
fn addresses() -> (Ipv4Addr, Ipv4Addr) {
    let n = std::process::id();
    let (b, c) = (((n >> 8) & 0xff) as u8, (n & 0xfe) as u8);
    (
        Ipv4Addr::new(127, 77, b, c),
        Ipv4Addr::new(127, 77, b, c + 1),
    )
}

/// One list of C&C addresses holding `denied`, another (not chosen) holding `other`.
fn intel(denied: Ipv4Addr, other: Ipv4Addr) -> ThreatIntel {
    let mut b = IntelBuilder::new();
    let c2 = b
        .add_list(
            "test-c2",
            ListFormat::PlainText(IndicatorKind::Ip),
            vec![FindingType::BackdoorCcActivityB],
            "test",
        )
        .expect("list");
    let unrelated = b
        .add_list(
            "test-context",
            ListFormat::PlainText(IndicatorKind::Ip),
            vec![],
            "test",
        )
        .expect("list");
    b.insert(
        c2,
        &Indicator::Ip(IpNet::new(IpAddr::V4(denied), 32).expect("net")),
    )
    .expect("insert");
    b.insert(
        unrelated,
        &Indicator::Ip(IpNet::new(IpAddr::V4(other), 32).expect("net")),
    )
    .expect("insert");
    b.build()
}

fn choice() -> ThreatListChoice {
    ThreatListChoice {
        finding_types: [FindingType::BackdoorCcActivityB].into(),
        ..ThreatListChoice::default()
    }
}

fn listen(addr: Ipv4Addr) -> TcpListener {
    TcpListener::bind((addr, 0)).expect("bind a loopback listener")
}

fn connect(to: SocketAddr) -> std::io::Result<TcpStream> {
    TcpStream::connect_timeout(&to, Duration::from_secs(10))
}

/// The same address through an IPv6 socket (IPv4-mapped): the `connect6` program's path.
fn connect_mapped(to: SocketAddr) -> std::io::Result<TcpStream> {
    let IpAddr::V4(v4) = to.ip() else {
        unreachable!("IPv4 only")
    };
    connect(SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), to.port()))
}

fn assert_eperm(result: std::io::Result<TcpStream>, what: &str) {
    match result {
        Ok(_) => panic!("{what}: the connect succeeded; the deny hook should have refused it"),
        Err(e) => {
            assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{what}: {e}");
            assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{what}");
        }
    }
}

fn root() -> PathBuf {
    cgroup2_root().expect("a cgroup v2 hierarchy is mounted (pure v2 or the hybrid unified mount)")
}

#[test]
fn host_deny_refuses_listed_addresses_with_eperm_when_enforcing_and_not_in_dry_run() {
    if !privileged("host_deny_refuses_listed_addresses") {
        return;
    }
    let (denied, other) = addresses();
    let (l_denied, l_other) = (listen(denied), listen(other));
    let (to_denied, to_other) = (
        l_denied.local_addr().expect("addr"),
        l_other.local_addr().expect("addr"),
    );

    let mut deny = KernelDeny::load(Mode::Enforce).expect("the deny programs load as root");
    let report = deny.fill(&intel(denied, other), &choice()).expect("fill");
    assert_eq!(report.lists, vec!["test-c2".to_owned()]);
    assert_eq!((report.v4, report.v6, report.left_out), (1, 0, 0));
    assert!(deny.denies(IpAddr::V4(denied)));
    assert!(
        !deny.denies(IpAddr::V4(other)),
        "a list not chosen is not denied"
    );
    // Before attaching, nothing is refused.
    connect(to_denied).expect("no hook attached yet");

    deny.attach(&root()).expect("attach to the cgroup v2 root");
    assert_eq!(deny.status().state, HookState::Active);
    assert_eperm(connect(to_denied), "connect4 to a denied address");
    assert_eperm(
        connect_mapped(to_denied),
        "connect6 to the IPv4-mapped denied address",
    );
    connect(to_other).expect("an address on a list not chosen is not denied");
    let enforced = deny.counters();
    assert!(enforced.denied >= 2, "{enforced:?}");
    assert!(enforced.checked >= 3, "{enforced:?}");

    deny.set_mode(Mode::DryRun).expect("dry run");
    connect(to_denied).expect("dry run lets the connect through");
    connect_mapped(to_denied).expect("dry run lets the IPv6 connect through");
    let dry = deny.counters();
    assert!(dry.would_deny >= 2, "{dry:?}");
    assert_eq!(dry.denied, enforced.denied, "nothing denied in dry run");

    deny.set_mode(Mode::Enforce).expect("enforce");
    assert_eperm(connect(to_denied), "enforcing again");
    drop(deny);
    connect(to_denied).expect("dropping the hook detaches it");
}

#[test]
fn a_reload_replaces_the_denied_addresses() {
    if !privileged("a_reload_replaces_the_denied_addresses") {
        return;
    }
    let (first, second) = addresses();
    let second = Ipv4Addr::from(u32::from(second) ^ 0x0000_8000);
    let first = Ipv4Addr::from(u32::from(first) ^ 0x0000_8000);
    let mut deny = KernelDeny::load(Mode::DryRun).expect("load");
    deny.fill(&intel(first, second), &choice()).expect("fill");
    assert!(deny.denies(IpAddr::V4(first)));
    // The next intel lists `second` on the C&C list instead.
    let report = deny.fill(&intel(second, first), &choice()).expect("refill");
    assert_eq!(report.v4, 1);
    assert!(deny.denies(IpAddr::V4(second)));
    assert!(
        !deny.denies(IpAddr::V4(first)),
        "a stale address is removed"
    );
}

/// A cgroup of this test's own under the cgroup v2 root, removed at the end.
struct TestCgroup(PathBuf);

impl TestCgroup {
    fn new(root: &Path) -> Self {
        let path = root.join(format!("vigil-response-test-{}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create a test cgroup");
        Self(path)
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn pod_scope_denies_only_inside_the_chosen_cgroup() {
    if !privileged("pod_scope_denies_only_inside_the_chosen_cgroup") {
        return;
    }
    let (denied, other) = addresses();
    let denied = Ipv4Addr::from(u32::from(denied) ^ 0x0000_4000);
    let listener = listen(denied);
    let to = listener.local_addr().expect("addr");
    let cgroup = TestCgroup::new(&root());
    let mut deny = KernelDeny::load(Mode::Enforce).expect("load");
    deny.fill(&intel(denied, other), &choice()).expect("fill");
    deny.attach(&cgroup.0).expect("attach to the test cgroup");

    // A shell moved into the cgroup first, then connecting with bash's /dev/tcp.
    let script = format!(
        "echo $$ > {}/cgroup.procs && exec 3<>/dev/tcp/{}/{}",
        cgroup.0.display(),
        to.ip(),
        to.port()
    );
    let inside = Command::new("bash")
        .args(["-c", &script])
        .output()
        .expect("run bash");
    assert!(
        !inside.status.success(),
        "the connect inside the cgroup succeeded"
    );
    let stderr = String::from_utf8_lossy(&inside.stderr);
    assert!(stderr.contains("Operation not permitted"), "{stderr}");
    // This process is outside the cgroup: not denied.
    connect(to).expect("outside the cgroup the connect goes through");
    assert!(deny.detach(&cgroup.0));
    let after = Command::new("bash")
        .args(["-c", &script])
        .output()
        .expect("run bash");
    assert!(
        after.status.success(),
        "after detaching: {}",
        String::from_utf8_lossy(&after.stderr)
    );
}

/// Nanoseconds per `connect()` of a UDP socket to a loopback address (no handshake: the cost
/// is the syscall and the cgroup hooks it runs), the median of `rounds` batches.
fn connect_ns(socket: &std::net::UdpSocket, to: SocketAddr, per_round: u32, rounds: usize) -> f64 {
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = std::time::Instant::now();
        for _ in 0..per_round {
            socket.connect(to).expect("udp connect");
        }
        samples.push(start.elapsed().as_nanos() as f64 / f64::from(per_round));
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// The cost of the deny hook on `connect()`, with the map full of listed networks: run it by
/// name (docs/RESPONSE.md, "Cost"). Dry run, and none of the listed networks is used, so
/// nothing on the host is refused while it runs. Baseline and hook rounds are interleaved in
/// one process so that the ratio, not the absolute figure, is what to compare.
#[test]
#[ignore = "a measurement, not a check: cargo test -p node-agent --test response -- --ignored --nocapture"]
fn connect_cost_with_and_without_the_deny_hook() {
    if !privileged("connect_cost_with_and_without_the_deny_hook") {
        return;
    }
    // 60,000 single addresses in 198.18.0.0/15 (the benchmarking range) and 2,000 /24 blocks
    // in 100.64.0.0/10.
    let mut b = IntelBuilder::new();
    let list = b
        .add_list(
            "bench",
            ListFormat::PlainText(IndicatorKind::Ip),
            vec![FindingType::BackdoorCcActivityB],
            "bench",
        )
        .expect("list");
    for i in 0..60_000u32 {
        let a = Ipv4Addr::from(0xc612_0000 | i);
        b.insert(
            list,
            &Indicator::Ip(IpNet::new(IpAddr::V4(a), 32).expect("net")),
        )
        .expect("insert");
    }
    for i in 0..2_000u32 {
        let a = Ipv4Addr::from(0x6440_0000 + (i << 8));
        b.insert(
            list,
            &Indicator::Ip(IpNet::new(IpAddr::V4(a), 24).expect("net")),
        )
        .expect("insert");
    }
    let intel = b.build();
    let mut deny = KernelDeny::load(Mode::DryRun).expect("load");
    let report = deny.fill(&intel, &choice()).expect("fill");
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let to: SocketAddr = "127.0.0.1:9".parse().expect("addr");
    let (per_round, rounds) = (20_000, 15);
    connect_ns(&socket, to, per_round, 3); // warm-up
    // The same programs with empty maps: the cost of running a cgroup program at all.
    let mut empty = KernelDeny::load(Mode::DryRun).expect("load");
    let (mut without, mut with, mut bare) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..5 {
        without.push(connect_ns(&socket, to, per_round, rounds));
        deny.attach(&root()).expect("attach");
        with.push(connect_ns(&socket, to, per_round, rounds));
        assert!(deny.detach(&root()));
        empty.attach(&root()).expect("attach");
        bare.push(connect_ns(&socket, to, per_round, rounds));
        assert!(empty.detach(&root()));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (base, hooked, empty_map) = (median(&mut without), median(&mut with), median(&mut bare));
    println!(
        "deny hook on connect(): UDP connect to 127.0.0.1, median ns per connect: \
         {base:.0} without the hook, {empty_map:.0} with it and empty maps ({:+.0}), \
         {hooked:.0} with {} IPv4 networks in the map ({:+.0}, x{:.3})",
        empty_map - base,
        report.v4,
        hooked - base,
        hooked / base
    );
    // Adjacent blocks of one list merge into a few larger ones.
    assert!(report.v4 > 60_000, "{report:?}");
}
