//! CRD spec handling: a `RuntimeMonitoringPolicy` (as `examples/policies/*.yaml`, what the API
//! server hands the operator) rendered into the agent objects by `vigil_operator::render::render`
//! (pure), and the agent configuration it writes read back as the agent reads it.
//!
//! Invariants: rendering never panics; the ConfigMap's `agent.yaml` parses (YAML, as
//! `node_agent::cluster::config::read_config` does) to exactly `AgentConfig::for_policy`; every
//! object serialises; the DaemonSet runs the policy's image, as one of the ServiceAccounts the
//! chart ships.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_crds::{
    RuntimeMonitoringPolicy,
    agent_config::{AgentConfig, CONFIG_KEY},
};
use vigil_operator::render::{
    AGENT_SERVICE_ACCOUNT, AgentObjects, RESPONDER_SERVICE_ACCOUNT, render,
};

const NAMESPACE: &str = "vigil-system";

fn serialises(objects: &AgentObjects) {
    let results = [
        serde_json::to_string(&objects.config_map),
        serde_json::to_string(&objects.daemon_set),
    ];
    for result in results {
        if let Err(error) = result {
            panic!("a rendered object does not serialise: {error}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(mut policy) = serde_yaml::from_str::<RuntimeMonitoringPolicy>(text) else {
        return;
    };
    // The API server always sets these; render refuses an object without them.
    policy
        .metadata
        .name
        .get_or_insert_with(|| "fuzz".to_owned());
    policy
        .metadata
        .uid
        .get_or_insert_with(|| "0b9a4f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b".to_owned());
    let excluded = ["node-a".to_owned()];
    let objects = match render(&policy, NAMESPACE, &excluded) {
        Ok(objects) => objects,
        Err(error) => {
            let _ = error.to_string();
            return;
        }
    };
    serialises(&objects);

    let name = policy.metadata.name.as_deref().unwrap_or_default();
    let expected = AgentConfig::for_policy(name, &policy.spec, NAMESPACE);
    let Some(text) = objects
        .config_map
        .data
        .as_ref()
        .and_then(|d| d.get(CONFIG_KEY))
    else {
        panic!("the agent ConfigMap has no {CONFIG_KEY}");
    };
    match serde_yaml::from_str::<AgentConfig>(text) {
        Ok(read) => assert_eq!(read, expected, "the agent reads another configuration"),
        Err(error) => panic!("the agent cannot read its configuration: {error}\n{text}"),
    }

    let pod = objects.daemon_set.spec.template.spec.as_ref();
    let image = pod
        .and_then(|p| p.containers.first())
        .and_then(|c| c.image.as_deref());
    assert_eq!(image, Some(policy.spec.agent.image.as_str()));
    let account = pod.and_then(|p| p.service_account_name.as_deref());
    assert_eq!(account, Some(objects.service_account));
    assert!(
        [AGENT_SERVICE_ACCOUNT, RESPONDER_SERVICE_ACCOUNT].contains(&objects.service_account),
        "{}",
        objects.service_account
    );
});
