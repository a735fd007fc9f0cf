//! The console in a real browser: headless Chromium driven over WebDriver (chromedriver) from
//! Rust with fantoccini. Opens every page, filters with the filter bar, opens a finding,
//! archives it, creates a suppression rule, checks the DOM after each step, and saves a
//! screenshot of every page under `target/console-screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (scripts/bootstrap.sh installs them). Without
//! them the test fails when `CI` is set and says why it did not run otherwise.
//!
//! Every wait is for a DOM condition, with a generous deadline (a busy two-core machine can take
//! seconds to start Chromium); nothing asserts on how long anything took.

mod console_support;

use std::{
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use console_support::*;
use fantoccini::{Client, ClientBuilder, Locator};
use node_agent::console::HostBackend;
use vigil_console::ConsoleOptions;

/// Longest wait for any one condition.
const DEADLINE: Duration = Duration::from_secs(120);

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/bin")]) {
        for name in names {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// chromedriver, killed when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn screenshots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir).expect("create the screenshots directory");
    dir
}

async fn shot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
    std::fs::write(screenshots_dir().join(format!("{name}.png")), png).expect("save a screenshot");
}

async fn wait_css(client: &Client, css: &str) -> fantoccini::elements::Element {
    client
        .wait()
        .at_most(DEADLINE)
        .every(Duration::from_millis(100))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no element {css} in the page: {e}"))
}

/// The findings table's row ids once they equal `want` (the page may still be loading).
async fn wait_rows(client: &Client, want: &[&str]) {
    let until = Instant::now() + DEADLINE;
    loop {
        let mut ids = Vec::new();
        if let Ok(rows) = client
            .find_all(Locator::Css("#findings-table tbody tr"))
            .await
        {
            for r in rows {
                if let Ok(Some(id)) = r.attr("data-id").await {
                    ids.push(id);
                }
            }
        }
        if ids == want {
            return;
        }
        if Instant::now() > until {
            let url = client.current_url().await.map(|u| u.to_string());
            panic!("rows {ids:?}, want {want:?} (at {url:?})");
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

async fn wait_text(client: &Client, css: &str, want: &str) {
    let until = Instant::now() + DEADLINE;
    loop {
        let text = match client.find(Locator::Css(css)).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if text.contains(want) {
            return;
        }
        if Instant::now() > until {
            panic!("{css} says {text:?}, want {want:?}");
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_headless_chromium() {
    let chromium = find_program(&["chromium", "chromium-browser"]);
    let driver = find_program(&["chromedriver"]);
    let (Some(chromium), Some(driver_path)) = (chromium, driver) else {
        let why = "the browser test needs Debian's chromium and chromium-driver \
                   (apt-get install chromium chromium-driver, or scripts/bootstrap.sh as root)";
        if std::env::var_os("CI").is_some() {
            panic!("{why}: not found, and CI is set");
        }
        eprintln!("console_browser: NOT RUN: {why}; neither is on PATH here");
        return;
    };

    // The console over a filled store, on a loopback port.
    let scratch = temp_dir("browser");
    let dir = scratch.path();
    let store = filled_store(dir, 60);
    let rules = dir.join("suppression-rules.yaml");
    let backend =
        HostBackend::new(store, Some(rules.clone()), None).with_proc_root(fake_proc(dir, true));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback listener");
    let addr = listener.local_addr().expect("its address");
    let router = vigil_console::router(Arc::new(backend), ConsoleOptions::for_listen_address(addr))
        .expect("the router");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(vigil_console::serve(listener, router, async {
        let _ = stopped.await;
    }));
    let base = format!("http://{addr}");

    // chromedriver on another loopback port.
    let port = free_port();
    let _driver = Driver(
        Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: cannot start: {e}", driver_path.display())),
    );
    let until = Instant::now() + DEADLINE;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < until,
            "chromedriver did not listen on port {port}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1360,1000"],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a WebDriver session with headless Chromium");

    // Summary: counts and the chart; the script ran under the CSP (it marks the document).
    client.goto(&format!("{base}/")).await.expect("open /");
    wait_text(&client, "#count-critical", "1").await;
    wait_text(&client, "#count-high", "1").await;
    wait_css(&client, "svg.chart rect.sev-critical").await;
    wait_css(&client, "html[data-enhanced='true']").await;
    shot(&client, "summary").await;

    // Findings: the filter bar adds a chip, the URL carries it, the table narrows.
    client
        .goto(&format!("{base}/findings"))
        .await
        .expect("open /findings");
    wait_text(&client, "#result-count", "of 64").await;
    shot(&client, "findings").await;
    let key = wait_css(&client, "#filter-key").await;
    key.select_by_value("severity")
        .await
        .expect("choose severity");
    let value = wait_css(&client, "#filter-value").await;
    value.send_keys("high").await.expect("type a value");
    wait_css(&client, "#filter-form button[type=submit]")
        .await
        .click()
        .await
        .expect("add the filter");
    wait_rows(&client, &["c2aaaa01"]).await;
    let url = client.current_url().await.expect("the URL");
    assert_eq!(
        url.query(),
        Some("severity=high"),
        "the filter lives in the URL"
    );
    wait_text(&client, "#chips li[data-key=severity]", "high").await;
    // A second chip: MITRE technique, across both states.
    let key = wait_css(&client, "#filter-key").await;
    key.select_by_value("status").await.expect("choose status");
    wait_css(&client, "#filter-value")
        .await
        .send_keys("all")
        .await
        .expect("type");
    wait_css(&client, "#filter-form button[type=submit]")
        .await
        .click()
        .await
        .expect("add");
    wait_text(&client, "#chips li[data-key=status]", "all").await;
    wait_rows(&client, &["c2aaaa01"]).await;
    shot(&client, "findings-filtered").await;
    // Removing the severity chip widens the view again.
    wait_css(&client, "#chips li[data-key=severity] a.remove")
        .await
        .click()
        .await
        .expect("remove a chip");
    wait_text(&client, "#result-count", "of 65").await;
    // Sorting by severity puts the critical one first.
    client
        .goto(&format!("{base}/findings"))
        .await
        .expect("open /findings");
    wait_css(&client, "#findings-table thead th:nth-child(1) a")
        .await
        .click()
        .await
        .expect("sort by severity");
    let until = Instant::now() + DEADLINE;
    loop {
        let first = client
            .find(Locator::Css("#findings-table tbody tr"))
            .await
            .ok();
        let id = match first {
            Some(r) => r.attr("data-id").await.ok().flatten(),
            None => None,
        };
        if id.as_deref() == Some("shell004") {
            break;
        }
        assert!(Instant::now() < until, "first row {id:?} after sorting");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }

    // Open a finding from the table.
    client
        .goto(&format!("{base}/findings?process=nc"))
        .await
        .expect("open the filtered list");
    wait_rows(&client, &["c2aaaa01"]).await;
    wait_css(&client, "tr[data-id=c2aaaa01] a.open")
        .await
        .click()
        .await
        .expect("open the finding");
    wait_text(&client, "#lineage", "sshd").await;
    wait_text(&client, "#lineage li.acting", "nc").await;
    wait_text(&client, "#evidence", "c2-ips").await;
    wait_text(&client, "#state", "Active").await;
    shot(&client, "finding").await;

    // Archive it.
    wait_css(&client, "#archive-button")
        .await
        .click()
        .await
        .expect("archive");
    wait_text(&client, "#state", "Archived").await;
    wait_text(&client, "#archive-button", "Unarchive").await;
    shot(&client, "finding-archived").await;

    // Suppress findings like this: the preview counts, the rule lands in the file.
    client
        .goto(&format!("{base}/findings/tool0003"))
        .await
        .expect("open another finding");
    wait_css(&client, "#suppress-link")
        .await
        .click()
        .await
        .expect("open the suppression form");
    wait_text(&client, "#preview-count", "1").await;
    shot(&client, "suppress").await;
    let name = wait_css(&client, "#rule-name").await;
    name.clear().await.expect("clear the name");
    name.send_keys("nmap-inventory")
        .await
        .expect("name the rule");
    wait_css(&client, "#create-rule")
        .await
        .click()
        .await
        .expect("create the rule");
    wait_text(&client, "#created", "nmap-inventory").await;
    wait_text(&client, "#rule-nmap-inventory", "nmap-inventory").await;
    shot(&client, "settings").await;
    let text = std::fs::read_to_string(&rules).expect("the rules file");
    assert!(text.contains("name: nmap-inventory"), "{text}");
    client
        .goto(&format!("{base}/findings/tool0003"))
        .await
        .expect("open the suppressed finding");
    wait_text(&client, "#state", "nmap-inventory").await;

    // Coverage and usage.
    client
        .goto(&format!("{base}/coverage"))
        .await
        .expect("open /coverage");
    wait_text(&client, "#coverage-table", "Healthy").await;
    shot(&client, "coverage").await;
    client
        .goto(&format!("{base}/usage"))
        .await
        .expect("open /usage");
    wait_css(&client, "#usage-table tbody tr").await;
    shot(&client, "usage").await;

    // A bad filter in the URL: an error page that names it.
    client
        .goto(&format!("{base}/findings?colour=red"))
        .await
        .expect("open a bad URL");
    wait_text(&client, "#error", "unknown filter `colour`").await;

    client.close().await.expect("end the WebDriver session");
    let _ = stop.send(());
    let _ = server.await;
    eprintln!(
        "console_browser: screenshots in {}",
        screenshots_dir().display()
    );
}
