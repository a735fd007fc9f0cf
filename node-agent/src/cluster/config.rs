//! The configuration the operator renders (`agent.yaml` in the agent ConfigMap), the list
//! files it points at, and the cluster's SuppressionRules: read at start and watched, so a change
//! applies without a restart.
//!
//! Kubelet swaps a mounted ConfigMap's files atomically (a symlink flip), so polling the content
//! is enough and needs no inotify on a read-only mount.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use futures::StreamExt;
use kube::{
    Api, Client,
    core::DeserializeGuard,
    runtime::{WatchStreamExt, watcher},
};
use sha2::{Digest, Sha256};
use vigil_crds::{
    SuppressionRule, agent_config::AgentConfig, suppression::CompiledRule,
    suppression_rule::SuppressionRuleSpec,
};
use vigil_detection::{
    FindingType, IntelConfig, ListFormat,
    indicator::IndicatorKind,
    loader::{ListSource, TrustedIpSource},
};

/// The configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Unreadable.
    #[error("{path}: cannot read the agent configuration: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Not an `AgentConfig` document.
    #[error("{path}: not a valid agent configuration: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser error, with line and column.
        #[source]
        source: serde_yaml::Error,
    },
}

/// Reads `agent.yaml` (JSON is YAML, which is what the operator writes).
pub fn read_config(path: &Path) -> Result<AgentConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_yaml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

/// What a plain list file holds, from its first indicator line: a STIX bundle starts with `{`,
/// otherwise an address or CIDR block makes an IP list, 64 hex digits a SHA-256 list, and
/// anything else a domain list.
pub fn sniff_format(text: &str) -> ListFormat {
    let first = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .find(|l| !l.is_empty());
    match first {
        _ if text.trim_start().starts_with('{') => ListFormat::Stix,
        Some(line) if is_ip_or_cidr(line) => ListFormat::PlainText(IndicatorKind::Ip),
        Some(line) if line.len() == 64 && line.bytes().all(|b| b.is_ascii_hexdigit()) => {
            ListFormat::PlainText(IndicatorKind::Sha256)
        }
        _ => ListFormat::PlainText(IndicatorKind::Domain),
    }
}

fn is_ip_or_cidr(line: &str) -> bool {
    let addr = line.split_once('/').map_or(line, |(a, _)| a);
    addr.parse::<std::net::IpAddr>().is_ok()
}

/// The finding types a policy threat list raises, by what it holds: GuardDuty reports a
/// threat-list address as C&C activity, a domain as its DNS variant, a file hash as a
/// malicious file.
pub fn feeds_for(format: ListFormat) -> Vec<FindingType> {
    match format {
        ListFormat::PlainText(IndicatorKind::Ip) => vec![FindingType::BackdoorCcActivityB],
        ListFormat::PlainText(IndicatorKind::Domain) => vec![FindingType::BackdoorCcActivityBDns],
        ListFormat::PlainText(IndicatorKind::Sha256) => {
            vec![FindingType::ExecutionMaliciousFileExecuted]
        }
        ListFormat::Stix => vec![
            FindingType::BackdoorCcActivityB,
            FindingType::BackdoorCcActivityBDns,
            FindingType::ExecutionMaliciousFileExecuted,
        ],
    }
}

/// The threat-intel configuration of a policy: `base` (the built-in lists, or what the command
/// line configured) plus every referenced list that exists now (a list ConfigMap is mounted as
/// optional: a missing one is logged and skipped, and picked up when it appears).
pub fn intel_config(base: &IntelConfig, config: &AgentConfig) -> IntelConfig {
    let mut intel = base.clone();
    for list in &config.threat_intel_lists {
        let path = PathBuf::from(&list.path);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let format = sniff_format(&text);
                intel.lists.push(ListSource {
                    name: list.list_name.clone(),
                    path,
                    format,
                    feeds: feeds_for(format),
                });
            }
            Err(error) => tracing::warn!(
                list = %list.list_name,
                path = %list.path,
                %error,
                "threat-intel list not loaded (its ConfigMap or key is missing)"
            ),
        }
    }
    for list in &config.trusted_ip_lists {
        let path = PathBuf::from(&list.path);
        if path.exists() {
            intel.trusted_ips.push(TrustedIpSource {
                name: list.list_name.clone(),
                path,
            });
        } else {
            tracing::warn!(list = %list.list_name, path = %list.path, "trusted-IP list not loaded (its ConfigMap or key is missing)");
        }
    }
    intel
}

/// Notices changes to the configuration file and to the list files it names.
#[derive(Debug)]
pub struct ConfigWatch {
    path: PathBuf,
    config_digest: Option<[u8; 32]>,
    lists_digest: Option<[u8; 32]>,
}

/// What changed since the last look.
#[derive(Debug)]
pub enum ConfigChange {
    /// The configuration file changed (lists may have too): apply all of it.
    Config(AgentConfig),
    /// Only the content of list files changed: reload threat intel.
    Lists(AgentConfig),
}

fn digest_file(hasher: &mut Sha256, path: &Path) {
    hasher.update(path.as_os_str().as_encoded_bytes());
    hasher.update([0]);
    match std::fs::read(path) {
        Ok(bytes) => hasher.update(&bytes),
        Err(_) => hasher.update(b"\xffmissing"),
    }
}

impl ConfigWatch {
    /// A watch of `path` that has seen `config` (the one read at start).
    pub fn new(path: PathBuf, config: &AgentConfig) -> Self {
        let mut watch = Self {
            path,
            config_digest: None,
            lists_digest: None,
        };
        watch.config_digest = watch.config_digest_now();
        watch.lists_digest = Some(lists_digest(config));
        watch
    }

    fn config_digest_now(&self) -> Option<[u8; 32]> {
        let bytes = std::fs::read(&self.path).ok()?;
        Some(Sha256::digest(&bytes).into())
    }

    /// Looks again. A configuration file that became unreadable or invalid is reported as an
    /// error once per content and the previous configuration stays.
    pub fn poll(&mut self) -> Option<Result<ConfigChange, ConfigError>> {
        let digest = self.config_digest_now();
        if digest.is_some() && digest != self.config_digest {
            self.config_digest = digest;
            return Some(read_config(&self.path).map(|config| {
                self.lists_digest = Some(lists_digest(&config));
                ConfigChange::Config(config)
            }));
        }
        // The lists of the configuration in force (re-read: it is small).
        let config = read_config(&self.path).ok()?;
        let lists = lists_digest(&config);
        if Some(lists) != self.lists_digest {
            self.lists_digest = Some(lists);
            return Some(Ok(ConfigChange::Lists(config)));
        }
        None
    }
}

fn lists_digest(config: &AgentConfig) -> [u8; 32] {
    let mut h = Sha256::new();
    for list in config
        .threat_intel_lists
        .iter()
        .chain(&config.trusted_ip_lists)
    {
        digest_file(&mut h, Path::new(&list.path));
    }
    h.finalize().into()
}

/// Compiles the valid rules; an invalid one is logged and left out (the operator reports it in
/// the rule's status), so one bad rule does not undo the others.
pub fn compile_rules(rules: &BTreeMap<String, SuppressionRuleSpec>) -> Vec<CompiledRule> {
    rules
        .iter()
        .filter_map(|(name, spec)| match spec.compile(name) {
            Ok(rule) => Some(rule),
            Err(error) => {
                tracing::warn!(rule = %name, %error, "suppression rule not applied");
                None
            }
        })
        .collect()
}

/// Watches the cluster's SuppressionRules and sends the compiled set on every change. Returns
/// when the receiver is gone. Each object is read on its own ([`DeserializeGuard`]): one that
/// does not parse is logged and left out, and the others keep updating.
pub async fn watch_suppression_rules(
    client: Client,
    tx: tokio::sync::watch::Sender<Vec<CompiledRule>>,
) {
    let api: Api<DeserializeGuard<SuppressionRule>> = Api::all(client);
    let mut rules = RuleSet::default();
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        let changed = match event {
            Ok(event) => rules.apply(event),
            Err(error) => {
                tracing::warn!(%error, "watching SuppressionRules");
                false
            }
        };
        if changed {
            let compiled = compile_rules(&rules.current);
            tracing::info!(
                rules = rules.current.len(),
                applied = compiled.len(),
                "suppression rules updated"
            );
            if tx.send(compiled).is_err() {
                return;
            }
        }
    }
}

/// The rules a watch has seen so far.
#[derive(Debug, Default)]
pub struct RuleSet {
    /// Rules by name, as of the last complete view.
    pub current: BTreeMap<String, SuppressionRuleSpec>,
    /// A relist in progress.
    initial: Option<BTreeMap<String, SuppressionRuleSpec>>,
}

impl RuleSet {
    /// Applies one watch event; returns whether the rule set changed. An object that does not
    /// parse counts as absent (it archives nothing), named in a warning.
    pub fn apply(&mut self, event: watcher::Event<DeserializeGuard<SuppressionRule>>) -> bool {
        let parsed = |guard: DeserializeGuard<SuppressionRule>| match guard.0 {
            Ok(rule) => (
                rule.metadata.name.clone().unwrap_or_default(),
                Some(rule.spec),
            ),
            Err(invalid) => {
                let name = invalid.metadata.name.clone().unwrap_or_default();
                tracing::warn!(rule = %name, error = %invalid.error, "SuppressionRule does not parse; not applied");
                (name, None)
            }
        };
        match event {
            watcher::Event::Apply(guard) => {
                let (name, spec) = parsed(guard);
                match spec {
                    Some(spec) => self.current.insert(name, spec),
                    None => self.current.remove(&name),
                };
                true
            }
            watcher::Event::Delete(guard) => {
                let name = match guard.0 {
                    Ok(rule) => rule.metadata.name.unwrap_or_default(),
                    Err(invalid) => invalid.metadata.name.unwrap_or_default(),
                };
                self.current.remove(&name).is_some()
            }
            watcher::Event::Init => {
                self.initial = Some(BTreeMap::new());
                false
            }
            watcher::Event::InitApply(guard) => {
                let (name, spec) = parsed(guard);
                if let (Some(initial), Some(spec)) = (self.initial.as_mut(), spec) {
                    initial.insert(name, spec);
                }
                false
            }
            watcher::Event::InitDone => {
                self.current = self.initial.take().unwrap_or_default();
                true
            }
        }
    }
}

#[cfg(test)]
mod rule_set_tests {
    use kube::core::{DeserializeGuard, error_boundary::InvalidObject};
    use vigil_crds::SuppressionRule;

    use super::*;

    fn rule(name: &str, finding_type: &str) -> DeserializeGuard<SuppressionRule> {
        let rule: SuppressionRule = serde_json::from_value(serde_json::json!({
            "apiVersion": "vigil.dev/v1alpha1", "kind": "SuppressionRule",
            "metadata": {"name": name},
            "spec": {"criteria": {"criterion": {"type": {"equals": [finding_type]}}}}
        }))
        .expect("a valid rule");
        DeserializeGuard(Ok(rule))
    }

    fn broken(name: &str) -> DeserializeGuard<SuppressionRule> {
        DeserializeGuard(Err(InvalidObject {
            error: "spec.criteria: missing field `criterion`".into(),
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
        }))
    }

    #[test]
    fn an_object_that_does_not_parse_leaves_the_others_working() {
        let mut set = RuleSet::default();
        assert!(!set.apply(watcher::Event::Init));
        assert!(!set.apply(watcher::Event::InitApply(rule(
            "a",
            "Execution:Runtime/SuspiciousTool"
        ))));
        assert!(!set.apply(watcher::Event::InitApply(broken("bad"))));
        assert!(set.apply(watcher::Event::InitDone));
        assert_eq!(set.current.keys().collect::<Vec<_>>(), ["a"]);
        // Later changes still arrive around the broken object.
        assert!(set.apply(watcher::Event::Apply(rule(
            "b",
            "Execution:Runtime/ReverseShell"
        ))));
        assert_eq!(compile_rules(&set.current).len(), 2);
        // A good rule edited into one that does not parse stops applying.
        assert!(set.apply(watcher::Event::Apply(broken("a"))));
        assert_eq!(set.current.keys().collect::<Vec<_>>(), ["b"]);
        assert!(set.apply(watcher::Event::Delete(rule("b", "x"))));
        assert!(set.current.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use vigil_crds::agent_config::{HeartbeatConfig, ListFile};
    use vigil_crds::finding::SeverityLabel;

    use super::*;

    fn config(lists: Vec<ListFile>) -> AgentConfig {
        AgentConfig {
            policy: "p".into(),
            enabled_finding_types: vec![],
            event_min_severity: SeverityLabel::High,
            publishing_frequency_seconds: 60,
            heartbeat: HeartbeatConfig {
                namespace: "vigil-system".into(),
                lease_duration_seconds: 60,
                renew_interval_seconds: 20,
            },
            threat_intel_lists: lists,
            trusted_ip_lists: vec![],
            integrations: None,
            response: None,
        }
    }

    #[test]
    fn list_formats_are_sniffed_from_the_first_indicator() {
        let table = [
            (
                "# feed\n\n10.0.0.1\n",
                ListFormat::PlainText(IndicatorKind::Ip),
            ),
            (
                "192.0.2.0/24 # net\n",
                ListFormat::PlainText(IndicatorKind::Ip),
            ),
            ("2001:db8::/32\n", ListFormat::PlainText(IndicatorKind::Ip)),
            (
                &"ab".repeat(32),
                ListFormat::PlainText(IndicatorKind::Sha256),
            ),
            (
                "evil.example\n",
                ListFormat::PlainText(IndicatorKind::Domain),
            ),
            ("  {\"type\": \"bundle\"}", ListFormat::Stix),
            ("", ListFormat::PlainText(IndicatorKind::Domain)),
        ];
        for (text, want) in table {
            assert_eq!(sniff_format(text), want, "{text:?}");
        }
    }

    #[test]
    fn config_and_list_changes_are_noticed_and_bad_files_named() {
        let dir = std::env::temp_dir().join(format!("vigil-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let list = dir.join("ips.txt");
        std::fs::write(&list, "198.51.100.7\n").unwrap();
        let cfg = config(vec![ListFile {
            list_name: "feed".into(),
            path: list.display().to_string(),
        }]);
        let path = dir.join("agent.yaml");
        std::fs::write(&path, serde_json::to_string(&cfg).unwrap()).unwrap();
        assert_eq!(read_config(&path).unwrap(), cfg);
        let intel = intel_config(&IntelConfig::default(), &cfg);
        assert_eq!(intel.lists.len(), 1);
        assert_eq!(intel.lists[0].feeds, vec![FindingType::BackdoorCcActivityB]);

        let mut watch = ConfigWatch::new(path.clone(), &cfg);
        assert!(watch.poll().is_none(), "nothing changed");
        std::fs::write(&list, "198.51.100.8\n").unwrap();
        assert!(matches!(watch.poll(), Some(Ok(ConfigChange::Lists(_)))));
        assert!(watch.poll().is_none());

        let mut changed = cfg.clone();
        changed.event_min_severity = SeverityLabel::Low;
        std::fs::write(&path, serde_json::to_string(&changed).unwrap()).unwrap();
        match watch.poll() {
            Some(Ok(ConfigChange::Config(c))) => {
                assert_eq!(c.event_min_severity, SeverityLabel::Low)
            }
            other => panic!("{other:?}"),
        }

        std::fs::write(&path, "policy: [").unwrap();
        let err = watch.poll().unwrap().unwrap_err().to_string();
        assert!(err.contains("agent.yaml"), "{err}");
        assert!(watch.poll().is_none(), "an error is reported once");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_list_is_skipped_not_fatal() {
        let cfg = config(vec![ListFile {
            list_name: "gone".into(),
            path: "/nonexistent/vigil/list.txt".into(),
        }]);
        assert!(intel_config(&IntelConfig::default(), &cfg).lists.is_empty());
    }
}
