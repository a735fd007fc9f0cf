//! The `RuntimeMonitoringPolicy` reconciler.

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use futures::{StreamExt, stream};

use k8s_openapi::{
    api::{
        apps::v1::DaemonSet,
        core::v1::{ConfigMap, ServiceAccount},
    },
    apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, Time},
    jiff::Timestamp,
};
use kube::{
    Api, Resource, ResourceExt,
    api::{DeleteParams, Patch, PatchParams},
    core::DeserializeGuard,
    runtime::{
        controller::Action,
        events::EventType,
        finalizer::{Event as Finalizer, finalizer},
        reflector::ObjectRef,
    },
};
use serde::{Serialize, de::DeserializeOwned};
use tracing::{debug, info, instrument, warn};
use vigil_crds::{
    NodeCoverage, NodeCoverageSpec, RuntimeMonitoringPolicy, RuntimeMonitoringPolicyStatus,
    lease::{POLICY_LABEL, read_heartbeat},
    policy::{AgentManagement, FindingCounts, condition_types},
};

use crate::{
    Context, Error, WithConditions, agent_objects,
    coverage::{Assessment, assess},
    facts::{AgentPodFacts, NodeFacts},
    metrics::{ControllerLabels, CoverageLabels, TransitionLabels},
    node_coverage::{MAX_NODE_EVENTS, Plan, Transition, events, known, plan, summary},
    placement::place,
    reference_of,
    render::{FIELD_MANAGER, agent_object_name, render},
    status::{ConditionInputs, Rollout, conditions},
};

/// Finalizer on policies.
pub const FINALIZER: &str = "vigil.dev/policy-cleanup";
const CONTROLLER: &str = "policy";
/// `NodeCoverage` writes in flight at once.
const NODE_WRITE_CONCURRENCY: usize = 16;

impl WithConditions for RuntimeMonitoringPolicy {
    fn conditions_mut(status: &mut RuntimeMonitoringPolicyStatus) -> &mut Vec<Condition> {
        &mut status.conditions
    }
}

/// Reconcile one policy (through its deserialisation guard), unless it is backing off after
/// failures.
#[instrument(skip_all, fields(policy = %guard.name_any()))]
pub async fn reconcile(
    guard: Arc<DeserializeGuard<RuntimeMonitoringPolicy>>,
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
    guard: &DeserializeGuard<RuntimeMonitoringPolicy>,
    ctx: &Context,
) -> Result<Action, Error> {
    let policy = match &guard.0 {
        Ok(p) => Arc::new(p.clone()),
        Err(invalid) => {
            // A malformed object must not wedge the controller: report it and wait for a fix.
            warn!(error = %invalid, "policy does not match the schema");
            ctx.metrics.failure(CONTROLLER, "invalid_object");
            let reference = reference_of::<RuntimeMonitoringPolicy>(&invalid.metadata);
            ctx.event(
                &reference,
                EventType::Warning,
                "InvalidSpec",
                invalid.error.clone(),
            )
            .await;
            return Ok(Action::await_change());
        }
    };
    if !ctx.stores.ready() {
        return Ok(Action::requeue(Duration::from_secs(2)));
    }
    let api: Api<RuntimeMonitoringPolicy> = Api::all(ctx.client.clone());
    finalizer(&api, FINALIZER, policy, |event| async {
        match event {
            Finalizer::Apply(p) => apply(&p, ctx).await,
            Finalizer::Cleanup(p) => cleanup(&p, ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

/// Count the failure by kind and retry after the policy's backoff.
pub fn error_policy(
    guard: Arc<DeserializeGuard<RuntimeMonitoringPolicy>>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    ctx.retry_after_failure(CONTROLLER, guard.meta(), error)
}

async fn server_side_apply<K>(api: Api<K>, obj: &K) -> Result<K, Error>
where
    K: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Clone + std::fmt::Debug,
{
    let name = obj.meta().name.clone().unwrap_or_default();
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(obj),
    )
    .await
    .map_err(|source| Error::Kube {
        verb: "apply",
        kind: K::kind(&()).into_owned(),
        name,
        source: Box::new(source),
    })
}

/// Apply the agent objects when [`agent_objects::must_apply`] says so; returns the DaemonSet
/// rollout state, from the apply's answer or else from the cache.
async fn apply_agent(
    policy: &RuntimeMonitoringPolicy,
    ctx: &Context,
    excluded: &[String],
    now: Timestamp,
) -> Result<Rollout, Error> {
    // Refused before anything is rendered: the image runs with node-level rights.
    ctx.agent_images.check(&policy.spec.agent.image)?;
    let objs = render(policy, &ctx.namespace, excluded)?;
    let name = policy.name_any();
    let digest = agent_objects::digest(&objs).map_err(|source| Error::Serialize {
        what: format!("agent objects of {name}"),
        source,
    })?;
    let cached = ctx
        .stores
        .daemon_sets
        .get(&ObjectRef::new(&agent_object_name(policy)).within(&ctx.namespace));
    let last = ctx.agent_objects().get(&name).copied();
    if let Some(ds) = cached.as_deref()
        && !agent_objects::must_apply(last, digest, true, now)
    {
        return Ok(Rollout::of(ds));
    }
    let ns = ctx.namespace.as_str();
    let c = ctx.client.clone();
    // The identity and rights come with the chart, not from here: without them the DaemonSet
    // could start no pod, and the only trace would be its controller's FailedCreate Events.
    require_service_account(Api::namespaced(c.clone(), ns), ns, objs.service_account).await?;
    server_side_apply(
        Api::<ConfigMap>::namespaced(c.clone(), ns),
        &objs.config_map,
    )
    .await?;
    let ds = server_side_apply(Api::<DaemonSet>::namespaced(c, ns), &objs.daemon_set).await?;
    ctx.agent_objects()
        .insert(name, agent_objects::Done::Applied { digest, at: now });
    Ok(Rollout::of(&ds))
}

/// `Ok` when the ServiceAccount `name` exists in `namespace`, else an error naming what to
/// install.
async fn require_service_account(
    api: Api<ServiceAccount>,
    namespace: &str,
    name: &'static str,
) -> Result<(), Error> {
    match api.get_opt(name).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(Error::AgentRbacMissing {
            namespace: namespace.to_owned(),
            service_account: name,
        }),
        Err(source) => Err(Error::Kube {
            verb: "get",
            kind: "ServiceAccount".to_owned(),
            name: name.to_owned(),
            source: Box::new(source),
        }),
    }
}

async fn delete_ignoring_absent<K>(api: Api<K>, name: &str) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(source) => Err(Error::Kube {
            verb: "delete",
            kind: K::kind(&()).into_owned(),
            name: name.to_owned(),
            source: Box::new(source),
        }),
    }
}

/// Manual mode: the operator runs nothing, so remove what Automated mode may have left (when
/// [`agent_objects::must_remove`] says so): the DaemonSet and its ConfigMap. The per-policy
/// ServiceAccount and RBAC objects an older operator made stay (this one may not delete RBAC
/// objects): they go with the policy, or by the cleanup in docs/OPERATOR.md.
async fn remove_agent(
    policy: &RuntimeMonitoringPolicy,
    ctx: &Context,
    now: Timestamp,
) -> Result<(), Error> {
    let last = ctx.agent_objects().get(&policy.name_any()).copied();
    if !agent_objects::must_remove(last, now) {
        return Ok(());
    }
    remove_agent_objects(policy, ctx).await?;
    ctx.agent_objects()
        .insert(policy.name_any(), agent_objects::Done::Removed { at: now });
    Ok(())
}

async fn remove_agent_objects(
    policy: &RuntimeMonitoringPolicy,
    ctx: &Context,
) -> Result<(), Error> {
    let name = agent_object_name(policy);
    let ns = ctx.namespace.as_str();
    let c = ctx.client.clone();
    delete_ignoring_absent(Api::<DaemonSet>::namespaced(c.clone(), ns), &name).await?;
    delete_ignoring_absent(Api::<ConfigMap>::namespaced(c, ns), &name).await
}

async fn apply(policy: &RuntimeMonitoringPolicy, ctx: &Context) -> Result<Action, Error> {
    let name = policy.name_any();
    let reference = policy.object_ref(&());
    let now = (ctx.clock)();
    let nodes: Vec<NodeFacts> = ctx
        .stores
        .nodes
        .state()
        .iter()
        .filter_map(|n| NodeFacts::from_node(n))
        .collect();
    let all: Vec<RuntimeMonitoringPolicy> = ctx
        .stores
        .policies
        .state()
        .iter()
        .filter_map(|g| g.0.as_ref().ok().cloned())
        .collect();
    let all_refs: Vec<&RuntimeMonitoringPolicy> = all.iter().collect();
    let placement = place(policy, &all_refs, &nodes);
    let excluded: Vec<String> = placement.conflicts.keys().cloned().collect();

    let rollout = match policy.spec.agent_management {
        AgentManagement::Automated => Some(apply_agent(policy, ctx, &excluded, now).await?),
        AgentManagement::Manual => {
            remove_agent(policy, ctx, now).await?;
            None
        }
    };

    let pods: Vec<AgentPodFacts> = ctx
        .stores
        .pods
        .state()
        .iter()
        .filter(|p| p.labels().get(POLICY_LABEL) == Some(&name))
        .map(|p| AgentPodFacts::from_pod(p))
        .collect();
    let heartbeats: Vec<_> = ctx
        .stores
        .leases
        .state()
        .iter()
        .filter_map(|l| {
            read_heartbeat(l)
                .map_err(|error| warn!(%error, "ignoring heartbeat lease"))
                .ok()
        })
        .collect();
    let assessment = assess(&policy.spec, &placement.compatible, &pods, &heartbeats, now);
    let plan = plan_node_coverage(policy, &assessment, ctx, now);
    let node_result = write_node_coverage(policy, &plan, ctx, now).await;

    let previous = policy.status.clone().unwrap_or_default();
    let written: Vec<&Transition> = plan
        .nodes
        .iter()
        .filter(|n| !n.write || node_result.written.contains(n.node.as_str()))
        .filter_map(|n| n.transition.as_ref())
        .collect();
    for (i, t) in written.iter().enumerate() {
        ctx.metrics
            .coverage_transitions
            .get_or_create(&TransitionLabels {
                policy: name.clone(),
                to: t.to.as_str().to_owned(),
                issue: t.issue_type.clone().unwrap_or_default(),
            })
            .inc();
        if i < MAX_NODE_EVENTS {
            info!(node = %t.node, to = t.to.as_str(), issue = t.issue.as_deref().unwrap_or(""), "coverage transition");
        } else {
            debug!(node = %t.node, to = t.to.as_str(), issue = t.issue.as_deref().unwrap_or(""), "coverage transition");
        }
    }
    if written.len() > MAX_NODE_EVENTS {
        info!(
            transitions = written.len(),
            events = MAX_NODE_EVENTS,
            "more coverage transitions than Events: the rest summed up per reason"
        );
    }
    for ev in events(&written, MAX_NODE_EVENTS) {
        let type_ = if ev.warning {
            EventType::Warning
        } else {
            EventType::Normal
        };
        ctx.event(&reference, type_, &ev.reason, ev.note).await;
    }
    let previous_conflicts: BTreeSet<&str> = previous
        .conditions
        .iter()
        .filter(|c| c.type_ == condition_types::DEGRADED && c.reason == "PolicyConflict")
        .map(|c| c.message.as_str())
        .collect();

    let coverage = summary(&assessment, &plan.nodes);
    let conds = conditions(
        &previous.conditions,
        &ConditionInputs {
            coverage: &coverage,
            conflicts: &placement.conflicts,
            rollout,
            generation: policy.metadata.generation,
            now: Time(now),
        },
    );
    if let Some(c) = conds
        .iter()
        .find(|c| c.type_ == condition_types::DEGRADED && c.reason == "PolicyConflict")
        && !previous_conflicts.contains(c.message.as_str())
    {
        ctx.event(
            &reference,
            EventType::Warning,
            "PolicyConflict",
            c.message.clone(),
        )
        .await;
    }
    rollout_events(ctx, &reference, &previous, &conds, rollout).await;

    let covered: BTreeSet<&str> = placement
        .compatible
        .iter()
        .map(|n| n.name.as_str())
        .collect();
    let mut counts = FindingCounts::default();
    for guard in ctx.stores.findings.state() {
        if let Ok(f) = &guard.0
            && !f.spec.is_archived(f.status.as_ref())
            && f.spec
                .resource
                .host
                .node_name
                .as_deref()
                .is_some_and(|n| covered.contains(n))
        {
            counts.add(f.spec.severity_label);
        }
    }
    let t = assessment.totals;
    for (state, value) in [
        ("compatible", t.compatible),
        ("covered", t.covered),
        ("healthy", t.healthy),
        ("unhealthy", t.unhealthy),
    ] {
        ctx.metrics
            .coverage_nodes
            .get_or_create(&CoverageLabels {
                policy: name.clone(),
                state: state.to_owned(),
            })
            .set(i64::from(value));
    }

    let status = RuntimeMonitoringPolicyStatus {
        observed_generation: policy.metadata.generation,
        conditions: conds,
        coverage,
        finding_counts: counts,
    };
    if policy.status.as_ref() != Some(&status) {
        ctx.apply_status::<RuntimeMonitoringPolicy>(&name, &status)
            .await?;
    }
    // The status says what the assessment found; objects that could not be written are tried
    // again (and their transitions reported) on the retry.
    if let Some(error) = node_result.error {
        return Err(error);
    }
    // Lease expiry is a matter of time, not of a watch event: look again within half the timeout.
    Ok(Action::requeue(Duration::from_secs(
        u64::from(policy.spec.coverage.heartbeat_timeout_seconds / 2).max(5),
    )))
}

/// Plans the policy's `NodeCoverage` objects from what the cache and the write log know.
fn plan_node_coverage(
    policy: &RuntimeMonitoringPolicy,
    assessment: &Assessment,
    ctx: &Context,
    now: Timestamp,
) -> Plan {
    let objects = ctx.stores.node_coverage.state();
    let cached: HashMap<&str, &NodeCoverageSpec> = objects
        .iter()
        .filter_map(|g| {
            let o = g.0.as_ref().ok()?;
            Some((o.metadata.name.as_deref()?, &o.spec))
        })
        .collect();
    let mut log = ctx.coverage_log();
    log.prune(now, |n| cached.contains_key(n));
    let log = &*log;
    plan(
        &policy.name_any(),
        assessment,
        |n| known(log.get(n), cached.get(n).copied(), now),
        cached.keys().copied().chain(log.nodes()),
        now,
    )
}

/// What [`write_node_coverage`] did.
struct NodeWrites {
    /// Nodes whose object was written.
    written: HashSet<String>,
    /// The first failure, if any.
    error: Option<Error>,
}

/// Writes and deletes the planned `NodeCoverage` objects, a few at a time, recording each
/// success in the write log. A failed object does not stop the others.
async fn write_node_coverage(
    policy: &RuntimeMonitoringPolicy,
    plan: &Plan,
    ctx: &Context,
    now: Timestamp,
) -> NodeWrites {
    let mut out = NodeWrites {
        written: HashSet::new(),
        error: None,
    };
    let owner = policy.controller_owner_ref(&());
    if owner.is_none() && (plan.writes().next().is_some()) {
        out.error = Some(Error::Render(crate::render::RenderError::MissingMetadata {
            policy: policy.name_any(),
            field: "uid",
        }));
        return out;
    }
    let api: Api<NodeCoverage> = Api::all(ctx.client.clone());
    // The objects are built first and each request's future only when a slot frees up: 5,000
    // futures made in advance would hold tens of megabytes for one first reconcile.
    let objects: Vec<NodeCoverage> = plan
        .writes()
        .map(|n| NodeCoverage {
            metadata: ObjectMeta {
                name: Some(n.node.clone()),
                labels: Some(n.spec.labels()),
                owner_references: owner.clone().map(|o| vec![o]),
                ..ObjectMeta::default()
            },
            spec: n.spec.clone(),
        })
        .collect();
    let mut writes = stream::iter(objects)
        .map(|object| {
            let api = api.clone();
            async move {
                let result = server_side_apply(api, &object).await.map(|_| ());
                (object, result)
            }
        })
        .buffer_unordered(NODE_WRITE_CONCURRENCY);
    while let Some((object, result)) = writes.next().await {
        let node = object.metadata.name.unwrap_or_default();
        match result {
            Ok(()) => {
                ctx.coverage_log().record(&node, Some(object.spec), now);
                out.written.insert(node);
            }
            Err(error) => {
                warn!(node = %node, error = %crate::chain(&error), "node coverage not written");
                out.error.get_or_insert(error);
            }
        }
    }
    let mut deletes = stream::iter(plan.delete.clone())
        .map(|node| {
            let api = api.clone();
            async move {
                let result = delete_ignoring_absent(api, &node).await;
                (node, result)
            }
        })
        .buffer_unordered(NODE_WRITE_CONCURRENCY);
    while let Some((node, result)) = deletes.next().await {
        match result {
            Ok(()) => {
                info!(node = %node, "node left the policy, its coverage object deleted");
                ctx.coverage_log().record(&node, None, now);
            }
            Err(error) => {
                warn!(node = %node, error = %crate::chain(&error), "node coverage not deleted");
                out.error.get_or_insert(error);
            }
        }
    }
    out
}

async fn rollout_events(
    ctx: &Context,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    previous: &RuntimeMonitoringPolicyStatus,
    conds: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    rollout: Option<Rollout>,
) {
    let Some(r) = rollout else { return };
    let was = previous
        .conditions
        .iter()
        .find(|c| c.type_ == condition_types::PROGRESSING)
        .map(|c| c.status.as_str());
    let now = conds
        .iter()
        .find(|c| c.type_ == condition_types::PROGRESSING)
        .map(|c| c.status.as_str());
    match (was, now) {
        (None, _) => {
            ctx.event(
                reference,
                EventType::Normal,
                "AgentDeployed",
                format!("agent DaemonSet applied, {} pods desired", r.desired),
            )
            .await
        }
        (Some("False"), Some("True")) => {
            ctx.event(
                reference,
                EventType::Normal,
                "RollingOut",
                format!("{} of {} agent pods updated", r.updated, r.desired),
            )
            .await
        }
        (Some("True"), Some("False")) => {
            ctx.event(
                reference,
                EventType::Normal,
                "RolloutComplete",
                format!("{} agent pods up to date", r.desired),
            )
            .await
        }
        _ => {}
    }
}

async fn cleanup(policy: &RuntimeMonitoringPolicy, ctx: &Context) -> Result<Action, Error> {
    let name = policy.name_any();
    // The agent objects and the NodeCoverage objects carry owner references and are
    // garbage-collected; only our own bookkeeping goes here.
    ctx.coverage_log().forget_policy(&name);
    ctx.agent_objects().remove(&name);
    for state in ["compatible", "covered", "healthy", "unhealthy"] {
        ctx.metrics.coverage_nodes.remove(&CoverageLabels {
            policy: name.clone(),
            state: state.to_owned(),
        });
    }
    ctx.event(
        &policy.object_ref(&()),
        EventType::Normal,
        "PolicyDeleted",
        "agent objects are garbage-collected with the policy".to_owned(),
    )
    .await;
    Ok(Action::await_change())
}
