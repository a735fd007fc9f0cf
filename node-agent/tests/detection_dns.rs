//! DNS detections against real DNS exchanges on this machine, inside network namespaces the
//! tests create: threat intel matched on what answers carry (a listed address, a CNAME to a
//! listed name), and a real caching resolver (dnsmasq) forwarding a client's DGA lookups, which
//! must raise the DGA finding for the client and never for the resolver.
//!
//! The DNS sensor is a cgroup skb hook on sockets aimed at port 53: a stub server
//! (`vigil-trigger dns-server`) on 127.0.0.53:53 or 127.0.0.54:53 inside a namespace answers
//! as the test says. Nothing leaves the namespace; the addresses in answers are loopback ones and
//! are never contacted.
//!
//! These load eBPF programs and need root. Without root they say so and stop; under CI (`CI`
//! set) a missing privilege fails the test instead.

mod support;

use std::{
    collections::{BTreeMap, HashSet},
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::LazyLock,
    time::{Duration, Instant},
};

use node_agent::{
    collector::{Collector, root_or_skip as privileged},
    detect::{Detector, NoLookup},
    event::Event,
    sensor::{HookState, SensorOptions},
};
use vigil_crds::finding::Finding;
use vigil_detection::{
    DgaModel, FindingType, IndicatorKind, IntelConfig, ListFormat, ListSource, ThreatIntel,
};

/// Loading the eBPF programs and draining a busy ring buffer can take a while on a shared
/// machine: generous, never a measure.
const WAIT: Duration = Duration::from_secs(60);
const TRIGGER: &str = env!("CARGO_BIN_EXE_vigil-trigger");

static AGENT: LazyLock<Collector> = LazyLock::new(|| {
    let agent = Collector::start(SensorOptions::default()).expect("the sensor starts as root");
    for hook in agent.hooks().iter().filter(|h| {
        [
            "exec",
            "fork",
            "exit",
            "dns_socket",
            "dns_egress",
            "dns_ingress",
        ]
        .contains(&h.hook)
    }) {
        assert_eq!(hook.state, HookState::Active, "hook {}: {hook}", hook.hook);
    }
    agent
});

/// The tests here run one at a time: the eviction test floods the agent's table of DNS
/// sockets, which the others' exchanges need to stay attributed (each to its own process).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn nonce() -> String {
    node_agent::collector::unique_name("vn")
}

fn detector(intel: ThreatIntel) -> Detector {
    support::detection::detector_with(
        intel,
        Some(DgaModel::builtin().expect("built-in DGA model")),
        support::detection::builtin_rules(),
    )
}

/// The findings over these events, one per id.
fn findings(detector: &mut Detector, events: &[Event]) -> Vec<Finding> {
    let mut by_id: BTreeMap<String, Finding> = BTreeMap::new();
    for event in events {
        for outcome in detector.process(event, &NoLookup) {
            by_id.insert(outcome.finding.id.clone(), outcome.finding);
        }
    }
    by_id.into_values().collect()
}

fn of_type(found: &[Finding], t: FindingType) -> Vec<&Finding> {
    found
        .iter()
        .filter(|f| f.finding_type == t.as_str())
        .collect()
}

/// A network namespace with loopback up and a resolv.conf naming 127.0.0.53.
struct Namespace {
    name: String,
    servers: Vec<Child>,
}

impl Namespace {
    fn new() -> Self {
        let name = format!("vigil-dns-{}", nonce());
        let ok = |args: &[&str]| {
            let status = Command::new("ip").args(args).status().expect("run ip");
            assert!(status.success(), "ip {args:?} failed");
        };
        ok(&["netns", "add", &name]);
        ok(&["netns", "exec", &name, "ip", "link", "set", "lo", "up"]);
        let etc = PathBuf::from("/etc/netns").join(&name);
        std::fs::create_dir_all(&etc).expect("/etc/netns dir");
        std::fs::write(
            etc.join("resolv.conf"),
            "nameserver 127.0.0.53\noptions timeout:2 attempts:2\n",
        )
        .expect("resolv.conf");
        Self {
            name,
            servers: Vec::new(),
        }
    }

    /// Starts `vigil-trigger dns-server ADDR ARGS...` in the namespace, once it says ready.
    fn stub(&mut self, addr: &str, args: &[&str]) {
        let mut all = vec!["netns", "exec", &self.name, TRIGGER, "dns-server", addr];
        all.extend_from_slice(args);
        let mut server = Command::new("ip")
            .args(&all)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the stub server");
        let mut ready = String::new();
        BufReader::new(server.stdout.take().expect("stdout"))
            .read_line(&mut ready)
            .expect("ready line");
        assert_eq!(ready.trim(), "ready", "the stub server on {addr} started");
        self.servers.push(server);
    }

    /// Runs a program in the namespace to completion; returns its pid.
    fn run(&self, program: &str, args: &[&str]) -> u32 {
        LazyLock::force(&AGENT);
        let mut all = vec!["netns", "exec", &self.name, program];
        all.extend_from_slice(args);
        let child = Command::new("ip")
            .args(&all)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let pid = child.id();
        let _ = child.wait_with_output().expect("wait");
        pid
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        for server in &mut self.servers {
            if let Some(mut stdin) = server.stdin.take() {
                let _ = stdin.write_all(b"\n");
            }
            let _ = server.kill();
            let _ = server.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .status();
        let _ = std::fs::remove_dir_all(PathBuf::from("/etc/netns").join(&self.name));
    }
}

fn tree_events(root: u32) -> Vec<Event> {
    AGENT
        .tree_events(root, WAIT)
        .unwrap_or_else(|| panic!("no exec and exit of {root} within {WAIT:?}"))
}

/// Intel from list files, as an operator configures it.
fn intel(dir: &Path, lists: &[(&str, IndicatorKind, &str, FindingType)]) -> ThreatIntel {
    let mut config = IntelConfig {
        builtin: false,
        ..IntelConfig::default()
    };
    for (name, kind, entry, feeds) in lists {
        let path = dir.join(format!("{name}.txt"));
        std::fs::write(&path, format!("# test list\n{entry}\n")).expect("list");
        config.lists.push(ListSource {
            name: (*name).to_owned(),
            path,
            format: ListFormat::PlainText(*kind),
            feeds: vec![*feeds],
        });
    }
    let (intel, report) = vigil_detection::load(&config).expect("test intel loads");
    assert!(report.malformed.is_empty(), "{:?}", report.malformed);
    intel
}

struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("vigil-dns-{}", nonce()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The finding an answer should raise, with the listed indicator; `None`: nothing.
type Expected = Option<(FindingType, &'static str)>;

#[test]
fn answers_carrying_a_listed_address_or_a_cname_to_a_listed_name_raise_findings() {
    if !privileged("answers_carrying_a_listed_address_or_a_cname_to_a_listed_name_raise_findings") {
        return;
    }
    let _serial = serial();
    let dir = Scratch::new();
    let lists = [
        (
            "c2-addresses",
            IndicatorKind::Ip,
            "127.66.0.9",
            FindingType::BackdoorCcActivityB,
        ),
        (
            "phishing-names",
            IndicatorKind::Domain,
            "phish-cdn.vigil-test.example",
            FindingType::TrojanPhishingDomainRequestDns,
        ),
    ];
    let cases: &[(&[&str], Expected)] = &[
        // The queried name is not listed; the address the answer carries is.
        (
            &["127.66.0.9"],
            Some((FindingType::BackdoorCcActivityBDns, "127.66.0.9")),
        ),
        // The queried name is an alias of a listed name (the CNAME chain), the address is not.
        (
            &[
                "127.66.0.7",
                "--cname",
                "edge7.phish-cdn.vigil-test.example",
            ],
            Some((
                FindingType::TrojanPhishingDomainRequestDns,
                "edge7.phish-cdn.vigil-test.example",
            )),
        ),
        // Neither: nothing.
        (
            &["127.66.0.7", "--cname", "edge7.cdn.vigil-test.example"],
            None,
        ),
    ];
    for (answer, want) in cases {
        let mut ns = Namespace::new();
        ns.stub("127.0.0.53:53", answer);
        let name = format!("{}.shop.vigil-test.example", nonce());
        let pid = ns.run(TRIGGER, &["dns-query", "127.0.0.53:53", &name]);
        let events = tree_events(pid);
        let answers: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                Event::Dns(d) if d.direction == "answer" => Some(d),
                _ => None,
            })
            .collect();
        assert!(
            answers.iter().any(|d| !d.answers.is_empty()),
            "the answer was seen with its records: {answers:#?}"
        );
        let found = findings(&mut detector(intel(&dir.0, &lists)), &events);
        match want {
            Some((t, indicator)) => {
                assert_eq!(found.len(), 1, "{answer:?}: {found:#?}");
                let f = &found[0];
                assert_eq!(f.finding_type, t.as_str(), "{answer:?}");
                assert_eq!(f.dns.as_ref().map(|d| d.domain.as_str()), Some(&*name));
                assert_eq!(f.context.additional["dnsAnswerListed"], *indicator);
                let evidence = &f
                    .evidence
                    .as_ref()
                    .expect("evidence")
                    .threat_intelligence_details;
                assert_eq!(evidence.len(), 1);
                assert_eq!(evidence[0].indicator, *indicator);
            }
            None => assert!(found.is_empty(), "{answer:?}: {found:#?}"),
        }
    }
}

/// `dnsmasq`, or `None` after saying why the test did not run (a failure under CI, whose
/// machine `scripts/bootstrap.sh` gives it).
fn dnsmasq(test: &str) -> Option<PathBuf> {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let path = Path::new(dir).join("dnsmasq");
        if path.is_file() {
            return Some(std::fs::canonicalize(&path).unwrap_or(path));
        }
    }
    let message = format!("{test}: dnsmasq is not installed (scripts/bootstrap.sh installs it)");
    assert!(std::env::var_os("CI").is_none(), "{message}");
    println!("skipped: {message}");
    None
}

#[test]
fn a_caching_resolver_forwarding_dga_lookups_is_never_flagged_and_the_client_is() {
    let test = "a_caching_resolver_forwarding_dga_lookups_is_never_flagged_and_the_client_is";
    if !privileged(test) {
        return;
    }
    let Some(dnsmasq) = dnsmasq(test) else {
        return;
    };
    let _serial = serial();
    LazyLock::force(&AGENT);
    let mut ns = Namespace::new();
    // Upstream: every name NXDOMAIN (generated names are not registered).
    ns.stub("127.0.0.54:53", &["nxdomain"]);
    // The caching resolver the client's resolv.conf names, forwarding to upstream.
    let mut resolver = Command::new("ip")
        .args(["netns", "exec", &ns.name])
        .arg(&dnsmasq)
        .args([
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--listen-address=127.0.0.53",
            "--server=127.0.0.54",
            "--cache-size=150",
            "--user=root",
            "--pid-file=",
            "--conf-file=/dev/null",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start dnsmasq");
    let resolver_pid = resolver.id();
    // dnsmasq is up once it answers.
    let deadline = Instant::now() + WAIT;
    loop {
        let out = Command::new("ip")
            .args(["netns", "exec", &ns.name, TRIGGER, "dns-query"])
            .args(["127.0.0.53:53", "warmup.vigil-test.example"])
            .output()
            .expect("probe dnsmasq");
        if String::from_utf8_lossy(&out.stdout).starts_with("rcode") {
            break;
        }
        assert!(Instant::now() < deadline, "dnsmasq did not answer");
        std::thread::sleep(Duration::from_millis(200));
    }
    let generated = [
        "xjo4vk9bk1f19hxz.net",
        "qwzx8vj3kq1p7rlt.com",
        "zk3j9vq8xw2m4plr.org",
        "m8mdb0q42hwju54c.info",
        "t9xluygojkwupzyg.biz",
    ];
    let mut args = vec!["hosts"];
    args.extend_from_slice(&generated);
    let client = ns.run("getent", &args);
    let client_events = tree_events(client);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(resolver_pid as i32, libc::SIGTERM) };
    let _ = resolver.wait();
    let resolver_events = tree_events(resolver_pid);
    let forwarded: HashSet<&str> = resolver_events
        .iter()
        .filter_map(|e| match e {
            Event::Dns(d) if d.direction == "query" => d.questions.first().map(|q| q.name.as_str()),
            _ => None,
        })
        .filter(|n| generated.contains(n))
        .collect();
    assert!(
        forwarded.len() >= 3,
        "dnsmasq forwarded the client's names upstream: {forwarded:?}"
    );
    // One detector sees both, in the order the agent received them.
    let pids: HashSet<u32> = client_events
        .iter()
        .chain(&resolver_events)
        .map(|e| e.process().pid)
        .collect();
    let all = AGENT.matching(|e| pids.contains(&e.process().pid));
    let found = findings(&mut detector(ThreatIntel::empty()), &all);
    let dga = of_type(&found, FindingType::TrojanDgaDomainRequestCDns);
    assert_eq!(dga.len(), 1, "{found:#?}");
    let acting = dga[0].process.as_ref().expect("process");
    assert_ne!(acting.pid, resolver_pid, "the resolver was flagged");
    assert!(
        acting.executable_path.ends_with("/getent"),
        "{}",
        acting.executable_path
    );
    assert!(
        found
            .iter()
            .all(|f| f.process.as_ref().is_none_or(|p| p.pid != resolver_pid)),
        "nothing for the resolver: {found:#?}"
    );
}

/// Sockets per CPU the eviction test aims at port 53: twice the whole table, so every CPU's
/// share of it (the map keeps one LRU list per CPU) is pushed out several times over.
fn eviction_flood() -> String {
    let cpus = std::fs::read_to_string("/sys/devices/system/cpu/possible")
        .ok()
        .and_then(|text| {
            let last = text.trim().rsplit(['-', ',']).next()?.parse::<u32>().ok()?;
            Some(last + 1)
        })
        .unwrap_or(1);
    (2 * node_agent_common::maps::per_cpu_lru_entries(cpus)).to_string()
}

#[test]
fn a_query_on_a_socket_pushed_out_of_the_table_by_a_flood_is_still_seen_and_attributed() {
    let test =
        "a_query_on_a_socket_pushed_out_of_the_table_by_a_flood_is_still_seen_and_attributed";
    if !privileged(test) {
        return;
    }
    let _serial = serial();
    let dir = Scratch::new();
    let lists = [(
        "c2-addresses",
        IndicatorKind::Ip,
        "127.66.0.9",
        FindingType::BackdoorCcActivityB,
    )];
    let flood = eviction_flood();
    for transport in ["udp", "tcp"] {
        let mut ns = Namespace::new();
        ns.stub("127.0.0.53:53", &["127.66.0.9"]);
        let name = format!("{}.evict.vigil-test.example", nonce());
        let mut args = vec!["dns-evict", &flood, "127.0.0.53:53", &name];
        if transport == "tcp" {
            args.push("--tcp");
        }
        let pid = ns.run(TRIGGER, &args);
        let events = tree_events(pid);
        let asked = |d: &&node_agent::event::DnsInfo| d.questions.iter().any(|q| q.name == name);
        let query = events
            .iter()
            .filter_map(|e| match e {
                Event::Dns(d) if d.direction == "query" => Some(d),
                _ => None,
            })
            .find(asked)
            .unwrap_or_else(|| panic!("{transport}: the query for {name} was seen: {events:#?}"));
        // The flood did push the socket out: the kernel reported it as untracked, and named the
        // task that sent it.
        assert_eq!(query.untracked, Some("sender"), "{transport}: {query:#?}");
        assert_eq!(query.process.pid, pid, "{transport}");
        assert_eq!(query.protocol, transport);
        // Sending put the socket back in the table: the answer is the process's too.
        assert!(
            events.iter().any(|e| matches!(e, Event::Dns(d)
                if d.direction == "answer" && asked(&d) && !d.answers.is_empty())),
            "{transport}: the answer was attributed to {pid}: {events:#?}"
        );
        let found = findings(&mut detector(intel(&dir.0, &lists)), &events);
        let c2 = of_type(&found, FindingType::BackdoorCcActivityBDns);
        assert_eq!(c2.len(), 1, "{transport}: {found:#?}");
        assert_eq!(c2[0].process.as_ref().map(|p| p.pid), Some(pid));
    }

    // The query went out while the table held the socket; the flood came before the answer,
    // which no task receives in the kernel's view: it is still reported, with the socket's
    // cgroup and no process, and its listed address still raises the finding.
    let ns = Namespace::new();
    let name = format!("{}.late.vigil-test.example", nonce());
    let pid = ns.run(
        TRIGGER,
        &["dns-evict", &flood, "127.0.0.55:53", &name, "--answer-late"],
    );
    let events = tree_events(pid);
    assert!(
        events.iter().any(|e| matches!(e, Event::Dns(d)
            if d.direction == "query" && d.questions.iter().any(|q| q.name == name))),
        "the query was the process's: {events:#?}"
    );
    let deadline = Instant::now() + WAIT;
    let answer = loop {
        let seen = AGENT.matching(|e| {
            matches!(e, Event::Dns(d)
                if d.direction == "answer" && d.questions.iter().any(|q| q.name == name))
        });
        if let Some(Event::Dns(d)) = seen.into_iter().next() {
            break d;
        }
        assert!(
            Instant::now() < deadline,
            "the late answer for {name} was seen"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(answer.untracked, Some("unknown"), "{answer:#?}");
    assert_eq!(answer.process.pid, 0);
    assert_ne!(
        answer.process.cgroup_id, 0,
        "the socket's cgroup: {answer:#?}"
    );
    let found = findings(
        &mut detector(intel(&dir.0, &lists)),
        &[Event::Dns(answer.clone())],
    );
    let c2 = of_type(&found, FindingType::BackdoorCcActivityBDns);
    assert_eq!(c2.len(), 1, "{found:#?}");
    assert!(c2[0].process.is_none(), "{found:#?}");
    assert_eq!(
        c2[0]
            .context
            .additional
            .get("dnsSocket")
            .map(String::as_str),
        Some("untracked: no process known, only its cgroup")
    );
}
