//! Client helpers of the opt-in end-to-end suite (feature `e2e`): it runs against whatever
//! cluster `KUBECONFIG` points at.

use std::{future::Future, path::PathBuf, process::Child, time::Duration};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};
use thiserror::Error;

use crate::repo_root;

/// Field manager of the suite's writes.
pub const FIELD_MANAGER: &str = "vigil-e2e";

/// Why the suite could not run a step.
#[derive(Debug, Error)]
pub enum E2eError {
    /// `KUBECONFIG` is not set: the suite only runs against a cluster chosen explicitly.
    #[error(
        "KUBECONFIG is not set; the e2e suite runs only against an explicitly chosen cluster (see docs/OPERATOR.md)"
    )]
    NotConfigured,
    /// The kubeconfig could not be used.
    #[error("kubeconfig")]
    Config(#[source] kube::Error),
    /// An API call failed.
    #[error("{0}")]
    Api(String, #[source] kube::Error),
    /// A binary (operator, agent) is missing or did not start.
    #[error("starting {path}")]
    Operator {
        /// Binary path.
        path: String,
        /// Spawn error.
        #[source]
        source: std::io::Error,
    },
    /// A condition did not hold in time.
    #[error("timed out waiting for {0}")]
    Timeout(String),
    /// A committed CRD file is unreadable.
    #[error("reading CRD {0}")]
    Crd(String),
}

/// A client for the cluster in `KUBECONFIG`.
pub async fn connect() -> Result<Client, E2eError> {
    if std::env::var_os("KUBECONFIG").is_none() {
        return Err(E2eError::NotConfigured);
    }
    Client::try_default().await.map_err(E2eError::Config)
}

/// Server-side apply every committed CRD and wait until each is Established.
pub async fn apply_crds(client: &Client) -> Result<(), E2eError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (file, _) in vigil_crds::crds() {
        let path = repo_root().join("crds").join(&file);
        let text = std::fs::read_to_string(&path).map_err(|_| E2eError::Crd(file.clone()))?;
        let crd: CustomResourceDefinition =
            serde_yaml::from_str(&text).map_err(|_| E2eError::Crd(file.clone()))?;
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&crd),
        )
        .await
        .map_err(|e| E2eError::Api(format!("apply CRD {name}"), e))?;
        wait_for(
            &format!("CRD {name} Established"),
            Duration::from_secs(60),
            || {
                let api = api.clone();
                let name = name.clone();
                async move {
                    let crd = api.get_opt(&name).await.ok()??;
                    crd.status?
                        .conditions?
                        .iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                        .then_some(())
                }
            },
        )
        .await?;
    }
    Ok(())
}

/// A process the suite started (the operator, an agent); killed when dropped.
pub struct Process(Child);

/// The operator process.
pub type Operator = Process;

impl Process {
    /// Kill it now (SIGKILL: no goodbye heartbeat) and reap it.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // Best effort: the process may already have exited.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A binary of the workspace: `$<env>` when set, else `$CARGO_TARGET_DIR/debug/<name>`, else
/// `target/debug/<name>`.
fn binary(env: &str, name: &str) -> PathBuf {
    std::env::var_os(env).map(PathBuf::from).unwrap_or_else(|| {
        std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| repo_root().join("target"), PathBuf::from)
            .join("debug")
            .join(name)
    })
}

/// Start the agent binary (`VIGIL_AGENT_BIN`, else the workspace's `node-agent`) in cluster mode
/// on this host as if it were `node`: it must run as root, like the DaemonSet's agent.
pub fn start_agent(
    node: &str,
    config: &std::path::Path,
    state_dir: &std::path::Path,
) -> Result<Process, E2eError> {
    let path = binary("VIGIL_AGENT_BIN", "node-agent");
    std::process::Command::new(&path)
        .args(["run", "--mode", "kubernetes", "--findings-only", "--config"])
        .arg(config)
        .arg("--state-dir")
        .arg(state_dir)
        .env("NODE_NAME", node)
        .env("POD_NAME", format!("vigil-e2e-agent-{node}"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .map(Process)
        .map_err(|source| E2eError::Operator {
            path: path.display().to_string(),
            source,
        })
}

/// Start the operator binary (`VIGIL_OPERATOR_BIN`, else the workspace's `vigil-operator`) for
/// `namespace`.
pub fn start_operator(namespace: &str) -> Result<Operator, E2eError> {
    let path = binary("VIGIL_OPERATOR_BIN", "vigil-operator");
    std::process::Command::new(&path)
        .args([
            "--namespace",
            namespace,
            "--http-addr",
            "127.0.0.1:0",
            "--identity",
            "vigil-e2e",
        ])
        .spawn()
        .map(Process)
        .map_err(|source| E2eError::Operator {
            path: path.display().to_string(),
            source,
        })
}

/// Poll `check` once a second until it returns `Some`, for at most `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T, E2eError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(E2eError::Timeout(what.to_owned()));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
