//! The Vigil operator: `RuntimeMonitoringPolicy` rolls out the agent and reports coverage,
//! `SuppressionRule` archives findings.
//!
//! Pure decisions ([`placement`], [`render`], [`coverage`], [`status`]) are plain functions with
//! table tests; the controllers ([`policy_controller`], [`suppression_controller`]) are thin shells
//! that read caches, call them and write through the API.

pub mod coverage;
pub mod facts;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod placement;
pub mod policy_controller;
pub mod render;
pub mod status;
pub mod suppression_controller;

use std::sync::Arc;

use k8s_openapi::{
    api::coordination::v1::Lease,
    api::core::v1::{Node, ObjectReference, Pod},
    jiff::Timestamp,
};
use kube::{
    Client, Resource,
    core::{DeserializeGuard, ObjectMeta},
    runtime::{
        events::{Event, EventType, Recorder},
        reflector::Store,
    },
};
use thiserror::Error;
use tracing::warn;
use vigil_crds::{RuntimeFinding, RuntimeMonitoringPolicy};

pub use crate::metrics::Metrics;

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
            Self::Serialize { .. } => "serialize".to_owned(),
            Self::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e)
                | kube::runtime::finalizer::Error::CleanupFailed(e) => e.metric_label(),
                _ => "finalizer".to_owned(),
            },
        }
    }
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
    /// home of the controllers' status writes).
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
        api.patch_status(
            name,
            &kube::api::PatchParams::apply(render::FIELD_MANAGER).force(),
            &kube::api::Patch::Apply(patch),
        )
        .await
        .map_err(|source| Error::Kube {
            verb: "patch status",
            kind: K::kind(&()).into_owned(),
            name: name.to_owned(),
            source: Box::new(source),
        })?;
        Ok(())
    }

    /// A reconcile of `object` by `controller` failed: log it, count it by kind, retry in 15 s.
    /// Every controller's `error_policy`.
    pub fn retry_after_failure(
        &self,
        controller: &'static str,
        object: &str,
        error: &Error,
    ) -> kube::runtime::controller::Action {
        warn!(controller, object, error = %error, source = ?std::error::Error::source(error), "reconcile failed");
        self.metrics.failure(controller, &error.metric_label());
        kube::runtime::controller::Action::requeue(std::time::Duration::from_secs(15))
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
