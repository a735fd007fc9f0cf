//! The `SuppressionRule` reconciler: a new or changed rule archives the findings it matches.

use std::{sync::Arc, time::Duration};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{
    Api, Resource, ResourceExt,
    api::{Patch, PatchParams},
    core::DeserializeGuard,
    runtime::{controller::Action, events::EventType},
};
use tracing::{info, instrument, warn};
use vigil_crds::{
    RuntimeFinding, RuntimeFindingStatus, SuppressionRule, SuppressionRuleStatus,
    suppression::{SuppressionAction, archived_set},
};

use crate::{
    Context, Error, WithConditions,
    metrics::{ControllerLabels, RuleLabels},
    reference_of,
    render::FIELD_MANAGER,
};

const CONTROLLER: &str = "suppression";
/// Condition type telling whether the criteria compile.
pub const VALID: &str = "Valid";

impl WithConditions for SuppressionRule {
    fn conditions_mut(status: &mut SuppressionRuleStatus) -> &mut Vec<Condition> {
        &mut status.conditions
    }
}

/// Reconcile one rule (through its deserialisation guard), unless it is backing off after
/// failures.
#[instrument(skip_all, fields(rule = %guard.name_any()))]
pub async fn reconcile(
    guard: Arc<DeserializeGuard<SuppressionRule>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    if let Some(wait) = ctx.backoff_wait(CONTROLLER, guard.meta()) {
        return Ok(Action::requeue(wait));
    }
    let labels = ControllerLabels {
        controller: CONTROLLER.to_owned(),
    };
    ctx.metrics.reconciliations.get_or_create(&labels).inc();
    let started = std::time::Instant::now();
    let result = reconcile_guarded(&guard, &ctx).await;
    let result = ctx.settle(CONTROLLER, &guard, result).await;
    ctx.metrics
        .duration
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    result
}

async fn reconcile_guarded(
    guard: &DeserializeGuard<SuppressionRule>,
    ctx: &Context,
) -> Result<Action, Error> {
    if !ctx.stores.ready() {
        return Ok(Action::requeue(Duration::from_secs(2)));
    }
    match &guard.0 {
        Ok(rule) => apply(rule, ctx).await,
        Err(invalid) => {
            warn!(error = %invalid, "suppression rule does not match the schema");
            ctx.metrics.failure(CONTROLLER, "invalid_object");
            let reference = reference_of::<SuppressionRule>(&invalid.metadata);
            ctx.event(
                &reference,
                EventType::Warning,
                "InvalidSpec",
                invalid.error.clone(),
            )
            .await;
            Ok(Action::await_change())
        }
    }
}

/// Count the failure by kind and retry after the rule's backoff.
pub fn error_policy(
    guard: Arc<DeserializeGuard<SuppressionRule>>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    ctx.retry_after_failure(CONTROLLER, guard.meta(), error)
}

fn valid_condition(rule: &SuppressionRule, ok: bool, message: String, now: &Time) -> Condition {
    let previous = rule
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == VALID));
    let status = if ok { "True" } else { "False" };
    Condition {
        type_: VALID.to_owned(),
        status: status.to_owned(),
        reason: if ok {
            "CriteriaCompiled"
        } else {
            "InvalidCriteria"
        }
        .to_owned(),
        message,
        observed_generation: rule.metadata.generation,
        last_transition_time: previous
            .filter(|p| p.status == status)
            .map_or_else(|| now.clone(), |p| p.last_transition_time.clone()),
    }
}

async fn write_status(
    rule: &SuppressionRule,
    status: SuppressionRuleStatus,
    ctx: &Context,
) -> Result<(), Error> {
    if rule.status.as_ref() == Some(&status) {
        return Ok(());
    }
    ctx.apply_status::<SuppressionRule>(&rule.name_any(), &status)
        .await
}

async fn apply(rule: &SuppressionRule, ctx: &Context) -> Result<Action, Error> {
    let name = rule.name_any();
    let now = Time((ctx.clock)());
    let reference = rule.object_ref(&());
    let previous = rule.status.clone().unwrap_or_default();
    let compiled = match rule.spec.compile(&name) {
        Ok(c) => c,
        Err(e) => {
            let message = e.to_string();
            let was_invalid = previous
                .conditions
                .iter()
                .any(|c| c.type_ == VALID && c.status == "False" && c.message == message);
            if !was_invalid {
                ctx.event(
                    &reference,
                    EventType::Warning,
                    "InvalidCriteria",
                    message.clone(),
                )
                .await;
            }
            let status = SuppressionRuleStatus {
                observed_generation: rule.metadata.generation,
                conditions: vec![valid_condition(rule, false, message, &now)],
                ..previous
            };
            write_status(rule, status, ctx).await?;
            return Ok(Action::await_change());
        }
    };

    let findings: Vec<RuntimeFinding> = ctx
        .stores
        .findings
        .state()
        .iter()
        .filter_map(|g| g.0.as_ref().ok().cloned())
        .collect();
    let json: Vec<(String, serde_json::Value)> = findings
        .iter()
        .map(|f| {
            serde_json::to_value(&f.spec)
                .map(|v| (key(f), v))
                .map_err(|source| Error::Serialize {
                    what: format!("finding {}", key(f)),
                    source,
                })
        })
        .collect::<Result<_, _>>()?;
    let evaluation = archived_set(
        std::slice::from_ref(&compiled),
        json.iter().map(|(k, v)| (k.as_str(), v)),
    );
    let matched = evaluation.tallies.get(&name).map_or(0, |t| t.matched);

    let mut archived_now = 0_u64;
    if compiled.action() == SuppressionAction::Archive {
        for archival in &evaluation.archived {
            let Some(f) = findings.iter().find(|f| key(f) == archival.finding) else {
                continue;
            };
            // Already archived (by the agent, or by another rule first): keep that attribution.
            if f.spec.is_archived(f.status.as_ref()) {
                continue;
            }
            if archive(f, &name, &now, ctx).await? {
                archived_now += 1;
            }
        }
    }
    let by_this_rule = findings
        .iter()
        .filter(|f| {
            f.status
                .as_ref()
                .is_some_and(|s| s.archived && s.archived_by.as_deref() == Some(name.as_str()))
        })
        .count() as u64
        + archived_now;
    if archived_now > 0 {
        ctx.metrics
            .findings_archived
            .get_or_create(&RuleLabels { rule: name.clone() })
            .inc_by(archived_now);
        info!(archived = archived_now, "archived findings");
        ctx.event(
            &reference,
            EventType::Normal,
            "FindingsArchived",
            format!("archived {archived_now} findings"),
        )
        .await;
    }
    let status = SuppressionRuleStatus {
        observed_generation: rule.metadata.generation,
        matched_findings: matched,
        archived_findings: by_this_rule,
        last_archived_at: if archived_now > 0 {
            Some(now.clone())
        } else {
            previous.last_archived_at.clone()
        },
        conditions: vec![valid_condition(
            rule,
            true,
            "criteria compiled".to_owned(),
            &now,
        )],
    };
    write_status(rule, status, ctx).await?;
    Ok(Action::requeue(Duration::from_secs(300)))
}

fn key(f: &RuntimeFinding) -> String {
    format!("{}/{}", f.namespace().unwrap_or_default(), f.name_any())
}

/// Archives `f` for `rule`; `false` when the finding was deleted meanwhile.
async fn archive(f: &RuntimeFinding, rule: &str, now: &Time, ctx: &Context) -> Result<bool, Error> {
    let name = f.name_any();
    let api: Api<RuntimeFinding> =
        Api::namespaced(ctx.client.clone(), &f.namespace().unwrap_or_default());
    let status = RuntimeFindingStatus {
        archived: true,
        archived_by: Some(rule.to_owned()),
        archived_at: Some(now.clone()),
    };
    let patch = serde_json::json!({
        "apiVersion": RuntimeFinding::api_version(&()),
        "kind": RuntimeFinding::kind(&()),
        "status": status,
    });
    match api
        .patch_status(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(patch),
        )
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
        Err(source) => Err(Error::Kube {
            verb: "patch status",
            kind: RuntimeFinding::kind(&()).into_owned(),
            name,
            source: Box::new(source),
        }),
    }
}
