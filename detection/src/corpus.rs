//! Reading the curated list files of `shared/threat-intel` for training and evaluation: one
//! entry per line, `#` comments, and optional `# --- label (n) ---` section lines that name the
//! family or source of the entries below them.

/// One entry with the section it appeared under (empty before any section line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The section's label, e.g. `banjori example_domains.txt`.
    pub section: &'a str,
    /// The entry itself.
    pub value: &'a str,
}

/// Entries of a list file, in file order.
pub fn entries(text: &str) -> Vec<Entry<'_>> {
    let mut section = "";
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("# --- ") {
            let rest = rest.trim_end_matches('-').trim();
            // Drop the trailing "(count)".
            section = match rest.rfind(" (") {
                Some(i) if rest.ends_with(')') => &rest[..i],
                _ => rest,
            };
            continue;
        }
        let value = line.split('#').next().unwrap_or("").trim();
        if !value.is_empty() {
            out.push(Entry { section, value });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_label_their_entries() {
        let text = "# header\nfirst.example\n# --- banjori example_domains.txt (2) ---\na.com\nb.com # x\n\n# --- chinad (1) ---\nc.cn\n";
        let e = entries(text);
        assert_eq!(e.len(), 4);
        assert_eq!(
            e[0],
            Entry {
                section: "",
                value: "first.example"
            }
        );
        assert_eq!(e[1].section, "banjori example_domains.txt");
        assert_eq!(e[2].value, "b.com");
        assert_eq!(
            e[3],
            Entry {
                section: "chinad",
                value: "c.cn"
            }
        );
    }
}
