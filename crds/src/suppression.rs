//! Suppression criteria (GuardDuty filter style) and their evaluation against findings.
//!
//! A rule's criteria map finding attribute paths (`type`, `severity`, `process.executablePath`,
//! `resource.container.image`, `context.filePath`, ...) to conditions. A finding matches a rule when
//! every criterion holds. Paths are evaluated against the finding serialised as JSON; a path that
//! crosses a list (`process.lineage.name`) yields every element's value.
//!
//! Semantics of one condition, all of whose operators must hold:
//! - `equals`: some value equals one of the listed values (numbers compare numerically);
//! - `notEquals`: no value equals any listed value (holds when the attribute is absent);
//! - `greaterThan`, `greaterThanOrEqual`, `lessThan`, `lessThanOrEqual`: some numeric value compares;
//! - `matches` / `notMatches`: some / no value matches one of the globs (`*` any run of characters
//!   including `/`, `?` one character, `[abc]` a class), over the whole value;
//! - `matchesRegex` / `notMatchesRegex`: the same with regular expressions over the whole value.

use std::collections::BTreeMap;

use globset::{GlobBuilder, GlobMatcher};
use kube::KubeSchema;
use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::{finding::Finding, limits};

/// What happens to a matching finding.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SuppressionAction {
    /// Mark matching findings archived (they are kept, never deleted).
    #[default]
    #[serde(rename = "ARCHIVE")]
    Archive,
    /// Only count matches, e.g. to preview a rule before it archives anything.
    #[serde(rename = "NOOP")]
    Noop,
}

/// Criteria of a rule: attribute path to condition; all must hold.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FindingCriteria {
    /// Attribute path (dot separated, camelCase as in the finding JSON) to condition.
    #[schemars(extend("minProperties" = 1, "maxProperties" = limits::CRITERIA))]
    pub criterion: BTreeMap<String, Condition>,
}

/// Conditions on one attribute; every operator given must hold.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.equals) || has(self.notEquals) || has(self.greaterThan) || has(self.greaterThanOrEqual) || has(self.lessThan) || has(self.lessThanOrEqual) || has(self.matches) || has(self.notMatches) || has(self.matchesRegex) || has(self.notMatchesRegex)").message("a condition needs at least one operator"))]
pub struct Condition {
    /// Some value equals one of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::CONDITION_VALUES), inner(length(max = limits::CONDITION_VALUE)))]
    pub equals: Option<Vec<String>>,
    /// No value equals any of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::CONDITION_VALUES), inner(length(max = limits::CONDITION_VALUE)))]
    pub not_equals: Option<Vec<String>>,
    /// Some numeric value is greater.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub greater_than: Option<f64>,
    /// Some numeric value is greater or equal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub greater_than_or_equal: Option<f64>,
    /// Some numeric value is less.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub less_than: Option<f64>,
    /// Some numeric value is less or equal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub less_than_or_equal: Option<f64>,
    /// Some value matches one of these globs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::CONDITION_VALUES), inner(length(max = limits::CONDITION_VALUE)))]
    pub matches: Option<Vec<String>>,
    /// No value matches any of these globs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::CONDITION_VALUES), inner(length(max = limits::CONDITION_VALUE)))]
    pub not_matches: Option<Vec<String>>,
    /// Some value matches one of these regular expressions (whole value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::CONDITION_VALUES), inner(length(max = limits::CONDITION_VALUE)))]
    pub matches_regex: Option<Vec<String>>,
    /// No value matches any of these regular expressions (whole value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::CONDITION_VALUES), inner(length(max = limits::CONDITION_VALUE)))]
    pub not_matches_regex: Option<Vec<String>>,
}

/// Top-level attributes of a finding that criteria may start from.
pub const FINDING_ATTRIBUTES: &[&str] = &[
    "id",
    "schemaVersion",
    "type",
    "title",
    "description",
    "severity",
    "severityLabel",
    "createdAt",
    "updatedAt",
    "resource",
    "resourceRole",
    "count",
    "eventFirstSeen",
    "eventLastSeen",
    "process",
    "context",
    "network",
    "dns",
    "evidence",
    "archived",
    "actionsTaken",
];

/// Why a rule cannot be used; every variant names the rule and, where relevant, the path.
#[derive(Debug, Error)]
pub enum SuppressionError {
    /// No criterion at all.
    #[error("suppression rule {rule}: criteria are empty, the rule would match every finding")]
    EmptyCriteria {
        /// Rule name.
        rule: String,
    },
    /// A condition without operators.
    #[error("suppression rule {rule}: condition on {path} has no operator")]
    EmptyCondition {
        /// Rule name.
        rule: String,
        /// Attribute path.
        path: String,
    },
    /// A path that does not start at a finding attribute.
    #[error("suppression rule {rule}: {path} is not a finding attribute (known: {known})", known = FINDING_ATTRIBUTES.join(", "))]
    UnknownAttribute {
        /// Rule name.
        rule: String,
        /// Attribute path.
        path: String,
    },
    /// A regular expression that does not compile.
    #[error("suppression rule {rule}: invalid regex {pattern:?} on {path}")]
    InvalidRegex {
        /// Rule name.
        rule: String,
        /// Attribute path.
        path: String,
        /// The pattern.
        pattern: String,
        /// What the regex compiler said.
        #[source]
        source: regex::Error,
    },
    /// More than a limit of [`crate::limits`] allows (the CRD refuses the same).
    #[error("suppression rule {rule}: {what} has {count}, at most {max} are allowed")]
    TooLarge {
        /// Rule name.
        rule: String,
        /// What is too large, e.g. `criteria` or `equals on process.name`.
        what: String,
        /// How many there are (items, or characters).
        count: usize,
        /// The limit.
        max: u32,
    },
    /// A glob that does not compile.
    #[error("suppression rule {rule}: invalid glob {pattern:?} on {path}")]
    InvalidGlob {
        /// Rule name.
        rule: String,
        /// Attribute path.
        path: String,
        /// The pattern.
        pattern: String,
        /// What the glob compiler said.
        #[source]
        source: globset::Error,
    },
}

/// A rule with its patterns compiled once.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    name: String,
    action: SuppressionAction,
    criteria: Vec<CompiledCriterion>,
}

#[derive(Debug, Clone)]
struct CompiledCriterion {
    path: Vec<String>,
    equals: Option<Vec<String>>,
    not_equals: Option<Vec<String>>,
    greater_than: Option<f64>,
    greater_than_or_equal: Option<f64>,
    less_than: Option<f64>,
    less_than_or_equal: Option<f64>,
    matches: Option<Vec<GlobMatcher>>,
    not_matches: Option<Vec<GlobMatcher>>,
    matches_regex: Option<Vec<Regex>>,
    not_matches_regex: Option<Vec<Regex>>,
}

impl CompiledRule {
    /// Validate and compile a rule.
    pub fn compile(
        name: &str,
        criteria: &FindingCriteria,
        action: SuppressionAction,
    ) -> Result<Self, SuppressionError> {
        if criteria.criterion.is_empty() {
            return Err(SuppressionError::EmptyCriteria {
                rule: name.to_owned(),
            });
        }
        check_limit(name, "criteria", criteria.criterion.len(), limits::CRITERIA)?;
        let mut compiled = Vec::with_capacity(criteria.criterion.len());
        for (path, cond) in &criteria.criterion {
            compiled.push(compile_criterion(name, path, cond)?);
        }
        Ok(Self {
            name: name.to_owned(),
            action,
            criteria: compiled,
        })
    }

    /// Rule name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Rule action.
    pub fn action(&self) -> SuppressionAction {
        self.action
    }

    /// Whether a finding, serialised as JSON, matches every criterion.
    pub fn matches_json(&self, finding: &Value) -> bool {
        self.criteria.iter().all(|c| c.holds(finding))
    }

    /// Whether a finding matches every criterion.
    pub fn matches(&self, finding: &Finding) -> Result<bool, serde_json::Error> {
        Ok(self.matches_json(&serde_json::to_value(finding)?))
    }
}

fn check_limit(rule: &str, what: &str, count: usize, max: u32) -> Result<(), SuppressionError> {
    if count > max as usize {
        return Err(SuppressionError::TooLarge {
            rule: rule.to_owned(),
            what: what.to_owned(),
            count,
            max,
        });
    }
    Ok(())
}

fn compile_criterion(
    rule: &str,
    path: &str,
    cond: &Condition,
) -> Result<CompiledCriterion, SuppressionError> {
    let segments: Vec<String> = path.split('.').map(str::to_owned).collect();
    let known = segments
        .first()
        .is_some_and(|s| FINDING_ATTRIBUTES.contains(&s.as_str()));
    if !known || segments.iter().any(String::is_empty) {
        return Err(SuppressionError::UnknownAttribute {
            rule: rule.to_owned(),
            path: path.to_owned(),
        });
    }
    let has_operator = cond.equals.is_some()
        || cond.not_equals.is_some()
        || cond.greater_than.is_some()
        || cond.greater_than_or_equal.is_some()
        || cond.less_than.is_some()
        || cond.less_than_or_equal.is_some()
        || cond.matches.is_some()
        || cond.not_matches.is_some()
        || cond.matches_regex.is_some()
        || cond.not_matches_regex.is_some();
    if !has_operator {
        return Err(SuppressionError::EmptyCondition {
            rule: rule.to_owned(),
            path: path.to_owned(),
        });
    }
    for (operator, values) in [
        ("equals", &cond.equals),
        ("notEquals", &cond.not_equals),
        ("matches", &cond.matches),
        ("notMatches", &cond.not_matches),
        ("matchesRegex", &cond.matches_regex),
        ("notMatchesRegex", &cond.not_matches_regex),
    ] {
        let values = values.as_deref().unwrap_or_default();
        let what = || format!("{operator} on {path}");
        check_limit(rule, &what(), values.len(), limits::CONDITION_VALUES)?;
        for value in values {
            let chars = value.chars().count();
            check_limit(
                rule,
                &format!("a value of {}", what()),
                chars,
                limits::CONDITION_VALUE,
            )?;
        }
    }
    let globs =
        |patterns: &Option<Vec<String>>| -> Result<Option<Vec<GlobMatcher>>, SuppressionError> {
            patterns
                .as_ref()
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            GlobBuilder::new(p)
                                .literal_separator(false)
                                .build()
                                .map(|g| g.compile_matcher())
                                .map_err(|source| SuppressionError::InvalidGlob {
                                    rule: rule.to_owned(),
                                    path: path.to_owned(),
                                    pattern: p.clone(),
                                    source,
                                })
                        })
                        .collect()
                })
                .transpose()
        };
    let regexes = |patterns: &Option<Vec<String>>| -> Result<Option<Vec<Regex>>, SuppressionError> {
        patterns
            .as_ref()
            .map(|ps| {
                ps.iter()
                    .map(|p| {
                        // Anchor so a pattern means the whole value, as globs do. The pattern must
                        // be a regex on its own first: `a)|(b` is none, but anchored as
                        // `^(?:a)|(b)$` it would compile and match any value starting with `a`.
                        Regex::new(p)
                            .and_then(|_| Regex::new(&format!("^(?:{p})$")))
                            .map_err(|source| SuppressionError::InvalidRegex {
                                rule: rule.to_owned(),
                                path: path.to_owned(),
                                pattern: p.clone(),
                                source,
                            })
                    })
                    .collect()
            })
            .transpose()
    };
    Ok(CompiledCriterion {
        path: segments,
        equals: cond.equals.clone(),
        not_equals: cond.not_equals.clone(),
        greater_than: cond.greater_than,
        greater_than_or_equal: cond.greater_than_or_equal,
        less_than: cond.less_than,
        less_than_or_equal: cond.less_than_or_equal,
        matches: globs(&cond.matches)?,
        not_matches: globs(&cond.not_matches)?,
        matches_regex: regexes(&cond.matches_regex)?,
        not_matches_regex: regexes(&cond.not_matches_regex)?,
    })
}

/// Scalar values at `path`, flattening lists on the way and at the end.
fn resolve<'v>(value: &'v Value, path: &[String], out: &mut Vec<&'v Value>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| resolve(v, path, out)),
        Value::Object(map) => {
            if let Some((first, rest)) = path.split_first()
                && let Some(child) = map.get(first)
            {
                resolve(child, rest, out);
            }
        }
        Value::Null => {}
        scalar if path.is_empty() => out.push(scalar),
        _ => {}
    }
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn equals(v: &Value, want: &str) -> bool {
    match (as_number(v), want.parse::<f64>()) {
        (Some(have), Ok(want_n)) if v.is_number() => have == want_n,
        _ => as_text(v) == want,
    }
}

impl CompiledCriterion {
    fn holds(&self, finding: &Value) -> bool {
        let mut values = Vec::new();
        resolve(finding, &self.path, &mut values);
        let any = |f: &dyn Fn(&Value) -> bool| values.iter().any(|v| f(v));
        let num = |f: &dyn Fn(f64) -> bool| values.iter().any(|v| as_number(v).is_some_and(f));
        if let Some(list) = &self.equals
            && !any(&|v| list.iter().any(|w| equals(v, w)))
        {
            return false;
        }
        if let Some(list) = &self.not_equals
            && any(&|v| list.iter().any(|w| equals(v, w)))
        {
            return false;
        }
        if let Some(x) = self.greater_than
            && !num(&|n| n > x)
        {
            return false;
        }
        if let Some(x) = self.greater_than_or_equal
            && !num(&|n| n >= x)
        {
            return false;
        }
        if let Some(x) = self.less_than
            && !num(&|n| n < x)
        {
            return false;
        }
        if let Some(x) = self.less_than_or_equal
            && !num(&|n| n <= x)
        {
            return false;
        }
        if let Some(globs) = &self.matches
            && !any(&|v| globs.iter().any(|g| g.is_match(as_text(v))))
        {
            return false;
        }
        if let Some(globs) = &self.not_matches
            && any(&|v| globs.iter().any(|g| g.is_match(as_text(v))))
        {
            return false;
        }
        if let Some(res) = &self.matches_regex
            && !any(&|v| res.iter().any(|r| r.is_match(&as_text(v))))
        {
            return false;
        }
        if let Some(res) = &self.not_matches_regex
            && any(&|v| res.iter().any(|r| r.is_match(&as_text(v))))
        {
            return false;
        }
        true
    }
}

/// A finding archived by a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archival {
    /// The finding's key as the caller gave it (object name, id, ...).
    pub finding: String,
    /// The ARCHIVE rule that archived it: the first matching one by name.
    pub rule: String,
}

/// Matches of one rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleTally {
    /// Findings matching the rule.
    pub matched: u64,
    /// Findings this rule archived (0 for NOOP rules).
    pub archived: u64,
}

/// Result of evaluating rules over findings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evaluation {
    /// Findings to archive, in input order.
    pub archived: Vec<Archival>,
    /// Per-rule tallies, by rule name; every rule has an entry.
    pub tallies: BTreeMap<String, RuleTally>,
}

/// Evaluate rules over findings given as `(key, finding JSON)`: a finding is archived by the first
/// ARCHIVE rule (by name) that matches it. NOOP rules only count matches.
pub fn archived_set<'a>(
    rules: &[CompiledRule],
    findings: impl IntoIterator<Item = (&'a str, &'a Value)>,
) -> Evaluation {
    let mut ordered: Vec<&CompiledRule> = rules.iter().collect();
    ordered.sort_by(|a, b| a.name.cmp(&b.name));
    let mut eval = Evaluation {
        archived: Vec::new(),
        tallies: ordered
            .iter()
            .map(|r| (r.name.clone(), RuleTally::default()))
            .collect(),
    };
    for (key, finding) in findings {
        let mut archived_by: Option<&str> = None;
        for rule in &ordered {
            if !rule.matches_json(finding) {
                continue;
            }
            let tally = eval.tallies.entry(rule.name.clone()).or_default();
            tally.matched += 1;
            if rule.action == SuppressionAction::Archive && archived_by.is_none() {
                tally.archived += 1;
                archived_by = Some(&rule.name);
            }
        }
        if let Some(rule) = archived_by {
            eval.archived.push(Archival {
                finding: key.to_owned(),
                rule: rule.to_owned(),
            });
        }
    }
    eval
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn finding() -> Value {
        serde_json::to_value(crate::testdata::finding()).unwrap()
    }

    fn rule(criteria: Value) -> Result<CompiledRule, SuppressionError> {
        let criteria: FindingCriteria =
            serde_json::from_value(json!({ "criterion": criteria })).unwrap();
        CompiledRule::compile("r", &criteria, SuppressionAction::Archive)
    }

    #[test]
    fn conditions_table() {
        let table: Vec<(&str, Value, bool)> = vec![
            (
                "type equals",
                json!({"type": {"equals": ["Execution:Runtime/NewBinaryExecuted"]}}),
                true,
            ),
            (
                "type equals other",
                json!({"type": {"equals": ["Execution:Runtime/ReverseShell"]}}),
                false,
            ),
            (
                "type any of",
                json!({"type": {"equals": ["x", "Execution:Runtime/NewBinaryExecuted"]}}),
                true,
            ),
            (
                "not equals holds",
                json!({"type": {"notEquals": ["x"]}}),
                true,
            ),
            (
                "not equals fails",
                json!({"type": {"notEquals": ["Execution:Runtime/NewBinaryExecuted"]}}),
                false,
            ),
            (
                "severity numeric equals",
                json!({"severity": {"equals": ["5"]}}),
                true,
            ),
            (
                "severity gt",
                json!({"severity": {"greaterThan": 4.9}}),
                true,
            ),
            (
                "severity gt fails",
                json!({"severity": {"greaterThan": 5.0}}),
                false,
            ),
            (
                "severity gte",
                json!({"severity": {"greaterThanOrEqual": 5.0}}),
                true,
            ),
            ("severity lt", json!({"severity": {"lessThan": 5.0}}), false),
            (
                "severity lte",
                json!({"severity": {"lessThanOrEqual": 5.0}}),
                true,
            ),
            (
                "severity range",
                json!({"severity": {"greaterThan": 4.0, "lessThan": 6.0}}),
                true,
            ),
            (
                "glob exe",
                json!({"process.executablePath": {"matches": ["/usr/bin/*"]}}),
                true,
            ),
            (
                "glob exe miss",
                json!({"process.executablePath": {"matches": ["/opt/*"]}}),
                false,
            ),
            (
                "not glob",
                json!({"process.executablePath": {"notMatches": ["/tmp/*"]}}),
                true,
            ),
            (
                "image glob",
                json!({"resource.container.image": {"matches": ["registry.example/*:*"]}}),
                true,
            ),
            (
                "regex whole value",
                json!({"process.name": {"matchesRegex": ["cur"]}}),
                false,
            ),
            (
                "regex",
                json!({"process.name": {"matchesRegex": ["cu?rl"]}}),
                true,
            ),
            (
                "not regex",
                json!({"process.name": {"notMatchesRegex": ["curl"]}}),
                false,
            ),
            (
                "list path any",
                json!({"process.lineage.name": {"equals": ["bash"]}}),
                true,
            ),
            (
                "list path none",
                json!({"process.lineage.name": {"notEquals": ["sshd"]}}),
                true,
            ),
            (
                "absent positive",
                json!({"context.moduleName": {"equals": ["x"]}}),
                false,
            ),
            (
                "absent negative",
                json!({"context.moduleName": {"notEquals": ["x"]}}),
                true,
            ),
            (
                "absent numeric",
                json!({"network.remotePort": {"greaterThan": 1.0}}),
                false,
            ),
            (
                "bool equals",
                json!({"archived": {"equals": ["false"]}}),
                true,
            ),
            (
                "all criteria",
                json!({"type": {"equals": ["Execution:Runtime/NewBinaryExecuted"]}, "severity": {"greaterThan": 9.0}}),
                false,
            ),
        ];
        let f = finding();
        for (name, criteria, want) in table {
            let r = rule(criteria).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(r.matches_json(&f), want, "{name}");
        }
    }

    #[test]
    fn invalid_rules_name_rule_and_path() {
        let err = rule(json!({"process.name": {"matchesRegex": ["("]}})).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("rule r") && msg.contains("process.name") && msg.contains("regex"),
            "{msg}"
        );
        let err = rule(json!({"process.name": {"matches": ["[a"]}})).unwrap_err();
        assert!(
            matches!(err, SuppressionError::InvalidGlob { ref path, .. } if path == "process.name"),
            "{err}"
        );
        let err = rule(json!({"bogus.field": {"equals": ["x"]}})).unwrap_err();
        assert!(
            matches!(err, SuppressionError::UnknownAttribute { ref path, .. } if path == "bogus.field")
        );
        let err = rule(json!({"type": {}})).unwrap_err();
        assert!(matches!(err, SuppressionError::EmptyCondition { .. }));
        let err = rule(json!({})).unwrap_err();
        assert!(matches!(err, SuppressionError::EmptyCriteria { .. }));
    }

    #[test]
    fn rules_over_the_crd_limits_are_refused_with_the_limit() {
        let many: Vec<String> = (0..=limits::CONDITION_VALUES)
            .map(|i| i.to_string())
            .collect();
        let err = rule(json!({"process.name": {"equals": many}})).unwrap_err();
        assert!(
            err.to_string()
                .contains("equals on process.name has 257, at most 256"),
            "{err}"
        );
        let long = "a".repeat(limits::CONDITION_VALUE as usize + 1);
        let err = rule(json!({"process.name": {"matches": [long]}})).unwrap_err();
        assert!(
            matches!(err, SuppressionError::TooLarge { max, .. } if max == limits::CONDITION_VALUE)
        );
        let criteria: serde_json::Map<String, Value> = (0..=limits::CRITERIA)
            .map(|i| (format!("context.k{i}"), json!({"equals": ["x"]})))
            .collect();
        let err = rule(Value::Object(criteria)).unwrap_err();
        assert!(err.to_string().contains("criteria has 33"), "{err}");
        let at_limit: Vec<String> = (0..limits::CONDITION_VALUES)
            .map(|i| i.to_string())
            .collect();
        assert!(rule(json!({"process.name": {"equals": at_limit}})).is_ok());
    }

    #[test]
    fn known_attributes_are_the_finding_fields() {
        use kube::CustomResourceExt;
        let crd = serde_json::to_value(crate::RuntimeFinding::crd()).unwrap();
        let props = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
            ["properties"];
        let mut keys: Vec<&str> = props
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        let mut known = FINDING_ATTRIBUTES.to_vec();
        known.sort_unstable();
        assert_eq!(keys, known);
    }

    #[test]
    fn archived_set_uses_first_archive_rule_and_counts_noop() {
        let f = finding();
        let mut other = f.clone();
        other["type"] = json!("Discovery:Runtime/SuspiciousCommand");
        let crit = |t: &str| -> FindingCriteria {
            serde_json::from_value(json!({"criterion": {"type": {"equals": [t]}}})).unwrap()
        };
        let rules = vec![
            CompiledRule::compile(
                "z-archive",
                &crit("Execution:Runtime/NewBinaryExecuted"),
                SuppressionAction::Archive,
            )
            .unwrap(),
            CompiledRule::compile(
                "a-archive",
                &crit("Execution:Runtime/NewBinaryExecuted"),
                SuppressionAction::Archive,
            )
            .unwrap(),
            CompiledRule::compile(
                "preview",
                &crit("Discovery:Runtime/SuspiciousCommand"),
                SuppressionAction::Noop,
            )
            .unwrap(),
        ];
        let eval = archived_set(&rules, [("one", &f), ("two", &other)]);
        assert_eq!(
            eval.archived,
            vec![Archival {
                finding: "one".into(),
                rule: "a-archive".into()
            }]
        );
        assert_eq!(
            eval.tallies["a-archive"],
            RuleTally {
                matched: 1,
                archived: 1
            }
        );
        assert_eq!(
            eval.tallies["z-archive"],
            RuleTally {
                matched: 1,
                archived: 0
            }
        );
        assert_eq!(
            eval.tallies["preview"],
            RuleTally {
                matched: 1,
                archived: 0
            }
        );
    }

    #[test]
    fn typed_match_equals_json_match() {
        let f = crate::testdata::finding();
        let r = rule(json!({"resourceRole": {"equals": ["ACTOR"]}})).unwrap();
        assert!(r.matches(&f).unwrap());
    }

    #[test]
    fn a_regex_that_only_parses_inside_the_anchoring_group_is_refused() {
        // `a)|(b` is no regular expression, but wrapped as `^(?:a)|(b)$` it compiled and matched
        // any value starting with `a` (or ending with `b`). The property test
        // `an_accepted_regex_is_a_regex_and_matches_only_what_it_matches` finds it (as `)(`).
        let err = rule(json!({"process.name": {"matchesRegex": ["c)|(x"]}})).unwrap_err();
        assert!(
            matches!(err, SuppressionError::InvalidRegex { ref pattern, .. } if pattern == "c)|(x"),
            "{err}"
        );
        let err = rule(json!({"process.name": {"notMatchesRegex": [".*)|(?:z"]}})).unwrap_err();
        assert!(
            matches!(err, SuppressionError::InvalidRegex { .. }),
            "{err}"
        );
    }

    mod properties {
        use proptest::prelude::*;
        use serde_json::json;

        use super::*;

        /// The example finding with `process.name` (a present value) set to `name`.
        fn named(name: &str) -> Value {
            let mut f = finding();
            f["process"]["name"] = json!(name);
            f
        }

        fn holds(condition: Value, finding: &Value) -> bool {
            let rule = rule(json!({ "process.name": condition })).unwrap_or_else(|e| panic!("{e}"));
            rule.matches_json(finding)
        }

        proptest! {
            #[test]
            fn equals_and_not_equals_are_complements(
                name in "[a-z0-9.]{0,6}",
                wants in proptest::collection::vec("[a-z0-9.]{0,6}", 1..4),
                absent in any::<bool>(),
            ) {
                let f = if absent {
                    let mut f = finding();
                    if let Some(process) = f["process"].as_object_mut() {
                        process.remove("name");
                    }
                    f
                } else {
                    named(&name)
                };
                let eq = holds(json!({"equals": wants}), &f);
                let ne = holds(json!({"notEquals": wants}), &f);
                prop_assert_ne!(eq, ne);
                if !absent {
                    prop_assert_eq!(eq, wants.contains(&name));
                }
            }

            #[test]
            fn numbers_equal_whatever_their_spelling(score in 1u32..100) {
                let mut f = finding();
                f["severity"] = json!(f64::from(score) / 10.0);
                let spelled = format!("{:.3}", f64::from(score) / 10.0);
                let rule = rule(json!({"severity": {"equals": [spelled]}})).unwrap();
                prop_assert!(rule.matches_json(&f));
            }

            #[test]
            fn a_rule_never_matches_when_a_required_attribute_is_absent(
                operator in prop_oneof![
                    Just("equals"), Just("matches"), Just("matchesRegex"),
                    Just("greaterThan"), Just("greaterThanOrEqual"),
                    Just("lessThan"), Just("lessThanOrEqual"),
                ],
                text in "[a-z*?.]{0,6}",
                number in -1.0e6f64..1.0e6,
            ) {
                let value = if operator.ends_with("Than") || operator.ends_with("Equal") {
                    json!(number)
                } else if operator == "matchesRegex" {
                    json!([".*", regex::escape(&text)])
                } else {
                    json!(["*", text])
                };
                // Absent: no such field, and the field of an absent object.
                for path in ["context.notAField", "network.remotePort", "dns.domain"] {
                    let rule = rule(json!({ path: { operator: value.clone() } })).unwrap();
                    prop_assert!(!rule.matches_json(&finding()), "{path} {operator}");
                }
            }

            #[test]
            fn the_glob_star_matches_every_present_value(name in "\\PC{0,12}", newline in any::<bool>()) {
                let name = if newline { format!("{name}\nx") } else { name };
                let matched = holds(json!({"matches": ["*"]}), &named(&name));
                let excluded = holds(json!({"notMatches": ["*"]}), &named(&name));
                prop_assert!(matched && !excluded, "{name:?}");
            }

            #[test]
            fn a_literal_regex_matches_the_whole_value_only(
                literal in "[a-z./-]{1,8}",
                prefix in "[a-z]{0,2}",
                suffix in "[a-z]{0,2}",
            ) {
                let name = format!("{prefix}{literal}{suffix}");
                let pattern = regex::escape(&literal);
                prop_assert_eq!(holds(json!({"matchesRegex": [pattern]}), &named(&name)), name == literal);
                prop_assert_eq!(holds(json!({"notMatchesRegex": [pattern]}), &named(&name)), name != literal);
            }

            #[test]
            fn an_accepted_regex_is_a_regex_and_matches_only_what_it_matches(
                pattern in "[ab()|.*?]{1,8}",
                name in "[ab]{0,6}",
            ) {
                let Ok(rule) = rule(json!({"process.name": {"matchesRegex": [&pattern]}})) else {
                    return Ok(());
                };
                let standalone = Regex::new(&pattern);
                prop_assert!(standalone.is_ok(), "{pattern:?} accepted but is no regex");
                if let Ok(re) = standalone && rule.matches_json(&named(&name)) {
                    prop_assert!(re.is_match(&name), "{pattern:?} matched {name:?}");
                }
            }

            #[test]
            fn anchoring_covers_every_alternative(
                first in "[a-z]{1,4}",
                second in "[a-z]{1,4}",
                prefix in "[a-z]{0,2}",
                suffix in "[a-z]{0,2}",
                pick_second in any::<bool>(),
            ) {
                let pattern = format!("{first}|{second}");
                let chosen = if pick_second { &second } else { &first };
                let name = format!("{prefix}{chosen}{suffix}");
                let whole = name == first || name == second;
                prop_assert_eq!(holds(json!({"matchesRegex": [pattern]}), &named(&name)), whole);
            }
        }
    }
}
