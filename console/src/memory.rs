//! The findings page, the summary and the tallies over findings held in memory (the cluster
//! backend's reflector store): the same criteria, order and paging as the host store's SQL
//! (`node-agent/src/store.rs`), as plain functions over a slice.
//!
//! Nothing is allocated per finding while filtering: each criterion compares the finding's own
//! fields. Paging selects the page's rows with a partial sort (`select_nth_unstable_by`), so a
//! first page out of 100,000 matches sorts 50 rows, not 100,000.

use std::{cmp::Ordering, collections::HashMap};

use k8s_openapi::jiff::Timestamp;
use vigil_crds::finding::{Finding, SeverityLabel};

use crate::{
    backend::{DayCounts, SeverityCounts, Summary},
    query::{Criteria, FindingsQuery, SortKey, Status},
};

/// A finding and whether it is archived (in its document or by a suppression rule).
#[derive(Debug, Clone, Copy)]
pub struct Held<'a> {
    /// The finding document.
    pub finding: &'a Finding,
    /// Archived.
    pub archived: bool,
}

/// The label of a finding's score, as the host store works it out (the document's label when
/// the score is out of range).
pub fn label_of(f: &Finding) -> SeverityLabel {
    SeverityLabel::from_score(f.severity).unwrap_or(f.severity_label)
}

/// Whether any part of the resource equals `v`: display name, host or node name, namespace,
/// pod, `namespace/pod`, container or image.
fn resource_has(f: &Finding, v: &str) -> bool {
    let r = &f.resource;
    if r.display_name == v || r.host.hostname == v || r.host.node_name.as_deref() == Some(v) {
        return true;
    }
    if let Some(p) = &r.pod {
        if p.namespace == v || p.name == v {
            return true;
        }
        if let Some((ns, pod)) = v.split_once('/')
            && ns == p.namespace
            && pod == p.name
        {
            return true;
        }
    }
    r.container
        .as_ref()
        .is_some_and(|c| c.name == v || c.image.as_deref() == Some(v))
}

/// Whether the remote IP or the domain (the DNS query's, else the connection's) equals `v`;
/// domains compare without case and without a trailing dot.
fn remote_has(f: &Finding, v: &str) -> bool {
    if f.network.as_ref().is_some_and(|n| n.remote_ip == v) {
        return true;
    }
    let domain = f
        .dns
        .as_ref()
        .map(|d| d.domain.as_str())
        .or_else(|| f.network.as_ref().and_then(|n| n.remote_domain.as_deref()));
    domain.is_some_and(|d| {
        d.trim_end_matches('.')
            .eq_ignore_ascii_case(v.trim_end_matches('.'))
    })
}

fn mitre_has(f: &Finding, technique: &str) -> bool {
    f.context
        .additional
        .get("mitreTechniques")
        .is_some_and(|t| {
            t.split(',')
                .any(|x| x.trim().eq_ignore_ascii_case(technique.trim()))
        })
}

/// Whether the finding meets every criterion.
pub fn matches(h: Held<'_>, c: &Criteria) -> bool {
    let f = h.finding;
    let archived_ok = match c.status {
        Status::Active => !h.archived,
        Status::Archived => h.archived,
        Status::All => true,
    };
    let process = f.process.as_ref();
    archived_ok
        && (c.severity.is_empty() || c.severity.contains(&label_of(f)))
        && c.finding_type
            .as_deref()
            .is_none_or(|t| f.finding_type == t)
        && c.resource.as_deref().is_none_or(|v| resource_has(f, v))
        && c.process
            .as_deref()
            .is_none_or(|v| process.is_some_and(|p| p.name == v))
        && c.executable
            .as_deref()
            .is_none_or(|v| process.is_some_and(|p| p.executable_path == v))
        && c.sha256.as_deref().is_none_or(|v| {
            process
                .and_then(|p| p.executable_sha256.as_deref())
                .is_some_and(|s| s.eq_ignore_ascii_case(v))
        })
        && c.remote.as_deref().is_none_or(|v| remote_has(f, v))
        && c.mitre.as_deref().is_none_or(|t| mitre_has(f, t))
        && c.since.as_ref().is_none_or(|s| f.event_last_seen.0 >= s.at)
        && c.until.as_ref().is_none_or(|u| f.event_last_seen.0 < u.at)
}

/// The order of two findings by `key`, ascending, ties by id (as the host store orders them).
fn compare(a: &Finding, b: &Finding, key: SortKey) -> Ordering {
    let by = match key {
        SortKey::LastSeen => a.event_last_seen.0.cmp(&b.event_last_seen.0),
        SortKey::FirstSeen => a.event_first_seen.0.cmp(&b.event_first_seen.0),
        SortKey::Severity => a.severity.total_cmp(&b.severity),
        SortKey::Count => a.count.cmp(&b.count),
        SortKey::Type => a.finding_type.cmp(&b.finding_type),
        SortKey::Resource => a.resource.display_name.cmp(&b.resource.display_name),
    };
    by.then_with(|| a.id.cmp(&b.id))
}

/// The query's page of `items` (each seen through `view`), in its order, and how many match
/// in all.
pub fn page<'a, T>(
    items: &'a [T],
    view: impl Fn(&'a T) -> Held<'a>,
    q: &FindingsQuery,
) -> (Vec<&'a T>, u64) {
    let mut hits: Vec<(&'a T, &'a Finding)> = items
        .iter()
        .filter_map(|t| {
            let h = view(t);
            matches(h, &q.criteria).then_some((t, h.finding))
        })
        .collect();
    let total = hits.len() as u64;
    let order = |a: &(&T, &Finding), b: &(&T, &Finding)| {
        let o = compare(a.1, b.1, q.sort);
        if q.descending { o.reverse() } else { o }
    };
    let offset = usize::try_from(q.offset()).unwrap_or(usize::MAX);
    if offset >= hits.len() {
        return (Vec::new(), total);
    }
    let end = offset
        .saturating_add(usize::try_from(q.page_size).unwrap_or(usize::MAX))
        .min(hits.len());
    // Everything before `end` in order, without sorting what comes after.
    if end < hits.len() {
        hits.select_nth_unstable_by(end, order);
        hits.truncate(end);
    }
    hits.sort_unstable_by(order);
    let rows = hits.drain(offset..).map(|(t, _)| t).collect();
    (rows, total)
}

/// Most top types and resources on the summary.
pub const TOP: usize = 8;

/// Days since the epoch of a time (UTC).
fn day_number(t: Timestamp) -> i64 {
    t.as_second().div_euclid(86_400)
}

/// The summary of `items` as of `now` over the last `days` days: active findings per severity,
/// archived, per day and severity (by last seen), the top types and resources of the active
/// ones.
pub fn summary<'a, T: 'a>(
    items: impl IntoIterator<Item = &'a T>,
    view: impl Fn(&'a T) -> Held<'a>,
    now: Timestamp,
    days: u32,
) -> Summary {
    let today = day_number(now);
    let first = today - i64::from(days.saturating_sub(1));
    let mut by_day: Vec<SeverityCounts> = vec![SeverityCounts::default(); days as usize];
    let mut by_severity = SeverityCounts::default();
    let mut archived = 0u64;
    let mut types: HashMap<&str, u64> = HashMap::new();
    let mut resources: HashMap<&str, u64> = HashMap::new();
    for t in items {
        let h = view(t);
        if h.archived {
            archived += 1;
            continue;
        }
        let f = h.finding;
        let label = label_of(f);
        by_severity.add(label, 1);
        let day = day_number(f.event_last_seen.0);
        if (first..=today).contains(&day)
            && let Some(slot) = by_day.get_mut(usize::try_from(day - first).unwrap_or(usize::MAX))
        {
            slot.add(label, 1);
        }
        *types.entry(f.finding_type.as_str()).or_default() += 1;
        *resources
            .entry(f.resource.display_name.as_str())
            .or_default() += 1;
    }
    Summary {
        by_severity,
        archived,
        by_day: by_day
            .into_iter()
            .enumerate()
            .map(|(i, severities)| DayCounts {
                day: Timestamp::from_second((first + i as i64) * 86_400)
                    .map(|t| t.strftime("%Y-%m-%d").to_string())
                    .unwrap_or_default(),
                severities,
            })
            .collect(),
        top_types: top(types),
        top_resources: top(resources),
    }
}

/// The most frequent keys, most first, ties by key.
fn top(counts: HashMap<&str, u64>) -> Vec<(String, u64)> {
    let mut v: Vec<(&str, u64)> = counts.into_iter().collect();
    v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    v.truncate(TOP);
    v.into_iter().map(|(k, n)| (k.to_owned(), n)).collect()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;
    use crate::query;

    fn finding(i: u32) -> Finding {
        let mut f: Finding = serde_json::from_value(serde_json::json!({
            "id": format!("f{i:04}"),
            "schemaVersion": "1.0",
            "type": if i.is_multiple_of(2) { "Execution:Runtime/NewBinaryExecuted" } else { "Backdoor:Runtime/C&CActivity.B" },
            "title": "t", "description": "d",
            "severity": if i.is_multiple_of(3) { 9.0 } else { 5.0 },
            "severityLabel": if i.is_multiple_of(3) { "Critical" } else { "Medium" },
            "createdAt": "2026-12-01T00:00:00Z", "updatedAt": "2026-12-01T00:00:00Z",
            "resource": {"resourceType": "Container", "displayName": format!("ns-{}/pod-{i}/c", i % 4),
                "host": {"hostname": "node-1", "nodeName": "node-1"},
                "pod": {"name": format!("pod-{i}"), "namespace": format!("ns-{}", i % 4), "uid": "u"},
                "container": {"name": "c", "id": "x", "image": "nginx:1"}},
            "resourceRole": "ACTOR",
            "count": i + 1,
            "eventFirstSeen": "2026-12-01T00:00:00Z",
            "eventLastSeen": "2026-12-01T00:00:00Z",
            "process": {"name": if i.is_multiple_of(5) { "nc" } else { "sh" }, "executablePath": "/usr/bin/nc",
                "executableSha256": "AB".repeat(32), "pid": 1, "namespacePid": 1, "ppid": 0, "uid": 0, "euid": 0, "gid": 0, "egid": 0,
                "startTime": "2026-12-01T00:00:00Z"},
            "context": {"additional": {"mitreTechniques": "T1059.004, T1105"}},
            "network": {"connectionDirection": "OUTBOUND", "protocol": "TCP", "localIp": "10.0.0.1", "localPort": 1,
                "remoteIp": format!("203.0.113.{}", i % 7), "remotePort": 443, "remoteDomain": "Evil.Example."}
        }))
        .unwrap();
        f.event_last_seen =
            Time(Timestamp::from_second(1_800_000_000 + i64::from(i) * 3600).unwrap());
        f
    }

    fn ask(items: &[(Finding, bool)], raw: &str) -> (Vec<String>, u64) {
        let now = Timestamp::from_second(1_800_000_000 + 100 * 3600).unwrap();
        let q = query::parse(raw, now).unwrap().query;
        let (rows, total) = page(
            items,
            |(f, a)| Held {
                finding: f,
                archived: *a,
            },
            &q,
        );
        (rows.iter().map(|(f, _)| f.id.clone()).collect(), total)
    }

    #[test]
    fn each_criterion_filters_as_the_host_store_does() {
        let items: Vec<(Finding, bool)> = (0..60).map(|i| (finding(i), i % 10 == 9)).collect();
        assert_eq!(
            ask(&items, "size=200").1,
            54,
            "archived ones hidden by default"
        );
        assert_eq!(ask(&items, "status=archived&size=200").1, 6);
        assert_eq!(ask(&items, "status=all&size=200").1, 60);
        let n = |raw: &str| ask(&items, &format!("{raw}&status=all")).1;
        assert_eq!(n("severity=critical"), 20);
        assert_eq!(n("severity=critical,medium"), 60);
        assert_eq!(n("type=Backdoor:Runtime/C%26CActivity.B"), 30);
        assert_eq!(n("resource=ns-1"), 15);
        assert_eq!(n("resource=ns-1/pod-5"), 1);
        assert_eq!(n("resource=pod-5"), 1);
        assert_eq!(n("resource=node-1"), 60);
        assert_eq!(n("resource=nginx:1"), 60);
        assert_eq!(n("resource=ns-1/pod-6"), 0);
        assert_eq!(n("process=nc"), 12);
        assert_eq!(n("exe=/usr/bin/nc"), 60);
        assert_eq!(n(&format!("sha256={}", "ab".repeat(32))), 60);
        assert_eq!(n("remote=203.0.113.3"), 9);
        assert_eq!(n("remote=evil.example"), 60);
        assert_eq!(n("mitre=t1105"), 60);
        assert_eq!(n("mitre=T1059"), 0);
        assert_eq!(n("since=2027-01-16T00:00:00Z"), 44);
        assert_eq!(n("until=2027-01-16T00:00:00Z"), 16);
    }

    #[test]
    fn pages_are_sorted_with_ties_by_id_in_both_directions() {
        let items: Vec<(Finding, bool)> = (0..60).map(|i| (finding(i), false)).collect();
        let (first, total) = ask(&items, "size=5");
        assert_eq!(total, 60);
        assert_eq!(first, ["f0059", "f0058", "f0057", "f0056", "f0055"]);
        let (p3, _) = ask(&items, "size=5&page=3");
        assert_eq!(p3, ["f0049", "f0048", "f0047", "f0046", "f0045"]);
        // Severity ascending: the 40 mediums first, ties by id ascending.
        let (asc, _) = ask(&items, "sort=severity&order=asc&size=3");
        assert_eq!(asc, ["f0001", "f0002", "f0004"]);
        let (desc, _) = ask(&items, "sort=severity&order=desc&size=3");
        assert_eq!(desc, ["f0057", "f0054", "f0051"]);
        let (past_end, total) = ask(&items, "size=50&page=3");
        assert!(past_end.is_empty());
        assert_eq!(total, 60);
        let (last, _) = ask(&items, "size=50&page=2");
        assert_eq!(last.len(), 10);
        assert_eq!(last.last().map(String::as_str), Some("f0000"));
    }

    #[test]
    fn the_summary_counts_active_findings_by_day_type_and_resource() {
        let items: Vec<(Finding, bool)> = (0..60).map(|i| (finding(i), i % 10 == 9)).collect();
        let now = Timestamp::from_second(1_800_000_000 + 60 * 3600).unwrap();
        let s = summary(
            &items,
            |(f, a)| Held {
                finding: f,
                archived: *a,
            },
            now,
            14,
        );
        assert_eq!(s.archived, 6);
        assert_eq!(s.by_severity.total(), 54);
        assert_eq!(s.by_day.len(), 14);
        assert_eq!(
            s.by_day.iter().map(|d| d.severities.total()).sum::<u64>(),
            54
        );
        assert_eq!(s.by_day.last().unwrap().day, "2027-01-17");
        assert_eq!(s.top_types[0].1 + s.top_types[1].1, 54);
        assert!(s.top_resources.len() <= TOP);
    }
}
