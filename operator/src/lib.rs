//! The Vigil operator: `RuntimeMonitoringPolicy` rolls out the agent and reports coverage,
//! `SuppressionRule` archives findings.
//!
//! Pure decisions ([`placement`], [`render`], [`coverage`], [`node_coverage`], [`status`],
//! [`backoff`], [`triggers`]) are plain functions with table tests; the controllers
//! ([`policy_controller`], [`suppression_controller`]) are thin shells that read caches, call them
//! and write through the API.

pub mod agent_objects;
pub mod backoff;
pub mod console;
pub mod coverage;
pub mod facts;
pub mod finding_gc;
pub mod health;
pub mod http;
pub mod image_policy;
pub mod kube_auth;
pub mod leader;
pub mod metrics;
pub mod node_coverage;
pub mod placement;
pub mod policy_controller;
pub mod quarantine;
pub mod render;
pub mod status;
pub mod suppression_controller;
pub mod triggers;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use k8s_openapi::{
    api::apps::v1::DaemonSet,
    api::coordination::v1::Lease,
    api::core::v1::{Node, ObjectReference, Pod},
    apimachinery::pkg::apis::meta::v1::{Condition, Time},
    jiff::Timestamp,
};
use kube::{
    Client, Resource, ResourceExt,
    core::{ClusterResourceScope, DeserializeGuard, ObjectMeta, object::HasStatus},
    runtime::{
        controller::Action,
        events::{Event, EventType, Recorder},
        reflector::Store,
    },
};
use thiserror::Error;
use tracing::{debug, warn};
use vigil_crds::{NodeCoverage, RuntimeFinding, RuntimeMonitoringPolicy, policy::condition_types};

pub use crate::{backoff::Backoff, metrics::Metrics, node_coverage::WriteLog};

/// Why a reconciliation failed.
#[derive(Debug, Error)]
pub enum Error {
    /// An API call failed.
    #[error("{verb} {kind} {name}")]
    Kube {
        /// `apply`, `patch status`, `delete`, ...
        verb: &'static str,
        /// Object kind.
        kind: String,
        /// Object name.
        name: String,
        /// The API error, boxed to keep `Result<_, Error>` small.
        #[source]
        source: Box<kube::Error>,
    },
    /// The policy cannot be rendered.
    #[error(transparent)]
    Render(#[from] render::RenderError),
    /// The policy names an agent image the operator does not allow.
    #[error(transparent)]
    ImageNotAllowed(#[from] image_policy::ImageNotAllowed),
    /// The ServiceAccount the agent would run as does not exist: the agent's identity and
    /// rights, which the chart ships, are not installed in the operator's namespace.
    #[error(
        "ServiceAccount {namespace}/{service_account} does not exist: {}",
        render::missing_service_account_hint(service_account)
    )]
    AgentRbacMissing {
        /// The agent namespace.
        namespace: String,
        /// The missing ServiceAccount.
        service_account: &'static str,
    },
    /// A status or finding did not serialise.
    #[error("serialising {what}")]
    Serialize {
        /// What was serialised.
        what: String,
        /// Serialiser error.
        #[source]
        source: serde_json::Error,
    },
    /// Adding or removing the finalizer, or the wrapped reconcile, failed.
    #[error("finalizer")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
}

impl Error {
    /// A short kind for the failure metric: `api_<reason>` for API errors, else the variant.
    pub fn metric_label(&self) -> String {
        match self {
            Self::Kube { source, .. } => match source.as_ref() {
                kube::Error::Api(status) if status.reason.is_empty() => {
                    format!("api_{}", status.code)
                }
                kube::Error::Api(status) => format!("api_{}", status.reason.to_lowercase()),
                _ => "kube".to_owned(),
            },
            Self::Render(_) => "render".to_owned(),
            Self::ImageNotAllowed(_) => "image_not_allowed".to_owned(),
            Self::AgentRbacMissing { .. } => "agent_rbac_missing".to_owned(),
            Self::Serialize { .. } => "serialize".to_owned(),
            Self::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e)
                | kube::runtime::finalizer::Error::CleanupFailed(e) => e.metric_label(),
                _ => "finalizer".to_owned(),
            },
        }
    }

    /// `Some` when retrying cannot fix this failure (see [`backoff::is_permanent_status`]): what
    /// to report on the object. `None` for a failure that may pass on a later try.
    pub fn rejection(&self) -> Option<Rejection> {
        use kube::runtime::finalizer::Error as F;
        match self {
            Self::Kube {
                verb,
                kind,
                name,
                source,
            } => {
                let kube::Error::Api(status) = source.as_ref() else {
                    return None;
                };
                let reason = match *verb {
                    "patch status" => "StatusWriteRejected",
                    "apply" => "ApplyRejected",
                    "delete" => "DeleteRejected",
                    _ => "RequestRejected",
                };
                Rejection::api(reason, status, &format!("{verb} {kind} {name}"))
            }
            Self::Render(_) => Some(Rejection::new("RenderFailed", "render", self)),
            Self::ImageNotAllowed(_) => Some(Rejection::new("ImageNotAllowed", "image", self)),
            Self::AgentRbacMissing { .. } => {
                Some(Rejection::new("AgentRbacMissing", "service_account", self))
            }
            Self::Serialize { .. } => {
                Some(Rejection::new("SerializationFailed", "serialize", self))
            }
            Self::Finalizer(inner) => match inner.as_ref() {
                F::ApplyFailed(e) | F::CleanupFailed(e) => e.rejection(),
                F::AddFinalizer(kube::Error::Api(status))
                | F::RemoveFinalizer(kube::Error::Api(status)) => {
                    Rejection::api("FinalizerRejected", status, "patch finalizers")
                }
                F::AddFinalizer(_) | F::RemoveFinalizer(_) => None,
                F::UnnamedObject | F::InvalidFinalizer => {
                    Some(Rejection::new("FinalizerFailed", "finalizer", self))
                }
            },
        }
    }

    /// Whether this is a status write to an object of `kind` that RBAC forbids, so that a
    /// condition on such an object cannot be written either.
    pub fn forbids_status_of(&self, kind: &str) -> bool {
        match self {
            Self::Kube {
                verb: "patch status",
                kind: k,
                source,
                ..
            } => k == kind && matches!(source.as_ref(), kube::Error::Api(s) if s.code == 403),
            Self::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e)
                | kube::runtime::finalizer::Error::CleanupFailed(e) => e.forbids_status_of(kind),
                _ => false,
            },
            _ => false,
        }
    }
}

/// Longest message of a rejection: an Event note must stay under 1 kB.
const REJECTION_MESSAGE_BYTES: usize = 1000;

/// A failure that retrying cannot fix, as reported on the object (condition `Degraded` and a
/// Warning Event) and logged, once per object, generation and [`Rejection::key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Reason of the condition and the Event: `StatusWriteRejected`, `ApplyRejected`,
    /// `DeleteRejected`, `FinalizerRejected`, `RenderFailed`, ...
    pub reason: &'static str,
    /// What the API server said (`Invalid`, `Forbidden`, or the code when it gave no reason),
    /// else the kind of failure.
    pub cause: String,
    /// For people: the request and the API server's message, at most 1000 bytes.
    pub message: String,
}

impl Rejection {
    fn api(reason: &'static str, status: &kube::core::Status, request: &str) -> Option<Self> {
        if !backoff::is_permanent_status(status.code) {
            return None;
        }
        let cause = if status.reason.is_empty() {
            status.code.to_string()
        } else {
            status.reason.clone()
        };
        Some(Self {
            reason,
            message: truncate(format!(
                "{request}: {} {cause}: {}",
                status.code, status.message
            )),
            cause,
        })
    }

    fn new(reason: &'static str, cause: &str, error: &Error) -> Self {
        Self {
            reason,
            cause: cause.to_owned(),
            message: truncate(chain(error)),
        }
    }

    /// What tells two rejections apart for reporting: reason and cause, not the message, which
    /// may carry details that change on every try.
    pub fn key(&self) -> String {
        format!("{}/{}", self.reason, self.cause)
    }
}

/// `error` and its sources, `: `-separated, for logs and messages.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

fn truncate(mut s: String) -> String {
    if s.len() > REJECTION_MESSAGE_BYTES {
        let mut end = REJECTION_MESSAGE_BYTES - '…'.len_utf8();
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// A cluster-scoped custom resource whose status carries conditions, so that a [`Rejection`]
/// can be reported there as `Degraded`.
pub trait WithConditions:
    HasStatus<Status: Clone + Default + serde::Serialize>
    + Resource<DynamicType = (), Scope = ClusterResourceScope>
    + Clone
    + std::fmt::Debug
    + serde::de::DeserializeOwned
{
    /// The conditions of `status`.
    fn conditions_mut(status: &mut Self::Status) -> &mut Vec<Condition>;
}

/// Key of [`Context::failures`]: controller, object name and uid (a rule deleted and created
/// again under its name starts afresh).
pub type FailureKey = (&'static str, String, String);

fn failure_key(controller: &'static str, meta: &ObjectMeta) -> FailureKey {
    (
        controller,
        meta.name.clone().unwrap_or_default(),
        meta.uid.clone().unwrap_or_default(),
    )
}

/// Current time; injected so tests control it.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// Caches the controllers read instead of listing on every reconcile.
#[derive(Clone)]
pub struct Stores {
    /// All nodes.
    pub nodes: Store<Node>,
    /// Agent pods in the operator namespace.
    pub pods: Store<Pod>,
    /// Heartbeat Leases in the operator namespace.
    pub leases: Store<Lease>,
    /// All policies, for conflict detection.
    pub policies: Store<DeserializeGuard<RuntimeMonitoringPolicy>>,
    /// All findings.
    pub findings: Store<DeserializeGuard<RuntimeFinding>>,
    /// All `NodeCoverage` objects: what the operator reported per node.
    pub node_coverage: Store<DeserializeGuard<NodeCoverage>>,
    /// The agent DaemonSets in the operator namespace.
    pub daemon_sets: Store<DaemonSet>,
}

impl Stores {
    /// Whether every cache has completed its first list. Until then a reconcile would, for
    /// example, miss an older policy and deploy onto its nodes.
    pub fn ready(&self) -> bool {
        use futures::FutureExt;
        let ready = |f: Option<Result<(), kube::runtime::reflector::store::WriterDropped>>| {
            matches!(f, Some(Ok(())))
        };
        ready(self.nodes.wait_until_ready().now_or_never())
            && ready(self.pods.wait_until_ready().now_or_never())
            && ready(self.leases.wait_until_ready().now_or_never())
            && ready(self.policies.wait_until_ready().now_or_never())
            && ready(self.findings.wait_until_ready().now_or_never())
            && ready(self.node_coverage.wait_until_ready().now_or_never())
            && ready(self.daemon_sets.wait_until_ready().now_or_never())
    }
}

/// Shared state of the controllers.
pub struct Context {
    /// API client.
    pub client: Client,
    /// Event recorder.
    pub recorder: Recorder,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Namespace of the operator and the agents.
    pub namespace: String,
    /// Caches.
    pub stores: Stores,
    /// Current time.
    pub clock: Clock,
    /// Failed reconciles per object, for backoff and reporting once; empty at start.
    pub failures: Mutex<Backoff<FailureKey>>,
    /// The operator's own `NodeCoverage` writes, which the cache learns of a moment later;
    /// empty at start.
    pub coverage_log: Mutex<WriteLog>,
    /// What was last done to each policy's agent objects (by policy name); empty at start.
    pub agent_objects: Mutex<HashMap<String, agent_objects::Done>>,
    /// The agent images policies may run.
    pub agent_images: image_policy::ImageAllowList,
}

impl Context {
    /// Publish an event, logging rather than failing: events are best effort.
    pub async fn event(
        &self,
        reference: &ObjectReference,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        let ev = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note),
            action: reason.to_owned(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&ev, reference).await {
            warn!(%error, reason, "event not recorded");
        }
    }

    /// Server-side applies `status` to the cluster-scoped object `name` of kind `K` (the one
    /// home of the controllers' status writes). An object deleted meanwhile is not an error.
    pub async fn apply_status<K>(
        &self,
        name: &str,
        status: &impl serde::Serialize,
    ) -> Result<(), Error>
    where
        K: Resource<DynamicType = (), Scope = kube::core::ClusterResourceScope>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned,
    {
        let api: kube::Api<K> = kube::Api::all(self.client.clone());
        let patch = serde_json::json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "status": status,
        });
        match api
            .patch_status(
                name,
                &kube::api::PatchParams::apply(render::FIELD_MANAGER).force(),
                &kube::api::Patch::Apply(patch),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => {
                debug!(object = name, "object gone, status not written");
                Ok(())
            }
            Err(source) => Err(Error::Kube {
                verb: "patch status",
                kind: K::kind(&()).into_owned(),
                name: name.to_owned(),
                source: Box::new(source),
            }),
        }
    }

    fn failures(&self) -> MutexGuard<'_, Backoff<FailureKey>> {
        // The table stays consistent whatever panicked while holding it.
        self.failures.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What was last done to each policy's agent objects.
    pub fn agent_objects(&self) -> MutexGuard<'_, HashMap<String, agent_objects::Done>> {
        self.agent_objects
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The write log of `NodeCoverage` objects (each entry is written whole, so a panic while
    /// holding it leaves it consistent).
    pub fn coverage_log(&self) -> MutexGuard<'_, WriteLog> {
        self.coverage_log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// How much longer `controller` must leave the object of `meta` alone after failures, `None`
    /// when it may reconcile now. Each controller asks first, so that watch events do not
    /// bypass the backoff; a new generation or a deletion ends the wait.
    pub fn backoff_wait(&self, controller: &'static str, meta: &ObjectMeta) -> Option<Duration> {
        if meta.deletion_timestamp.is_some() {
            return None;
        }
        self.failures().wait(
            &failure_key(controller, meta),
            meta.generation,
            (self.clock)(),
        )
    }

    /// The end of every reconcile of `guard` by `controller`. A success forgets the object's
    /// failures. A failure is recorded for the backoff and logged; a failure retrying cannot fix
    /// ([`Error::rejection`]) is logged at `warn` once per object, generation and rejection, and
    /// reported once as a Warning Event and as condition `Degraded` in the last status the API
    /// server accepted. Returns `result` unchanged.
    pub async fn settle<K: WithConditions>(
        &self,
        controller: &'static str,
        guard: &DeserializeGuard<K>,
        result: Result<Action, Error>,
    ) -> Result<Action, Error> {
        let name = guard.name_any();
        let key = failure_key(controller, guard.meta());
        let error = match result {
            Ok(action) => {
                self.failures().succeeded(&key);
                return Ok(action);
            }
            Err(error) => error,
        };
        let rejection = error.rejection();
        let now = (self.clock)();
        let generation = guard.meta().generation;
        let failure = self.failures().failed(
            key,
            generation,
            rejection.as_ref().map(Rejection::key).as_deref(),
            now,
        );
        let retry_in_s = failure.retry_in.as_secs();
        match &rejection {
            None => warn!(
                controller, object = %name, failures = failure.failures, retry_in_s,
                error = %chain(&error), "reconcile failed, backing off"
            ),
            Some(r) if failure.report => {
                warn!(
                    controller, object = %name, generation, reason = r.reason, cause = %r.cause,
                    retry_in_s, error = %chain(&error),
                    "reconcile rejected, retrying cannot fix it: reported once, retrying slowly"
                );
                self.report(guard, r, &error, now).await;
            }
            Some(r) => debug!(
                controller, object = %name, generation, reason = r.reason,
                failures = failure.failures, retry_in_s, "reconcile still rejected"
            ),
        }
        Err(error)
    }

    /// A Warning Event, and `Degraded` in the last accepted status where status can be written.
    async fn report<K: WithConditions>(
        &self,
        guard: &DeserializeGuard<K>,
        rejection: &Rejection,
        error: &Error,
        now: Timestamp,
    ) {
        let reference = reference_of::<K>(guard.meta());
        self.event(
            &reference,
            EventType::Warning,
            rejection.reason,
            rejection.message.clone(),
        )
        .await;
        let Ok(object) = &guard.0 else { return };
        if error.forbids_status_of(&K::kind(&())) {
            return;
        }
        let mut status = object.status().cloned().unwrap_or_default();
        status::set_condition(
            K::conditions_mut(&mut status),
            Condition {
                type_: condition_types::DEGRADED.to_owned(),
                status: "True".to_owned(),
                reason: rejection.reason.to_owned(),
                message: rejection.message.clone(),
                observed_generation: object.meta().generation,
                last_transition_time: Time(now),
            },
        );
        if let Err(error) = self.apply_status::<K>(&object.name_any(), &status).await {
            warn!(error = %chain(&error), "rejection not reported in status");
        }
    }

    /// Every controller's `error_policy`: count the failure by kind and requeue after the
    /// object's backoff, which [`Context::settle`] recorded.
    pub fn retry_after_failure(
        &self,
        controller: &'static str,
        object: &ObjectMeta,
        error: &Error,
    ) -> Action {
        self.metrics.failure(controller, &error.metric_label());
        let delay = self
            .failures()
            .retry_in(&failure_key(controller, object))
            .unwrap_or(backoff::BASE_DELAY);
        Action::requeue(delay)
    }
}

/// An object reference from metadata, for events on objects that did not deserialise.
pub fn reference_of<K: Resource<DynamicType = ()>>(meta: &ObjectMeta) -> ObjectReference {
    ObjectReference {
        api_version: Some(K::api_version(&()).into_owned()),
        kind: Some(K::kind(&()).into_owned()),
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        ..ObjectReference::default()
    }
}

#[cfg(test)]
mod tests {
    use kube::{core::Status, runtime::finalizer::Error as FinalizerError};

    use super::*;

    fn api(code: u16, reason: &str) -> kube::Error {
        kube::Error::Api(
            Status::failure("refused by test", reason)
                .with_code(code)
                .boxed(),
        )
    }

    fn kube_err(verb: &'static str, source: kube::Error) -> Error {
        Error::Kube {
            verb,
            kind: "RuntimeMonitoringPolicy".into(),
            name: "p".into(),
            source: Box::new(source),
        }
    }

    #[test]
    fn rejections_are_the_failures_retrying_cannot_fix() {
        let render = || {
            Error::Render(render::RenderError::MissingMetadata {
                policy: "p".into(),
                field: "uid",
            })
        };
        // (case, error, Some((reason, cause)) when permanent)
        type Case = (&'static str, Error, Option<(&'static str, &'static str)>);
        let table: Vec<Case> = vec![
            (
                "status 422",
                kube_err("patch status", api(422, "Invalid")),
                Some(("StatusWriteRejected", "Invalid")),
            ),
            (
                "apply 403",
                kube_err("apply", api(403, "Forbidden")),
                Some(("ApplyRejected", "Forbidden")),
            ),
            (
                "delete 400",
                kube_err("delete", api(400, "BadRequest")),
                Some(("DeleteRejected", "BadRequest")),
            ),
            (
                "413 without reason",
                kube_err("patch status", api(413, "")),
                Some(("StatusWriteRejected", "413")),
            ),
            ("409", kube_err("patch status", api(409, "Conflict")), None),
            ("404", kube_err("apply", api(404, "NotFound")), None),
            ("429", kube_err("apply", api(429, "TooManyRequests")), None),
            ("500", kube_err("apply", api(500, "InternalError")), None),
            (
                "503",
                kube_err("apply", api(503, "ServiceUnavailable")),
                None,
            ),
            (
                "network",
                kube_err("apply", kube::Error::Service("connection refused".into())),
                None,
            ),
            ("render", render(), Some(("RenderFailed", "render"))),
            (
                "finalizer apply 422",
                Error::Finalizer(Box::new(FinalizerError::ApplyFailed(kube_err(
                    "patch status",
                    api(422, "Invalid"),
                )))),
                Some(("StatusWriteRejected", "Invalid")),
            ),
            (
                "finalizer cleanup 503",
                Error::Finalizer(Box::new(FinalizerError::CleanupFailed(kube_err(
                    "delete",
                    api(503, "ServiceUnavailable"),
                )))),
                None,
            ),
            (
                "add finalizer 422",
                Error::Finalizer(Box::new(FinalizerError::AddFinalizer(api(422, "Invalid")))),
                Some(("FinalizerRejected", "Invalid")),
            ),
            (
                "remove finalizer 409",
                Error::Finalizer(Box::new(FinalizerError::RemoveFinalizer(api(
                    409, "Conflict",
                )))),
                None,
            ),
            (
                "unnamed",
                Error::Finalizer(Box::new(FinalizerError::UnnamedObject)),
                Some(("FinalizerFailed", "finalizer")),
            ),
        ];
        for (case, error, expected) in table {
            let got = error.rejection();
            assert_eq!(
                got.as_ref().map(|r| (r.reason, r.cause.as_str())),
                expected,
                "{case}"
            );
            if let Some(r) = got {
                assert_eq!(r.key(), format!("{}/{}", r.reason, r.cause), "{case}");
                assert!(!r.message.is_empty(), "{case}");
            }
        }
        let r = kube_err("patch status", api(422, "Invalid"))
            .rejection()
            .unwrap();
        assert_eq!(
            r.message,
            "patch status RuntimeMonitoringPolicy p: 422 Invalid: refused by test"
        );
        assert!(
            render()
                .rejection()
                .unwrap()
                .message
                .contains("metadata.uid")
        );
    }

    #[test]
    fn long_messages_fit_an_event_note() {
        let long = "é".repeat(2000);
        let error = Error::Kube {
            verb: "patch status",
            kind: "RuntimeMonitoringPolicy".into(),
            name: "p".into(),
            source: Box::new(kube::Error::Api(
                Status::failure(&long, "Invalid").with_code(422).boxed(),
            )),
        };
        let message = error.rejection().unwrap().message;
        assert!(
            message.len() <= REJECTION_MESSAGE_BYTES,
            "{}",
            message.len()
        );
        assert!(message.ends_with('…'));
        assert!(message.starts_with("patch status RuntimeMonitoringPolicy p: 422 Invalid: é"));
    }

    #[test]
    fn forbidden_status_writes_are_recognised_through_the_finalizer() {
        let forbidden = || kube_err("patch status", api(403, "Forbidden"));
        assert!(forbidden().forbids_status_of("RuntimeMonitoringPolicy"));
        assert!(!forbidden().forbids_status_of("SuppressionRule"));
        assert!(
            Error::Finalizer(Box::new(FinalizerError::ApplyFailed(forbidden())))
                .forbids_status_of("RuntimeMonitoringPolicy")
        );
        assert!(
            !kube_err("apply", api(403, "Forbidden")).forbids_status_of("RuntimeMonitoringPolicy")
        );
        assert!(
            !kube_err("patch status", api(422, "Invalid"))
                .forbids_status_of("RuntimeMonitoringPolicy")
        );
    }
}
