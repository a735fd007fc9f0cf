//! The pages, as maud templates. Everything a workload chose (process names, paths, command
//! lines) goes through maud's escaping; nothing here writes raw HTML.

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use maud::{DOCTYPE, Markup, html};
use vigil_crds::finding::{Finding, SeverityLabel};

use crate::{
    backend::{
        CoverageStatus, FindingRecord, FindingsPage, NodeCoverage, Settings, Summary, TrustTarget,
        Usage,
    },
    charts,
    query::{CRITERIA, FindingsQuery, SortKey, Status, label_str},
    suppress::Candidate,
};

/// The navigation: path, label.
const NAV: &[(&str, &str)] = &[
    ("/", "Summary"),
    ("/findings", "Findings"),
    ("/coverage", "Coverage"),
    ("/usage", "Usage"),
    ("/settings", "Settings"),
];

/// Whether the caller brought a token (consoles with a gate only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Session {
    /// No sign-in here (a host console).
    None,
    /// No token: the page offers to sign in.
    SignedOut,
    /// A token came with the request.
    SignedIn,
}

/// What every page needs besides its body.
pub struct Frame<'a> {
    /// `host` or `cluster`.
    pub kind: &'a str,
    /// The host or cluster name.
    pub name: &'a str,
    /// Whether actions (archive, suppress) are allowed, or why not.
    pub read_only: Option<&'a str>,
    /// The CSRF token for forms.
    pub csrf: &'a str,
    /// Sign-in state.
    pub session: Session,
}

/// The page around a body.
pub fn layout(frame: &Frame<'_>, title: &str, active: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · Vigil" }
                link rel="stylesheet" href="/assets/console.css";
                script src="/assets/console.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    span.brand { "Vigil" }
                    nav aria-label="Main" {
                        ul {
                            @for (href, label) in NAV {
                                li {
                                    @if *href == active {
                                        a href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                        }
                    }
                    span.where { (frame.kind) ": " (frame.name) }
                }
                @if let Some(why) = frame.read_only {
                    p.notice role="note" id="read-only" { "Read-only: " (why) }
                }
                @if frame.session == Session::SignedOut {
                    form.notice.session method="post" action="/session" id="sign-in" {
                        input type="hidden" name="csrf" value=(frame.csrf);
                        label for="token" { "Bearer token" }
                        " "
                        input id="token" name="token" type="password" autocomplete="off" required;
                        " "
                        button type="submit" { "Sign in" }
                        " "
                        span.muted { "(for example from " code { "kubectl create token NAME" } "; kept in an HttpOnly cookie for 8 hours)" }
                    }
                }
                @if frame.session == Session::SignedIn {
                    form.notice.session method="post" action="/session/end" id="sign-out" {
                        input type="hidden" name="csrf" value=(frame.csrf);
                        "Signed in with a token; actions are checked with the API server. "
                        button type="submit" { "Sign out" }
                    }
                }
                main id="main" tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// An error page's body.
pub fn error_body(message: &str, back: Option<(&str, &str)>) -> Markup {
    html! {
        p.error role="alert" id="error" { (message) }
        @if let Some((href, label)) = back {
            p { a href=(href) { (label) } }
        }
    }
}

/// A time as people read it; the epoch means unknown.
pub fn time(t: &Timestamp) -> String {
    if *t == Timestamp::UNIX_EPOCH {
        "unknown".to_owned()
    } else {
        t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
    }
}

fn ktime(t: &Time) -> String {
    time(&t.0)
}

fn severity_badge(f: &Finding) -> Markup {
    let label = f.severity_label;
    html! {
        span class=(format!("badge {}", charts::severity_class(label))) {
            (label_name(label)) " " (format!("{:.1}", f.severity))
        }
    }
}

fn label_name(label: SeverityLabel) -> &'static str {
    match label {
        SeverityLabel::Low => "Low",
        SeverityLabel::Medium => "Medium",
        SeverityLabel::High => "High",
        SeverityLabel::Critical => "Critical",
    }
}

/// The summary page.
pub fn summary(s: &Summary, coverage: &[NodeCoverage]) -> Markup {
    let healthy = coverage
        .iter()
        .filter(|n| n.status == CoverageStatus::Healthy)
        .count();
    let unhealthy = coverage
        .iter()
        .filter(|n| matches!(n.status, CoverageStatus::Unhealthy { .. }))
        .count();
    html! {
        section.cards aria-label="Active findings by severity" {
            @for label in [SeverityLabel::Critical, SeverityLabel::High, SeverityLabel::Medium, SeverityLabel::Low] {
                a.card href=(format!("/findings?severity={}", label_str(label))) {
                    span class=(format!("count {}", charts::severity_class(label))) id=(format!("count-{}", label_str(label))) {
                        (s.by_severity.get(label))
                    }
                    span.what { (label_name(label)) }
                }
            }
            a.card href="/findings?status=archived" {
                span.count id="count-archived" { (s.archived) }
                span.what { "Archived" }
            }
            a.card href="/coverage" {
                span.count id="coverage-glance" { (healthy) " / " (coverage.len()) }
                span.what { "Nodes healthy" @if unhealthy > 0 { " (" (unhealthy) " unhealthy)" } }
            }
        }
        h2 { "Findings by severity over time" }
        (charts::by_day(&s.by_day))
        p.legend {
            @for label in [SeverityLabel::Critical, SeverityLabel::High, SeverityLabel::Medium, SeverityLabel::Low] {
                span class=(format!("key {}", charts::severity_class(label))) { (label_name(label)) }
            }
        }
        div.columns {
            section {
                h2 { "Top finding types" }
                (charts::bars("Active findings per type", &s.top_types, |t| query_href("type", t)))
            }
            section {
                h2 { "Top resources" }
                (charts::bars("Active findings per resource", &s.top_resources, |r| query_href("resource", r)))
            }
        }
    }
}

fn query_href(key: &str, value: &str) -> String {
    let qs = form_urlencoded::Serializer::new(String::new())
        .append_pair(key, value)
        .finish();
    format!("/findings?{qs}")
}

/// The findings page: the filter bar, the table and the pager.
pub fn findings(q: &FindingsQuery, page: &FindingsPage) -> Markup {
    let pages = page.total.div_ceil(q.page_size).max(1);
    let first = if page.rows.is_empty() {
        0
    } else {
        q.offset() + 1
    };
    let last = q.offset() + page.rows.len() as u64;
    html! {
        section.filterbar aria-label="Filter" {
            ul.chips id="chips" {
                @for (key, label, value) in q.criteria.chips() {
                    li.chip data-key=(key) {
                        span { (label) ": " strong { (value) } }
                        @let without = q.with_criteria(q.criteria.without(key));
                        @if key != "status" || q.criteria.status != Status::Active {
                            a.remove href=(without.href()) aria-label=(format!("Remove filter {label}: {value}")) { "×" }
                        }
                    }
                }
            }
            form.add method="get" action="/findings" id="filter-form" {
                @for (key, _, value) in q.criteria.chips() {
                    @if key != "status" || q.criteria.status != Status::Active {
                        input type="hidden" name=(key) value=(value);
                    }
                }
                @if q.sort != SortKey::LastSeen || !q.descending {
                    input type="hidden" name="sort" value=(q.sort.as_str());
                    input type="hidden" name="order" value=(if q.descending { "desc" } else { "asc" });
                }
                label for="filter-key" { "Property" }
                select id="filter-key" name="add" {
                    @for (key, label) in CRITERIA {
                        option value=(key) { (label) }
                    }
                }
                label for="filter-value" { "Value" }
                input id="filter-value" name="value" type="text" required
                    placeholder="high · T1059 · 203.0.113.7 · 24h" autocomplete="off";
                button type="submit" { "Add filter" }
                @if !q.criteria.chips().iter().all(|c| c.0 == "status") || q.criteria.status != Status::Active {
                    a.clear href="/findings" { "Clear filters" }
                }
            }
        }
        p.count id="result-count" aria-live="polite" {
            @if page.total == 0 {
                "No findings match."
            } @else {
                "Findings " (first) "–" (last) " of " (page.total)
            }
        }
        table.findings id="findings-table" {
            caption.visually-hidden { "Findings, sorted by " (q.sort.label()) (if q.descending { ", descending" } else { ", ascending" }) }
            thead {
                tr {
                    @for key in SortKey::ALL {
                        @let sorted = q.sort == key;
                        th scope="col" aria-sort=(if sorted { if q.descending { "descending" } else { "ascending" } } else { "none" }) {
                            a href=(q.sorted_by(key).href()) {
                                (key.label())
                                @if sorted { span aria-hidden="true" { (if q.descending { " ▼" } else { " ▲" }) } }
                            }
                        }
                        @if key == SortKey::Type {
                            th scope="col" { "Title" }
                        }
                    }
                }
            }
            tbody {
                @for r in &page.rows {
                    @let f = &r.finding;
                    tr data-id=(f.id) class=(if f.archived { "archived" } else { "" }) {
                        td { (severity_badge(f)) }
                        td.type { (f.finding_type) }
                        td { a.open href=(format!("/findings/{}", f.id)) { (f.title) } }
                        td { (f.resource.display_name) }
                        td.num { (f.count) }
                        td { (ktime(&f.event_first_seen)) }
                        td { (ktime(&f.event_last_seen)) }
                    }
                }
            }
        }
        nav.pager aria-label="Pages" {
            @if q.page > 1 {
                a rel="prev" href=(q.with_page(q.page - 1).href()) { "← Previous" }
            }
            span { "Page " (q.page.min(pages)) " of " (pages) }
            @if q.page < pages {
                a rel="next" href=(q.with_page(q.page + 1).href()) { "Next →" }
            }
        }
    }
}

fn dl_row(name: &str, value: Option<String>) -> Markup {
    html! {
        @if let Some(v) = value.filter(|v| !v.is_empty()) {
            dt { (name) } dd { (v) }
        }
    }
}

/// One finding with its actions.
pub fn finding(r: &FindingRecord, frame: &Frame<'_>, raw_json: &str) -> Markup {
    let f = &r.finding;
    let additional = &f.context.additional;
    html! {
        p.lead { (severity_badge(f)) " " span.type { (f.finding_type) } }
        p id="description" { (f.description) }
        section.actions aria-label="Actions" {
            p id="state" {
                @if f.archived {
                    "Archived" @if let Some(by) = &r.archived_by { " by suppression rule " strong { (by) } }
                } @else { "Active" }
            }
            @if frame.read_only.is_none() {
                form method="post" action=(format!("/findings/{}/archive", f.id)) {
                    input type="hidden" name="csrf" value=(frame.csrf);
                    input type="hidden" name="archived" value=(if f.archived { "false" } else { "true" });
                    button type="submit" id="archive-button" { (if f.archived { "Unarchive" } else { "Archive" }) }
                }
                a.button href=(format!("/findings/{}/suppress", f.id)) id="suppress-link" { "Suppress findings like this" }
                @if f.network.is_some() {
                    " "
                    a.button href=(format!("/findings/{}/trust", f.id)) id="trust-link" { "Add the remote address to a trusted list" }
                }
            }
        }
        div.columns {
            section {
                h2 { "Finding" }
                dl {
                    dt { "Id" } dd { code { (f.id) } }
                    dt { "Resource role" } dd { (format!("{:?}", f.resource_role).to_uppercase()) }
                    dt { "Count" } dd id="count" { (f.count) }
                    dt { "First seen" } dd { (ktime(&f.event_first_seen)) }
                    dt { "Last seen" } dd { (ktime(&f.event_last_seen)) }
                    dt { "Created" } dd { (ktime(&f.created_at)) }
                }
                h2 { "Resource" }
                dl {
                    dt { "Resource" } dd { (f.resource.display_name) }
                    (dl_row("Host", Some(f.resource.host.hostname.clone())))
                    (dl_row("Node", f.resource.host.node_name.clone()))
                    (dl_row("Kernel", f.resource.host.kernel_version.clone()))
                    (dl_row("OS", f.resource.host.os_image.clone()))
                    @if let Some(p) = &f.resource.pod {
                        (dl_row("Namespace", Some(p.namespace.clone())))
                        (dl_row("Pod", Some(p.name.clone())))
                        (dl_row("Service account", p.service_account_name.clone()))
                        (dl_row("Workload", p.workload.as_ref().map(|w| format!("{}/{}", w.kind, w.name))))
                    }
                    @if let Some(c) = &f.resource.container {
                        (dl_row("Container", Some(c.name.clone())))
                        (dl_row("Image", c.image.clone()))
                        (dl_row("Runtime", c.container_runtime.clone()))
                        (dl_row("Privileged", c.privileged.map(|p| p.to_string())))
                    }
                }
            }
            section {
                h2 { "Evidence" }
                dl id="evidence" {
                    (dl_row("Rule", additional.get("ruleId").cloned()))
                    (dl_row("MITRE techniques", additional.get("mitreTechniques").cloned()))
                    (dl_row("Tool", f.context.tool_name.clone()))
                    (dl_row("Command line", f.context.command_line_example.clone()))
                    (dl_row("File", f.context.file_path.clone()))
                    @if let Some(n) = &f.network {
                        (dl_row("Connection", Some(format!("{:?} {} {}:{} → {}:{}", n.connection_direction, n.protocol, n.local_ip, n.local_port, n.remote_ip, n.remote_port))))
                        (dl_row("Remote domain", n.remote_domain.clone()))
                    }
                    @if let Some(d) = &f.dns {
                        (dl_row("DNS query", Some(format!("{} ({})", d.domain, d.protocol))))
                    }
                    @if let Some(e) = &f.evidence {
                        @for t in &e.threat_intelligence_details {
                            dt { "Threat list" } dd { (t.threat_list_name) ": " code { (t.indicator) } }
                        }
                    }
                }
                @if let Some(p) = &f.process {
                    h2 { "Process" }
                    dl {
                        dt { "Name" } dd { (p.name) }
                        (dl_row("Executable", Some(p.executable_path.clone())))
                        (dl_row("SHA-256", p.executable_sha256.clone()))
                        dt { "Pid" } dd { (p.pid) }
                        dt { "Uid / euid" } dd { (p.uid) " / " (p.euid) }
                        (dl_row("User", p.user.clone()))
                        (dl_row("Working directory", p.pwd.clone()))
                        dt { "Started" } dd { (ktime(&p.start_time)) }
                    }
                    h3 { "Process lineage" }
                    (lineage(p))
                }
            }
        }
        details.raw {
            summary { "Raw JSON" }
            pre id="raw-json" { code { (raw_json) } }
        }
    }
}

/// The ancestry as nested lists, init at the top and the acting process at the bottom.
fn lineage(p: &vigil_crds::finding::ProcessDetails) -> Markup {
    let mut inner = html! {
        ul role="group" {
            li role="treeitem" aria-selected="true" class="acting" {
                strong { (p.name) } " (pid " (p.pid) ")" @if !p.executable_path.is_empty() { " " code { (p.executable_path) } }
            }
        }
    };
    for a in &p.lineage {
        inner = html! {
            ul role="group" {
                li role="treeitem" aria-expanded="true" aria-selected="false" {
                    (a.name) " (pid " (a.pid) ")" @if !a.executable_path.is_empty() { " " code { (a.executable_path) } }
                    (inner)
                }
            }
        };
    }
    html! { div.tree role="tree" aria-label="Process lineage" id="lineage" { (inner) } }
}

/// The suppression form: criteria from the finding, a name, a preview count.
pub fn suppress(
    r: &FindingRecord,
    frame: &Frame<'_>,
    candidates: &[(Candidate, bool)],
    name: &str,
    description: &str,
    preview: Result<u64, String>,
    rule_yaml: &str,
) -> Markup {
    let f = &r.finding;
    html! {
        p { "From finding " a href=(format!("/findings/{}", f.id)) { code { (f.id) } } ": " (f.title) }
        form method="get" action=(format!("/findings/{}/suppress", f.id)) id="suppress-form" {
            fieldset {
                legend { "Criteria (a finding must match all of them)" }
                @for (c, checked) in candidates {
                    div.check {
                        input type="checkbox" name="crit" value=(c.path) id=(format!("crit-{}", c.path.replace('.', "-"))) checked[*checked];
                        label for=(format!("crit-{}", c.path.replace('.', "-"))) { (c.label) " equals " code { (c.value) } }
                    }
                }
            }
            div.field {
                label for="rule-name" { "Rule name" }
                input id="rule-name" name="name" type="text" value=(name) required pattern="[a-z0-9]([-a-z0-9.]*[a-z0-9])?" maxlength="253";
            }
            div.field {
                label for="rule-description" { "Why these findings are benign" }
                input id="rule-description" name="description" type="text" value=(description) maxlength="1024";
            }
            button type="submit" formmethod="get" id="preview-button" { "Preview" }
            @if frame.read_only.is_none() {
                input type="hidden" name="csrf" value=(frame.csrf);
                button type="submit" formmethod="post" formaction=(format!("/findings/{}/suppress", f.id)) id="create-rule" { "Create rule and archive matches" }
            }
        }
        @match preview {
            Ok(n) => p.preview id="preview" aria-live="polite" { "This rule would archive " strong id="preview-count" { (n) } " active finding" (if n == 1 { "" } else { "s" }) " now, and matching findings from now on." },
            Err(why) => p.error role="alert" id="preview" { (why) },
        }
        details open {
            summary { "The rule (SuppressionRule YAML)" }
            pre id="rule-yaml" { code { (rule_yaml) } }
        }
    }
}

/// What the trust form shows.
pub struct TrustView<'a> {
    /// The finding's remote address.
    pub remote: Option<&'a str>,
    /// The address or block as typed.
    pub net_text: &'a str,
    /// "I mean the whole block" ticked.
    pub confirm_wide: bool,
    /// The list chosen.
    pub list: Option<&'a str>,
    /// The checked address or block, or why not.
    pub net: Result<String, String>,
    /// The lists and what adding would do to each, or why they cannot be read.
    pub targets: Result<Vec<TrustTarget>, String>,
}

/// "Add the remote address to a trusted list": the address or block, the list, the preview.
pub fn trust(r: &FindingRecord, frame: &Frame<'_>, v: &TrustView<'_>) -> Markup {
    let f = &r.finding;
    let action = format!("/findings/{}/trust", f.id);
    html! {
        p { "From finding " a href=(format!("/findings/{}", f.id)) { code { (f.id) } } ": " (f.title) }
        p { "A trusted address raises no network findings (threat-list matches) from now on. The finding's remote address is "
            code id="remote" { (v.remote.unwrap_or("unknown")) } "." }
        form method="get" action=(action) id="trust-form" {
            div.field {
                label for="trust-net" { "Address or CIDR block (it must contain the remote address)" }
                input id="trust-net" name="net" type="text" value=(v.net_text) maxlength="64" required;
            }
            div.check {
                input type="checkbox" name="wide" value="yes" id="trust-wide" checked[v.confirm_wide];
                label for="trust-wide" { "I mean the whole block, though it is wider than a /24 (IPv4) or /64 (IPv6)" }
            }
            @match &v.targets {
                Ok(targets) if targets.is_empty() => p.error id="no-lists" { "No trusted lists are configured, so there is nowhere to add it." },
                Ok(targets) => fieldset {
                    legend { "Trusted list" }
                    @for (i, t) in targets.iter().enumerate() {
                        @let id = format!("list-{i}");
                        @let chosen = v.list.map_or(i == 0, |l| l == t.name);
                        div.check {
                            input type="radio" name="list" value=(t.name) id=(id) checked[chosen];
                            label for=(id) {
                                strong { (t.name) } " — " (t.location)
                                @if let Some(n) = t.entries { " (" (n) " entr" (if n == 1 { "y" } else { "ies" }) ")" }
                                @if t.already_listed { " — " em.listed { "lists it already" } }
                                @if t.creates { " — " em { "created by adding" } }
                            }
                        }
                    }
                },
                Err(why) => p.error role="alert" { (why) },
            }
            button type="submit" formmethod="get" id="trust-preview-button" { "Preview" }
            @if frame.read_only.is_none() {
                input type="hidden" name="csrf" value=(frame.csrf);
                button type="submit" formmethod="post" formaction=(action) id="trust-add" { "Add to the trusted list" }
            }
        }
        @match (&v.net, &v.targets) {
            (Ok(net), Ok(targets)) if !targets.is_empty() => {
                @let chosen = targets.iter().find(|t| Some(t.name.as_str()) == v.list).or(targets.first());
                @if let Some(t) = chosen {
                    p.preview id="trust-preview" aria-live="polite" {
                        @if t.already_listed {
                            strong { (t.name) } " lists " code { (net) } " already; adding changes nothing."
                        } @else {
                            "Adds the line " code id="trust-line" { (net) } " to " (t.location)
                            @if t.creates { " (created)" } ". " (t.applies)
                        }
                    }
                }
            },
            (Err(why), _) => p.error role="alert" id="trust-preview" { (why) },
            _ => {},
        }
    }
}

/// The coverage page.
pub fn coverage(nodes: &[NodeCoverage], only_unhealthy: bool) -> Markup {
    html! {
        p {
            @if only_unhealthy {
                "Showing unhealthy nodes. " a href="/coverage" { "Show all" }
            } @else {
                a href="/coverage?status=unhealthy" { "Show only unhealthy nodes" }
            }
        }
        table id="coverage-table" {
            caption.visually-hidden { "Nodes and whether the agent covers them" }
            thead { tr {
                th scope="col" { "Node" } th scope="col" { "Status" } th scope="col" { "Issue" }
                th scope="col" { "Agent" } th scope="col" { "Kernel" } th scope="col" { "Hooks" }
                th scope="col" { "Events/s" } th scope="col" { "Drops" } th scope="col" { "Last heartbeat" }
            } }
            tbody {
                @for n in nodes {
                    @if !only_unhealthy || !matches!(n.status, CoverageStatus::Healthy) {
                        @let (status, class, issue) = match &n.status {
                            CoverageStatus::Healthy => ("Healthy", "ok", String::new()),
                            CoverageStatus::Unhealthy { reason } => ("Unhealthy", "bad", reason.clone()),
                            CoverageStatus::Unknown { reason } => ("Unknown", "unknown", reason.clone()),
                        };
                        tr {
                            th scope="row" { (n.name) }
                            td { span class=(format!("status {class}")) { (status) } }
                            td { (issue) }
                            td { (n.agent_version.clone().unwrap_or_else(|| "—".into())) }
                            td { (n.kernel.clone().unwrap_or_else(|| "—".into())) }
                            td.num { (n.active_hooks.map_or("—".into(), |h| h.to_string())) }
                            td.num { (n.events_per_second.map_or("—".into(), |e| format!("{e:.1}"))) }
                            td.num { (n.drops.map_or("—".into(), |d| d.to_string())) }
                            td { (n.last_heartbeat.as_ref().map_or("—".into(), time)) }
                        }
                    }
                }
            }
        }
    }
}

/// The usage page.
pub fn usage(u: &Usage, price: f64) -> Markup {
    let total: f64 = u.nodes.iter().map(|n| n.vcpu_hours()).sum();
    html! {
        p.basis { (u.basis) }
        section.cards {
            div.card { span.count id="usage-total" { (format!("{total:.1}")) } span.what { "vCPU-hours this month" } }
            div.card { span.count id="usage-cost" { (format!("{:.2}", total * price)) } span.what { "estimated cost at " (format!("{price}")) " per vCPU-hour" } }
        }
        form method="get" action="/usage" {
            label for="price" { "Price per vCPU-hour" }
            input id="price" name="price" type="number" step="any" min="0" value=(format!("{price}"));
            button type="submit" { "Estimate" }
        }
        table id="usage-table" {
            caption.visually-hidden { "Monitored vCPU-hours per node" }
            thead { tr { th scope="col" { "Node" } th scope="col" { "vCPUs" } th scope="col" { "Hours monitored" } th scope="col" { "vCPU-hours" } } }
            tbody {
                @for n in &u.nodes {
                    tr { th scope="row" { (n.node) } td.num { (n.vcpus) } td.num { (format!("{:.1}", n.hours)) } td.num { (format!("{:.1}", n.vcpu_hours())) } }
                }
            }
        }
        @for n in &u.nodes {
            @let rows: Vec<(String, u64)> = n.per_day.iter().map(|(d, h)| (d.clone(), h.round() as u64)).collect();
            h2 { "Per day: " (n.node) }
            (charts::bars(&format!("vCPU-hours per day on {}", n.node), &rows, |_| "/usage".to_owned()))
        }
    }
}

/// The settings page.
pub fn settings(
    s: &Settings,
    created: Option<&str>,
    trusted: Option<(crate::trust::TrustedNet, &str)>,
) -> Markup {
    html! {
        @if let Some(name) = created {
            p.notice role="status" id="created" { "Suppression rule " strong { (name) } " created." }
        }
        @if let Some((net, list)) = trusted {
            p.notice role="status" id="trusted" { code { (net) } " added to trusted list " strong { (list.chars().take(120).collect::<String>()) } "." }
        }
        @if !s.problems.is_empty() {
            section aria-label="Problems" {
                @for p in &s.problems { p.error role="alert" { (p) } }
            }
        }
        @if !s.facts.is_empty() {
            dl { @for (k, v) in &s.facts { dt { (k) } dd { (v) } } }
        }
        h2 { "Threat lists" }
        (lists(&s.threat_lists, "threat-lists"))
        h2 { "Trusted lists" }
        (lists(&s.trusted_lists, "trusted-lists"))
        h2 { "Suppression rules" }
        p { (s.rules_source) }
        table id="rules-table" {
            thead { tr { th scope="col" { "Rule" } th scope="col" { "Action" } th scope="col" { "Criteria" } th scope="col" { "Matches now" } th scope="col" { "Description" } } }
            tbody {
                @for r in &s.suppression_rules {
                    @let name = r.rule.metadata.name.clone().unwrap_or_default();
                    tr id=(format!("rule-{name}")) {
                        th scope="row" { (name) }
                        td { (format!("{:?}", r.rule.spec.action).to_uppercase()) }
                        td { ul { @for (path, c) in &r.rule.spec.criteria.criterion {
                            li { code { (path) } " " (serde_json::to_string(c).unwrap_or_default()) }
                        } } }
                        td.num.matched { (r.matched) }
                        td { (r.rule.spec.description) }
                    }
                }
            }
        }
    }
}

fn lists(lists: &[crate::backend::ListInfo], id: &str) -> Markup {
    html! {
        @if lists.is_empty() {
            p id=(id) { "None." }
        } @else {
            table id=(id) {
                thead { tr { th scope="col" { "Name" } th scope="col" { "Source" } th scope="col" { "Entries" } th scope="col" { "Load error" } } }
                tbody { @for l in lists {
                    tr { th scope="row" { (l.name) } td { (l.source) } td.num { (l.entries.map_or("—".into(), |e| e.to_string())) } td { (l.error.clone().unwrap_or_default()) } }
                } }
            }
        }
    }
}
