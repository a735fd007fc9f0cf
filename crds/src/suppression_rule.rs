//! `SuppressionRule`: archive findings that match criteria (cluster-scoped), and the standalone
//! YAML rules file that uses the same schema.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::suppression::{CompiledRule, FindingCriteria, SuppressionAction, SuppressionError};

/// A rule that archives (or, with NOOP, only counts) findings matching its criteria.
#[expect(
    clippy::duplicated_attributes,
    reason = "every kube printcolumn(...) repeats its type_ key"
)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "vigil.dev",
    version = "v1alpha1",
    kind = "SuppressionRule",
    shortname = "sr",
    category = "vigil",
    status = "SuppressionRuleStatus",
    derive = "PartialEq",
    doc = "Archives RuntimeFindings matching GuardDuty-style criteria; archived findings are kept, never deleted.",
    printcolumn(name = "Action", type_ = "string", json_path = ".spec.action"),
    printcolumn(
        name = "Matched",
        type_ = "integer",
        json_path = ".status.matchedFindings"
    ),
    printcolumn(
        name = "Archived",
        type_ = "integer",
        json_path = ".status.archivedFindings"
    ),
    printcolumn(
        name = "Last Archived",
        type_ = "date",
        json_path = ".status.lastArchivedAt"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct SuppressionRuleSpec {
    /// Why these findings are benign.
    #[serde(default)]
    #[schemars(length(max = crate::limits::DESCRIPTION))]
    pub description: String,
    /// Attribute path to condition; a finding matches when all hold.
    pub criteria: FindingCriteria,
    /// ARCHIVE or NOOP.
    #[serde(default)]
    pub action: SuppressionAction,
}

impl SuppressionRuleSpec {
    /// Validate and compile the rule under `name`.
    pub fn compile(&self, name: &str) -> Result<CompiledRule, SuppressionError> {
        CompiledRule::compile(name, &self.criteria, self.action)
    }
}

/// Observed state of a rule.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SuppressionRuleStatus {
    /// Generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Findings the rule currently matches.
    #[serde(default)]
    pub matched_findings: u64,
    /// Findings archived by this rule.
    #[serde(default)]
    pub archived_findings: u64,
    /// When this rule last archived a finding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_archived_at: Option<Time>,
    /// `Valid`: whether the criteria compile.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// A standalone rules file that cannot be used.
#[derive(Debug, Error)]
pub enum RulesFileError {
    /// A document is not a SuppressionRule.
    #[error("{file}: document {document}: {source}")]
    Parse {
        /// File name, for the message.
        file: String,
        /// 1-based document index.
        document: usize,
        /// Parser error, with line and column.
        #[source]
        source: serde_yaml::Error,
    },
    /// A document has no `metadata.name`.
    #[error("{file}: document {document}: metadata.name is required")]
    MissingName {
        /// File name.
        file: String,
        /// 1-based document index.
        document: usize,
    },
    /// A rule's criteria are invalid.
    #[error("{file}: {source}")]
    Rule {
        /// File name.
        file: String,
        /// What is wrong with the rule.
        #[source]
        source: Box<SuppressionError>,
    },
}

/// Parse a standalone rules file: `SuppressionRule` objects as YAML documents separated by `---`,
/// the same objects `kubectl apply` takes. Empty documents are skipped.
pub fn parse_rules_file(file: &str, text: &str) -> Result<Vec<CompiledRule>, RulesFileError> {
    let mut rules = Vec::new();
    for (index, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let document = index + 1;
        let value =
            serde_yaml::Value::deserialize(doc).map_err(|source| RulesFileError::Parse {
                file: file.to_owned(),
                document,
                source,
            })?;
        if value.is_null() {
            continue;
        }
        let rule: SuppressionRule =
            serde_yaml::from_value(value).map_err(|source| RulesFileError::Parse {
                file: file.to_owned(),
                document,
                source,
            })?;
        let name = rule
            .metadata
            .name
            .as_deref()
            .ok_or_else(|| RulesFileError::MissingName {
                file: file.to_owned(),
                document,
            })?;
        rules.push(
            rule.spec
                .compile(name)
                .map_err(|source| RulesFileError::Rule {
                    file: file.to_owned(),
                    source: Box::new(source),
                })?,
        );
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_file_parses_every_document_and_names_errors() {
        let text = "apiVersion: vigil.dev/v1alpha1\nkind: SuppressionRule\nmetadata: {name: a}\nspec:\n  criteria:\n    criterion:\n      type: {equals: [x]}\n---\n---\napiVersion: vigil.dev/v1alpha1\nkind: SuppressionRule\nmetadata: {name: b}\nspec:\n  action: NOOP\n  criteria:\n    criterion:\n      process.name: {matches: ['ku*']}\n";
        let rules = parse_rules_file("rules.yaml", text).unwrap();
        assert_eq!(
            rules.iter().map(CompiledRule::name).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(rules[1].action(), SuppressionAction::Noop);

        let bad = format!(
            "{text}---\napiVersion: vigil.dev/v1alpha1\nkind: SuppressionRule\nmetadata: {{name: c}}\nspec:\n  criteria:\n    criterion:\n      process.name: {{matchesRegex: ['(']}}\n"
        );
        let err = parse_rules_file("rules.yaml", &bad)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rules.yaml") && err.contains("rule c") && err.contains("process.name"),
            "{err}"
        );

        let err = parse_rules_file("rules.yaml", "spec: 3\n").unwrap_err();
        assert!(
            matches!(err, RulesFileError::Parse { document: 1, .. }),
            "{err}"
        );
    }
}
