//! How findings are shown on a terminal: one line per finding for lists and the agent's
//! output, and a full view with the process lineage as a tree for `findings show`.

use std::fmt::Write as _;

use vigil_crds::finding::Finding;

/// One readable line: time, severity, type, count, resource, process, id.
pub fn text_line(f: &Finding) -> String {
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
        let _ = writeln!(
            out,
            "    {}{} (pid {}, {}, uid {} euid {}{}{}) <- acting process",
            branch(depth),
            p.name,
            p.pid,
            p.executable_path,
            p.uid,
            p.euid,
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
    use super::no_findings_text;

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
