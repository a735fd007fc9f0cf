//! The documentation says what the code does: every finding type docs/FINDINGS.md names is in the
//! catalogue and every catalogue type is documented, with the default-configuration status and
//! default severity the code has; every flag README.md documents exists in the CLI. No root, no
//! eBPF: it reads the files and runs `node-agent ... --help`.

use std::{collections::BTreeSet, path::Path, process::Command};

use node_agent::detect::coverage;
use vigil_detection::{DefaultSeverity, FindingType, Severity};

const AGENT_BIN: &str = env!("CARGO_BIN_EXE_node-agent");

fn repo_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The lines of the Markdown table that follows `heading` (the first table after it).
fn table_after<'a>(doc: &'a str, heading: &str) -> Vec<Vec<&'a str>> {
    let start = doc
        .find(heading)
        .unwrap_or_else(|| panic!("no heading {heading:?}"));
    doc[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2) // header and separator
        .map(|l| l.trim_matches('|').split(" | ").map(str::trim).collect())
        .collect()
}

fn unquote(cell: &str) -> &str {
    cell.trim_matches('`')
}

/// Every `Category:Runtime/Name` in a text (the GuardDuty form of a type name).
fn runtime_types(text: &str) -> BTreeSet<&str> {
    let part = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '!' | '&' | '_');
    text.match_indices(":Runtime/")
        .map(|(i, m)| {
            let start = text[..i]
                .rfind(|c: char| !c.is_ascii_alphabetic())
                .map_or(0, |j| j + 1);
            let end = text[i + m.len()..]
                .find(|c: char| !part(c))
                .map_or(text.len(), |j| i + m.len() + j);
            // A sentence may end right after a name.
            text[start..end].trim_end_matches('.')
        })
        .collect()
}

#[test]
fn every_finding_type_in_findings_md_is_in_the_catalogue_and_the_other_way_round() {
    let doc = repo_file("docs/FINDINGS.md");
    let named = runtime_types(&doc);
    for t in &named {
        assert!(
            t.parse::<FindingType>().is_ok(),
            "docs/FINDINGS.md names {t}, which is not in the catalogue"
        );
    }
    // The table of implemented types documents each type once, in its first column.
    let implemented: BTreeSet<&str> = table_after(&doc, "## Implemented types")
        .iter()
        .map(|row| unquote(row[0]))
        .collect();
    for t in FindingType::ALL {
        assert!(
            implemented.contains(t.as_str()),
            "{t} is not in the table of implemented types of docs/FINDINGS.md"
        );
    }
    assert_eq!(
        implemented.len(),
        FindingType::ALL.len(),
        "{implemented:#?}"
    );
}

#[test]
fn the_default_configuration_table_matches_the_code() {
    let doc = repo_file("docs/FINDINGS.md");
    let rows = table_after(&doc, "## What fires with the default configuration");
    let documented: Vec<(&str, &str)> = rows.iter().map(|r| (unquote(r[0]), r[1])).collect();
    let expected: Vec<(&str, String)> = FindingType::ALL
        .into_iter()
        .map(|t| (t.as_str(), coverage::default_status(t).to_string()))
        .collect();
    assert_eq!(documented.len(), expected.len(), "one row per type");
    for ((doc_type, doc_status), (t, status)) in documented.iter().zip(&expected) {
        assert_eq!(doc_type, t, "rows in catalogue order");
        assert_eq!(doc_status, status, "{t}");
    }
    // The hooks whose records each type's checks read (what `--disable-finding` can leave off).
    let hooks = |t: FindingType| {
        node_agent_common::stats::Hook::ALL
            .into_iter()
            .filter(|&h| coverage::feeding_hooks(t).any(|f| f == h))
            .map(|h| format!("`{}`", h.name()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let table: Vec<String> = FindingType::ALL
        .into_iter()
        .map(|t| format!("| `{t}` | {} | {} |", coverage::default_status(t), hooks(t)))
        .collect();
    for (row, t) in rows.iter().zip(FindingType::ALL) {
        assert_eq!(
            row.get(2).copied(),
            Some(hooks(t).as_str()),
            "{t}: the table should read\n{}",
            table.join("\n")
        );
    }
    // The counts in the text above the table.
    let count = |status: &str| {
        documented
            .iter()
            .filter(|(_, s)| s.starts_with(status))
            .count()
    };
    for (status, words) in [
        ("fires", "fires**: "),
        ("needs a threat list", "needs a threat list**: "),
        ("needs a kernel", "needs a kernel feature**: "),
    ] {
        let n = count(status);
        assert!(
            doc.contains(&format!("**{words}{n} type")),
            "docs/FINDINGS.md should say {n} types under \"{status}\""
        );
    }
}

#[test]
fn the_readme_counts_what_fires_by_default() {
    let readme = repo_file("README.md");
    let count = |want: fn(&coverage::DefaultStatus) -> bool| {
        FindingType::ALL
            .into_iter()
            .filter(|&t| want(&coverage::default_status(t)))
            .count()
    };
    let fires = count(|s| *s == coverage::DefaultStatus::Fires);
    let list = count(|s| *s == coverage::DefaultStatus::NeedsList);
    let kernel = count(|s| matches!(s, coverage::DefaultStatus::NeedsKernelFeature(_)));
    // Line breaks do not matter.
    let flat = readme.split_whitespace().collect::<Vec<_>>().join(" ");
    let said = format!(
        "Of the {} types, {fires} fire with the default configuration, {list} need a threat list",
        FindingType::ALL.len()
    );
    assert!(flat.contains(&said), "README should say: {said}");
    let said = format!("{kernel}, `KernelModuleLoaded`, needs a kernel");
    assert!(flat.contains(&said), "README should say: {said}");
}

#[test]
fn the_default_severity_table_matches_the_catalogue() {
    let doc = repo_file("docs/FINDINGS.md");
    let rows = table_after(&doc, "### Default severities, and where they come from");
    assert_eq!(rows.len(), FindingType::ALL.len(), "one row per type");
    for (row, t) in rows.iter().zip(FindingType::ALL) {
        assert_eq!(unquote(row[0]), t.as_str(), "rows in catalogue order");
        let severity = match t.default_severity() {
            DefaultSeverity::Fixed(Severity::Low) => "Low",
            DefaultSeverity::Fixed(Severity::Medium) => "Medium",
            DefaultSeverity::Fixed(Severity::High) => "High",
            DefaultSeverity::Variable => "Variable",
        };
        assert_eq!(row[1], severity, "{t}");
    }
}

/// `--flags` in the first cell of each row of a table.
fn flags_in_first_column(rows: &[Vec<&str>]) -> Vec<String> {
    rows.iter()
        .flat_map(|row| row[0].split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(str::to_owned)
        .collect()
}

fn help(args: &[&str]) -> String {
    let out = Command::new(AGENT_BIN)
        .args(args)
        .arg("--help")
        .output()
        .expect("node-agent --help runs");
    assert!(out.status.success(), "{args:?} --help failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether `--help` output documents `flag` (as `--flag` followed by a space, `=`, `,`, `<` or
/// the end of the line).
fn documents(help: &str, flag: &str) -> bool {
    help.match_indices(flag).any(|(i, _)| {
        help[i + flag.len()..]
            .chars()
            .next()
            .is_none_or(|c| matches!(c, ' ' | '=' | ',' | '<' | '\n' | '['))
    })
}

#[test]
fn every_run_flag_the_readme_documents_exists() {
    let readme = repo_file("README.md");
    let rows = table_after(&readme, "passes its arguments to `node-agent run`");
    let flags = flags_in_first_column(&rows);
    assert!(flags.len() >= 15, "the flag table was found: {flags:?}");
    let help = help(&["run"]);
    for flag in &flags {
        assert!(
            documents(&help, flag),
            "README documents {flag} for `node-agent run`, which has no such flag:\n{help}"
        );
    }
}

#[test]
fn every_findings_list_flag_the_readme_documents_exists() {
    let readme = repo_file("README.md");
    let start = readme
        .find("`node-agent findings\nlist")
        .or_else(|| readme.find("`node-agent findings list"))
        .expect("README shows `node-agent findings list`");
    let usage = &readme[start..];
    let usage = &usage[..usage.find('`').map_or(usage.len(), |first| {
        usage[first + 1..]
            .find('`')
            .map_or(usage.len(), |end| first + 1 + end)
    })];
    let flags: Vec<&str> = usage
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("--"))
        .collect();
    assert!(!flags.is_empty(), "{usage}");
    let help = help(&["findings", "list"]);
    for flag in flags {
        assert!(
            documents(&help, flag),
            "README documents {flag} for `findings list`, which has no such flag:\n{help}"
        );
    }
}
