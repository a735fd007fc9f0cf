//! Policy conditions from coverage, conflicts and rollout state.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::apps::v1::DaemonSet,
    apimachinery::pkg::apis::meta::v1::{Condition, Time},
};
use vigil_crds::policy::{CoverageSummary, condition_types};

/// Rollout progress of the agent DaemonSet, from its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rollout {
    /// Pods the DaemonSet wants.
    pub desired: i32,
    /// Pods on the current template.
    pub updated: i32,
    /// Pods available.
    pub available: i32,
    /// Whether the DaemonSet controller has seen the latest spec.
    pub observed: bool,
}

impl Rollout {
    /// The rollout state of `ds`, from its status.
    pub fn of(ds: &DaemonSet) -> Self {
        let st = ds.status.clone().unwrap_or_default();
        Self {
            desired: st.desired_number_scheduled,
            updated: st.updated_number_scheduled.unwrap_or(0),
            available: st.number_available.unwrap_or(0),
            observed: st.observed_generation.is_some()
                && st.observed_generation >= ds.metadata.generation,
        }
    }

    /// Whether the rollout is still going.
    pub fn in_progress(&self) -> bool {
        !self.observed || self.updated < self.desired || self.available < self.desired
    }
}

/// Inputs of [`conditions`].
#[derive(Debug, Clone)]
pub struct ConditionInputs<'a> {
    /// Coverage totals.
    pub coverage: &'a CoverageSummary,
    /// Node to the other policy that owns it.
    pub conflicts: &'a BTreeMap<String, String>,
    /// DaemonSet rollout, `None` in Manual mode.
    pub rollout: Option<Rollout>,
    /// The policy generation being reported.
    pub generation: Option<i64>,
    /// Time to stamp on conditions whose status changes.
    pub now: Time,
}

fn condition(
    type_: &str,
    ok: bool,
    reason: &str,
    message: String,
    inputs: &ConditionInputs<'_>,
) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: if ok { "True" } else { "False" }.to_owned(),
        reason: reason.to_owned(),
        message,
        observed_generation: inputs.generation,
        last_transition_time: inputs.now.clone(),
    }
}

/// `Ready`, `Progressing` and `Degraded`, keeping `lastTransitionTime` of conditions whose status
/// did not change.
pub fn conditions(previous: &[Condition], inputs: &ConditionInputs<'_>) -> Vec<Condition> {
    let c = inputs.coverage;
    let conflict_msg = || {
        let list: Vec<String> = inputs
            .conflicts
            .iter()
            .map(|(n, p)| format!("{n} (covered by {p})"))
            .collect();
        format!(
            "not deployed on nodes another policy covers: {}",
            list.join(", ")
        )
    };
    let progressing = inputs.rollout.is_some_and(|r| r.in_progress());
    let ready = c.compatible_nodes > 0
        && c.healthy_nodes == c.compatible_nodes
        && inputs.conflicts.is_empty();
    let (ready_reason, ready_msg) = if ready {
        (
            "AllNodesHealthy",
            format!(
                "{} of {} nodes healthy",
                c.healthy_nodes, c.compatible_nodes
            ),
        )
    } else if !inputs.conflicts.is_empty() {
        ("PolicyConflict", conflict_msg())
    } else if c.compatible_nodes == 0 {
        (
            "NoCompatibleNodes",
            "the policy selects no Linux node".to_owned(),
        )
    } else {
        (
            "NodesUnhealthy",
            format!(
                "{} of {} nodes unhealthy",
                c.unhealthy_nodes, c.compatible_nodes
            ),
        )
    };
    let (prog_reason, prog_msg) = match inputs.rollout {
        None => (
            "ManualManagement",
            "the agent is run by the user".to_owned(),
        ),
        Some(r) if r.in_progress() => (
            "RollingOut",
            format!(
                "{} of {} agent pods updated, {} available",
                r.updated, r.desired, r.available
            ),
        ),
        Some(r) => (
            "RolloutComplete",
            format!("{} agent pods up to date", r.desired),
        ),
    };
    let degraded = c.unhealthy_nodes > 0 || !inputs.conflicts.is_empty();
    let (deg_reason, deg_msg) = if !inputs.conflicts.is_empty() {
        ("PolicyConflict", conflict_msg())
    } else if degraded {
        let first = c
            .unhealthy
            .first()
            .map(|n| format!("{}: {}", n.node_name, n.issue));
        (
            "NodesUnhealthy",
            format!(
                "{} unhealthy; first: {}",
                c.unhealthy_nodes,
                first.unwrap_or_default()
            ),
        )
    } else {
        ("AsExpected", "no coverage issue".to_owned())
    };
    let mut out = vec![
        condition(
            condition_types::READY,
            ready,
            ready_reason,
            ready_msg,
            inputs,
        ),
        condition(
            condition_types::PROGRESSING,
            progressing,
            prog_reason,
            prog_msg,
            inputs,
        ),
        condition(
            condition_types::DEGRADED,
            degraded,
            deg_reason,
            deg_msg,
            inputs,
        ),
    ];
    for cond in &mut out {
        if let Some(prev) = previous
            .iter()
            .find(|p| p.type_ == cond.type_ && p.status == cond.status)
        {
            cond.last_transition_time = prev.last_transition_time.clone();
        }
    }
    out
}

/// Puts `new` in place of the condition of its type (or adds it), keeping the old
/// `lastTransitionTime` when the status did not change.
pub fn set_condition(conditions: &mut Vec<Condition>, mut new: Condition) {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(old) => {
            if old.status == new.status {
                new.last_transition_time = old.last_transition_time.clone();
            }
            *old = new;
        }
        None => conditions.push(new),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn summary(compatible: u32, healthy: u32) -> CoverageSummary {
        CoverageSummary {
            compatible_nodes: compatible,
            covered_nodes: healthy,
            healthy_nodes: healthy,
            unhealthy_nodes: compatible - healthy,
            unhealthy: vec![],
            unhealthy_not_listed: 0,
        }
    }

    fn at(s: i64) -> Time {
        Time(Timestamp::from_second(s).unwrap())
    }

    fn get<'a>(cs: &'a [Condition], t: &str) -> &'a Condition {
        cs.iter().find(|c| c.type_ == t).unwrap()
    }

    #[test]
    fn conditions_table() {
        let none = BTreeMap::new();
        let conflict = BTreeMap::from([("n1".to_owned(), "older".to_owned())]);
        let done = Some(Rollout {
            desired: 2,
            updated: 2,
            available: 2,
            observed: true,
        });
        let rolling = Some(Rollout {
            desired: 2,
            updated: 1,
            available: 1,
            observed: true,
        });
        // (name, summary, conflicts, rollout, ready, progressing, degraded, ready reason)
        let table = [
            (
                "all healthy",
                summary(2, 2),
                &none,
                done,
                "True",
                "False",
                "False",
                "AllNodesHealthy",
            ),
            (
                "unhealthy",
                summary(2, 1),
                &none,
                done,
                "False",
                "False",
                "True",
                "NodesUnhealthy",
            ),
            (
                "rolling",
                summary(2, 2),
                &none,
                rolling,
                "True",
                "True",
                "False",
                "AllNodesHealthy",
            ),
            (
                "conflict",
                summary(1, 1),
                &conflict,
                done,
                "False",
                "False",
                "True",
                "PolicyConflict",
            ),
            (
                "no nodes",
                summary(0, 0),
                &none,
                None,
                "False",
                "False",
                "False",
                "NoCompatibleNodes",
            ),
        ];
        for (name, s, conflicts, rollout, ready, prog, deg, reason) in table {
            let cs = conditions(
                &[],
                &ConditionInputs {
                    coverage: &s,
                    conflicts,
                    rollout,
                    generation: Some(3),
                    now: at(10),
                },
            );
            assert_eq!(get(&cs, "Ready").status, ready, "{name}");
            assert_eq!(get(&cs, "Ready").reason, reason, "{name}");
            assert_eq!(get(&cs, "Progressing").status, prog, "{name}");
            assert_eq!(get(&cs, "Degraded").status, deg, "{name}");
            assert!(cs.iter().all(|c| c.observed_generation == Some(3)));
        }
    }

    #[test]
    fn transition_time_moves_only_on_status_change() {
        let none = BTreeMap::new();
        let healthy = summary(1, 1);
        let first = conditions(
            &[],
            &ConditionInputs {
                coverage: &healthy,
                conflicts: &none,
                rollout: None,
                generation: Some(1),
                now: at(10),
            },
        );
        let same = conditions(
            &first,
            &ConditionInputs {
                coverage: &healthy,
                conflicts: &none,
                rollout: None,
                generation: Some(1),
                now: at(20),
            },
        );
        assert_eq!(get(&same, "Ready").last_transition_time, at(10));
        let sick = summary(1, 0);
        let changed = conditions(
            &same,
            &ConditionInputs {
                coverage: &sick,
                conflicts: &none,
                rollout: None,
                generation: Some(1),
                now: at(30),
            },
        );
        assert_eq!(get(&changed, "Ready").last_transition_time, at(30));
        assert_eq!(get(&changed, "Progressing").last_transition_time, at(10));
    }

    #[test]
    fn set_condition_replaces_by_type_and_keeps_transition_time_of_same_status() {
        let cond = |type_: &str, status: &str, reason: &str, t: i64| Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: String::new(),
            observed_generation: Some(1),
            last_transition_time: at(t),
        };
        let mut cs = vec![
            cond("Ready", "True", "AllNodesHealthy", 1),
            cond("Degraded", "False", "AsExpected", 1),
        ];
        set_condition(&mut cs, cond("Degraded", "True", "StatusWriteRejected", 5));
        assert_eq!(cs.len(), 2);
        assert_eq!(get(&cs, "Degraded").reason, "StatusWriteRejected");
        assert_eq!(get(&cs, "Degraded").last_transition_time, at(5));
        assert_eq!(get(&cs, "Ready").last_transition_time, at(1));
        set_condition(&mut cs, cond("Degraded", "True", "ApplyRejected", 9));
        assert_eq!(get(&cs, "Degraded").reason, "ApplyRejected");
        assert_eq!(get(&cs, "Degraded").last_transition_time, at(5));
        set_condition(&mut cs, cond("Valid", "True", "CriteriaCompiled", 9));
        assert_eq!(cs.len(), 3);
    }
}
