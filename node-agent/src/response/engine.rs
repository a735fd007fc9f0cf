//! Deciding and taking the response actions for each finding, with the safety rails: never
//! for archived (suppressed) findings, never in an excluded namespace, at most once per
//! target, and at most `rateLimit.maxActions` actions per window.

use std::{
    collections::{HashSet, VecDeque},
    path::{Path, PathBuf},
    time::Instant,
};

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use vigil_crds::{
    finding::{ActionOutcome, ActionTaken, Finding, ResponseAction},
    limits,
    response::{DenyScope, QUARANTINE_LABEL},
};
use vigil_detection::{FindingType, ThreatIntel};

use super::{
    config::{Mode, ResponseConfig},
    deny::{DenyError, FillReport, KernelDeny},
    kill::{self, KillOutcome},
};
use crate::sensor::HookStatus;

/// Targets remembered as already acted on (oldest forgotten first).
const MAX_DONE: usize = 4096;
/// Directories looked at, at most, when searching the cgroup tree for a pod's cgroup.
const MAX_CGROUP_WALK: usize = 20_000;

/// A pod to quarantine: the cluster side labels it `vigil.dev/quarantined=true`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodRef {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

/// Why response could not start.
#[derive(Debug, thiserror::Error)]
pub enum ResponseStartError {
    /// The kernel deny hook could not be set up.
    #[error("response: the kernel deny action cannot start: {0}")]
    Deny(#[from] DenyError),
}

/// The response engine of one agent.
pub struct Responder {
    config: ResponseConfig,
    deny: Option<KernelDeny>,
    /// The lists the deny maps were filled from.
    denied_lists: HashSet<String>,
    fill: Option<FillReport>,
    proc_root: PathBuf,
    cgroup_root: Option<PathBuf>,
    boot_id: String,
    recent: VecDeque<Instant>,
    done: HashSet<(ResponseAction, String)>,
    done_order: VecDeque<(ResponseAction, String)>,
    isolate: Vec<PodRef>,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("config", &self.config)
            .field("deny", &self.deny)
            .finish_non_exhaustive()
    }
}

impl Responder {
    /// Starts response: with a deny action, loads the kernel hook, fills it from `intel` and,
    /// for the host scope, attaches it to the cgroup v2 root `cgroup_root`.
    pub fn start(
        config: ResponseConfig,
        intel: &ThreatIntel,
        proc_root: PathBuf,
        cgroup_root: Option<PathBuf>,
        boot_id: String,
    ) -> Result<Self, ResponseStartError> {
        let mut responder = Self {
            deny: None,
            denied_lists: HashSet::new(),
            fill: None,
            proc_root,
            cgroup_root,
            boot_id,
            recent: VecDeque::new(),
            done: HashSet::new(),
            done_order: VecDeque::new(),
            isolate: Vec::new(),
            config,
        };
        if let Some(deny_config) = responder.config.deny.clone() {
            let mut deny = KernelDeny::load(responder.config.mode)?;
            let report = deny.fill(intel, &deny_config.lists)?;
            if deny_config.scope == DenyScope::Host {
                let root = responder.cgroup_root.clone().ok_or(DenyError::NoCgroup2)?;
                deny.attach(&root)?;
            }
            tracing::info!(
                mode = ?responder.config.mode,
                scope = ?deny_config.scope,
                lists = %report.lists.join(","),
                v4 = report.v4,
                v6 = report.v6,
                left_out = report.left_out,
                "response: kernel deny hook loaded"
            );
            responder.denied_lists = report.lists.iter().cloned().collect();
            responder.fill = Some(report);
            responder.deny = Some(deny);
        }
        Ok(responder)
    }

    /// The response hooks' states for the start-up report (empty without a deny action).
    pub fn hooks(&self) -> Vec<HookStatus> {
        let Some(deny) = &self.deny else {
            return Vec::new();
        };
        let mut status = deny.status();
        // Pod scope attaches on the first finding of a pod.
        if self
            .config
            .deny
            .as_ref()
            .is_some_and(|d| d.scope == DenyScope::Pod)
            && status.state != crate::sensor::HookState::Active
        {
            status.state = crate::sensor::HookState::Active;
            status.mechanism = "cgroup (per pod, on its first finding)";
        }
        vec![status]
    }

    /// What the deny maps were last filled with.
    pub fn fill_report(&self) -> Option<&FillReport> {
        self.fill.as_ref()
    }

    /// The kernel deny hook, when one is loaded.
    pub fn deny(&self) -> Option<&KernelDeny> {
        self.deny.as_ref()
    }

    /// Refills the deny maps from reloaded threat intel.
    pub fn reload_intel(&mut self, intel: &ThreatIntel) -> Result<(), DenyError> {
        if let (Some(deny), Some(config)) = (self.deny.as_mut(), self.config.deny.as_ref()) {
            let report = deny.fill(intel, &config.lists)?;
            self.denied_lists = report.lists.iter().cloned().collect();
            self.fill = Some(report);
        }
        Ok(())
    }

    /// Pods the cluster side should quarantine, since the last call.
    pub fn take_isolate_requests(&mut self) -> Vec<PodRef> {
        std::mem::take(&mut self.isolate)
    }

    /// Decides and takes the actions for `finding`, returning what to record on it.
    pub fn on_finding(&mut self, finding: &Finding, now: Instant) -> Vec<ActionTaken> {
        if finding.archived {
            return Vec::new();
        }
        if let Some(pod) = &finding.resource.pod
            && self.config.exclude_namespaces.contains(&pod.namespace)
        {
            tracing::debug!(id = %finding.id, namespace = %pod.namespace, "response: namespace excluded");
            return Vec::new();
        }
        let Ok(finding_type) = finding.finding_type.parse::<FindingType>() else {
            return Vec::new();
        };
        let mut actions = Vec::new();
        if let Some(a) = self.deny_action(finding) {
            actions.push(a);
        }
        if self.config.kill.contains(&finding_type)
            && let Some(a) = self.kill_action(finding, now)
        {
            actions.push(a);
        }
        if self.config.isolate.contains(&finding_type)
            && let Some(a) = self.isolate_action(finding, now)
        {
            actions.push(a);
        }
        actions
    }

    fn dry(&self) -> bool {
        self.config.mode == Mode::DryRun
    }

    /// First time for this target? Remembers it (bounded).
    fn first_time(&mut self, action: ResponseAction, target: String) -> bool {
        let key = (action, target);
        if self.done.contains(&key) {
            return false;
        }
        if self.done_order.len() >= MAX_DONE
            && let Some(old) = self.done_order.pop_front()
        {
            self.done.remove(&old);
        }
        self.done.insert(key.clone());
        self.done_order.push_back(key);
        true
    }

    /// Takes one slot of the rate limit; false when the window is full.
    fn allowed(&mut self, now: Instant) -> bool {
        while self
            .recent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= self.config.window)
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= self.config.max_actions as usize {
            return false;
        }
        self.recent.push_back(now);
        true
    }

    fn rate_limited(&self, action: ResponseAction, what: &str) -> ActionTaken {
        record(
            action,
            ActionOutcome::Skipped,
            format!(
                "rate limit reached ({} actions per {}s): {what} not done",
                self.config.max_actions,
                self.config.window.as_secs()
            ),
        )
    }

    fn deny_action(&mut self, finding: &Finding) -> Option<ActionTaken> {
        let deny_config = self.config.deny.clone()?;
        let network = finding.network.as_ref()?;
        let lists: Vec<&str> = finding
            .evidence
            .iter()
            .flat_map(|e| &e.threat_intelligence_details)
            .map(|d| d.threat_list_name.as_str())
            .filter(|name| self.denied_lists.contains(*name))
            .collect();
        if lists.is_empty() {
            return None;
        }
        let ip = network.remote_ip.clone();
        let lists = lists.join(", ");
        let refused = finding
            .context
            .additional
            .get("connectResult")
            .is_some_and(|r| r.contains("EPERM"));
        match deny_config.scope {
            DenyScope::Host => {
                if !self.first_time(ResponseAction::DenyConnection, ip.clone()) {
                    return None;
                }
                let in_map = ip
                    .parse()
                    .ok()
                    .is_some_and(|addr| self.deny.as_mut().is_some_and(|d| d.denies(addr)));
                Some(if !in_map {
                    record(
                        ResponseAction::DenyConnection,
                        ActionOutcome::Failed,
                        format!(
                            "{ip} (on {lists}) is not in the kernel deny map (the map was full)"
                        ),
                    )
                } else if self.dry() {
                    record(
                        ResponseAction::DenyConnection,
                        ActionOutcome::DryRun,
                        format!(
                            "dry run: connections to {ip} (on {lists}) would be refused in the kernel on this host"
                        ),
                    )
                } else {
                    record(
                        ResponseAction::DenyConnection,
                        ActionOutcome::Succeeded,
                        format!(
                            "connections to {ip} (on {lists}) are refused in the kernel on this host{}",
                            if refused {
                                "; this connect got EPERM"
                            } else {
                                ""
                            }
                        ),
                    )
                })
            }
            DenyScope::Pod => {
                let pod = finding.resource.pod.as_ref()?;
                let uid = pod.uid.clone()?;
                if !self.first_time(ResponseAction::DenyConnection, uid.clone()) {
                    return None;
                }
                let who = format!("pod {}/{}", pod.namespace, pod.name);
                let Some(cgroup) = self
                    .cgroup_root
                    .as_deref()
                    .and_then(|root| find_pod_cgroup(root, &uid))
                else {
                    return Some(record(
                        ResponseAction::DenyConnection,
                        ActionOutcome::Failed,
                        format!("no cgroup found for {who} (uid {uid})"),
                    ));
                };
                if self.dry() {
                    return Some(record(
                        ResponseAction::DenyConnection,
                        ActionOutcome::DryRun,
                        format!(
                            "dry run: the deny hook would be attached to {} ({who}): connections to {lists} addresses refused",
                            cgroup.display()
                        ),
                    ));
                }
                let deny = self.deny.as_mut()?;
                Some(match deny.attach(&cgroup) {
                    Ok(()) => record(
                        ResponseAction::DenyConnection,
                        ActionOutcome::Succeeded,
                        format!(
                            "deny hook attached to {} ({who}): connections to addresses on {lists} refused",
                            cgroup.display()
                        ),
                    ),
                    Err(e) => record(
                        ResponseAction::DenyConnection,
                        ActionOutcome::Failed,
                        e.to_string(),
                    ),
                })
            }
        }
    }

    fn kill_action(&mut self, finding: &Finding, now: Instant) -> Option<ActionTaken> {
        let process = finding.process.as_ref()?;
        if !self.first_time(ResponseAction::KillProcess, process.uuid.clone()) {
            return None;
        }
        let pid = process.pid;
        if !self.allowed(now) {
            return Some(
                self.rate_limited(ResponseAction::KillProcess, &format!("kill of pid {pid}")),
            );
        }
        let dry = self.dry();
        let result = kill::kill_process(&self.proc_root, &self.boot_id, pid, &process.uuid, dry);
        let (outcome, text) = match result {
            Ok(KillOutcome::Killed) => (
                ActionOutcome::Succeeded,
                format!(
                    "killed pid {pid} ({}), its start time checked",
                    process.name
                ),
            ),
            Ok(KillOutcome::WouldKill) => (
                ActionOutcome::DryRun,
                format!("dry run: pid {pid} ({}) would be killed", process.name),
            ),
            Ok(KillOutcome::Gone) => (
                ActionOutcome::Skipped,
                format!("pid {pid} had already exited"),
            ),
            Ok(KillOutcome::NotSameProcess { .. }) => (
                ActionOutcome::Skipped,
                format!(
                    "pid {pid} now belongs to a later process (another start time): not killed"
                ),
            ),
            Ok(KillOutcome::Refused(why)) => (ActionOutcome::Skipped, format!("pid {pid}: {why}")),
            Err(e) => (ActionOutcome::Failed, e.to_string()),
        };
        tracing::warn!(id = %finding.id, pid, ?outcome, "response: {text}");
        Some(record(ResponseAction::KillProcess, outcome, text))
    }

    fn isolate_action(&mut self, finding: &Finding, now: Instant) -> Option<ActionTaken> {
        let Some(pod) = finding.resource.pod.as_ref() else {
            return Some(record(
                ResponseAction::IsolatePod,
                ActionOutcome::Skipped,
                "not in a pod: nothing to isolate".into(),
            ));
        };
        let key = pod
            .uid
            .clone()
            .unwrap_or_else(|| format!("{}/{}", pod.namespace, pod.name));
        if !self.first_time(ResponseAction::IsolatePod, key) {
            return None;
        }
        let who = format!("{}/{}", pod.namespace, pod.name);
        if !self.allowed(now) {
            return Some(self.rate_limited(
                ResponseAction::IsolatePod,
                &format!("isolation of pod {who}"),
            ));
        }
        if self.dry() {
            return Some(record(
                ResponseAction::IsolatePod,
                ActionOutcome::DryRun,
                format!(
                    "dry run: pod {who} would be labelled {QUARANTINE_LABEL}=true (deny-all NetworkPolicy)"
                ),
            ));
        }
        self.isolate.push(PodRef {
            namespace: pod.namespace.clone(),
            name: pod.name.clone(),
        });
        Some(record(
            ResponseAction::IsolatePod,
            ActionOutcome::Succeeded,
            format!(
                "pod {who} being labelled {QUARANTINE_LABEL}=true (the agent log says when done); the operator then applies a deny-all NetworkPolicy"
            ),
        ))
    }
}

fn record(action: ResponseAction, outcome: ActionOutcome, result: String) -> ActionTaken {
    ActionTaken {
        action,
        time: Time(Timestamp::now()),
        outcome,
        result: limits::clip(&result, limits::ACTION_RESULT),
    }
}

/// The cgroup directory of the pod with this uid under `root`: kubelet names it
/// `pod<uid>` (cgroupfs driver) or `kubepods-...-pod<uid with _>.slice` (systemd driver).
/// Walks at most [`MAX_CGROUP_WALK`] directories, breadth first.
pub fn find_pod_cgroup(root: &Path, uid: &str) -> Option<PathBuf> {
    if uid.is_empty() {
        return None;
    }
    let plain = format!("pod{uid}");
    let systemd = format!("pod{}.slice", uid.replace('-', "_"));
    let mut queue = VecDeque::from([root.to_owned()]);
    let mut seen = 0usize;
    while let Some(dir) = queue.pop_front() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            seen += 1;
            if seen > MAX_CGROUP_WALK {
                return None;
            }
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name == plain || name.ends_with(&systemd) {
                return Some(entry.path());
            }
            queue.push_back(entry.path());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::{process::Command, time::Duration};

    use vigil_crds::{RuntimeFinding, response::ResponseSpec};

    use super::*;
    use crate::proctable;

    fn sample() -> Finding {
        let rf: RuntimeFinding = serde_yaml::from_str(include_str!(
            "../../../examples/findings/sample-finding.yaml"
        ))
        .expect("sample finding");
        rf.spec
    }

    fn responder(yaml: &str) -> Responder {
        let spec: ResponseSpec = serde_yaml::from_str(yaml).expect("yaml");
        let config = ResponseConfig::from_spec(&spec).expect("config");
        Responder::start(
            config,
            &ThreatIntel::empty(),
            PathBuf::from("/proc"),
            None,
            proctable::read_boot_id().unwrap_or_default(),
        )
        .expect("start")
    }

    /// A finding of `finding_type` about a live child process of this test.
    fn about(child: &std::process::Child, finding_type: &str) -> Finding {
        let mut f = sample();
        f.finding_type = finding_type.to_owned();
        let process = f.process.as_mut().expect("process");
        process.pid = child.id();
        let start = proctable::read_start_time_ns(Path::new("/proc"), child.id()).expect("start");
        process.uuid = proctable::process_uuid(
            &proctable::read_boot_id().unwrap_or_default(),
            child.id(),
            start,
        );
        f
    }

    const KILL_MINERS: &str =
        "mode: enforce\nkill:\n  findingTypes: [Impact:Runtime/CryptoMinerExecuted]\n";

    #[test]
    fn archived_findings_and_excluded_namespaces_get_no_action() {
        let mut r = responder(KILL_MINERS);
        let mut child = Command::new("sleep").arg("600").spawn().expect("spawn");
        let mut f = about(&child, "Impact:Runtime/CryptoMinerExecuted");
        f.archived = true;
        assert!(r.on_finding(&f, Instant::now()).is_empty());
        f.archived = false;
        if let Some(pod) = f.resource.pod.as_mut() {
            pod.namespace = "kube-system".into();
        }
        assert!(r.on_finding(&f, Instant::now()).is_empty());
        // Another type: not configured.
        let mut other = about(&child, "Execution:Runtime/NewBinaryExecuted");
        other.resource.pod = None;
        assert!(r.on_finding(&other, Instant::now()).is_empty());
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "still running"
        );
        let _ = child.kill();
        let _ = child.wait();
    }

    #[test]
    fn enforce_kills_once_and_dry_run_only_records() {
        let mut child = Command::new("sleep").arg("600").spawn().expect("spawn");
        let f = about(&child, "Impact:Runtime/CryptoMinerExecuted");

        let mut dry = responder("kill:\n  findingTypes: [Impact:Runtime/CryptoMinerExecuted]\n");
        let actions = dry.on_finding(&f, Instant::now());
        assert_eq!(actions.len(), 1, "{actions:?}");
        assert_eq!(actions[0].action, ResponseAction::KillProcess);
        assert_eq!(actions[0].outcome, ActionOutcome::DryRun, "{actions:?}");
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "dry run kills nothing"
        );

        let mut r = responder(KILL_MINERS);
        let actions = r.on_finding(&f, Instant::now());
        assert_eq!(actions[0].outcome, ActionOutcome::Succeeded, "{actions:?}");
        assert!(actions[0].result.contains(&child.id().to_string()));
        let status = child.wait().expect("wait");
        assert!(!status.success(), "killed");
        // The same finding again: nothing more.
        assert!(r.on_finding(&f, Instant::now()).is_empty());
    }

    #[test]
    fn the_rate_limit_skips_actions_past_it() {
        let mut r = responder(
            "rateLimit: {maxActions: 2, perSeconds: 60}\nkill:\n  findingTypes: [Impact:Runtime/CryptoMinerExecuted]\n",
        );
        let mut children: Vec<_> = (0..3)
            .map(|_| Command::new("sleep").arg("600").spawn().expect("spawn"))
            .collect();
        let t0 = Instant::now();
        let outcomes: Vec<ActionOutcome> = children
            .iter()
            .map(|c| r.on_finding(&about(c, "Impact:Runtime/CryptoMinerExecuted"), t0)[0].outcome)
            .collect();
        assert_eq!(
            outcomes,
            vec![
                ActionOutcome::DryRun,
                ActionOutcome::DryRun,
                ActionOutcome::Skipped
            ]
        );
        // A window later, the limit allows again (a new process: targets are acted on once).
        let mut late = Command::new("sleep").arg("600").spawn().expect("spawn");
        let a = r.on_finding(
            &about(&late, "Impact:Runtime/CryptoMinerExecuted"),
            t0 + Duration::from_secs(61),
        );
        assert_eq!(a[0].outcome, ActionOutcome::DryRun, "{a:?}");
        for c in children.iter_mut().chain([&mut late]) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    #[test]
    fn isolate_outside_a_pod_is_skipped_and_inside_one_is_requested() {
        let mut r = responder(
            "mode: enforce\nisolate:\n  findingTypes: [Execution:Runtime/ReverseShell]\n",
        );
        let mut f = sample();
        f.finding_type = "Execution:Runtime/ReverseShell".into();
        let a = r.on_finding(&f, Instant::now());
        assert_eq!(a[0].action, ResponseAction::IsolatePod);
        assert_eq!(a[0].outcome, ActionOutcome::Succeeded, "{a:?}");
        let pods = r.take_isolate_requests();
        assert_eq!(pods.len(), 1);
        assert_eq!(pods[0].namespace, "shop");
        f.resource.pod = None;
        f.id = "other".into();
        let a = r.on_finding(&f, Instant::now());
        assert_eq!(a[0].outcome, ActionOutcome::Skipped, "{a:?}");
        assert!(r.take_isolate_requests().is_empty());
    }

    #[test]
    fn the_pod_cgroup_is_found_by_uid_for_both_drivers() {
        let root = std::env::temp_dir().join(format!("vigil-cg-{}", std::process::id()));
        let cgroupfs = root.join("kubepods/burstable/pod0b9a4f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b");
        let systemd = root.join(
            "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod11111111_2222_3333_4444_555555555555.slice",
        );
        std::fs::create_dir_all(&cgroupfs).expect("mkdir");
        std::fs::create_dir_all(&systemd).expect("mkdir");
        assert_eq!(
            find_pod_cgroup(&root, "0b9a4f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"),
            Some(cgroupfs)
        );
        assert_eq!(
            find_pod_cgroup(&root, "11111111-2222-3333-4444-555555555555"),
            Some(systemd)
        );
        assert_eq!(find_pod_cgroup(&root, "nope"), None);
        assert_eq!(find_pod_cgroup(&root, ""), None);
        let _ = std::fs::remove_dir_all(&root);
    }
}
