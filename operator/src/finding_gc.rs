//! RuntimeFinding objects are collected: by retention (not seen for `retention`), and by a cap per
//! namespace, so that neither etcd nor the operator's finding cache grows without bound however
//! many findings the agents write. Over the cap, what goes first is what matters least: archived
//! findings, then the lowest severity, then the longest unseen; a High or Critical finding is
//! never collected by the cap while an active Low or Medium one is left.

use std::collections::BTreeMap;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, Preconditions},
};
use tracing::{info, warn};
use vigil_crds::RuntimeFinding;

use crate::{Context, Error, metrics::CollectedLabels};

/// Limits of the collection.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GcLimits {
    /// A finding last seen longer ago than this is deleted.
    pub retention: SignedDuration,
    /// At most this many findings are kept per namespace.
    pub per_namespace: usize,
}

impl Default for GcLimits {
    fn default() -> Self {
        Self {
            retention: SignedDuration::from_hours(90 * 24),
            per_namespace: 5_000,
        }
    }
}

/// What the collection needs of one finding.
#[derive(Clone, Debug, PartialEq)]
pub struct FindingFacts {
    /// Namespace of the object.
    pub namespace: String,
    /// Name of the object.
    pub name: String,
    /// UID, so a delete never hits a newer object of the same name.
    pub uid: Option<String>,
    /// `spec.eventLastSeen`.
    pub last_seen: Timestamp,
    /// `spec.severity`.
    pub severity: f64,
    /// Archived (by the document or a rule).
    pub archived: bool,
}

/// Why a finding is collected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// Not seen within the retention.
    Retention,
    /// Over its namespace's cap.
    NamespaceCap,
}

impl Reason {
    /// Label value of the metric.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Retention => "retention",
            Self::NamespaceCap => "namespace_cap",
        }
    }
}

/// The findings to delete at `now`, each with its reason. Linear in the findings plus a sort per
/// namespace over the cap.
pub fn select(
    findings: &[FindingFacts],
    now: Timestamp,
    limits: GcLimits,
) -> Vec<(&FindingFacts, Reason)> {
    let oldest_kept = now - limits.retention;
    let mut out = Vec::new();
    let mut kept: BTreeMap<&str, Vec<&FindingFacts>> = BTreeMap::new();
    for f in findings {
        if f.last_seen < oldest_kept {
            out.push((f, Reason::Retention));
        } else {
            kept.entry(f.namespace.as_str()).or_default().push(f);
        }
    }
    for (_, mut list) in kept {
        if list.len() <= limits.per_namespace {
            continue;
        }
        // What matters least first.
        list.sort_by(|a, b| {
            b.archived
                .cmp(&a.archived)
                .then(a.severity.total_cmp(&b.severity))
                .then(a.last_seen.cmp(&b.last_seen))
                .then(a.name.cmp(&b.name))
        });
        let excess = list.len() - limits.per_namespace;
        out.extend(
            list.into_iter()
                .take(excess)
                .map(|f| (f, Reason::NamespaceCap)),
        );
    }
    out
}

/// The facts of the cached findings; a finding that does not deserialise is left alone (the
/// suppression controller reports it).
pub fn facts_of(ctx: &Context) -> Vec<FindingFacts> {
    ctx.stores
        .findings
        .state()
        .iter()
        .filter_map(|guard| {
            let f = guard.0.as_ref().ok()?;
            Some(FindingFacts {
                namespace: f.namespace()?,
                name: f.name_any(),
                uid: f.uid(),
                last_seen: f.spec.event_last_seen.0,
                severity: f.spec.severity,
                archived: f.spec.is_archived(f.status.as_ref()),
            })
        })
        .collect()
}

/// One pass: deletes what [`select`] chooses from the cache, counting each by reason. A finding
/// already gone (404) or replaced (409, the UID precondition) is skipped; other failures stop the
/// pass, to be tried again on the next one.
pub async fn collect(ctx: &Context, limits: GcLimits) -> Result<usize, Error> {
    if !ctx.stores.ready() {
        return Ok(0);
    }
    let facts = facts_of(ctx);
    let chosen = select(&facts, (ctx.clock)(), limits);
    let mut deleted = 0;
    for (f, reason) in chosen {
        let api: Api<RuntimeFinding> = Api::namespaced(ctx.client.clone(), &f.namespace);
        let params = DeleteParams {
            preconditions: f.uid.clone().map(|uid| Preconditions {
                uid: Some(uid),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&f.name, &params).await {
            Ok(_) => {
                deleted += 1;
                ctx.metrics
                    .findings_collected
                    .get_or_create(&CollectedLabels {
                        reason: reason.as_str().to_owned(),
                    })
                    .inc();
            }
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(source) => {
                warn!(finding = %f.name, namespace = %f.namespace, error = %source, "collecting a finding failed");
                return Err(Error::Kube {
                    verb: "delete",
                    kind: "RuntimeFinding".into(),
                    name: f.name.clone(),
                    source: Box::new(source),
                });
            }
        }
    }
    if deleted > 0 {
        info!(deleted, "findings collected");
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn f(ns: &str, name: &str, age_days: i64, severity: f64, archived: bool) -> FindingFacts {
        FindingFacts {
            namespace: ns.into(),
            name: name.into(),
            uid: Some(format!("uid-{name}")),
            last_seen: Timestamp::from_second(NOW - age_days * 86_400).unwrap(),
            severity,
            archived,
        }
    }

    fn names(chosen: &[(&FindingFacts, Reason)]) -> Vec<(String, Reason)> {
        chosen.iter().map(|(f, r)| (f.name.clone(), *r)).collect()
    }

    #[test]
    fn retention_collects_what_was_not_seen_within_it() {
        let all = [
            f("a", "old-critical", 91, 9.5, false),
            f("a", "recent-low", 89, 2.0, false),
            f("a", "today", 0, 5.0, false),
        ];
        let limits = GcLimits::default();
        let now = Timestamp::from_second(NOW).unwrap();
        assert_eq!(
            names(&select(&all, now, limits)),
            vec![("old-critical".to_owned(), Reason::Retention)]
        );
    }

    #[test]
    fn over_the_cap_archived_then_lowest_severity_then_longest_unseen_go_first() {
        let all = [
            f("a", "critical", 5, 9.0, false),
            f("a", "high", 6, 7.5, false),
            f("a", "low-new", 1, 2.0, false),
            f("a", "low-old", 3, 2.0, false),
            f("a", "archived-critical", 0, 9.0, true),
            f("b", "other-ns-low", 9, 1.0, false),
        ];
        let limits = GcLimits {
            per_namespace: 2,
            ..GcLimits::default()
        };
        let now = Timestamp::from_second(NOW).unwrap();
        assert_eq!(
            names(&select(&all, now, limits)),
            vec![
                ("archived-critical".to_owned(), Reason::NamespaceCap),
                ("low-old".to_owned(), Reason::NamespaceCap),
                ("low-new".to_owned(), Reason::NamespaceCap),
            ],
            "namespace a keeps its High and Critical; b is under the cap"
        );
    }

    #[test]
    fn a_flood_of_low_findings_never_pushes_out_a_critical_one() {
        let mut all: Vec<FindingFacts> = (0..10_000)
            .map(|i| f("vigil-system", &format!("low-{i}"), 0, 2.0, false))
            .collect();
        all.push(f("vigil-system", "critical", 30, 9.8, false));
        let limits = GcLimits {
            per_namespace: 100,
            ..GcLimits::default()
        };
        let chosen = select(&all, Timestamp::from_second(NOW).unwrap(), limits);
        assert_eq!(chosen.len(), 9_901);
        assert!(chosen.iter().all(|(f, _)| f.name != "critical"));
    }
}
