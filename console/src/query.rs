//! The findings filter as it lives in the URL: parsed strictly (an unknown key, a repeated key
//! or a bad value is an error that names it) and written back in one canonical order, so a
//! filtered view can be shared and bookmarked.

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use vigil_crds::finding::SeverityLabel;

/// Longest value accepted for a criterion.
pub const MAX_VALUE_LEN: usize = 512;
/// Findings per page unless the URL says otherwise.
pub const DEFAULT_PAGE_SIZE: u64 = 50;
/// Most findings per page.
pub const MAX_PAGE_SIZE: u64 = 200;

/// What is wrong with a filter in the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// A key the filter does not know.
    #[error("unknown filter `{key}`; the filters are {known}")]
    UnknownKey {
        /// The key.
        key: String,
        /// The known keys.
        known: String,
    },
    /// A key given twice.
    #[error("filter `{0}` is given more than once")]
    Repeated(String),
    /// A value that does not parse.
    #[error("filter `{key}`: {value:?} is not valid: {why}")]
    BadValue {
        /// The key.
        key: String,
        /// The value (cut to a sensible length).
        value: String,
        /// What a valid value looks like.
        why: String,
    },
}

/// Which findings by archive state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Status {
    /// Not archived (the default view).
    #[default]
    Active,
    /// Archived.
    Archived,
    /// Both.
    All,
}

impl Status {
    /// The URL value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Archived => "archived",
            Self::All => "all",
        }
    }
}

/// The column findings are sorted by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SortKey {
    /// Last seen.
    #[default]
    LastSeen,
    /// First seen.
    FirstSeen,
    /// Severity.
    Severity,
    /// Count.
    Count,
    /// Type.
    Type,
    /// Resource.
    Resource,
}

impl SortKey {
    /// Every key, in column order.
    pub const ALL: [SortKey; 6] = [
        Self::Severity,
        Self::Type,
        Self::Resource,
        Self::Count,
        Self::FirstSeen,
        Self::LastSeen,
    ];

    /// The URL value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LastSeen => "lastSeen",
            Self::FirstSeen => "firstSeen",
            Self::Severity => "severity",
            Self::Count => "count",
            Self::Type => "type",
            Self::Resource => "resource",
        }
    }

    /// The column heading.
    pub fn label(self) -> &'static str {
        match self {
            Self::LastSeen => "Last seen",
            Self::FirstSeen => "First seen",
            Self::Severity => "Severity",
            Self::Count => "Count",
            Self::Type => "Finding type",
            Self::Resource => "Resource",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A time bound as written (`24h`, `7d`, an RFC 3339 time) and what it meant when parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeBound {
    /// As written in the URL.
    pub text: String,
    /// The instant.
    pub at: Timestamp,
}

/// The criteria chips of the filter bar.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Criteria {
    /// Any of these severity labels.
    pub severity: Vec<SeverityLabel>,
    /// Exactly this finding type.
    pub finding_type: Option<String>,
    /// Any part of the resource (host, node, namespace, pod, container, image).
    pub resource: Option<String>,
    /// Process name.
    pub process: Option<String>,
    /// Executable path.
    pub executable: Option<String>,
    /// Executable SHA-256.
    pub sha256: Option<String>,
    /// Remote IP address or domain.
    pub remote: Option<String>,
    /// MITRE ATT&CK technique id.
    pub mitre: Option<String>,
    /// Last seen at or after.
    pub since: Option<TimeBound>,
    /// Last seen before.
    pub until: Option<TimeBound>,
    /// Archive state.
    pub status: Status,
}

/// A criterion key of the filter bar: URL key and the label a person reads.
pub const CRITERIA: &[(&str, &str)] = &[
    ("severity", "Severity"),
    ("type", "Finding type"),
    ("resource", "Resource"),
    ("process", "Process name"),
    ("exe", "Executable path"),
    ("sha256", "Executable SHA-256"),
    ("remote", "Remote IP or domain"),
    ("mitre", "MITRE technique"),
    ("since", "Last seen after"),
    ("until", "Last seen before"),
    ("status", "Status"),
];

/// Keys that are not criteria.
const OTHER_KEYS: &[&str] = &["sort", "order", "page", "size", "add", "value"];

/// The findings page's query: criteria, order and page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingsQuery {
    /// The filter.
    pub criteria: Criteria,
    /// Sort column.
    pub sort: SortKey,
    /// Largest first.
    pub descending: bool,
    /// 1-based page.
    pub page: u64,
    /// Findings per page.
    pub page_size: u64,
}

impl Default for FindingsQuery {
    fn default() -> Self {
        Self {
            criteria: Criteria::default(),
            sort: SortKey::LastSeen,
            descending: true,
            page: 1,
            page_size: DEFAULT_PAGE_SIZE,
        }
    }
}

fn bad(key: &str, value: &str, why: impl Into<String>) -> QueryError {
    let mut value = value.to_owned();
    if value.len() > 80 {
        let mut cut = 80;
        while !value.is_char_boundary(cut) {
            cut -= 1;
        }
        value.truncate(cut);
        value.push('…');
    }
    QueryError::BadValue {
        key: key.to_owned(),
        value,
        why: why.into(),
    }
}

fn parse_label(s: &str) -> Option<SeverityLabel> {
    match s.to_ascii_lowercase().as_str() {
        "low" => Some(SeverityLabel::Low),
        "medium" => Some(SeverityLabel::Medium),
        "high" => Some(SeverityLabel::High),
        "critical" => Some(SeverityLabel::Critical),
        _ => None,
    }
}

/// The URL spelling of a label.
pub fn label_str(label: SeverityLabel) -> &'static str {
    match label {
        SeverityLabel::Low => "low",
        SeverityLabel::Medium => "medium",
        SeverityLabel::High => "high",
        SeverityLabel::Critical => "critical",
    }
}

/// `24h`, `30m`, `7d`, `2w` back from `now`, or an RFC 3339 time.
fn parse_time(key: &str, value: &str, now: Timestamp) -> Result<TimeBound, QueryError> {
    let why = "want a time back from now (30m, 24h, 7d, 2w) or an RFC 3339 time \
               (2026-11-27T10:00:00Z)";
    if let Ok(at) = value.parse::<Timestamp>() {
        return Ok(TimeBound {
            text: value.to_owned(),
            at,
        });
    }
    let (digits, unit) = value.split_at(value.len().saturating_sub(1));
    let n: i64 = digits.parse().map_err(|_| bad(key, value, why))?;
    let seconds = match unit {
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad(key, value, why)),
    };
    let back = n
        .checked_mul(seconds)
        .filter(|s| *s >= 0 && *s <= 100 * 365 * 86_400)
        .ok_or_else(|| bad(key, value, "at most 100 years back"))?;
    let at = now
        .checked_sub(SignedDuration::from_secs(back))
        .map_err(|_| bad(key, value, why))?;
    Ok(TimeBound {
        text: value.to_owned(),
        at,
    })
}

fn is_technique(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: &[u8]| r.iter().all(u8::is_ascii_digit);
    match b.len() {
        5 => b[0] == b'T' && digits(&b[1..]),
        9 => b[0] == b'T' && digits(&b[1..5]) && b[5] == b'.' && digits(&b[6..]),
        _ => false,
    }
}

impl Criteria {
    /// Sets one criterion from its URL key and value.
    pub fn set(&mut self, key: &str, value: &str, now: Timestamp) -> Result<(), QueryError> {
        let value = value.trim();
        if value.len() > MAX_VALUE_LEN {
            return Err(bad(key, value, format!("at most {MAX_VALUE_LEN} bytes")));
        }
        if value.is_empty() {
            return Err(bad(key, value, "a value is needed"));
        }
        let text = || Some(value.to_owned());
        match key {
            "severity" => {
                for part in value.split(',') {
                    let label = parse_label(part.trim())
                        .ok_or_else(|| bad(key, value, "want low, medium, high or critical"))?;
                    if !self.severity.contains(&label) {
                        self.severity.push(label);
                    }
                }
                self.severity.sort_by_key(|l| label_rank(*l));
            }
            "type" => self.finding_type = text(),
            "resource" => self.resource = text(),
            "process" => self.process = text(),
            "exe" => {
                if !value.starts_with('/') {
                    return Err(bad(key, value, "want an absolute path"));
                }
                self.executable = text();
            }
            "sha256" => {
                if value.len() != 64 || !value.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(bad(key, value, "want 64 hexadecimal digits"));
                }
                self.sha256 = Some(value.to_ascii_lowercase());
            }
            "remote" => self.remote = text(),
            "mitre" => {
                let t = value.to_ascii_uppercase();
                if !is_technique(&t) {
                    return Err(bad(
                        key,
                        value,
                        "want a technique id such as T1059 or T1059.004",
                    ));
                }
                self.mitre = Some(t);
            }
            "since" => self.since = Some(parse_time(key, value, now)?),
            "until" => self.until = Some(parse_time(key, value, now)?),
            "status" => {
                self.status = match value {
                    "active" => Status::Active,
                    "archived" => Status::Archived,
                    "all" => Status::All,
                    _ => return Err(bad(key, value, "want active, archived or all")),
                }
            }
            _ => return Err(unknown(key)),
        }
        Ok(())
    }

    /// The chips: URL key, label and value as shown, in the filter bar's order (the default
    /// status, active, shows too: it is a filter the reader should see).
    pub fn chips(&self) -> Vec<(&'static str, &'static str, String)> {
        let mut chips = Vec::new();
        for (key, label) in CRITERIA {
            if let Some(v) = self.value_of(key) {
                chips.push((*key, *label, v));
            }
        }
        chips
    }

    fn value_of(&self, key: &str) -> Option<String> {
        match key {
            "severity" => (!self.severity.is_empty()).then(|| {
                self.severity
                    .iter()
                    .map(|l| label_str(*l))
                    .collect::<Vec<_>>()
                    .join(",")
            }),
            "type" => self.finding_type.clone(),
            "resource" => self.resource.clone(),
            "process" => self.process.clone(),
            "exe" => self.executable.clone(),
            "sha256" => self.sha256.clone(),
            "remote" => self.remote.clone(),
            "mitre" => self.mitre.clone(),
            "since" => self.since.as_ref().map(|t| t.text.clone()),
            "until" => self.until.as_ref().map(|t| t.text.clone()),
            "status" => Some(self.status.as_str().to_owned()),
            _ => None,
        }
    }

    /// These criteria without one key (a chip's remove link); `status` goes back to active.
    pub fn without(&self, key: &str) -> Criteria {
        let mut c = self.clone();
        match key {
            "severity" => c.severity.clear(),
            "type" => c.finding_type = None,
            "resource" => c.resource = None,
            "process" => c.process = None,
            "exe" => c.executable = None,
            "sha256" => c.sha256 = None,
            "remote" => c.remote = None,
            "mitre" => c.mitre = None,
            "since" => c.since = None,
            "until" => c.until = None,
            "status" => c.status = Status::Active,
            _ => {}
        }
        c
    }
}

fn label_rank(l: SeverityLabel) -> u8 {
    match l {
        SeverityLabel::Low => 0,
        SeverityLabel::Medium => 1,
        SeverityLabel::High => 2,
        SeverityLabel::Critical => 3,
    }
}

fn unknown(key: &str) -> QueryError {
    QueryError::UnknownKey {
        key: key.chars().take(40).collect(),
        known: CRITERIA
            .iter()
            .map(|(k, _)| *k)
            .chain(OTHER_KEYS.iter().copied())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// A parsed findings URL: the query, and a criterion the filter bar's form asked to add
/// (`add=KEY&value=VALUE`), already applied; the server answers that with a redirect to the
/// canonical URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedQuery {
    /// The query.
    pub query: FindingsQuery,
    /// Whether the filter bar's form added a criterion.
    pub added: bool,
}

/// Parses the query string of `/findings` (without the `?`).
pub fn parse(raw: &str, now: Timestamp) -> Result<ParsedQuery, QueryError> {
    let mut q = FindingsQuery::default();
    let mut seen: Vec<String> = Vec::new();
    let mut add: Option<String> = None;
    let mut add_value: Option<String> = None;
    for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
        if seen.iter().any(|k| *k == key) {
            return Err(QueryError::Repeated(key.chars().take(40).collect()));
        }
        seen.push(key.to_string());
        match key.as_ref() {
            "sort" => {
                q.sort = SortKey::parse(&value).ok_or_else(|| {
                    bad(
                        "sort",
                        &value,
                        format!(
                            "want one of {}",
                            SortKey::ALL.map(SortKey::as_str).join(", ")
                        ),
                    )
                })?;
            }
            "order" => {
                q.descending = match value.as_ref() {
                    "desc" => true,
                    "asc" => false,
                    _ => return Err(bad("order", &value, "want asc or desc")),
                }
            }
            "page" => {
                q.page = value
                    .parse()
                    .ok()
                    .filter(|p| (1..=1_000_000).contains(p))
                    .ok_or_else(|| bad("page", &value, "want a page number from 1"))?;
            }
            "size" => {
                q.page_size = value
                    .parse()
                    .ok()
                    .filter(|s| (1..=MAX_PAGE_SIZE).contains(s))
                    .ok_or_else(|| {
                        bad(
                            "size",
                            &value,
                            format!("want 1 to {MAX_PAGE_SIZE} findings per page"),
                        )
                    })?;
            }
            "add" => add = Some(value.into_owned()),
            "value" => add_value = Some(value.into_owned()),
            k => q.criteria.set(k, &value, now)?,
        }
    }
    let added = match (add, add_value) {
        (Some(key), Some(value)) => {
            if !CRITERIA.iter().any(|(k, _)| *k == key) {
                return Err(unknown(&key));
            }
            q.criteria.set(&key, &value, now)?;
            q.page = 1;
            true
        }
        (Some(key), None) => return Err(bad(&key, "", "a value is needed")),
        (None, Some(_)) => {
            return Err(bad("value", "", "`value` comes with `add` (the criterion)"));
        }
        (None, None) => false,
    };
    Ok(ParsedQuery { query: q, added })
}

impl FindingsQuery {
    /// The canonical query string (without `?`): criteria in the bar's order, then sort and
    /// page where they differ from the defaults.
    pub fn to_query_string(&self) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (key, _) in CRITERIA {
            if *key == "status" && self.criteria.status == Status::Active {
                continue;
            }
            if let Some(v) = self.criteria.value_of(key) {
                out.append_pair(key, &v);
            }
        }
        if self.sort != SortKey::LastSeen || !self.descending {
            out.append_pair("sort", self.sort.as_str());
            out.append_pair("order", if self.descending { "desc" } else { "asc" });
        }
        if self.page_size != DEFAULT_PAGE_SIZE {
            out.append_pair("size", &self.page_size.to_string());
        }
        if self.page != 1 {
            out.append_pair("page", &self.page.to_string());
        }
        out.finish()
    }

    /// `/findings?…` for this query.
    pub fn href(&self) -> String {
        let qs = self.to_query_string();
        if qs.is_empty() {
            "/findings".to_owned()
        } else {
            format!("/findings?{qs}")
        }
    }

    /// The same filter, another page.
    pub fn with_page(&self, page: u64) -> Self {
        Self {
            page,
            ..self.clone()
        }
    }

    /// Sorted by `key`: a second click on the current column reverses it.
    pub fn sorted_by(&self, key: SortKey) -> Self {
        let descending = if self.sort == key {
            !self.descending
        } else {
            // Text columns read best A to Z; numbers and times largest first.
            !matches!(key, SortKey::Type | SortKey::Resource)
        };
        Self {
            sort: key,
            descending,
            page: 1,
            ..self.clone()
        }
    }

    /// The same order with other criteria, first page.
    pub fn with_criteria(&self, criteria: Criteria) -> Self {
        Self {
            criteria,
            page: 1,
            ..self.clone()
        }
    }

    /// Rows skipped before this page.
    pub fn offset(&self) -> u64 {
        self.page.saturating_sub(1).saturating_mul(self.page_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-12-01T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_filter_round_trips_through_its_canonical_url() {
        let raw = "type=Backdoor%3ARuntime%2FC%26CActivity.B&severity=critical,high&mitre=t1059.004&since=24h&status=all&sort=severity&order=asc&page=3";
        let p = parse(raw, now()).unwrap();
        assert!(!p.added);
        let q = p.query;
        assert_eq!(
            q.criteria.severity,
            [SeverityLabel::High, SeverityLabel::Critical]
        );
        assert_eq!(q.criteria.mitre.as_deref(), Some("T1059.004"));
        assert_eq!(
            q.criteria.since.as_ref().unwrap().at,
            "2026-11-30T12:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(
            (q.sort, q.descending, q.page),
            (SortKey::Severity, false, 3)
        );
        let again = parse(&q.to_query_string(), now()).unwrap().query;
        assert_eq!(again, q);
        assert_eq!(
            q.to_query_string(),
            "severity=high%2Ccritical&type=Backdoor%3ARuntime%2FC%26CActivity.B&mitre=T1059.004&since=24h&status=all&sort=severity&order=asc&page=3"
        );
    }

    #[test]
    fn the_filter_bar_form_adds_a_criterion_and_goes_to_page_one() {
        let p = parse("severity=high&page=4&add=process&value=nc", now()).unwrap();
        assert!(p.added);
        assert_eq!(p.query.criteria.process.as_deref(), Some("nc"));
        assert_eq!(p.query.href(), "/findings?severity=high&process=nc");
        let chips = p.query.criteria.chips();
        assert_eq!(
            chips.iter().map(|c| c.0).collect::<Vec<_>>(),
            ["severity", "process", "status"]
        );
        assert_eq!(
            p.query
                .with_criteria(p.query.criteria.without("severity"))
                .href(),
            "/findings?process=nc"
        );
    }

    #[test]
    fn bad_filters_are_named() {
        let err = |raw: &str| parse(raw, now()).unwrap_err().to_string();
        assert!(err("colour=red").contains("unknown filter `colour`"));
        assert!(err("type=a&type=b").contains("`type` is given more than once"));
        assert!(err("severity=urgent").contains("want low, medium, high or critical"));
        assert!(err("sha256=abc").contains("64 hexadecimal digits"));
        assert!(err("mitre=1059").contains("technique id"));
        assert!(err("since=yesterday").contains("RFC 3339"));
        assert!(err("since=99999999999d").contains("100 years"));
        assert!(err("page=0").contains("page number"));
        assert!(err("size=100000").contains("findings per page"));
        assert!(err("exe=nc").contains("absolute path"));
        assert!(err("add=colour&value=x").contains("unknown filter `colour`"));
        assert!(err("add=type").contains("a value is needed"));
        assert!(err(&format!("process={}", "x".repeat(600))).contains("at most 512 bytes"));
    }

    #[test]
    fn sorting_the_current_column_again_reverses_it() {
        let q = FindingsQuery::default();
        let s = q.sorted_by(SortKey::LastSeen);
        assert!(!s.descending);
        let t = q.sorted_by(SortKey::Type);
        assert!(!t.descending);
        assert!(q.sorted_by(SortKey::Severity).descending);
        assert_eq!(q.with_page(3).offset(), 100);
    }
}
