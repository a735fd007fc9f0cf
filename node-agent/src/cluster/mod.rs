//! Cluster mode: the agent on a Kubernetes node. The sensor and detection are the standalone
//! agent's; this module adds what a cluster needs around them:
//! - [`pods`]: the pods of this node, to give findings their pod, workload and container context;
//! - [`publish`]: which findings become `RuntimeFinding` objects and Events, and when (pure);
//! - [`spool`]: the bounded on-disk queue of what the API server has not accepted yet;
//! - [`deliver`]: sending the spool, in order, through API outages;
//! - [`heartbeat`]: the per-node Lease the operator reads coverage from;
//! - [`config`]: the operator-rendered configuration and SuppressionRules, applied live.

pub mod config;
pub mod deliver;
pub mod heartbeat;
pub mod pods;
pub mod publish;
pub mod spool;
