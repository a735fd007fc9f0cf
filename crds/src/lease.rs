//! The agent heartbeat contract: each agent renews one `coordination.k8s.io/v1` Lease per node,
//! carrying its health; the operator reads exactly these fields.
//!
//! - name: [`lease_name`]`(node)`, namespace: the namespace the agent runs in (the operator's);
//! - labels: [`NODE_LABEL`] = node name, [`POLICY_LABEL`] = policy name, [`COMPONENT_LABEL`] =
//!   [`HEARTBEAT_COMPONENT`] (the operator watches Leases with this label only);
//! - `spec.holderIdentity`: agent pod name; `spec.renewTime`: time of the renewal;
//!   `spec.leaseDurationSeconds`: how long the heartbeat stays valid;
//! - annotation [`HEALTH_ANNOTATION`]: [`AgentHealth`] as JSON.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Annotation carrying [`AgentHealth`] JSON.
pub const HEALTH_ANNOTATION: &str = "vigil.dev/agent-health";
/// Label naming the node the Lease speaks for.
pub const NODE_LABEL: &str = "vigil.dev/node";
/// Label naming the policy the agent runs under.
pub const POLICY_LABEL: &str = "vigil.dev/policy";
/// Component label key.
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
/// Component label value of heartbeat Leases.
pub const HEARTBEAT_COMPONENT: &str = "agent-heartbeat";
/// Version of [`AgentHealth`] this crate writes.
pub const HEALTH_SCHEMA_VERSION: u32 = 1;

/// Name of the heartbeat Lease for `node`: `vigil-agent-<node>`, shortened with a hash when the
/// node name is too long for an object name.
pub fn lease_name(node: &str) -> String {
    const PREFIX: &str = "vigil-agent-";
    const MAX: usize = 253;
    if PREFIX.len() + node.len() <= MAX {
        return format!("{PREFIX}{node}");
    }
    // FNV-1a keeps names stable across releases without a hashing dependency.
    let hash = node.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let keep = MAX - PREFIX.len() - 17;
    let head: String = node.chars().take(keep).collect();
    format!("{PREFIX}{}-{hash:016x}", head.trim_end_matches(['.', '-']))
}

/// Health the agent reports with every renewal.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AgentHealth {
    /// [`HEALTH_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Agent version.
    pub agent_version: String,
    /// Kernel release (`uname -r`).
    pub kernel_version: String,
    /// Whether kernel BTF was found; without it the sensor cannot run.
    pub btf_available: bool,
    /// eBPF programs attached and working.
    #[serde(default)]
    pub active_hooks: Vec<String>,
    /// Programs that failed to load or attach.
    #[serde(default)]
    pub probe_failures: Vec<ProbeFailure>,
    /// Events processed per second, averaged since the last renewal.
    pub events_per_second: f64,
    /// Events dropped per second, averaged since the last renewal.
    pub dropped_events_per_second: f64,
    /// Events dropped since the agent started.
    pub dropped_events_total: u64,
    /// Events dropped since the previous renewal.
    #[serde(default)]
    pub dropped_since_last_renewal: u64,
    /// Whether the sensors run. `false` when the agent could not start them: `last_error` says
    /// why, and the Lease is written once before the agent exits.
    #[serde(default = "default_true")]
    pub sensors_running: bool,
    /// The most recent error the agent met (start-up, API, store), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Findings publishing, when the agent publishes to the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publishing: Option<PublishingHealth>,
    /// Times another process tampered with the agent since it started
    /// (`DefenseEvasion:Runtime/SecurityAgentTampered`); the node is `AgentTampered` while
    /// this is above 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tampering_total: u64,
    /// The latest tampering, described.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_tampering: Option<String>,
    /// Bytes the agent's bounded tables of host activity hold (processes, DNS names), each
    /// within its own bound.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tracked_bytes: u64,
    /// Entries those tables dropped to stay within their bounds since the agent started.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tracked_shed_total: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn default_true() -> bool {
    true
}

/// How findings publishing fares on the node: what went over the per-node caps and what waits.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PublishingHealth {
    /// `RuntimeFinding` objects written (created or updated) since the agent started.
    pub findings_published: u64,
    /// New findings held back by the per-node cap (published later, when the cap allows).
    pub findings_over_cap: u64,
    /// Kubernetes Events not posted because of the per-node cap.
    pub events_over_cap: u64,
    /// Entries waiting in the on-disk spool for the API server.
    pub spool_pending: u64,
    /// Entries the full spool evicted, since the spool was created.
    pub spool_lost: u64,
    /// Entries the API server refused for good (logged one by one).
    pub rejected: u64,
}

/// One probe that failed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ProbeFailure {
    /// Program name.
    pub probe: String,
    /// Loader or verifier error.
    pub error: String,
}

impl AgentHealth {
    /// Percentage of events dropped since the last renewal.
    pub fn dropped_percent(&self) -> f64 {
        let total = self.events_per_second + self.dropped_events_per_second;
        if total <= 0.0 {
            0.0
        } else {
            100.0 * self.dropped_events_per_second / total
        }
    }
}

/// A heartbeat Lease that does not follow the contract.
#[derive(Debug, Error)]
pub enum LeaseContractError {
    /// No [`NODE_LABEL`].
    #[error("lease {lease}: label {NODE_LABEL} is missing")]
    MissingNode {
        /// Lease name.
        lease: String,
    },
    /// No [`HEALTH_ANNOTATION`].
    #[error("lease {lease}: annotation {HEALTH_ANNOTATION} is missing")]
    MissingHealth {
        /// Lease name.
        lease: String,
    },
    /// The annotation is not [`AgentHealth`] JSON.
    #[error("lease {lease}: annotation {HEALTH_ANNOTATION} is not valid agent health JSON")]
    BadHealth {
        /// Lease name.
        lease: String,
        /// Parser error.
        #[source]
        source: serde_json::Error,
    },
}

/// What the operator reads from one heartbeat Lease.
#[derive(Clone, Debug, PartialEq)]
pub struct Heartbeat {
    /// Node the agent runs on.
    pub node: String,
    /// Policy the agent runs under, when labelled.
    pub policy: Option<String>,
    /// Agent pod.
    pub holder: Option<String>,
    /// Last renewal.
    pub renew_time: Option<MicroTime>,
    /// Validity of a renewal, in seconds.
    pub lease_duration_seconds: Option<i32>,
    /// Reported health.
    pub health: AgentHealth,
}

/// Parameters of one renewal, for [`agent_lease`].
#[derive(Clone, Debug)]
pub struct Renewal<'a> {
    /// Node the agent runs on.
    pub node: &'a str,
    /// Namespace of the agent.
    pub namespace: &'a str,
    /// Policy the agent runs under.
    pub policy: &'a str,
    /// Agent pod name.
    pub holder: &'a str,
    /// Time of this renewal.
    pub renew_time: MicroTime,
    /// Validity of this renewal, in seconds.
    pub lease_duration_seconds: i32,
}

/// The Lease an agent writes (create, or server-side apply) on every renewal.
pub fn agent_lease(
    renewal: &Renewal<'_>,
    health: &AgentHealth,
) -> Result<Lease, serde_json::Error> {
    Ok(Lease {
        metadata: ObjectMeta {
            name: Some(lease_name(renewal.node)),
            namespace: Some(renewal.namespace.to_owned()),
            labels: Some(BTreeMap::from([
                (NODE_LABEL.to_owned(), renewal.node.to_owned()),
                (POLICY_LABEL.to_owned(), renewal.policy.to_owned()),
                (COMPONENT_LABEL.to_owned(), HEARTBEAT_COMPONENT.to_owned()),
            ])),
            annotations: Some(BTreeMap::from([(
                HEALTH_ANNOTATION.to_owned(),
                serde_json::to_string(health)?,
            )])),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(renewal.holder.to_owned()),
            renew_time: Some(renewal.renew_time.clone()),
            lease_duration_seconds: Some(renewal.lease_duration_seconds),
            ..LeaseSpec::default()
        }),
    })
}

/// Read a heartbeat Lease.
pub fn read_heartbeat(lease: &Lease) -> Result<Heartbeat, LeaseContractError> {
    let name = lease.metadata.name.clone().unwrap_or_default();
    let labels = lease.metadata.labels.as_ref();
    let node = labels
        .and_then(|l| l.get(NODE_LABEL))
        .cloned()
        .ok_or_else(|| LeaseContractError::MissingNode {
            lease: name.clone(),
        })?;
    let raw = lease
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(HEALTH_ANNOTATION))
        .ok_or_else(|| LeaseContractError::MissingHealth {
            lease: name.clone(),
        })?;
    let health = serde_json::from_str(raw).map_err(|source| LeaseContractError::BadHealth {
        lease: name,
        source,
    })?;
    let spec = lease.spec.as_ref();
    Ok(Heartbeat {
        node,
        policy: labels.and_then(|l| l.get(POLICY_LABEL)).cloned(),
        holder: spec.and_then(|s| s.holder_identity.clone()),
        renew_time: spec.and_then(|s| s.renew_time.clone()),
        lease_duration_seconds: spec.and_then(|s| s.lease_duration_seconds),
        health,
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn health() -> AgentHealth {
        AgentHealth {
            schema_version: HEALTH_SCHEMA_VERSION,
            agent_version: "0.1.0".into(),
            kernel_version: "6.8.0".into(),
            btf_available: true,
            active_hooks: vec!["sched_process_exec".into()],
            probe_failures: vec![],
            events_per_second: 99.0,
            dropped_events_per_second: 1.0,
            dropped_events_total: 7,
            dropped_since_last_renewal: 1,
            sensors_running: true,
            last_error: None,
            publishing: Some(PublishingHealth {
                findings_over_cap: 2,
                ..PublishingHealth::default()
            }),
            tampering_total: 0,
            last_tampering: None,
            tracked_bytes: 0,
            tracked_shed_total: 0,
        }
    }

    #[test]
    fn written_lease_reads_back() {
        let renewal = Renewal {
            node: "node-a",
            namespace: "vigil-system",
            policy: "all-linux",
            holder: "vigil-agent-x1",
            renew_time: MicroTime(Timestamp::from_second(1_700_000_000).unwrap()),
            lease_duration_seconds: 60,
        };
        let lease = agent_lease(&renewal, &health()).unwrap();
        assert_eq!(lease.metadata.name.as_deref(), Some("vigil-agent-node-a"));
        let hb = read_heartbeat(&lease).unwrap();
        assert_eq!(hb.node, "node-a");
        assert_eq!(hb.policy.as_deref(), Some("all-linux"));
        assert_eq!(hb.health, health());
        assert!((hb.health.dropped_percent() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn health_from_an_older_agent_still_reads() {
        let old = r#"{"schemaVersion":1,"agentVersion":"0.1.0","kernelVersion":"6.1","btfAvailable":true,"eventsPerSecond":1.0,"droppedEventsPerSecond":0.0,"droppedEventsTotal":0}"#;
        let health: AgentHealth = serde_json::from_str(old).unwrap();
        assert!(health.sensors_running);
        assert_eq!(health.last_error, None);
        assert_eq!(health.publishing, None);
    }

    #[test]
    fn broken_leases_name_the_problem() {
        let mut lease = Lease::default();
        lease.metadata.name = Some("l".into());
        assert!(matches!(
            read_heartbeat(&lease),
            Err(LeaseContractError::MissingNode { .. })
        ));
        lease.metadata.labels = Some(BTreeMap::from([(NODE_LABEL.to_owned(), "n".to_owned())]));
        assert!(matches!(
            read_heartbeat(&lease),
            Err(LeaseContractError::MissingHealth { .. })
        ));
        lease.metadata.annotations = Some(BTreeMap::from([(
            HEALTH_ANNOTATION.to_owned(),
            "{".to_owned(),
        )]));
        let err = read_heartbeat(&lease).unwrap_err();
        assert!(err.to_string().contains("lease l"), "{err}");
    }

    #[test]
    fn long_node_names_give_valid_stable_lease_names() {
        let node = "n".repeat(300);
        let a = lease_name(&node);
        assert!(a.len() <= 253, "{}", a.len());
        assert_eq!(a, lease_name(&node));
        assert_ne!(a, lease_name(&"m".repeat(300)));
    }
}
