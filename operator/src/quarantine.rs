//! Pod quarantine: every namespace with a pod labelled `vigil.dev/quarantined=true` gets the
//! NetworkPolicy `vigil-quarantine`, which selects exactly those pods and allows them no
//! ingress and no egress; when no pod of the namespace carries the label any more, the policy
//! is deleted. The label is the switch (set by the agent's `isolate` response action, or by a
//! person), so removing it lifts the isolation.
//!
//! [`desired`] is the pure decision; [`reconcile_namespace`] applies it; [`run`] watches pods
//! with the label and reconciles their namespace on every change (a pod losing the label leaves
//! the label-selected watch, which the API server reports as a deletion).

use futures::StreamExt as _;
use k8s_openapi::{
    api::{
        core::v1::Pod,
        networking::v1::{NetworkPolicy, NetworkPolicySpec},
    },
    apimachinery::pkg::apis::meta::v1::LabelSelector,
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams},
    runtime::watcher,
};
use vigil_crds::response::QUARANTINE_LABEL;

use crate::{Error, render::FIELD_MANAGER};

/// The NetworkPolicy's name, one per namespace.
pub const POLICY_NAME: &str = "vigil-quarantine";

/// The label selector of quarantined pods.
pub fn selector() -> String {
    format!("{QUARANTINE_LABEL}=true")
}

/// The deny-all NetworkPolicy for the quarantined pods of `namespace`.
pub fn quarantine_policy(namespace: &str) -> NetworkPolicy {
    NetworkPolicy {
        metadata: ObjectMeta {
            name: Some(POLICY_NAME.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(
                [(
                    "app.kubernetes.io/managed-by".to_owned(),
                    FIELD_MANAGER.to_owned(),
                )]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some([(QUARANTINE_LABEL.to_owned(), "true".to_owned())].into()),
                ..LabelSelector::default()
            }),
            // Both types with no rules: nothing in, nothing out.
            policy_types: Some(vec!["Ingress".to_owned(), "Egress".to_owned()]),
            ingress: None,
            egress: None,
        }),
    }
}

/// What a namespace should have: the policy when some pod is quarantined, nothing otherwise.
pub fn desired(namespace: &str, quarantined_pods: usize) -> Option<NetworkPolicy> {
    (quarantined_pods > 0).then(|| quarantine_policy(namespace))
}

/// What [`reconcile_namespace`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuarantineState {
    /// The policy is applied: this many pods are quarantined.
    Isolated(usize),
    /// No pod is quarantined: the policy is gone.
    Lifted,
}

/// Applies or deletes the quarantine policy of `namespace` after the pods carrying the label.
pub async fn reconcile_namespace(
    client: &Client,
    namespace: &str,
) -> Result<QuarantineState, Error> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let listed = pods
        .list(&ListParams::default().labels(&selector()))
        .await
        .map_err(|e| kube_error("list", "Pod", namespace, e))?;
    let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), namespace);
    match desired(namespace, listed.items.len()) {
        Some(policy) => {
            policies
                .patch(
                    POLICY_NAME,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&policy),
                )
                .await
                .map_err(|e| kube_error("apply", "NetworkPolicy", POLICY_NAME, e))?;
            tracing::warn!(
                namespace,
                pods = listed.items.len(),
                "quarantine: deny-all NetworkPolicy applied"
            );
            Ok(QuarantineState::Isolated(listed.items.len()))
        }
        None => {
            match policies.delete(POLICY_NAME, &DeleteParams::default()).await {
                Ok(_) => tracing::info!(namespace, "quarantine lifted: NetworkPolicy deleted"),
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(e) => return Err(kube_error("delete", "NetworkPolicy", POLICY_NAME, e)),
            }
            Ok(QuarantineState::Lifted)
        }
    }
}

fn kube_error(verb: &'static str, kind: &str, name: &str, source: kube::Error) -> Error {
    Error::Kube {
        verb,
        kind: kind.to_owned(),
        name: name.to_owned(),
        source: Box::new(source),
    }
}

/// Watches pods that carry the quarantine label (any value) and reconciles the namespace of
/// each one that appears, changes or leaves; at start, also every namespace that still has a
/// quarantine policy (a label removed while the operator was down).
pub async fn run(client: Client) {
    let policies: Api<NetworkPolicy> = Api::all(client.clone());
    match policies
        .list(
            &ListParams::default().labels(&format!("app.kubernetes.io/managed-by={FIELD_MANAGER}")),
        )
        .await
    {
        Ok(list) => {
            for p in list.items.iter().filter(|p| p.name_any() == POLICY_NAME) {
                if let Some(ns) = p.namespace()
                    && let Err(error) = reconcile_namespace(&client, &ns).await
                {
                    tracing::warn!(%error, namespace = %ns, "quarantine reconcile failed");
                }
            }
        }
        Err(error) => tracing::warn!(%error, "cannot list quarantine NetworkPolicies"),
    }
    let pods: Api<Pod> = Api::all(client.clone());
    let mut events = watcher(pods, watcher::Config::default().labels(QUARANTINE_LABEL)).boxed();
    while let Some(event) = events.next().await {
        let pod = match event {
            Ok(
                watcher::Event::Apply(p) | watcher::Event::InitApply(p) | watcher::Event::Delete(p),
            ) => p,
            Ok(_) => continue,
            Err(error) => {
                tracing::warn!(%error, "quarantine pod watch");
                continue;
            }
        };
        if let Some(ns) = pod.namespace()
            && let Err(error) = reconcile_namespace(&client, &ns).await
        {
            tracing::warn!(%error, namespace = %ns, "quarantine reconcile failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_selects_quarantined_pods_and_allows_nothing() {
        let p = quarantine_policy("shop");
        assert_eq!(p.metadata.namespace.as_deref(), Some("shop"));
        let spec = p.spec.expect("spec");
        assert_eq!(
            spec.pod_selector.and_then(|s| s.match_labels),
            Some([(QUARANTINE_LABEL.to_owned(), "true".to_owned())].into())
        );
        assert_eq!(
            spec.policy_types,
            Some(vec!["Ingress".into(), "Egress".into()])
        );
        assert!(spec.ingress.is_none() && spec.egress.is_none());
        assert!(desired("shop", 0).is_none());
        assert!(desired("shop", 2).is_some());
    }
}
