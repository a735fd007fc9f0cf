//! Leader election with a `coordination.k8s.io` Lease, for more than one replica: only the holder
//! runs the controllers (and so writes status).

use std::time::Duration;

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
    jiff::{SignedDuration, Timestamp},
};
use kube::{Api, api::PostParams};
use thiserror::Error;

/// What to do with the election Lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Take the Lease (free, expired or never held).
    Acquire,
    /// We hold it: renew.
    Renew,
    /// Someone else holds a valid Lease.
    Follow {
        /// The current holder.
        holder: String,
    },
}

/// Decide from the Lease spec as read (`None`: no Lease yet).
pub fn decide(spec: Option<&LeaseSpec>, me: &str, now: Timestamp) -> Decision {
    let Some(spec) = spec else {
        return Decision::Acquire;
    };
    let holder = spec.holder_identity.as_deref().unwrap_or("");
    if holder == me {
        return Decision::Renew;
    }
    if holder.is_empty() {
        return Decision::Acquire;
    }
    // Whoever can write the Lease chooses these numbers: a duration of 2^31-1 seconds, or a
    // renewal stamped in the future, would otherwise make every replica follow forever.
    let seconds = spec
        .lease_duration_seconds
        .unwrap_or(15)
        .clamp(1, MAX_HONOURED_LEASE_SECONDS);
    let duration = SignedDuration::from_secs(i64::from(seconds));
    match spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) {
        Some(t) if t.0 > now + SignedDuration::from_secs(MAX_CLOCK_SKEW_SECONDS) => {
            Decision::Acquire
        }
        Some(t) if t.0 + duration > now => Decision::Follow {
            holder: holder.to_owned(),
        },
        _ => Decision::Acquire,
    }
}

/// The longest lease another holder's Lease is honoured for, whatever it says.
pub const MAX_HONOURED_LEASE_SECONDS: i32 = 300;
/// How far in the future a renewal time may be (clock skew between nodes) before it is ignored.
pub const MAX_CLOCK_SKEW_SECONDS: i64 = 60;

/// Leader election failures.
#[derive(Debug, Error)]
pub enum LeaderError {
    /// Reading or writing the Lease failed.
    #[error("{verb} lease {namespace}/{name}")]
    Kube {
        /// `get`, `create` or `replace`.
        verb: &'static str,
        /// Lease namespace.
        namespace: String,
        /// Lease name.
        name: String,
        /// API error.
        #[source]
        source: kube::Error,
    },
    /// The Lease went to someone else, or could not be renewed before it expired.
    #[error("leadership of lease {0} lost")]
    Lost(String),
}

/// One elector.
#[derive(Clone)]
pub struct Elector {
    api: Api<Lease>,
    namespace: String,
    name: String,
    identity: String,
    duration_seconds: i32,
}

impl Elector {
    /// An elector for Lease `namespace/name` as `identity`.
    pub fn new(
        client: kube::Client,
        namespace: &str,
        name: &str,
        identity: &str,
        duration_seconds: i32,
    ) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            identity: identity.to_owned(),
            duration_seconds,
        }
    }

    fn err(&self, verb: &'static str) -> impl FnOnce(kube::Error) -> LeaderError + '_ {
        move |source| LeaderError::Kube {
            verb,
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            source,
        }
    }

    /// One attempt: `Ok(true)` when we hold the Lease afterwards.
    pub async fn try_acquire_or_renew(&self, now: Timestamp) -> Result<bool, LeaderError> {
        let current = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(self.err("get"))?;
        let decision = decide(
            current.as_ref().and_then(|l| l.spec.as_ref()),
            &self.identity,
            now,
        );
        let mut spec = LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.duration_seconds),
            renew_time: Some(MicroTime(now)),
            ..LeaseSpec::default()
        };
        match (decision, current) {
            (Decision::Follow { .. }, _) => Ok(false),
            (_, None) => {
                spec.acquire_time = Some(MicroTime(now));
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        namespace: Some(self.namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(spec),
                };
                match self.api.create(&PostParams::default(), &lease).await {
                    Ok(_) => Ok(true),
                    // Someone created it first: they lead.
                    Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                    Err(e) => Err(self.err("create")(e)),
                }
            }
            (decision, Some(mut lease)) => {
                let old = lease.spec.take().unwrap_or_default();
                spec.acquire_time = if decision == Decision::Renew {
                    old.acquire_time
                } else {
                    Some(MicroTime(now))
                };
                spec.lease_transitions = Some(
                    old.lease_transitions.unwrap_or(0) + i32::from(decision == Decision::Acquire),
                );
                lease.spec = Some(spec);
                // The resourceVersion from the read makes this a compare-and-swap.
                match self
                    .api
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await
                {
                    Ok(_) => Ok(true),
                    Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                    Err(e) => Err(self.err("replace")(e)),
                }
            }
        }
    }

    /// Wait until we lead, retrying every `retry`.
    pub async fn acquire(&self, retry: Duration) -> Result<(), LeaderError> {
        loop {
            match self.try_acquire_or_renew(Timestamp::now()).await {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(error) => tracing::warn!(%error, "leader election attempt failed"),
            }
            tokio::time::sleep(retry).await;
        }
    }

    /// Renew every `interval` until a renewal is refused or the Lease would expire unrenewed.
    pub async fn hold(&self, interval: Duration) -> LeaderError {
        let mut last_ok = tokio::time::Instant::now();
        let deadline = Duration::from_secs(u64::try_from(self.duration_seconds).unwrap_or(15));
        loop {
            tokio::time::sleep(interval).await;
            match self.try_acquire_or_renew(Timestamp::now()).await {
                Ok(true) => last_ok = tokio::time::Instant::now(),
                Ok(false) => return LeaderError::Lost(self.name.clone()),
                Err(error) => {
                    tracing::warn!(%error, "lease renewal failed");
                    if last_ok.elapsed() >= deadline {
                        return LeaderError::Lost(self.name.clone());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: &str, renewed: i64, duration: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            renew_time: Some(MicroTime(Timestamp::from_second(renewed).unwrap())),
            lease_duration_seconds: Some(duration),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn decision_table() {
        let now = Timestamp::from_second(1000).unwrap();
        let table = [
            ("no lease", None, Decision::Acquire),
            ("ours", Some(spec("me", 990, 15)), Decision::Renew),
            (
                "ours even if expired",
                Some(spec("me", 100, 15)),
                Decision::Renew,
            ),
            (
                "other, valid",
                Some(spec("other", 990, 15)),
                Decision::Follow {
                    holder: "other".into(),
                },
            ),
            (
                "other, expired",
                Some(spec("other", 980, 15)),
                Decision::Acquire,
            ),
            ("released", Some(spec("", 999, 15)), Decision::Acquire),
            (
                "other, absurd duration: honoured for 300 s only",
                Some(spec("other", 600, i32::MAX)),
                Decision::Acquire,
            ),
            (
                "other, long duration within 300 s",
                Some(spec("other", 800, i32::MAX)),
                Decision::Follow {
                    holder: "other".into(),
                },
            ),
            (
                "other, renewed a year ahead",
                Some(spec("other", 1000 + 365 * 86_400, 15)),
                Decision::Acquire,
            ),
            (
                "other, renewed within the clock skew",
                Some(spec("other", 1030, 15)),
                Decision::Follow {
                    holder: "other".into(),
                },
            ),
        ];
        for (name, s, want) in table {
            assert_eq!(decide(s.as_ref(), "me", now), want, "{name}");
        }
    }
}
