//! Size limits of the custom resources, in one place.
//!
//! A real API server refuses a CRD whose CEL rules could cost too much to evaluate, and it
//! estimates that cost from the largest value each field could hold: a string without
//! `maxLength`, a list without `maxItems` or a map without `maxProperties` counts as megabytes.
//! Every string, list and map that a rule reaches, and every list and map around a rule, is
//! therefore bounded here (`crds/tests/crd_schema_rules.rs` fails when one is not). Simple checks
//! are schema keywords (`minLength`, `pattern`, `minimum`), which cost nothing; CEL is kept for
//! what crosses fields. A value over a limit is refused by the API server with a message naming
//! the field and the limit, e.g. `spec.findings.enabledTypes: Too many: 65: must have at most 64
//! items`. docs/OPERATOR.md lists them for users.

/// Characters in a label key (`prefix/name`: a 253-character DNS prefix, `/`, a 63-character name).
pub const LABEL_KEY: u32 = 317;
/// Characters in a label value.
pub const LABEL_VALUE: u32 = 63;
/// Characters in a DNS subdomain name (ConfigMap, PriorityClass, ...).
pub const DNS_SUBDOMAIN: u32 = 253;
/// Characters in a short name (a list's name in findings).
pub const SHORT_NAME: u32 = 63;
/// Pairs in a node selector.
pub const NODE_SELECTOR_PAIRS: u32 = 64;
/// Tolerations on the agent pods.
pub const TOLERATIONS: u32 = 64;
/// Characters in an image reference (registry, path, tag and digest).
pub const IMAGE_REFERENCE: u32 = 1024;
/// Finding types a policy may enable (the catalogue has 47).
pub const ENABLED_TYPES: u32 = 64;
/// Characters in a finding type string.
pub const FINDING_TYPE: u32 = 128;
/// Characters in a finding id.
pub const FINDING_ID: u32 = 128;
/// Threat-intel lists, and trusted-IP lists, per policy.
pub const LISTS: u32 = 32;
/// Attributes in one suppression rule's criteria.
pub const CRITERIA: u32 = 32;
/// Values in one operator of a suppression condition (`equals`, `matches`, ...).
pub const CONDITION_VALUES: u32 = 256;
/// Characters in one value, glob or regular expression of a suppression condition.
pub const CONDITION_VALUE: u32 = 1024;
/// Characters in a suppression rule's description.
pub const DESCRIPTION: u32 = 4096;

/// Sinks a policy delivers findings to.
pub const SINKS: u32 = 32;
/// Characters of a sink name (it names the sink's queue file and metrics label).
pub const SINK_NAME: u32 = 63;
/// Characters of a sink URL.
pub const URL: u32 = 2048;
/// Values in a sink's `findingTypes` and in its `namespaces`.
pub const SINK_FILTER_VALUES: u32 = 64;
/// Namespaces a response configuration may exclude.
pub const RESPONSE_NAMESPACES: u32 = 64;
/// Actions recorded on one finding (`actionsTaken`); the oldest are dropped past it.
pub const ACTIONS_TAKEN: u32 = 16;
/// Characters of an action's result.
pub const ACTION_RESULT: u32 = 1024;

/// Unhealthy nodes a policy status lists by name; the others are only counted
/// (`status.coverage.unhealthyNotListed`), so the status stays small however large the cluster.
pub const UNHEALTHY_LISTED: u32 = 50;
/// Characters of a coverage issue (`IssueType: detail`); a longer one is cut and ends with `…`.
pub const ISSUE: u32 = 1024;
/// Characters of an issue type, e.g. `AgentNotReporting`.
pub const ISSUE_TYPE: u32 = 64;
/// Characters of an agent or kernel version.
pub const VERSION: u32 = 256;
/// Hook names a `NodeCoverage` lists (the agent has about 20).
pub const ACTIVE_HOOKS: u32 = 128;
/// Characters of a hook name.
pub const HOOK_NAME: u32 = 128;

/// `text` cut to at most `max` characters (as the API server counts `maxLength`: code points),
/// ending with `…` when something was cut.
pub fn clip(text: &str, max: u32) -> String {
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A ConfigMap key: letters, digits, `-`, `_` and `.` (Kubernetes' own rule for data keys).
pub const CONFIG_MAP_KEY_PATTERN: &str = "^[-._a-zA-Z0-9]+$";
/// A DNS subdomain name, lower case.
pub const DNS_SUBDOMAIN_PATTERN: &str = "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$";
/// A GuardDuty finding type, e.g. `Execution:Runtime/NewBinaryExecuted`.
pub const FINDING_TYPE_PATTERN: &str = "^[A-Za-z]+:Runtime/[!-~]+$";
/// A sink name or a namespace: a DNS label.
pub const SINK_NAME_PATTERN: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/// A namespace name (a DNS label).
pub const NAMESPACE_PATTERN: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/// An image reference: not empty, no white space.
pub const IMAGE_REFERENCE_PATTERN: &str = "^[^\\s]+$";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_counts_characters_and_marks_the_cut() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("exactly", 7), "exactly");
        assert_eq!(clip("abcdefgh", 5), "abcd…");
        let long = "é".repeat(2000);
        let cut = clip(&long, ISSUE);
        assert_eq!(cut.chars().count(), ISSUE as usize);
        assert!(cut.ends_with('…'));
    }
}
