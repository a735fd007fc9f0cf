//! The console over the host backend, at the HTTP level: every page, every filter of the filter
//! bar, sorting and paging, archive and unarchive, "suppress findings like this" (preview, the
//! rules file, the findings it archives), the security headers, the CSRF and Host checks, and
//! the errors bad input gets. The store is a real SQLite store filled through its own API.

mod console_support;

use std::sync::Arc;

use axum::{
    Router,
    body::Body,
    http::{HeaderMap, Request, StatusCode, header},
};
use console_support::*;
use http_body_util::BodyExt;
use node_agent::console::HostBackend;
use tower::ServiceExt;
use vigil_console::{CSP, ConsoleOptions};

const HOST: &str = "127.0.0.1:8765";

struct Console {
    router: Router,
    rules: std::path::PathBuf,
    /// The store and the rules live here; removed with the console.
    _dir: tempfile::TempDir,
}

fn console(name: &str, extra: usize, agent: bool) -> Console {
    let scratch = temp_dir(name);
    let dir = scratch.path();
    let store = filled_store(dir, extra);
    let rules = dir.join("suppression-rules.yaml");
    let backend =
        HostBackend::new(store, Some(rules.clone()), None).with_proc_root(fake_proc(dir, agent));
    let options = ConsoleOptions::for_listen_address(HOST.parse().expect("an address"));
    let router = vigil_console::router(Arc::new(backend), options).expect("the router");
    Console {
        router,
        rules,
        _dir: scratch,
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

async fn send(router: &Router, request: Request<Body>) -> Answer {
    let response = router
        .clone()
        .oneshot(request)
        .await
        .expect("the router answers");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

async fn get(router: &Router, path: &str) -> Answer {
    send(
        router,
        Request::get(path)
            .header(header::HOST, HOST)
            .body(Body::empty())
            .expect("a request"),
    )
    .await
}

async fn post(router: &Router, path: &str, form: &[(&str, &str)]) -> Answer {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    send(
        router,
        Request::post(path)
            .header(header::HOST, HOST)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .expect("a request"),
    )
    .await
}

/// The ids of the findings table's rows, in order.
fn row_ids(html: &str) -> Vec<String> {
    html.split("<tr data-id=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_owned)
        .collect()
}

fn csrf(html: &str) -> String {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a CSRF token in the page")
        .to_owned()
}

fn location(a: &Answer) -> &str {
    a.headers
        .get(header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn every_page_answers_with_the_security_headers_and_no_inline_script() {
    let c = console("pages", 0, true);
    for (path, marker) in [
        ("/", "Findings by severity over time"),
        ("/findings", "findings-table"),
        ("/findings/c2aaaa01", "Process lineage"),
        ("/findings/c2aaaa01/suppress", "preview-count"),
        ("/coverage", "coverage-table"),
        ("/usage", "usage-table"),
        ("/settings", "rules-table"),
    ] {
        let a = get(&c.router, path).await;
        assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.body);
        assert!(a.body.contains(marker), "{path} lacks {marker}");
        assert_eq!(
            a.headers
                .get(header::CONTENT_SECURITY_POLICY)
                .and_then(|v| v.to_str().ok()),
            Some(CSP),
            "{path}"
        );
        assert!(CSP.contains("script-src 'self'") && !CSP.contains("unsafe-inline"));
        // Every script is a file of this origin; no inline script, no inline handler.
        for tag in a.body.split("<script").skip(1) {
            assert!(
                tag.trim_start().starts_with("src=\"/assets/"),
                "{path}: {tag}"
            );
        }
        assert!(!a.body.contains(" onclick="), "{path}");
        assert!(a.body.contains("<html lang=\"en\">"), "{path}");
        assert!(a.body.contains("Skip to content"), "{path}");
        assert!(a.body.contains("host: "), "{path}");
    }
    let css = get(&c.router, "/assets/console.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.body.contains("prefers-color-scheme: dark"));
    let js = get(&c.router, "/assets/console.js").await;
    assert!(
        js.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
}

#[tokio::test]
async fn each_filter_of_the_filter_bar_selects_only_the_matching_findings() {
    let c = console("filters", 30, false);
    let ids = |a: &Answer| {
        let mut v = row_ids(&a.body);
        v.retain(|id| !id.starts_with("fill"));
        v
    };
    // Default view: active findings, most recently seen first.
    let all = get(&c.router, "/findings").await;
    assert_eq!(
        row_ids(&all.body)[..4],
        ["shell004", "tool0003", "dns00002", "c2aaaa01"]
    );
    assert!(all.body.contains("Findings 1–34 of 34"), "{}", all.body);
    for (query, want) in [
        ("severity=high", vec!["c2aaaa01"]),
        ("severity=critical,high", vec!["shell004", "c2aaaa01"]),
        ("severity=medium", vec!["tool0003", "dns00002"]),
        (
            "type=Execution%3ARuntime%2FSuspiciousTool",
            vec!["tool0003"],
        ),
        (
            "type=Execution%3ARuntime%2FSuspiciousTool&status=all",
            vec!["tool0003", "old00005"],
        ),
        ("status=archived", vec!["old00005"]),
        ("resource=shop", vec!["dns00002"]),
        ("resource=registry.example%2Fweb%3A1", vec!["dns00002"]),
        ("resource=web", vec!["dns00002"]),
        ("process=nc", vec!["c2aaaa01"]),
        ("exe=%2Fusr%2Fbin%2Fnmap", vec!["tool0003"]),
        (
            &format!("sha256={}", SHA_NC.to_uppercase()),
            vec!["c2aaaa01"],
        ),
        ("remote=203.0.113.7", vec!["c2aaaa01"]),
        ("remote=pool.example.com", vec!["dns00002"]),
        ("mitre=T1046", vec!["tool0003"]),
        ("mitre=t1059.004", vec!["shell004"]),
        ("mitre=T1071", vec!["shell004"]),
        ("mitre=T1059", vec![]),
        (
            "since=2026-11-27T10%3A30%3A00Z&until=2026-11-27T12%3A30%3A00Z",
            vec!["tool0003", "dns00002"],
        ),
        ("process=nmap&status=all&severity=low", vec!["old00005"]),
    ] {
        let a = get(&c.router, &format!("/findings?{query}")).await;
        assert_eq!(a.status, StatusCode::OK, "{query}: {}", a.body);
        assert_eq!(ids(&a), want, "{query}");
        if want.is_empty() {
            assert!(a.body.contains("No findings match."), "{query}");
        } else {
            assert!(
                a.body.contains(&format!("of {}", want.len())),
                "{query}: the count says how many match"
            );
        }
    }
    // The filler findings are Low and reachable by their type.
    let filler = get(&c.router, "/findings?type=Discovery%3ARuntime%2FFiller").await;
    assert_eq!(row_ids(&filler.body).len(), 30);
}

#[tokio::test]
async fn the_filter_bar_form_redirects_to_a_shareable_url_with_chips() {
    let c = console("bar", 0, false);
    let a = get(&c.router, "/findings?severity=high&add=process&value=nc").await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&a), "/findings?severity=high&process=nc");
    let page = get(&c.router, location(&a)).await;
    assert_eq!(row_ids(&page.body), ["c2aaaa01"]);
    // A chip per criterion, each with a link that removes it.
    assert!(page.body.contains("data-key=\"severity\""));
    assert!(page.body.contains("data-key=\"process\""));
    assert!(page.body.contains("href=\"/findings?process=nc\""));
    assert!(page.body.contains("href=\"/findings?severity=high\""));
    // The form carries the current criteria so the next chip adds to them.
    assert!(
        page.body
            .contains("type=\"hidden\" name=\"severity\" value=\"high\"")
    );
}

#[tokio::test]
async fn columns_sort_both_ways_and_pages_hold_the_rest() {
    let c = console("sort", 120, false);
    let by_severity = get(&c.router, "/findings?sort=severity&order=desc").await;
    assert_eq!(row_ids(&by_severity.body)[..2], ["shell004", "c2aaaa01"]);
    let ascending = get(&c.router, "/findings?sort=severity&order=asc").await;
    let asc = row_ids(&ascending.body);
    assert!(asc[0].starts_with("fill"), "{asc:?}");
    let by_count = get(&c.router, "/findings?sort=count").await;
    assert_eq!(row_ids(&by_count.body)[0], "tool0003");
    assert!(by_count.body.contains("aria-sort=\"descending\""));
    let by_type = get(&c.router, "/findings?sort=type&order=asc").await;
    assert_eq!(
        row_ids(&by_type.body)[0],
        "c2aaaa01",
        "Backdoor sorts first"
    );

    // 124 active findings, 50 a page: pages 1 and 2 full, page 3 the last 24, no overlap.
    let mut seen = std::collections::BTreeSet::new();
    for page in 1..=3 {
        let a = get(&c.router, &format!("/findings?page={page}")).await;
        let ids = row_ids(&a.body);
        assert_eq!(ids.len(), if page < 3 { 50 } else { 24 }, "page {page}");
        for id in ids {
            assert!(seen.insert(id.clone()), "{id} on two pages");
        }
        assert!(a.body.contains(&format!("Page {page} of 3")));
    }
    assert_eq!(seen.len(), 124);
    let page2 = get(&c.router, "/findings?page=2").await;
    assert!(page2.body.contains("href=\"/findings?page=3\""));
    assert!(
        page2.body.contains("href=\"/findings\""),
        "previous page link"
    );
    let small = get(&c.router, "/findings?size=10&page=2").await;
    assert_eq!(row_ids(&small.body).len(), 10);
}

#[tokio::test]
async fn bad_input_gets_an_error_page_that_names_it() {
    let c = console("errors", 0, false);
    for (path, status, says) in [
        (
            "/findings?colour=red",
            StatusCode::BAD_REQUEST,
            "unknown filter `colour`",
        ),
        (
            "/findings?severity=urgent",
            StatusCode::BAD_REQUEST,
            "want low, medium, high or critical",
        ),
        (
            "/findings?type=a&type=b",
            StatusCode::BAD_REQUEST,
            "`type` is given more than once",
        ),
        (
            "/findings?sort=colour",
            StatusCode::BAD_REQUEST,
            "filter `sort`",
        ),
        ("/findings?page=-1", StatusCode::BAD_REQUEST, "page number"),
        (
            "/findings?since=yesterday",
            StatusCode::BAD_REQUEST,
            "RFC 3339",
        ),
        (
            "/findings/nosuchfinding",
            StatusCode::NOT_FOUND,
            "no finding with id &quot;nosuchfinding&quot;",
        ),
        (
            "/findings/%3Cscript%3E",
            StatusCode::NOT_FOUND,
            "no finding with id &quot;&lt;script&gt;&quot;",
        ),
        ("/nowhere", StatusCode::NOT_FOUND, "no page at /nowhere"),
        (
            "/coverage?status=sick",
            StatusCode::BAD_REQUEST,
            "want unhealthy or all",
        ),
        ("/usage?price=lots", StatusCode::BAD_REQUEST, "`price`"),
        (
            "/findings/c2aaaa01/suppress?crit=context.secret",
            StatusCode::OK,
            "criterion `context.secret` is not one this finding offers",
        ),
        (
            "/findings/c2aaaa01/suppress?crit=type&name=Bad_Name",
            StatusCode::OK,
            "rule name &quot;Bad_Name&quot;",
        ),
        (
            "/findings/c2aaaa01/suppress?name=x",
            StatusCode::OK,
            "tick at least one criterion",
        ),
    ] {
        let a = get(&c.router, path).await;
        assert_eq!(a.status, status, "{path}: {}", a.body);
        assert!(
            a.body.contains(says),
            "{path} should say {says:?}: {}",
            a.body
        );
        assert!(!a.body.contains("<script>"), "{path} echoes markup");
    }
    // A form without the archived field.
    let page = get(&c.router, "/findings/c2aaaa01").await;
    let token = csrf(&page.body);
    let a = post(&c.router, "/findings/c2aaaa01/archive", &[("csrf", &token)]).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body.contains("field `archived` must be true or false"));
    let a = post(
        &c.router,
        "/findings/nosuch/archive",
        &[("csrf", &token), ("archived", "true")],
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn archive_and_unarchive_need_the_csrf_token_and_move_the_finding_between_views() {
    let c = console("archive", 0, false);
    let detail = get(&c.router, "/findings/c2aaaa01").await;
    assert!(detail.body.contains("id=\"state\">Active"));
    let token = csrf(&detail.body);

    let forged = post(
        &c.router,
        "/findings/c2aaaa01/archive",
        &[("csrf", "0000"), ("archived", "true")],
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.body.contains("CSRF token"));
    let missing = post(
        &c.router,
        "/findings/c2aaaa01/archive",
        &[("archived", "true")],
    )
    .await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    let cross_site = send(
        &c.router,
        Request::post("/findings/c2aaaa01/archive")
            .header(header::HOST, HOST)
            .header(header::ORIGIN, "http://evil.example")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("csrf={token}&archived=true")))
            .expect("a request"),
    )
    .await;
    assert_eq!(cross_site.status, StatusCode::FORBIDDEN);
    assert!(cross_site.body.contains("evil.example"));
    assert!(
        get(&c.router, "/findings/c2aaaa01")
            .await
            .body
            .contains("id=\"state\">Active")
    );

    let done = post(
        &c.router,
        "/findings/c2aaaa01/archive",
        &[("csrf", &token), ("archived", "true")],
    )
    .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(location(&done), "/findings/c2aaaa01");
    let after = get(&c.router, "/findings/c2aaaa01").await;
    assert!(
        after.body.contains("id=\"state\">Archived"),
        "{}",
        after.body
    );
    assert!(after.body.contains(">Unarchive<"));
    assert!(!row_ids(&get(&c.router, "/findings").await.body).contains(&"c2aaaa01".to_owned()));
    assert_eq!(
        row_ids(&get(&c.router, "/findings?status=archived").await.body),
        ["c2aaaa01", "old00005"]
    );

    let back = post(
        &c.router,
        "/findings/c2aaaa01/archive",
        &[("csrf", &token), ("archived", "false")],
    )
    .await;
    assert_eq!(back.status, StatusCode::SEE_OTHER);
    assert!(
        get(&c.router, "/findings")
            .await
            .body
            .contains("data-id=\"c2aaaa01\"")
    );
}

#[tokio::test]
async fn suppress_findings_like_this_previews_appends_to_the_rules_file_and_archives() {
    let c = console("suppress", 0, false);
    // Prefilled from the finding: type and executable ticked; nmap findings: tool0003 active,
    // old00005 already archived.
    let form = get(&c.router, "/findings/tool0003/suppress").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(
        form.body
            .contains("value=\"type\" id=\"crit-type\" checked"),
        "{}",
        form.body
    );
    assert!(
        form.body.contains(
            "value=\"process.executablePath\" id=\"crit-process-executablePath\" checked"
        )
    );
    assert!(
        form.body.contains("id=\"preview-count\">1<"),
        "{}",
        form.body
    );
    assert!(form.body.contains("kind: SuppressionRule"));
    assert!(form.body.contains("/usr/bin/nmap"));
    // Only the type: the same one finding (the other is archived already).
    let by_type = get(&c.router, "/findings/tool0003/suppress?crit=type&name=t").await;
    assert!(by_type.body.contains("id=\"preview-count\">1<"));
    // Process name nmap without the type matches the same.
    let wider = get(
        &c.router,
        "/findings/c2aaaa01/suppress?crit=resource.host.hostname&name=all-host-a",
    )
    .await;
    assert!(
        wider.body.contains("id=\"preview-count\">4<"),
        "{}",
        wider.body
    );

    let token = csrf(&form.body);
    let created = post(
        &c.router,
        "/findings/tool0003/suppress",
        &[
            ("csrf", &token),
            ("crit", "type"),
            ("crit", "process.executablePath"),
            ("name", "nmap-scans"),
            ("description", "The weekly inventory scan"),
        ],
    )
    .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    assert!(location(&created).starts_with("/settings?created=nmap-scans&archived=1"));

    let text = std::fs::read_to_string(&c.rules).expect("the rules file");
    let rules = vigil_crds::suppression_rule::parse_rules_file("rules", &text).expect("it parses");
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].name(), "nmap-scans");
    assert!(text.contains("/usr/bin/nmap") && text.contains("The weekly inventory scan"));

    let detail = get(&c.router, "/findings/tool0003").await;
    assert!(
        detail
            .body
            .contains("by suppression rule <strong>nmap-scans</strong>"),
        "{}",
        detail.body
    );
    let settings = get(&c.router, "/settings?created=nmap-scans").await;
    assert!(settings.body.contains("id=\"created\""));
    assert!(settings.body.contains("id=\"rule-nmap-scans\""));
    // Matches now: tool0003 (and old00005 is another executable path? no: same nmap path).
    let row = settings
        .body
        .split("id=\"rule-nmap-scans\"")
        .nth(1)
        .unwrap_or("");
    assert!(row.contains("class=\"num matched\">2<"), "{row}");

    // The same name again is refused, naming the file; the file is unchanged.
    let again = post(
        &c.router,
        "/findings/c2aaaa01/suppress",
        &[("csrf", &token), ("crit", "type"), ("name", "nmap-scans")],
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(
        again
            .body
            .contains("a rule named nmap-scans exists already")
    );
    assert_eq!(
        std::fs::read_to_string(&c.rules).expect("the rules file"),
        text
    );
    // A second rule appends.
    let second = post(
        &c.router,
        "/findings/c2aaaa01/suppress",
        &[
            ("csrf", &token),
            ("crit", "network.remoteIp"),
            ("name", "lab-c2"),
        ],
    )
    .await;
    assert_eq!(second.status, StatusCode::SEE_OTHER, "{}", second.body);
    let text = std::fs::read_to_string(&c.rules).expect("the rules file");
    assert_eq!(
        vigil_crds::suppression_rule::parse_rules_file("rules", &text)
            .expect("it parses")
            .len(),
        2
    );
}

#[tokio::test]
async fn summary_coverage_usage_and_settings_show_this_host() {
    let c = console("overview", 0, true);
    let summary = get(&c.router, "/").await;
    assert!(
        summary.body.contains("id=\"count-critical\">1<"),
        "{}",
        summary.body
    );
    assert!(summary.body.contains("id=\"count-high\">1<"));
    assert!(summary.body.contains("id=\"count-medium\">2<"));
    assert!(summary.body.contains("id=\"count-low\">0<"));
    assert!(summary.body.contains("id=\"count-archived\">1<"));
    assert!(summary.body.contains("<svg class=\"chart\""));
    assert!(
        summary
            .body
            .contains("href=\"/findings?type=Execution%3ARuntime%2FSuspiciousTool\"")
    );
    assert!(summary.body.contains("id=\"coverage-glance\">1 / 1<"));

    let coverage = get(&c.router, "/coverage").await;
    assert!(
        coverage.body.contains("status ok\">Healthy"),
        "{}",
        coverage.body
    );
    assert!(coverage.body.contains(env!("CARGO_PKG_VERSION")));
    let unhealthy_only = get(&c.router, "/coverage?status=unhealthy").await;
    assert!(!unhealthy_only.body.contains("status ok\">Healthy"));

    let no_agent = console("overview-down", 0, false);
    let down = get(&no_agent.router, "/coverage?status=unhealthy").await;
    assert!(down.body.contains("Unhealthy"), "{}", down.body);
    assert!(
        down.body
            .contains("no `node-agent run` process is running on this host")
    );

    let usage = get(&c.router, "/usage?price=0.5").await;
    assert!(usage.body.contains("vCPU-hours this month"));
    assert!(
        usage
            .body
            .contains("the running agent has been up this month")
    );
    let hours: f64 = usage
        .body
        .split("id=\"usage-total\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .and_then(|s| s.parse().ok())
        .expect("a total");
    assert!(hours > 0.0, "the fake agent has run since 2025-12-01");
    let cost: f64 = usage
        .body
        .split("id=\"usage-cost\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .and_then(|s| s.parse().ok())
        .expect("a cost");
    assert!((cost - hours * 0.5).abs() < 0.1, "{cost} vs {hours}");

    let settings = get(&c.router, "/settings").await;
    assert!(settings.body.contains("c2-ips"), "built-in threat lists");
    assert!(settings.body.contains("suppression-rules.yaml"));
    assert!(settings.body.contains("Findings stored"));
}

#[tokio::test]
async fn settings_show_configured_lists_and_rules_with_their_match_counts() {
    let scratch = temp_dir("settings");
    let dir = scratch.path();
    let store = filled_store(dir, 0);
    let rules = dir.join("rules.yaml");
    std::fs::write(
        &rules,
        "apiVersion: vigil.dev/v1alpha1\nkind: SuppressionRule\nmetadata: {name: quiet-nmap}\nspec:\n  description: scans\n  criteria:\n    criterion:\n      process.name: {equals: [nmap]}\n",
    )
    .expect("rules");
    let trusted = dir.join("trusted.txt");
    std::fs::write(&trusted, "# office\n198.51.100.0/24\n198.51.100.9\n\n").expect("list");
    let intel = dir.join("intel.yaml");
    std::fs::write(
        &intel,
        format!(
            "builtin: false\ntrusted_ips:\n  - name: office\n    path: {}\n  - name: gone\n    path: {}\n",
            trusted.display(),
            dir.join("missing.txt").display()
        ),
    )
    .expect("intel");
    let backend = HostBackend::new(store, Some(rules), Some(intel));
    let router = vigil_console::router(
        Arc::new(backend),
        ConsoleOptions::for_listen_address(HOST.parse().expect("an address")),
    )
    .expect("router");
    let a = get(&router, "/settings").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let trusted_table = a.body.split("id=\"trusted-lists\"").nth(1).unwrap_or("");
    assert!(trusted_table.contains("office"));
    assert!(
        trusted_table.contains("class=\"num\">2<"),
        "two entries: {trusted_table}"
    );
    assert!(
        trusted_table.contains("No such file"),
        "the missing list's error"
    );
    let row = a.body.split("id=\"rule-quiet-nmap\"").nth(1).unwrap_or("");
    assert!(row.contains("class=\"num matched\">2<"), "{row}");
    assert!(!a.body.contains("c2-ips"), "builtin: false");
    assert!(
        a.body.contains("threat intel does not load"),
        "the missing list is a load error too"
    );
}

#[tokio::test]
async fn the_remote_address_goes_into_a_trusted_list_file_after_a_preview() {
    let scratch = temp_dir("trust");
    let dir = scratch.path();
    let store = filled_store(dir, 0);
    let office = dir.join("office.txt");
    std::fs::write(&office, "# office\n198.51.100.0/24").expect("list");
    let fresh = dir.join("fresh.txt");
    let intel = dir.join("intel.yaml");
    std::fs::write(
        &intel,
        format!(
            "builtin: false\ntrusted_ips:\n  - name: office\n    path: {}\n  - name: fresh\n    path: {}\n",
            office.display(),
            fresh.display()
        ),
    )
    .expect("intel");
    let backend = HostBackend::new(store, None, Some(intel.clone()));
    let router = vigil_console::router(
        Arc::new(backend),
        ConsoleOptions::for_listen_address(HOST.parse().expect("an address")),
    )
    .expect("router");
    // The finding page offers it for a finding with a connection.
    let page = get(&router, "/findings/c2aaaa01").await;
    assert!(
        page.body.contains("/findings/c2aaaa01/trust"),
        "{}",
        page.body
    );
    // The preview: the finding's remote address, each list, what adding would do.
    let a = get(&router, "/findings/c2aaaa01/trust").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(a.body.contains("value=\"203.0.113.7\""), "{}", a.body);
    assert!(a.body.contains("office.txt (1 entry)"), "{}", a.body);
    assert!(a.body.contains("fresh.txt") && a.body.contains("created by adding"));
    assert!(
        a.body
            .contains("Adds the line <code id=\"trust-line\">203.0.113.7</code>"),
        "{}",
        a.body
    );
    let token = csrf(&a.body);
    // A block wider than a /24 needs confirmation; one that misses the address is refused;
    // neither changes the file.
    let a = get(
        &router,
        "/findings/c2aaaa01/trust?net=203.0.0.0%2F16&list=office",
    )
    .await;
    assert!(a.body.contains("wider than a /24"), "{}", a.body);
    for (net, why) in [
        ("203.0.0.0/16", "wider than a /24"),
        ("198.51.100.7", "does not contain"),
        ("203.0.113.7/24", "bits set past the prefix"),
        ("evil.example", "not an IP address"),
    ] {
        let a = post(
            &router,
            "/findings/c2aaaa01/trust",
            &[("csrf", &token), ("list", "office"), ("net", net)],
        )
        .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{net}: {}", a.body);
        assert!(a.body.contains(why), "{net}: {}", a.body);
    }
    // Without the CSRF token: refused.
    let a = post(
        &router,
        "/findings/c2aaaa01/trust",
        &[("list", "office"), ("net", "203.0.113.7")],
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(
        std::fs::read_to_string(&office).expect("list"),
        "# office\n198.51.100.0/24"
    );
    // Added: the file keeps what it had, gains a comment and the address.
    let a = post(
        &router,
        "/findings/c2aaaa01/trust",
        &[("csrf", &token), ("list", "office"), ("net", "203.0.113.7")],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert!(location(&a).starts_with("/settings?trusted=203.0.113.7&list=office"));
    let text = std::fs::read_to_string(&office).expect("list");
    assert!(
        text.starts_with("# office\n198.51.100.0/24\n# Added by the Vigil console on "),
        "{text}"
    );
    assert!(
        text.ends_with("from finding c2aaaa01 (Backdoor:Runtime/C&CActivity.B)\n203.0.113.7\n"),
        "{text}"
    );
    let settings = get(&router, location(&a)).await;
    assert!(
        settings.body.contains("id=\"trusted\""),
        "{}",
        settings.body
    );
    // Again: already listed, nothing appended.
    let a = get(&router, "/findings/c2aaaa01/trust?list=office").await;
    assert!(
        a.body.contains("already; adding changes nothing"),
        "{}",
        a.body
    );
    let a = post(
        &router,
        "/findings/c2aaaa01/trust",
        &[("csrf", &token), ("list", "office"), ("net", "203.0.113.7")],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(std::fs::read_to_string(&office).expect("list"), text);
    // A block, confirmed, into a list file that does not exist yet.
    let a = post(
        &router,
        "/findings/c2aaaa01/trust",
        &[
            ("csrf", &token),
            ("list", "fresh"),
            ("net", "203.0.0.0/16"),
            ("wide", "yes"),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert!(
        std::fs::read_to_string(&fresh)
            .expect("created")
            .ends_with("\n203.0.0.0/16\n")
    );
    // The detection loader reads both lists back, the address trusted.
    let config = node_agent::detect::host::load_intel_config(&intel).expect("intel config");
    let (intel, _) = vigil_detection::loader::load(&config).expect("the lists load");
    assert!(intel.is_trusted_ip("203.0.113.7".parse().expect("an address")));
    // An unknown list is named.
    let a = post(
        &router,
        "/findings/c2aaaa01/trust",
        &[("csrf", &token), ("list", "nope"), ("net", "203.0.113.7")],
    )
    .await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert!(a.body.contains("no trusted list named"), "{}", a.body);
}

#[tokio::test]
async fn a_foreign_host_name_is_refused_and_a_public_listener_is_read_only() {
    let c = console("hosts", 0, false);
    let rebinding = send(
        &c.router,
        Request::get("/findings")
            .header(header::HOST, "attacker.example:8765")
            .body(Body::empty())
            .expect("a request"),
    )
    .await;
    assert_eq!(rebinding.status, StatusCode::MISDIRECTED_REQUEST);
    assert!(rebinding.body.contains("attacker.example"));
    assert!(
        rebinding
            .headers
            .contains_key(header::CONTENT_SECURITY_POLICY)
    );
    let localhost = send(
        &c.router,
        Request::get("/findings")
            .header(header::HOST, "localhost:8765")
            .body(Body::empty())
            .expect("a request"),
    )
    .await;
    assert_eq!(localhost.status, StatusCode::OK);

    let scratch = temp_dir("public");
    let dir = scratch.path();
    let backend = HostBackend::new(filled_store(dir, 0), None, None);
    let router = vigil_console::router(
        Arc::new(backend),
        ConsoleOptions::for_listen_address("0.0.0.0:8765".parse().expect("an address")),
    )
    .expect("router");
    let page = get(&router, "/findings/c2aaaa01").await;
    assert!(
        page.body
            .contains("Read-only: the console listens on 0.0.0.0:8765")
    );
    assert!(!page.body.contains("archive-button"));
    let token = "0".repeat(64);
    let refused = post(
        &router,
        "/findings/c2aaaa01/archive",
        &[("csrf", &token), ("archived", "true")],
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.contains("read-only"));
    // Without a rules file the suppression form still previews but cannot create.
    let form = get(&router, "/findings/c2aaaa01/suppress").await;
    assert!(form.body.contains("preview-count"));
    assert!(!form.body.contains("create-rule"));
}

#[test]
fn the_console_subcommand_refuses_a_missing_database() {
    let scratch = temp_dir("cli");
    let dir = scratch.path();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_node-agent"))
        .args(["console", "--db"])
        .arg(dir.join("none.db"))
        .output()
        .expect("node-agent runs");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no findings database"),
        "{out:?}"
    );
}
