//! "Suppress findings like this": the criteria a finding offers, and the SuppressionRule built
//! from the ones a person ticks. Values always come from the stored finding, never from the
//! form, so a form can only choose which of the finding's attributes to match on.

use std::collections::BTreeMap;

use vigil_crds::{
    finding::Finding,
    suppression::{Condition, FindingCriteria, SuppressionAction},
    suppression_rule::{SuppressionRule, SuppressionRuleSpec},
};

/// One attribute of a finding a rule can match on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The criterion path (`process.executablePath`).
    pub path: &'static str,
    /// What a person reads.
    pub label: &'static str,
    /// The finding's value.
    pub value: String,
    /// Ticked unless the person chooses.
    pub default: bool,
}

/// Why a rule cannot be built from the form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleFormError {
    /// No criterion ticked.
    #[error("tick at least one criterion: a rule without criteria would archive every finding")]
    NoCriteria,
    /// A criterion the finding does not offer.
    #[error("criterion `{0}` is not one this finding offers")]
    UnknownCriterion(String),
    /// A bad rule name.
    #[error(
        "rule name {0:?}: use lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters"
    )]
    BadName(String),
    /// A description too long.
    #[error("the description is longer than 1024 characters")]
    LongDescription,
    /// The rule does not compile.
    #[error("{0}")]
    Invalid(String),
}

/// The attributes of `f` a rule can match on, in the order shown.
pub fn candidates(f: &Finding) -> Vec<Candidate> {
    let mut out = Vec::new();
    let mut push = |path, label, value: Option<String>, default| {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            out.push(Candidate {
                path,
                label,
                value,
                default,
            });
        }
    };
    push("type", "Finding type", Some(f.finding_type.clone()), true);
    let process = f.process.as_ref();
    let exe = process.map(|p| p.executable_path.clone());
    let has_exe = exe.as_ref().is_some_and(|e| !e.is_empty());
    push("process.executablePath", "Executable path", exe, true);
    push(
        "process.name",
        "Process name",
        process.map(|p| p.name.clone()),
        !has_exe,
    );
    push(
        "process.executableSha256",
        "Executable SHA-256",
        process.and_then(|p| p.executable_sha256.clone()),
        false,
    );
    let pod = f.resource.pod.as_ref();
    push(
        "resource.pod.namespace",
        "Namespace",
        pod.map(|p| p.namespace.clone()),
        true,
    );
    push(
        "resource.container.image",
        "Container image",
        f.resource.container.as_ref().and_then(|c| c.image.clone()),
        false,
    );
    push(
        "resource.host.hostname",
        "Host",
        Some(f.resource.host.hostname.clone()),
        pod.is_none(),
    );
    push(
        "network.remoteIp",
        "Remote IP",
        f.network.as_ref().map(|n| n.remote_ip.clone()),
        false,
    );
    push(
        "dns.domain",
        "Domain",
        f.dns.as_ref().map(|d| d.domain.clone()),
        false,
    );
    out
}

/// Whether `name` is a Kubernetes object name (DNS-1123 subdomain).
pub fn valid_name(name: &str) -> bool {
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !name.is_empty()
        && name.len() <= 253
        && name.starts_with(ok)
        && name.ends_with(ok)
        && name.chars().all(|c| ok(c) || c == '-' || c == '.')
}

/// The rule matching `f` on the ticked paths.
pub fn build_rule(
    f: &Finding,
    ticked: &[String],
    name: &str,
    description: &str,
) -> Result<SuppressionRule, RuleFormError> {
    if !valid_name(name) {
        return Err(RuleFormError::BadName(name.chars().take(80).collect()));
    }
    if description.chars().count() > 1024 {
        return Err(RuleFormError::LongDescription);
    }
    let offered = candidates(f);
    let mut criterion = BTreeMap::new();
    for path in ticked {
        let c = offered
            .iter()
            .find(|c| c.path == path)
            .ok_or_else(|| RuleFormError::UnknownCriterion(path.chars().take(80).collect()))?;
        criterion.insert(
            c.path.to_owned(),
            Condition {
                equals: Some(vec![c.value.clone()]),
                ..Default::default()
            },
        );
    }
    if criterion.is_empty() {
        return Err(RuleFormError::NoCriteria);
    }
    let spec = SuppressionRuleSpec {
        description: description.to_owned(),
        criteria: FindingCriteria { criterion },
        action: SuppressionAction::Archive,
    };
    spec.compile(name)
        .map_err(|e| RuleFormError::Invalid(e.to_string()))?;
    Ok(SuppressionRule::new(name, spec))
}

/// The rule as a YAML document, as the rules file and `kubectl apply` take it.
pub fn rule_yaml(rule: &SuppressionRule) -> String {
    serde_yaml::to_string(rule).unwrap_or_else(|e| format!("# cannot render the rule: {e}\n"))
}
