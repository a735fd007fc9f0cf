//! Prometheus metrics of the controllers.

use std::sync::atomic::AtomicU64;

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// Labels naming a controller.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    /// `policy` or `suppression`.
    pub controller: String,
}

/// Labels of a reconcile failure.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    /// `policy` or `suppression`.
    pub controller: String,
    /// Error kind, see [`crate::Error::metric_label`].
    pub error: String,
}

/// Labels of a coverage gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CoverageLabels {
    /// Policy name.
    pub policy: String,
    /// `compatible`, `covered`, `healthy` or `unhealthy`.
    pub state: String,
}

/// Labels of a coverage transition.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransitionLabels {
    /// Policy name.
    pub policy: String,
    /// `Healthy` or `Unhealthy`.
    pub to: String,
    /// Issue type, empty when healthy.
    pub issue: String,
}

/// Labels naming a suppression rule.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    /// Rule name.
    pub rule: String,
}

/// Labels of collected findings.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CollectedLabels {
    /// `retention` or `namespace_cap`.
    pub reason: String,
}

/// All metrics, registered once.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Reconciliations run.
    pub reconciliations: Family<ControllerLabels, Counter>,
    /// Reconciliations failed, by error kind.
    pub failures: Family<FailureLabels, Counter>,
    /// Reconcile duration.
    pub duration: Family<ControllerLabels, Histogram>,
    /// Nodes by coverage state.
    pub coverage_nodes: Family<CoverageLabels, Gauge<i64, std::sync::atomic::AtomicI64>>,
    /// Coverage transitions.
    pub coverage_transitions: Family<TransitionLabels, Counter>,
    /// Findings archived by a rule.
    pub findings_archived: Family<RuleLabels, Counter<u64, AtomicU64>>,
    /// Findings deleted by retention or the namespace cap.
    pub findings_collected: Family<CollectedLabels, Counter<u64, AtomicU64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("vigil_operator");
        let reconciliations = Family::<ControllerLabels, Counter>::default();
        let failures = Family::<FailureLabels, Counter>::default();
        let duration = Family::<ControllerLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0])
        });
        let coverage_nodes = Family::default();
        let coverage_transitions = Family::default();
        let findings_archived = Family::default();
        let findings_collected = Family::default();
        registry.register(
            "reconciliations",
            "Reconciliations run",
            reconciliations.clone(),
        );
        registry.register(
            "reconcile_failures",
            "Reconciliations failed, by error kind",
            failures.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Reconcile duration",
            duration.clone(),
        );
        registry.register(
            "coverage_nodes",
            "Nodes of a policy by coverage state",
            coverage_nodes.clone(),
        );
        registry.register(
            "coverage_transitions",
            "Node coverage transitions",
            coverage_transitions.clone(),
        );
        registry.register(
            "findings_archived",
            "Findings archived by a suppression rule",
            findings_archived.clone(),
        );
        registry.register(
            "findings_collected",
            "Findings deleted by retention or the per-namespace cap",
            findings_collected.clone(),
        );
        Self {
            registry,
            reconciliations,
            failures,
            duration,
            coverage_nodes,
            coverage_transitions,
            findings_archived,
            findings_collected,
        }
    }
}

impl Metrics {
    /// OpenMetrics text of every metric.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        encode(&mut out, &self.registry)?;
        Ok(out)
    }

    /// Count a failed reconciliation.
    pub fn failure(&self, controller: &str, error: &str) {
        self.failures
            .get_or_create(&FailureLabels {
                controller: controller.to_owned(),
                error: error.to_owned(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_rendered_by_kind() {
        let m = Metrics::default();
        m.failure("policy", "kube");
        m.failure("policy", "kube");
        let text = m.render().unwrap();
        assert!(
            text.contains(
                r#"vigil_operator_reconcile_failures_total{controller="policy",error="kube"} 2"#
            ),
            "{text}"
        );
    }
}
