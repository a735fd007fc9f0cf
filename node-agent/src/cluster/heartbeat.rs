//! The heartbeat: one `coordination.k8s.io/v1` Lease per node, renewed on a fixed period with
//! the agent's health (the contract is `vigil_crds::lease`), so the operator can tell a node
//! that is covered from one that only has an agent pod.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use k8s_openapi::{
    api::coordination::v1::Lease, apimachinery::pkg::apis::meta::v1::MicroTime, jiff::Timestamp,
};
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};
use vigil_crds::{
    agent_config::HeartbeatConfig,
    lease::{
        AgentHealth, HEALTH_SCHEMA_VERSION, ProbeFailure, PublishingHealth, Renewal, agent_lease,
        lease_name,
    },
};

use crate::{agent::Health, sensor::HookState};

/// How often a starting agent looks whether its first health summary is there.
const STARTING_POLL: Duration = Duration::from_millis(250);

/// Field manager of the agent's writes.
pub const FIELD_MANAGER: &str = "vigil-node-agent";

/// Who writes the Lease.
#[derive(Clone, Debug)]
pub struct Identity {
    /// Node name (`NODE_NAME`).
    pub node: String,
    /// Agent pod name (`POD_NAME`), the Lease holder.
    pub pod: String,
    /// Policy the agent runs under.
    pub policy: String,
}

/// What the run loop and the publisher last reported; the heartbeat task reads it.
#[derive(Debug, Default)]
pub struct Reported {
    /// The agent's latest health summary (none before the sensor starts).
    pub health: Option<Health>,
    /// Publishing counters.
    pub publishing: PublishingHealth,
    /// The last error worth telling the operator.
    pub last_error: Option<String>,
    /// Whether the sensor runs; `false` with `last_error` when it could not start.
    pub sensors_running: bool,
    /// When the Lease was last written successfully.
    pub last_renewal: Option<std::time::Instant>,
}

/// Shared between the run loop, the publisher and the heartbeat task.
pub type SharedReport = Arc<Mutex<Reported>>;

/// Totals at the previous renewal, to report rates and drops since then.
#[derive(Debug, Default, Clone, Copy)]
pub struct Previous {
    records: u64,
    dropped: u64,
    seconds: f64,
}

/// The health to write now, from what was reported and the totals at the previous renewal
/// (updated in place).
pub fn agent_health(reported: &Reported, previous: &mut Previous) -> AgentHealth {
    let kernel = reported
        .health
        .as_ref()
        .map(|h| h.host.kernel.clone())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .ok()
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_default();
    let mut health = AgentHealth {
        schema_version: HEALTH_SCHEMA_VERSION,
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        kernel_version: kernel,
        btf_available: std::path::Path::new(crate::sensor::KERNEL_BTF).exists(),
        active_hooks: Vec::new(),
        probe_failures: Vec::new(),
        events_per_second: 0.0,
        dropped_events_per_second: 0.0,
        dropped_events_total: 0,
        dropped_since_last_renewal: 0,
        sensors_running: reported.sensors_running,
        last_error: reported.last_error.clone(),
        publishing: Some(reported.publishing.clone()),
        tampering_total: 0,
        last_tampering: None,
        tracked_bytes: 0,
        tracked_shed_total: 0,
    };
    let Some(h) = &reported.health else {
        return health;
    };
    for hook in &h.hooks {
        match &hook.state {
            HookState::Active => health.active_hooks.push(hook.hook.to_owned()),
            HookState::Failed(error) => health.probe_failures.push(ProbeFailure {
                probe: hook.hook.to_owned(),
                error: error.clone(),
            }),
            HookState::Disabled | HookState::NotNeeded(_) | HookState::Unsupported(_) => {}
        }
    }
    let seconds = (h.seconds - previous.seconds).max(0.0);
    let records = h.pipeline.records.saturating_sub(previous.records);
    let dropped = h.dropped.saturating_sub(previous.dropped);
    if seconds > 0.0 {
        health.events_per_second = records as f64 / seconds;
        health.dropped_events_per_second = dropped as f64 / seconds;
    }
    health.tampering_total = h.self_protection.tampering;
    health.tracked_bytes = crate::tracked::total_bytes(&h.tracked);
    health.tracked_shed_total = crate::tracked::total_shed(&h.tracked);
    health.last_tampering = h.self_protection.last_tampering.clone();
    health.dropped_events_total = h.dropped;
    health.dropped_since_last_renewal = dropped;
    *previous = Previous {
        records: h.pipeline.records,
        dropped: h.dropped,
        seconds: h.seconds,
    };
    health
}

/// Writes the Lease once (server-side apply: creates it or takes it over).
pub async fn renew(
    client: &Client,
    identity: &Identity,
    settings: &HeartbeatConfig,
    health: &AgentHealth,
) -> Result<(), kube::Error> {
    let renewal = Renewal {
        node: &identity.node,
        namespace: &settings.namespace,
        policy: &identity.policy,
        holder: &identity.pod,
        renew_time: MicroTime(Timestamp::now()),
        lease_duration_seconds: settings.lease_duration_seconds,
    };
    let lease = agent_lease(&renewal, health).map_err(kube::Error::SerdeError)?;
    let api: Api<Lease> = Api::namespaced(client.clone(), &settings.namespace);
    let mut value = serde_json::to_value(&lease).map_err(kube::Error::SerdeError)?;
    value["apiVersion"] = "coordination.k8s.io/v1".into();
    value["kind"] = "Lease".into();
    api.patch(
        &lease_name(&identity.node),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(value),
    )
    .await
    .map(|_| ())
}

/// Renews the Lease every `renew_interval_seconds` of the settings in force (they may change
/// live) until the process ends. A failed renewal is logged and recorded as the last error;
/// the next period tries again.
pub async fn run(
    client: Client,
    identity: Identity,
    report: SharedReport,
    mut settings: tokio::sync::watch::Receiver<HeartbeatConfig>,
) {
    let mut previous = Previous::default();
    loop {
        let current = settings.borrow_and_update().clone();
        let health = match report.lock() {
            // Still starting (loading the sensors takes seconds): no Lease yet rather than one
            // that says the sensors do not run. A failed start is reported by `report_failure`.
            Ok(r) if r.health.is_none() => None,
            Ok(r) => Some(agent_health(&r, &mut previous)),
            Err(_) => return,
        };
        let period = if health.is_none() {
            STARTING_POLL
        } else {
            Duration::from_secs(u64::from(current.renew_interval_seconds.max(1)))
        };
        if let Some(health) = health {
            match renew(&client, &identity, &current, &health).await {
                Ok(()) => {
                    if let Ok(mut r) = report.lock() {
                        r.last_renewal = Some(std::time::Instant::now());
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot renew the heartbeat Lease");
                    if let Ok(mut r) = report.lock() {
                        r.last_error = Some(format!("heartbeat: {error}"));
                    }
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            changed = settings.changed() => if changed.is_err() { return },
        }
    }
}

/// Writes the Lease with `error` when the agent cannot start, retrying for up to `within`, so
/// the operator can say why the node is Unhealthy. Returns whether it was written.
pub async fn report_failure(
    client: &Client,
    identity: &Identity,
    settings: &HeartbeatConfig,
    error: &str,
    within: Duration,
) -> bool {
    let reported = Reported {
        last_error: Some(error.to_owned()),
        sensors_running: false,
        ..Reported::default()
    };
    let health = agent_health(&reported, &mut Previous::default());
    let deadline = tokio::time::Instant::now() + within;
    let mut wait = Duration::from_millis(200);
    loop {
        match renew(client, identity, settings, &health).await {
            Ok(()) => return true,
            Err(e) if tokio::time::Instant::now() + wait < deadline => {
                tracing::warn!(error = %e, "cannot write the failure to the heartbeat Lease; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot write the failure to the heartbeat Lease");
                return false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        agent::HookCounterLine,
        pipeline::PipelineStats,
        sensor::{HookCounters, HookStatus, HostSetup},
    };

    fn health(seconds: f64, records: u64, dropped: u64) -> Health {
        Health {
            seconds,
            host: HostSetup {
                kernel: "6.18.0".into(),
                ..HostSetup::default()
            },
            hooks: vec![
                HookStatus {
                    hook: "exec",
                    mechanism: "tp_btf",
                    state: HookState::Active,
                },
                HookStatus {
                    hook: "module",
                    mechanism: "tracepoint",
                    state: HookState::Unsupported("no module support".into()),
                },
                HookStatus {
                    hook: "connect",
                    mechanism: "tracepoint",
                    state: HookState::Failed("verifier: invalid mem access".into()),
                },
            ],
            counters: vec![HookCounterLine {
                hook: "exec",
                counters: HookCounters::default(),
            }],
            pipeline: PipelineStats {
                records,
                ..PipelineStats::default()
            },
            seeded_processes: 0,
            events_per_second: 0.0,
            dropped,
            ring_merge: Default::default(),
            self_protection: crate::agent::SelfProtection::default(),
            tracked: vec![crate::tracked::TrackedTable {
                table: "processes",
                entries: 2,
                max_entries: 10,
                bytes: Some(records),
                max_bytes: Some(1 << 20),
                shed: dropped,
            }],
            hashing: Default::default(),
            dirents: None,
        }
    }

    #[test]
    fn health_reports_rates_and_drops_since_the_last_renewal() {
        let mut previous = Previous::default();
        let mut reported = Reported {
            health: Some(health(10.0, 1_000, 5)),
            sensors_running: true,
            ..Reported::default()
        };
        let first = agent_health(&reported, &mut previous);
        assert_eq!(first.kernel_version, "6.18.0");
        assert_eq!(first.active_hooks, vec!["exec".to_owned()]);
        assert_eq!(
            first.probe_failures.len(),
            1,
            "unsupported is not a failure"
        );
        assert_eq!(first.probe_failures[0].probe, "connect");
        assert!((first.events_per_second - 100.0).abs() < 1e-9);
        assert_eq!(first.dropped_since_last_renewal, 5);

        reported.health = Some(health(20.0, 3_000, 7));
        reported.publishing.findings_over_cap = 3;
        let second = agent_health(&reported, &mut previous);
        assert!((second.events_per_second - 200.0).abs() < 1e-9);
        assert_eq!(second.dropped_since_last_renewal, 2);
        assert_eq!(second.dropped_events_total, 7);
        assert_eq!(second.publishing.unwrap().findings_over_cap, 3);
        assert!(second.sensors_running);
        // The tracked tables' bytes and what they shed reach the Lease.
        assert_eq!(second.tracked_bytes, 3_000);
        assert_eq!(second.tracked_shed_total, 7);
    }

    #[test]
    fn tampering_reaches_the_lease() {
        let mut h = health(10.0, 1_000, 0);
        h.self_protection.tampering = 2;
        h.self_protection.last_tampering = Some("Process sh (pid 9) sent SIGSTOP".into());
        let reported = Reported {
            health: Some(h),
            sensors_running: true,
            ..Reported::default()
        };
        let lease = agent_health(&reported, &mut Previous::default());
        assert_eq!(lease.tampering_total, 2);
        assert_eq!(
            lease.last_tampering.as_deref(),
            Some("Process sh (pid 9) sent SIGSTOP")
        );
        let clean = agent_health(
            &Reported {
                health: Some(health(10.0, 1_000, 0)),
                ..Reported::default()
            },
            &mut Previous::default(),
        );
        assert_eq!(clean.tampering_total, 0);
    }

    #[test]
    fn a_failed_start_is_reported_with_its_reason() {
        let reported = Reported {
            last_error: Some("not root".into()),
            ..Reported::default()
        };
        let h = agent_health(&reported, &mut Previous::default());
        assert!(!h.sensors_running);
        assert_eq!(h.last_error.as_deref(), Some("not root"));
        assert!(h.active_hooks.is_empty());
    }
}
