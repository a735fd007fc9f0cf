//! How findings are shown on a terminal: one line per finding for lists and the agent's
//! output, and a full view with the process lineage as a tree for `findings show`.

use std::{borrow::Cow, fmt::Write as _};

use vigil_crds::finding::Finding;

/// `s` with every control character, and the bidirectional overrides a terminal obeys, written
/// as an escape (`\u{1b}`), so a process name, argument or path the workload chose cannot move
/// the cursor, recolour the terminal, hide text or fake a line of output.
pub fn escape_controls(s: &str) -> Cow<'_, str> {
    let unsafe_char =
        |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_char(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The finding with every string escaped for a terminal (see [`escape_controls`]).
fn for_terminal(f: &Finding) -> Option<Finding> {
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s) => {
                if let Cow::Owned(escaped) = escape_controls(s) {
                    *s = escaped;
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            serde_json::Value::Object(map) => map.values_mut().for_each(walk),
            _ => {}
        }
    }
    let mut value = serde_json::to_value(f).ok()?;
    walk(&mut value);
    serde_json::from_value(value).ok()
}

/// One readable line: time, severity, type, count, resource, process, id; control characters
/// escaped.
pub fn text_line(f: &Finding) -> String {
    escape_controls(&line(f)).into_owned()
}

fn line(f: &Finding) -> String {
    let process = f
        .process
        .as_ref()
        .map(|p| format!(" {}[{}]", p.name, p.pid))
        .unwrap_or_default();
    format!(
        "{} {:<8} {} x{} {}{}{} {}",
        f.event_last_seen.0,
        f.severity_label.to_string(),
        f.finding_type,
        f.count,
        f.resource.display_name,
        process,
        if f.archived { " (archived)" } else { "" },
        f.id
    )
}

/// What `findings list` prints when nothing matches: that nothing did, and what the store holds
/// (how many findings, how many archived), with the flag that shows archived ones when the
/// listing left them out.
pub fn no_findings_text(stored: u64, archived: u64, archived_filter: Option<bool>) -> String {
    let mut out = if stored == 0 {
        format!("no findings ({stored} stored, {archived} archived)")
    } else {
        format!("no findings match ({stored} stored, {archived} archived)")
    };
    if archived > 0 && archived_filter == Some(false) {
        out.push_str("; --archived lists the archived ones");
    }
    out
}

/// The whole finding, readable, with the lineage drawn as a tree (init at the top, the acting
/// process at the bottom).
pub fn show_text(f: &Finding, archived_by: Option<&str>) -> String {
    let Some(escaped) = for_terminal(f) else {
        // Cannot happen for a finding that serialises; never print it unescaped.
        return escape_controls(&line(f)).into_owned();
    };
    let f = &escaped;
    let archived_by = archived_by.map(escape_controls);
    let archived_by = archived_by.as_deref();
    let mut out = String::new();
    let _ = writeln!(out, "{}  {}", f.finding_type, f.id);
    let _ = writeln!(out, "  {}", f.title);
    let _ = writeln!(out, "  {}", f.description);
    let _ = writeln!(
        out,
        "  severity {} ({}), count {}, first seen {}, last seen {}",
        f.severity_label, f.severity, f.count, f.event_first_seen.0, f.event_last_seen.0
    );
    let _ = writeln!(
        out,
        "  resource {} ({:?})",
        f.resource.display_name, f.resource_role
    );
    if f.archived {
        let _ = writeln!(
            out,
            "  archived{}",
            archived_by
                .map(|r| format!(" by suppression rule {r}"))
                .unwrap_or_default()
        );
    }
    if let Some(n) = &f.network {
        let _ = writeln!(
            out,
            "  network {:?} {} {}:{}{}",
            n.connection_direction,
            n.protocol,
            n.remote_ip,
            n.remote_port,
            n.remote_domain
                .as_ref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        );
    }
    if let Some(d) = &f.dns {
        let _ = writeln!(out, "  dns {} over {}", d.domain, d.protocol);
    }
    if let Some(e) = &f.evidence {
        for t in &e.threat_intelligence_details {
            let _ = writeln!(
                out,
                "  evidence {} on list {}",
                t.indicator, t.threat_list_name
            );
        }
    }
    let c = &f.context;
    let fields = [
        ("tool", c.tool_name.as_deref()),
        ("tool category", c.tool_category.as_deref()),
        ("command line", c.command_line_example.as_deref()),
        ("file", c.file_path.as_deref()),
    ];
    for (name, value) in fields {
        if let Some(v) = value {
            let _ = writeln!(out, "  {name}: {v}");
        }
    }
    for (k, v) in &c.additional {
        let _ = writeln!(out, "  {k}: {v}");
    }
    if let Some(p) = &f.process {
        let _ = writeln!(out, "  process tree:");
        let mut depth = 0;
        for a in p.lineage.iter().rev() {
            let _ = writeln!(
                out,
                "    {}{} (pid {}{})",
                branch(depth),
                a.name,
                a.pid,
                if a.executable_path.is_empty() {
                    String::new()
                } else {
                    format!(", {}", a.executable_path)
                }
            );
            depth += 1;
        }
        let id = |v: u32| {
            if v == vigil_crds::finding::UNKNOWN_ID {
                "?".to_owned()
            } else {
                v.to_string()
            }
        };
        let _ = writeln!(
            out,
            "    {}{} (pid {}, {}, uid {} euid {}{}{}) <- acting process",
            branch(depth),
            p.name,
            p.pid,
            if p.executable_path.is_empty() {
                "executable unknown"
            } else {
                &p.executable_path
            },
            id(p.uid),
            id(p.euid),
            p.user.as_ref().map(|u| format!(" {u}")).unwrap_or_default(),
            p.executable_sha256
                .as_ref()
                .map(|s| format!(", sha256 {s}"))
                .unwrap_or_default()
        );
    }
    out
}

fn branch(depth: usize) -> String {
    if depth == 0 {
        String::new()
    } else {
        format!("{}└─ ", "   ".repeat(depth - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::{escape_controls, no_findings_text, show_text, text_line};

    #[test]
    fn finding_views_escape_what_the_workload_chose() {
        let f: vigil_crds::finding::Finding = serde_json::from_value(serde_json::json!({
            "id": "abc", "schemaVersion": "1.0", "type": "Execution:Runtime/SuspiciousTool",
            "title": "tool\u{1b}]0;owned\u{7}", "description": "line one\nline two",
            "severity": 5.0, "severityLabel": "Medium",
            "createdAt": "2026-12-04T00:00:00Z", "updatedAt": "2026-12-04T00:00:00Z",
            "resource": {"displayName": "host\r\u{1b}[2K", "host": {"hostname": "h"}},
            "resourceRole": "ACTOR", "count": 1,
            "eventFirstSeen": "2026-12-04T00:00:00Z", "eventLastSeen": "2026-12-04T00:00:00Z"
        }))
        .unwrap();
        let shown = show_text(&f, Some("rule\u{1b}"));
        assert!(
            !shown.contains('\u{1b}') && !shown.contains('\r') && !shown.contains('\u{7}'),
            "{shown}"
        );
        assert!(shown.contains("line one\\u{a}line two"), "{shown}");
        let line = text_line(&f);
        assert!(!line.chars().any(char::is_control), "{line}");
        assert!(line.contains("host\\u{d}\\u{1b}[2K"), "{line}");
    }

    #[test]
    fn control_characters_are_escaped_for_a_terminal() {
        assert_eq!(escape_controls("bash"), "bash");
        assert_eq!(
            escape_controls("x\u{1b}[2J\nfake line\r\u{7}\u{202e}gpj.exe"),
            "x\\u{1b}[2J\\u{a}fake line\\u{d}\\u{7}\\u{202e}gpj.exe"
        );
        assert_eq!(escape_controls("résumé ✓"), "résumé ✓");
    }

    #[test]
    fn an_empty_listing_says_so_and_counts_what_is_archived() {
        assert_eq!(
            no_findings_text(0, 0, None),
            "no findings (0 stored, 0 archived)"
        );
        assert_eq!(
            no_findings_text(5, 2, None),
            "no findings match (5 stored, 2 archived)"
        );
        assert_eq!(
            no_findings_text(5, 2, Some(false)),
            "no findings match (5 stored, 2 archived); --archived lists the archived ones"
        );
        assert_eq!(
            no_findings_text(5, 0, Some(false)),
            "no findings match (5 stored, 0 archived)"
        );
    }
}
