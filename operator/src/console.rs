//! The console's cluster backend: the pages of `vigil-console` over kube-rs reflector stores
//! of RuntimeFindings, NodeCoverages (with the heartbeat Leases and Nodes beside them),
//! SuppressionRules and RuntimeMonitoringPolicies, and the gate that lets a caller act only as
//! far as the API server authorizes their token.
//!
//! Reads come from the stores (filtering, sorting and paging in memory, `vigil_console::memory`);
//! writes go to the API server: archive patches the RuntimeFinding's status, "suppress findings
//! like this" creates a SuppressionRule (the suppression controller archives what it matches),
//! "add to a trusted list" updates the ConfigMap key a policy's `trustedIpLists` names.
//!
//! The backend's calls run on the console's blocking pool; the few API calls block on the
//! runtime handle the backend was made with.

use std::{collections::BTreeMap, future::Future, sync::Arc, time::Duration};

use futures::StreamExt;
use k8s_openapi::{
    api::{
        coordination::v1::Lease,
        core::v1::{ConfigMap, Node},
    },
    apimachinery::pkg::{api::resource::Quantity, apis::meta::v1::ObjectMeta},
    jiff::{Timestamp, tz::TimeZone},
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{Patch, PatchParams, PostParams},
    core::DeserializeGuard,
    runtime::{WatchStreamExt, reflector, reflector::Store, watcher},
};
use tracing::warn;
use vigil_console::{
    Backend, BackendError, CoverageStatus, CreatedRule, FindingRecord, FindingsPage, ListInfo,
    NodeCoverage as CoverageRow, NodeUsage, RuleInfo, Settings, Summary, TrustTarget, Usage,
    access::{self, Action, Denied, Gate, GateFuture},
    memory::{self, Held},
    query::FindingsQuery,
    trust::{self, TrustedNet},
};
use vigil_crds::{
    NodeCoverage, RuntimeFinding, RuntimeMonitoringPolicy, SuppressionRule,
    lease::{COMPONENT_LABEL, HEARTBEAT_COMPONENT, lease_name, read_heartbeat},
    policy::CoverageStatus as PolicyCoverage,
};

use crate::{
    facts,
    kube_auth::{self, Access, AuthError},
};

/// Field manager of the console's writes.
pub const CONSOLE_MANAGER: &str = "vigil-console";
/// How long a write waits for the store to show it, so the next page shows the change.
const SETTLE: Duration = Duration::from_secs(3);
/// A ConfigMap holds at most 1 MiB; a list is refused a little before.
const MAX_CONFIG_MAP_BYTES: usize = 1_000_000;

/// The caches the console reads.
#[derive(Clone)]
pub struct ConsoleStores {
    /// All RuntimeFindings.
    pub findings: Store<DeserializeGuard<RuntimeFinding>>,
    /// All NodeCoverages.
    pub node_coverage: Store<DeserializeGuard<NodeCoverage>>,
    /// All SuppressionRules.
    pub rules: Store<DeserializeGuard<SuppressionRule>>,
    /// All RuntimeMonitoringPolicies.
    pub policies: Store<DeserializeGuard<RuntimeMonitoringPolicy>>,
    /// All Nodes (slimmed: their vCPUs among what is kept).
    pub nodes: Store<Node>,
    /// Heartbeat Leases in the agents' namespace.
    pub leases: Store<Lease>,
}

/// Keeps a reflector's store up to date, logging failures (the watcher retries with backoff).
fn keep<K>(
    api: Api<K>,
    config: watcher::Config,
    writer: reflector::store::Writer<K>,
    slim: impl FnMut(&mut K) + Send + 'static,
    what: &'static str,
) -> impl Future<Output = ()> + Send + 'static
where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    reflector(writer, watcher(api, config).modify(slim))
        .default_backoff()
        .for_each(move |r| {
            if let Err(error) = r {
                warn!(watch = what, %error, "console watch failed, retrying");
            }
            async {}
        })
}

fn slim_guard<K: Resource>(g: &mut DeserializeGuard<K>) {
    if let Ok(o) = &mut g.0 {
        o.meta_mut().managed_fields = None;
    }
}

impl ConsoleStores {
    /// Watches what the console reads, for a console that runs without the controllers: the
    /// stores, and the future that keeps them (run it for as long as the console serves).
    pub fn watch(
        client: &Client,
        namespace: &str,
    ) -> (Self, impl Future<Output = ()> + Send + use<>) {
        let (findings, findings_w) = reflector::store();
        let (node_coverage, node_coverage_w) = reflector::store();
        let (rules, rules_w) = reflector::store();
        let (policies, policies_w) = reflector::store();
        let (nodes, nodes_w) = reflector::store();
        let (leases, leases_w) = reflector::store();
        let all = watcher::Config::default();
        let watches = futures::future::join3(
            futures::future::join(
                keep(
                    Api::<DeserializeGuard<RuntimeFinding>>::all(client.clone()),
                    all.clone(),
                    findings_w,
                    slim_guard,
                    "runtimefindings",
                ),
                keep(
                    Api::<DeserializeGuard<NodeCoverage>>::all(client.clone()),
                    all.clone(),
                    node_coverage_w,
                    slim_guard,
                    "nodecoverages",
                ),
            ),
            futures::future::join(
                keep(
                    Api::<DeserializeGuard<SuppressionRule>>::all(client.clone()),
                    all.clone(),
                    rules_w,
                    slim_guard,
                    "suppressionrules",
                ),
                keep(
                    Api::<DeserializeGuard<RuntimeMonitoringPolicy>>::all(client.clone()),
                    all.clone(),
                    policies_w,
                    slim_guard,
                    "runtimemonitoringpolicies",
                ),
            ),
            futures::future::join(
                keep(
                    Api::<Node>::all(client.clone()),
                    all,
                    nodes_w,
                    facts::slim_node,
                    "nodes",
                ),
                keep(
                    Api::<Lease>::namespaced(client.clone(), namespace),
                    watcher::Config::default()
                        .labels(&format!("{COMPONENT_LABEL}={HEARTBEAT_COMPONENT}")),
                    leases_w,
                    facts::slim_lease,
                    "heartbeat leases",
                ),
            ),
        );
        (
            Self {
                findings,
                node_coverage,
                rules,
                policies,
                nodes,
                leases,
            },
            async move {
                watches.await;
            },
        )
    }
}

/// The cluster backend.
pub struct ClusterBackend {
    client: Client,
    stores: ConsoleStores,
    namespace: String,
    name: String,
    runtime: tokio::runtime::Handle,
}

fn api_error(action: &'static str) -> impl FnOnce(kube::Error) -> BackendError {
    move |e| BackendError::Source {
        action,
        source: Box::new(e),
    }
}

fn view(f: &RuntimeFinding) -> Held<'_> {
    Held {
        finding: &f.spec,
        archived: f.spec.is_archived(f.status.as_ref()),
    }
}

fn record(f: &RuntimeFinding) -> FindingRecord {
    let mut finding = f.spec.clone();
    finding.archived = f.spec.is_archived(f.status.as_ref());
    FindingRecord {
        finding,
        archived_by: f
            .status
            .as_ref()
            .filter(|s| s.archived)
            .and_then(|s| s.archived_by.clone()),
    }
}

/// vCPUs of a node (its capacity), when known.
fn node_vcpus(node: &Node) -> Option<u32> {
    let Quantity(q) = node.status.as_ref()?.capacity.as_ref()?.get("cpu")?;
    match q.strip_suffix('m') {
        Some(milli) => milli.parse::<u64>().ok().map(|m| m.div_ceil(1000)),
        None => q.parse::<u64>().ok(),
    }
    .and_then(|n| u32::try_from(n).ok())
}

/// One trusted list a policy names.
#[derive(Debug, Clone)]
struct TrustedRef {
    /// `configMap/key`: what the form sends back.
    name: String,
    config_map: String,
    key: String,
    /// `list (policy p)`, for each policy naming it.
    used_by: Vec<String>,
}

impl ClusterBackend {
    /// The backend over `stores`; writes go through `client`; ConfigMaps of trusted lists live
    /// in `namespace` (the agents' and the operator's); `name` is shown in the header.
    pub fn new(client: Client, stores: ConsoleStores, namespace: &str, name: &str) -> Self {
        Self {
            client,
            stores,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            runtime: tokio::runtime::Handle::current(),
        }
    }

    fn findings_now(&self) -> Vec<Arc<DeserializeGuard<RuntimeFinding>>> {
        self.stores.findings.state()
    }

    /// The RuntimeFinding whose finding id is `id`.
    pub fn locate(&self, id: &str) -> Option<RuntimeFinding> {
        self.findings_now()
            .iter()
            .filter_map(|g| g.0.as_ref().ok())
            .find(|f| f.spec.id == id)
            .cloned()
    }

    /// Waits (briefly) until the store holds `id` in the state `done` says.
    fn settle(&self, id: &str, done: impl Fn(&RuntimeFinding) -> bool) {
        let deadline = std::time::Instant::now() + SETTLE;
        while std::time::Instant::now() < deadline {
            if self.locate(id).is_none_or(|f| done(&f)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn trusted_refs(&self) -> Vec<TrustedRef> {
        let mut refs: BTreeMap<String, TrustedRef> = BTreeMap::new();
        for g in self.stores.policies.state() {
            let Ok(p) = &g.0 else { continue };
            for l in &p.spec.trusted_ip_lists {
                let name = format!("{}/{}", l.config_map_name, l.key);
                refs.entry(name.clone())
                    .or_insert_with(|| TrustedRef {
                        name,
                        config_map: l.config_map_name.clone(),
                        key: l.key.clone(),
                        used_by: Vec::new(),
                    })
                    .used_by
                    .push(format!("{} (policy {})", l.list_name, p.name_any()));
            }
        }
        refs.into_values().collect()
    }

    fn config_maps(&self) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn target(&self, r: &TrustedRef, cm: Option<&ConfigMap>, net: &TrustedNet) -> TrustTarget {
        let text = cm.and_then(|c| c.data.as_ref()).and_then(|d| d.get(&r.key));
        TrustTarget {
            name: r.name.clone(),
            location: format!(
                "ConfigMap {}/{}, key {} (list {})",
                self.namespace,
                r.config_map,
                r.key,
                r.used_by.join(", ")
            ),
            entries: text.map(|t| trust::entries(t)),
            already_listed: text.is_some_and(|t| trust::listed(t, net)),
            creates: text.is_none(),
            applies: "The agents apply it within about a minute (the kubelet refreshes the mounted ConfigMap; no restart).".into(),
        }
    }

    fn get_config_map(&self, name: &str) -> Result<Option<ConfigMap>, BackendError> {
        self.runtime
            .block_on(self.config_maps().get_opt(name))
            .map_err(api_error("read a trusted list's ConfigMap"))
    }
}

impl Backend for ClusterBackend {
    fn describe(&self) -> (String, String) {
        ("cluster".into(), self.name.clone())
    }

    fn findings(&self, q: &FindingsQuery, _now: Timestamp) -> Result<FindingsPage, BackendError> {
        let all = self.findings_now();
        let ok: Vec<&RuntimeFinding> = all.iter().filter_map(|g| g.0.as_ref().ok()).collect();
        let (rows, total) = memory::page(&ok, |f| view(f), q);
        Ok(FindingsPage {
            rows: rows.into_iter().map(|f| record(f)).collect(),
            total,
        })
    }

    fn finding(&self, id: &str) -> Result<Option<FindingRecord>, BackendError> {
        Ok(self.locate(id).as_ref().map(record))
    }

    fn set_archived(
        &self,
        id: &str,
        archived: bool,
    ) -> Result<Option<FindingRecord>, BackendError> {
        let Some(f) = self.locate(id) else {
            return Ok(None);
        };
        let ns = f.namespace().unwrap_or_default();
        let api: Api<RuntimeFinding> = Api::namespaced(self.client.clone(), &ns);
        let name = f.name_any();
        // By hand: no rule archived it (a merge patch removes the rule's name).
        let status = serde_json::json!({"status": {
            "archived": archived,
            "archivedBy": null,
            "archivedAt": if archived { Some(Timestamp::now().to_string()) } else { None },
        }});
        let params = PatchParams {
            field_manager: Some(CONSOLE_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        let patched = self.runtime.block_on(async {
            let mut patched = api
                .patch_status(&name, &params, &Patch::Merge(&status))
                .await?;
            // An agent-archived finding carries it in its document too.
            if !archived && patched.spec.archived {
                patched = api
                    .patch(
                        &name,
                        &params,
                        &Patch::Merge(serde_json::json!({"spec": {"archived": false}})),
                    )
                    .await?;
            }
            Ok::<_, kube::Error>(patched)
        });
        match patched {
            Ok(p) => {
                self.settle(id, |f| view(f).archived == archived);
                Ok(Some(record(&p)))
            }
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
            Err(e) => Err(api_error("archive a finding")(e)),
        }
    }

    fn summary(&self, now: Timestamp, days: u32) -> Result<Summary, BackendError> {
        let all = self.findings_now();
        let ok: Vec<&RuntimeFinding> = all.iter().filter_map(|g| g.0.as_ref().ok()).collect();
        Ok(memory::summary(&ok, |f| view(f), now, days))
    }

    fn coverage(&self, _now: Timestamp) -> Result<Vec<CoverageRow>, BackendError> {
        let nodes: BTreeMap<String, Arc<Node>> = self
            .stores
            .nodes
            .state()
            .into_iter()
            .map(|n| (n.name_any(), n))
            .collect();
        let mut rows = Vec::new();
        let mut covered = std::collections::BTreeSet::new();
        for g in self.stores.node_coverage.state() {
            let Ok(c) = &g.0 else { continue };
            let node = c.name_any();
            let heartbeat = self
                .stores
                .leases
                .state()
                .into_iter()
                .find(|l| l.name_any() == lease_name(&node))
                .and_then(|l| read_heartbeat(&l).ok());
            let s = &c.spec;
            rows.push(CoverageRow {
                name: node.clone(),
                status: match s.status {
                    PolicyCoverage::Healthy => CoverageStatus::Healthy,
                    PolicyCoverage::Unhealthy => CoverageStatus::Unhealthy {
                        reason: s
                            .issue
                            .clone()
                            .or_else(|| s.issue_type.clone())
                            .unwrap_or_else(|| "no reason given".into()),
                    },
                },
                agent_version: s.agent_version.clone(),
                kernel: s.kernel_version.clone(),
                active_hooks: s.active_hook_count,
                events_per_second: heartbeat.as_ref().map(|h| h.health.events_per_second),
                drops: heartbeat.as_ref().map(|h| h.health.dropped_events_total),
                last_heartbeat: heartbeat.and_then(|h| h.renew_time).map(|t| t.0),
                vcpus: nodes.get(&node).and_then(|n| node_vcpus(n)),
            });
            covered.insert(node);
        }
        for (name, n) in &nodes {
            if covered.contains(name) {
                continue;
            }
            rows.push(CoverageRow {
                name: name.clone(),
                status: CoverageStatus::Unknown {
                    reason: "no RuntimeMonitoringPolicy covers this node (no NodeCoverage)".into(),
                },
                agent_version: None,
                kernel: n
                    .status
                    .as_ref()
                    .and_then(|s| s.node_info.as_ref())
                    .map(|i| i.kernel_version.clone()),
                active_hooks: None,
                events_per_second: None,
                drops: None,
                last_heartbeat: None,
                vcpus: node_vcpus(n),
            });
        }
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(rows)
    }

    fn usage(&self, now: Timestamp) -> Result<Usage, BackendError> {
        let month_start = now
            .to_zoned(TimeZone::UTC)
            .date()
            .first_of_month()
            .to_zoned(TimeZone::UTC)
            .map(|z| z.timestamp())
            .unwrap_or(now);
        let vcpus: BTreeMap<String, u32> = self
            .stores
            .nodes
            .state()
            .iter()
            .filter_map(|n| node_vcpus(n).map(|v| (n.name_any(), v)))
            .collect();
        let mut nodes = Vec::new();
        for g in self.stores.node_coverage.state() {
            let Ok(c) = &g.0 else { continue };
            let node = c.name_any();
            let created = c
                .metadata
                .creation_timestamp
                .as_ref()
                .map_or(month_start, |t| t.0);
            let start = created.max(month_start);
            // Covered now: from the NodeCoverage's creation to now. Not reporting now: until it
            // stopped (the status's `since`).
            let end = if c.spec.covered {
                now
            } else {
                c.spec.since.0.clamp(start, now)
            };
            let n = vcpus.get(&node).copied().unwrap_or(0);
            let (hours, per_day) = split_by_day(start, end, n);
            nodes.push(NodeUsage {
                node,
                vcpus: n,
                hours,
                per_day,
            });
        }
        nodes.sort_by(|a, b| a.node.cmp(&b.node));
        Ok(Usage {
            nodes,
            basis: "Each node's vCPUs (its capacity) times the hours it has been covered this month: from when its NodeCoverage was created (or the first of the month) to now, or, for a node whose agent is not reporting, to when it stopped. Approximate: the operator keeps no heartbeat history, so gaps in between are counted as covered, and a node's earlier coverage under a deleted policy is not counted. Nodes with unknown vCPUs count as 0.".into(),
        })
    }

    fn settings(&self) -> Result<Settings, BackendError> {
        let mut s = Settings::default();
        let mut policies = 0;
        for g in self.stores.policies.state() {
            let p = match &g.0 {
                Ok(p) => p,
                Err(e) => {
                    s.problems.push(format!(
                        "RuntimeMonitoringPolicy {}: {}",
                        e.metadata.name.as_deref().unwrap_or("?"),
                        e.error
                    ));
                    continue;
                }
            };
            policies += 1;
            let source = |l: &vigil_crds::policy::ListReference| {
                format!(
                    "ConfigMap {}/{} key {} (policy {})",
                    self.namespace,
                    l.config_map_name,
                    l.key,
                    p.name_any()
                )
            };
            for l in &p.spec.threat_intel_lists {
                s.threat_lists.push(ListInfo {
                    name: l.list_name.clone(),
                    source: source(l),
                    entries: None,
                    error: None,
                });
            }
            for l in &p.spec.trusted_ip_lists {
                s.trusted_lists.push(ListInfo {
                    name: l.list_name.clone(),
                    source: source(l),
                    entries: None,
                    error: None,
                });
            }
        }
        for g in self.stores.rules.state() {
            match &g.0 {
                Ok(r) => s.suppression_rules.push(RuleInfo {
                    matched: r.status.as_ref().map_or(0, |st| st.matched_findings),
                    rule: r.clone(),
                }),
                Err(e) => s.problems.push(format!(
                    "SuppressionRule {}: {}",
                    e.metadata.name.as_deref().unwrap_or("?"),
                    e.error
                )),
            }
        }
        s.suppression_rules
            .sort_by(|a, b| a.rule.metadata.name.cmp(&b.rule.metadata.name));
        s.rules_source = "SuppressionRule objects in the cluster; the matches are what the suppression controller last counted (status.matchedFindings).".into();
        let findings = self.findings_now();
        let bad = findings.iter().filter(|g| g.0.is_err()).count();
        s.facts
            .push(("Findings held".into(), findings.len().to_string()));
        if bad > 0 {
            s.problems.push(format!(
                "{bad} RuntimeFindings do not match the schema and are not shown"
            ));
        }
        s.facts.push(("Policies".into(), policies.to_string()));
        s.facts
            .push(("Agents' namespace".into(), self.namespace.clone()));
        Ok(s)
    }

    fn preview_suppression(&self, rule: &SuppressionRule) -> Result<u64, BackendError> {
        let name = rule.metadata.name.as_deref().unwrap_or("preview");
        let compiled = rule
            .spec
            .compile(name)
            .map_err(|e| BackendError::Rejected(e.to_string()))?;
        Ok(self
            .findings_now()
            .iter()
            .filter_map(|g| g.0.as_ref().ok())
            .filter(|f| !view(f).archived && compiled.matches(&f.spec).unwrap_or(false))
            .count() as u64)
    }

    fn create_suppression(&self, rule: &SuppressionRule) -> Result<CreatedRule, BackendError> {
        let name = rule
            .metadata
            .name
            .clone()
            .ok_or_else(|| BackendError::Rejected("the rule has no name".into()))?;
        let matching = self.preview_suppression(rule)?;
        let api: Api<SuppressionRule> = Api::all(self.client.clone());
        let mut object = rule.clone();
        object.metadata = ObjectMeta {
            name: Some(name.clone()),
            annotations: Some(BTreeMap::from([(
                "vigil.dev/created-by".to_owned(),
                CONSOLE_MANAGER.to_owned(),
            )])),
            ..ObjectMeta::default()
        };
        object.status = None;
        let params = PostParams {
            field_manager: Some(CONSOLE_MANAGER.to_owned()),
            ..PostParams::default()
        };
        match self.runtime.block_on(api.create(&params, &object)) {
            Ok(_) => Ok(CreatedRule {
                name: name.clone(),
                location: format!("SuppressionRule {name}"),
                // The suppression controller archives them (within seconds).
                archived_now: matching,
            }),
            Err(kube::Error::Api(s)) if s.code == 409 => Err(BackendError::Rejected(format!(
                "a SuppressionRule named {name} exists already; choose another name"
            ))),
            Err(kube::Error::Api(s)) if s.code == 422 || s.code == 400 => Err(
                BackendError::Rejected(format!("the API server refused the rule: {}", s.message)),
            ),
            Err(e) => Err(api_error("create a SuppressionRule")(e)),
        }
    }

    fn trust_targets(&self, net: &TrustedNet) -> Result<Vec<TrustTarget>, BackendError> {
        let refs = self.trusted_refs();
        let mut out = Vec::with_capacity(refs.len());
        let mut read: BTreeMap<String, Option<ConfigMap>> = BTreeMap::new();
        for r in &refs {
            if !read.contains_key(&r.config_map) {
                read.insert(r.config_map.clone(), self.get_config_map(&r.config_map)?);
            }
            let cm = read.get(&r.config_map).and_then(Option::as_ref);
            out.push(self.target(r, cm, net));
        }
        Ok(out)
    }

    fn add_trusted(
        &self,
        list: &str,
        net: &TrustedNet,
        note: &str,
    ) -> Result<TrustTarget, BackendError> {
        let refs = self.trusted_refs();
        let Some(r) = refs.iter().find(|r| r.name == list) else {
            return Err(BackendError::Rejected(format!(
                "no policy names a trusted list {list:?}; the lists are {}",
                refs.iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        let api = self.config_maps();
        // Read, append, write with the version read: a concurrent change makes the write fail
        // (409) and the console tries again from a fresh read, twice at most.
        for _ in 0..3 {
            let current = self.get_config_map(&r.config_map)?;
            let before = self.target(r, current.as_ref(), net);
            if before.already_listed {
                return Ok(before);
            }
            let old = current
                .as_ref()
                .and_then(|c| c.data.as_ref())
                .and_then(|d| d.get(&r.key))
                .cloned()
                .unwrap_or_default();
            let text = trust::appended(&old, net, note);
            if text.len() > MAX_CONFIG_MAP_BYTES {
                return Err(BackendError::Rejected(format!(
                    "ConfigMap {}/{} would exceed 1 MB with this entry",
                    self.namespace, r.config_map
                )));
            }
            let written = match current {
                Some(mut cm) => {
                    cm.data
                        .get_or_insert_with(BTreeMap::new)
                        .insert(r.key.clone(), text);
                    cm.metadata.managed_fields = None;
                    self.runtime.block_on(api.replace(
                        &r.config_map,
                        &PostParams {
                            field_manager: Some(CONSOLE_MANAGER.to_owned()),
                            ..PostParams::default()
                        },
                        &cm,
                    ))
                }
                None => {
                    let cm = ConfigMap {
                        metadata: ObjectMeta {
                            name: Some(r.config_map.clone()),
                            namespace: Some(self.namespace.clone()),
                            labels: Some(BTreeMap::from([(
                                "app.kubernetes.io/managed-by".to_owned(),
                                CONSOLE_MANAGER.to_owned(),
                            )])),
                            ..ObjectMeta::default()
                        },
                        data: Some(BTreeMap::from([(r.key.clone(), text)])),
                        ..ConfigMap::default()
                    };
                    self.runtime.block_on(api.create(
                        &PostParams {
                            field_manager: Some(CONSOLE_MANAGER.to_owned()),
                            ..PostParams::default()
                        },
                        &cm,
                    ))
                }
            };
            match written {
                Ok(cm) => return Ok(self.target(r, Some(&cm), net)),
                Err(kube::Error::Api(s)) if s.code == 409 => continue,
                Err(e) => return Err(api_error("update a trusted list's ConfigMap")(e)),
            }
        }
        Err(BackendError::Rejected(format!(
            "ConfigMap {}/{} kept changing while the console wrote it; try again",
            self.namespace, r.config_map
        )))
    }
}

/// Lets a caller act as far as the API server authorizes their bearer token: TokenReview, then
/// a SubjectAccessReview for the `vigil.dev` verb (or ConfigMap update) each action needs.
pub struct KubeGate {
    client: Client,
    backend: Arc<ClusterBackend>,
}

impl KubeGate {
    /// A gate asking the API server behind `client` (the console's own credentials must allow
    /// creating TokenReviews and SubjectAccessReviews).
    pub fn new(client: Client, backend: Arc<ClusterBackend>) -> Self {
        Self { client, backend }
    }

    /// What the caller needs for `action`.
    fn access(&self, action: Action<'_>) -> Result<Access, Denied> {
        Ok(match action {
            Action::Archive { finding } => {
                let f = self
                    .backend
                    .locate(finding)
                    .ok_or_else(|| Denied::Forbidden(format!("no finding with id {finding:?}")))?;
                Access::resource(
                    "patch",
                    vigil_crds::GROUP,
                    "runtimefindings",
                    f.namespace().as_deref(),
                    Some(&f.name_any()),
                )
            }
            Action::Suppress => {
                Access::resource("create", vigil_crds::GROUP, "suppressionrules", None, None)
            }
            Action::Trust { list } => {
                let config_map = list.split_once('/').map_or(list, |(cm, _)| cm);
                Access::resource(
                    "update",
                    "",
                    "configmaps",
                    Some(&self.backend.namespace),
                    Some(config_map),
                )
            }
        })
    }
}

fn denied(e: AuthError) -> Denied {
    match e {
        AuthError::InvalidToken => Denied::Unauthenticated(
            "the API server does not accept this token (expired, or not a token of this cluster): sign in again".into(),
        ),
        unavailable => Denied::Unavailable(unavailable.to_string()),
    }
}

impl Gate for KubeGate {
    fn read_only(&self, headers: &axum::http::HeaderMap) -> Option<String> {
        access::bearer_token(headers).is_none().then(|| {
            "no bearer token came with the request, so the console cannot tell who you are (behind `kubectl port-forward` it only sees the tunnel). Sign in with a token below (or send `Authorization: Bearer TOKEN`); each action is then checked with the API server.".to_owned()
        })
    }

    fn check<'a>(
        &'a self,
        headers: &'a axum::http::HeaderMap,
        action: Action<'a>,
    ) -> GateFuture<'a, ()> {
        Box::pin(async move {
            let token = access::bearer_token(headers).ok_or_else(|| {
                Denied::Unauthenticated("a bearer token is needed to act; sign in first".into())
            })?;
            let user = kube_auth::authenticate(&self.client, token)
                .await
                .map_err(denied)?;
            let access = self.access(action)?;
            if kube_auth::authorized(&self.client, &user, &access)
                .await
                .map_err(denied)?
            {
                Ok(())
            } else {
                Err(Denied::Forbidden(format!(
                    "{} may not {} (the API server's SubjectAccessReview said no)",
                    kube_auth::user_name(&user),
                    access.describe()
                )))
            }
        })
    }

    fn who<'a>(&'a self, token: &'a str) -> GateFuture<'a, String> {
        Box::pin(async move {
            kube_auth::authenticate(&self.client, token)
                .await
                .map(|u| kube_auth::user_name(&u).to_owned())
                .map_err(denied)
        })
    }
}

/// Hours from `start` to `end` and the vCPU-hours of each UTC day in between.
fn split_by_day(start: Timestamp, end: Timestamp, vcpus: u32) -> (f64, Vec<(String, f64)>) {
    let mut per_day = Vec::new();
    let mut hours = 0.0;
    let mut t = start;
    while t < end {
        let day = t.to_zoned(TimeZone::UTC).date();
        let next = day
            .tomorrow()
            .ok()
            .and_then(|d| d.to_zoned(TimeZone::UTC).ok())
            .map(|z| z.timestamp())
            .unwrap_or(end)
            .min(end);
        if next <= t {
            break;
        }
        let h = (next.as_second() - t.as_second()) as f64 / 3600.0;
        hours += h;
        per_day.push((day.to_string(), h * f64::from(vcpus)));
        t = next;
    }
    (hours, per_day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covered_hours_are_split_by_utc_day() {
        let start: Timestamp = "2026-12-01T18:00:00Z".parse().unwrap();
        let end: Timestamp = "2026-12-03T06:00:00Z".parse().unwrap();
        let (hours, per_day) = split_by_day(start, end, 4);
        assert_eq!(hours, 36.0);
        assert_eq!(
            per_day,
            vec![
                ("2026-12-01".to_owned(), 24.0),
                ("2026-12-02".to_owned(), 96.0),
                ("2026-12-03".to_owned(), 24.0)
            ]
        );
        assert_eq!(split_by_day(end, start, 4), (0.0, Vec::new()));
    }

    #[test]
    fn vcpus_come_from_the_node_capacity() {
        let node = |cpu: &str| -> Node {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "n"}, "status": {"capacity": {"cpu": cpu}}
            }))
            .unwrap()
        };
        assert_eq!(node_vcpus(&node("8")), Some(8));
        assert_eq!(node_vcpus(&node("3500m")), Some(4));
        assert_eq!(node_vcpus(&node("lots")), None);
        assert_eq!(node_vcpus(&Node::default()), None);
    }
}
