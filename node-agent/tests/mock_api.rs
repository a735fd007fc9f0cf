//! Self-test of the fake Kubernetes API server (`tests/support/mock_api.rs`): every feature the
//! cluster-mode tests rely on, exercised through a real `kube::Client`.

mod support;

use std::{
    io::{Read, Write},
    time::Duration,
};

use futures::{Stream, StreamExt};
use k8s_openapi::api::{
    apps::v1::Deployment, coordination::v1::Lease, core::v1::Pod, events::v1::Event,
};
use kube::{
    Api, Error,
    api::{ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams},
    config::{KubeConfigOptions, Kubeconfig},
    runtime::watcher,
};
use serde_json::json;
use support::mock_api::{Fault, MockApi};
use vigil_crds::{finding::RuntimeFinding, suppression_rule::SuppressionRule};

const SAMPLE_FINDING: &str = include_str!("../../examples/findings/sample-finding.yaml");
const SAMPLE_RULE: &str =
    include_str!("../../examples/suppression-rules/package-managers-in-ci.yaml");
const WAIT: Duration = Duration::from_secs(10);

fn pod(name: &str, node: &str, labels: serde_json::Value) -> Pod {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", "uid": format!("uid-{name}"), "labels": labels},
        "spec": {"nodeName": node, "containers": [{"name": "main", "image": "busybox"}]},
    });
    serde_json::from_value(pod).expect("test pod parses")
}

fn name_of(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or_default()
}

/// The API error of a failed call, or a panic naming what came instead.
fn api_error<T: std::fmt::Debug>(result: Result<T, Error>) -> (u16, String) {
    match result {
        Err(Error::Api(status)) => (status.code, status.reason.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// The next item of a stream, failing the test after `WAIT`.
async fn next<S: Stream + Unpin>(stream: &mut S) -> S::Item {
    tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("an item within the wait")
        .expect("the stream goes on")
}

/// A watcher event as a short string: "init", "init-apply a", "init-done", "apply a", "delete a".
async fn next_pod_event<S>(stream: &mut S) -> String
where
    S: Stream<Item = Result<watcher::Event<Pod>, watcher::Error>> + Unpin,
{
    match next(stream).await.expect("no watcher error") {
        watcher::Event::Init => "init".to_owned(),
        watcher::Event::InitApply(p) => format!("init-apply {}", name_of(&p)),
        watcher::Event::InitDone => "init-done".to_owned(),
        watcher::Event::Apply(p) => format!("apply {}", name_of(&p)),
        watcher::Event::Delete(p) => format!("delete {}", name_of(&p)),
    }
}

async fn watcher_sees_the_pods_of_one_node(config: watcher::Config) {
    let api = MockApi::start();
    api.put(&pod("a", "n1", json!({})));
    api.put(&pod("b", "n2", json!({})));
    api.put(&pod("c", "n1", json!({})));
    let pods: Api<Pod> = Api::all(api.client());
    let mut events = watcher(pods, config.fields("spec.nodeName=n1")).boxed();
    for want in ["init", "init-apply a", "init-apply c", "init-done"] {
        assert_eq!(next_pod_event(&mut events).await, want);
    }
    api.put(&pod("d", "n1", json!({})));
    assert_eq!(next_pod_event(&mut events).await, "apply d");
    // A pod of another node is not seen: the next event is the relabelled `a`.
    api.put(&pod("e", "n2", json!({})));
    api.put(&pod("a", "n1", json!({"app": "web"})));
    match next(&mut events).await.expect("no watcher error") {
        watcher::Event::Apply(p) => {
            assert_eq!(name_of(&p), "a");
            assert_eq!(
                p.metadata
                    .labels
                    .unwrap_or_default()
                    .get("app")
                    .map(String::as_str),
                Some("web")
            );
            assert_eq!(
                p.metadata.uid.as_deref(),
                Some("uid-a"),
                "a fixture's uid is kept"
            );
        }
        other => panic!("expected apply a, got {other:?}"),
    }
    assert!(api.delete::<Pod>(Some("shop"), "c"));
    assert_eq!(next_pod_event(&mut events).await, "delete c");

    let watches: Vec<_> = api
        .requests()
        .into_iter()
        .filter(|r| r.param("watch").as_deref() == Some("true"))
        .collect();
    assert!(!watches.is_empty(), "the watcher watched");
    for watch in &watches {
        assert_eq!(watch.path, "/api/v1/pods");
        assert_eq!(
            watch.param("fieldSelector").as_deref(),
            Some("spec.nodeName=n1")
        );
        assert_eq!(watch.param("allowWatchBookmarks").as_deref(), Some("true"));
        assert_eq!(watch.status, 200);
    }
}

#[tokio::test]
async fn watcher_list_watch_with_pages_sees_add_modify_delete() {
    watcher_sees_the_pods_of_one_node(watcher::Config::default().page_size(1)).await;
}

#[tokio::test]
async fn watcher_streaming_list_sees_add_modify_delete() {
    watcher_sees_the_pods_of_one_node(watcher::Config::default().streaming_lists()).await;
}

#[tokio::test]
async fn list_pages_and_watch_resumes_from_the_list_version() {
    let api = MockApi::start();
    for name in ["a", "b", "c"] {
        api.put(&pod(name, "n1", json!({})));
    }
    let pods: Api<Pod> = Api::namespaced(api.client(), "shop");
    let first = pods
        .list(&ListParams::default().limit(2))
        .await
        .expect("first page");
    assert_eq!(
        first.items.iter().map(name_of).collect::<Vec<_>>(),
        ["a", "b"]
    );
    let token = first.metadata.continue_.clone().expect("a continue token");
    let second = pods
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .expect("page 2");
    assert_eq!(second.items.iter().map(name_of).collect::<Vec<_>>(), ["c"]);
    assert_eq!(second.metadata.continue_, None);

    // A watch from the list's version replays only what came after it.
    let version = first.metadata.resource_version.expect("list version");
    api.put(&pod("d", "n1", json!({})));
    let mut stream = pods
        .watch(&WatchParams::default(), &version)
        .await
        .expect("watch")
        .boxed();
    match next(&mut stream).await.expect("watch event") {
        WatchEvent::Added(p) => assert_eq!(name_of(&p), "d"),
        other => panic!("expected ADDED d, got {other:?}"),
    }
}

#[tokio::test]
async fn raw_watch_has_selector_transitions_bookmarks_and_a_timeout() {
    let api = MockApi::start();
    api.set_bookmark_interval(Duration::from_millis(50));
    api.put(&pod("x", "n1", json!({"app": "web"})));
    let pods: Api<Pod> = Api::namespaced(api.client(), "shop");
    let params = WatchParams::default().labels("app=web").timeout(2);
    let mut stream = pods.watch(&params, "0").await.expect("watch").boxed();
    let mut seen = Vec::new();
    let mut bookmarks = 0;
    let mut step = 0;
    // "0" sends the current objects first; then relabelling moves pods in and out of the selection.
    while seen.len() < 3 || bookmarks == 0 {
        match next(&mut stream).await.expect("watch event") {
            WatchEvent::Added(p) => seen.push(format!("added {}", name_of(&p))),
            WatchEvent::Modified(p) => seen.push(format!("modified {}", name_of(&p))),
            WatchEvent::Deleted(p) => seen.push(format!("deleted {}", name_of(&p))),
            WatchEvent::Bookmark(b) => {
                let version: u64 = b
                    .metadata
                    .resource_version
                    .parse()
                    .expect("numeric version");
                assert!(
                    version <= api.resource_version(),
                    "bookmark {version} is not in the future"
                );
                bookmarks += 1;
            }
            WatchEvent::Error(e) => panic!("watch error {e:?}"),
        }
        if step == 0 {
            api.put(&pod("y", "n1", json!({})));
            api.put(&pod("y", "n1", json!({"app": "web"})));
            api.put(&pod("x", "n1", json!({"app": "db"})));
            step = 1;
        }
    }
    assert_eq!(seen, ["added x", "added y", "deleted x"]);
    // timeoutSeconds=2 ends the stream.
    let end = tokio::time::timeout(WAIT, async {
        while let Some(item) = stream.next().await {
            assert!(
                matches!(item, Ok(WatchEvent::Bookmark(_))),
                "only bookmarks after that"
            );
        }
    });
    end.await.expect("the watch ends after its timeout");
}

#[tokio::test]
async fn compacted_history_gives_410_and_the_watcher_relists() {
    let api = MockApi::start();
    api.put(&pod("a", "n1", json!({})));
    let pods: Api<Pod> = Api::all(api.client());

    let old_version = api.resource_version().to_string();
    api.put(&pod("b", "n1", json!({})));
    api.compact();
    let mut raw = pods
        .watch(&WatchParams::default(), &old_version)
        .await
        .expect("watch")
        .boxed();
    match next(&mut raw).await.expect("watch event") {
        WatchEvent::Error(status) => {
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"))
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }

    let mut events = watcher(pods, watcher::Config::default()).boxed();
    for want in ["init", "init-apply a", "init-apply b", "init-done"] {
        assert_eq!(next_pod_event(&mut events).await, want);
    }
    // Watches down (closed, re-watches refused) while c is written and the history forgotten.
    api.inject(Fault::status(500).method("GET").path_prefix("/api/v1/pods"));
    api.close_watches();
    assert!(next(&mut events).await.is_err(), "the re-watch fails");
    api.put(&pod("c", "n1", json!({})));
    api.compact();
    api.clear_faults();
    // The re-watch from the old version gets 410; the watcher lists again and sees c.
    let mut relisted = Vec::new();
    let mut expired = false;
    while relisted.last().map(String::as_str) != Some("init-done") {
        match next(&mut events).await {
            Ok(_) if relisted.is_empty() && !expired => panic!("an event before the 410"),
            Ok(event) => relisted.push(match event {
                watcher::Event::InitApply(p) => format!("init-apply {}", name_of(&p)),
                watcher::Event::Init => "init".to_owned(),
                watcher::Event::InitDone => "init-done".to_owned(),
                other => format!("{other:?}"),
            }),
            Err(watcher::Error::WatchError(status)) if status.code == 410 => expired = true,
            Err(_) => {} // the re-watches refused while the fault was on
        }
    }
    assert!(expired, "the watcher saw the 410");
    assert_eq!(
        relisted,
        [
            "init",
            "init-apply a",
            "init-apply b",
            "init-apply c",
            "init-done"
        ]
    );
}

#[tokio::test]
async fn leases_get_create_apply_merge_and_put() {
    let api = MockApi::start();
    let leases: Api<Lease> = Api::namespaced(api.client(), "vigil");
    assert_eq!(
        api_error(leases.get("n1").await),
        (404, "NotFound".to_owned())
    );

    let lease: Lease = serde_json::from_value(json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "n1"}, "spec": {"holderIdentity": "agent-1"},
    }))
    .expect("lease parses");
    let created = leases
        .create(&PostParams::default(), &lease)
        .await
        .expect("create");
    assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());
    assert_eq!(created.metadata.namespace.as_deref(), Some("vigil"));
    let (code, reason) = api_error(leases.create(&PostParams::default(), &lease).await);
    assert_eq!((code, reason.as_str()), (409, "AlreadyExists"));

    let mut applied = lease.clone();
    applied.spec.get_or_insert_default().lease_duration_seconds = Some(40);
    let ssa = PatchParams::apply("vigil-node-agent").force();
    let after_apply = leases
        .patch("n1", &ssa, &Patch::Apply(&applied))
        .await
        .expect("apply");
    assert_eq!(
        after_apply
            .spec
            .as_ref()
            .and_then(|s| s.lease_duration_seconds),
        Some(40)
    );
    let apply = api.requests_matching(
        "PATCH",
        "/apis/coordination.k8s.io/v1/namespaces/vigil/leases/n1",
    );
    assert_eq!(
        apply[0].content_type.as_deref(),
        Some("application/apply-patch+yaml")
    );
    assert_eq!(
        apply[0].param("fieldManager").as_deref(),
        Some("vigil-node-agent")
    );
    assert_eq!(
        apply[0].json().expect("JSON body")["spec"]["leaseDurationSeconds"],
        40
    );

    let renew = json!({"spec": {"renewTime": "2026-01-01T00:00:00.000000Z"}});
    let merged = leases
        .patch("n1", &PatchParams::default(), &Patch::Merge(&renew))
        .await
        .expect("merge");
    let spec = merged.spec.clone().expect("spec");
    assert_eq!(
        (spec.holder_identity.as_deref(), spec.lease_duration_seconds),
        (Some("agent-1"), Some(40))
    );
    assert!(spec.renew_time.is_some(), "merge patch set renewTime");

    // PUT with the version of an older read conflicts; with the current one it succeeds.
    assert_eq!(
        api_error(leases.replace("n1", &PostParams::default(), &created).await).0,
        409
    );
    let mut current = merged;
    current.spec.get_or_insert_default().holder_identity = Some("agent-2".into());
    leases
        .replace("n1", &PostParams::default(), &current)
        .await
        .expect("replace");
    let stored: Lease = api.get(Some("vigil"), "n1").expect("stored lease");
    assert_eq!(
        stored.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("agent-2")
    );
    assert_eq!(
        stored.metadata.uid, created.metadata.uid,
        "identity survives updates"
    );
}

#[tokio::test]
async fn runtimefindings_apply_status_and_list() {
    let api = MockApi::start();
    let sample: RuntimeFinding =
        serde_yaml::from_str(SAMPLE_FINDING).expect("sample finding parses");
    let name = sample.metadata.name.clone().expect("sample name");
    let findings: Api<RuntimeFinding> = Api::namespaced(api.client(), "shop");
    let ssa = PatchParams::apply("vigil-node-agent").force();

    let created = findings
        .patch(&name, &ssa, &Patch::Apply(&sample))
        .await
        .expect("apply creates");
    assert_eq!(created.metadata.generation, Some(1));
    assert_eq!(api.requests().last().map(|r| r.status), Some(201));

    let status = json!({"status": {"archived": true, "archivedBy": "package-managers-in-ci"}});
    let archived = findings
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
        .await;
    let archived = archived.expect("status patch");
    assert_eq!(archived.status.as_ref().map(|s| s.archived), Some(true));
    assert_eq!(
        archived.metadata.generation,
        Some(1),
        "status writes keep the generation"
    );

    let mut repeat = sample.clone();
    repeat.spec.count = 7;
    repeat.status = None;
    let updated = findings
        .patch(&name, &ssa, &Patch::Apply(&repeat))
        .await
        .expect("apply updates");
    assert_eq!(updated.spec.count, 7);
    assert_eq!(updated.metadata.generation, Some(2));
    let kept = updated
        .status
        .expect("an apply to the main resource keeps the status");
    assert_eq!(kept.archived_by.as_deref(), Some("package-managers-in-ci"));

    // A client's create drops the status, as for a resource with a status subresource.
    let mut other = sample.clone();
    other.metadata.name = Some("other".into());
    other.status = Some(Default::default());
    let posted = findings
        .create(&PostParams::default(), &other)
        .await
        .expect("create");
    assert!(posted.status.is_none());

    let listed = findings.list(&ListParams::default()).await.expect("list");
    assert_eq!(listed.items.len(), 2);
    let stored: Vec<RuntimeFinding> = api.list(Some("shop"));
    assert_eq!(
        stored.iter().map(|f| f.spec.count).collect::<Vec<_>>(),
        [7, 3]
    );
    assert_eq!(
        api.objects("runtimefindings", Some("shop"))[0]["spec"]["count"],
        7
    );
    assert!(api.objects("runtimefindings", Some("elsewhere")).is_empty());
}

#[tokio::test]
async fn events_post_conflict_and_list() {
    let api = MockApi::start();
    let events: Api<Event> = Api::namespaced(api.client(), "shop");
    let event: Event = serde_json::from_value(json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "finding-1.abc123"},
        "eventTime": "2026-01-01T00:00:00.000000Z", "type": "Warning", "reason": "RuntimeFinding",
        "action": "Detected", "note": "a finding", "reportingController": "vigil.dev/node-agent",
        "reportingInstance": "agent-1", "regarding": {"kind": "Pod", "namespace": "shop", "name": "web-1"},
    }))
    .expect("event parses");
    events
        .create(&PostParams::default(), &event)
        .await
        .expect("first POST");
    let (code, reason) = api_error(events.create(&PostParams::default(), &event).await);
    assert_eq!((code, reason.as_str()), (409, "AlreadyExists"));
    let listed = events.list(&ListParams::default()).await.expect("list");
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].note.as_deref(), Some("a finding"));

    // A write from another task, waited for by polling the store.
    let mut second = event.clone();
    second.metadata.name = Some("finding-1.def456".into());
    let writer = tokio::spawn(async move { events.create(&PostParams::default(), &second).await });
    let two = |api: &MockApi| api.objects("events.events.k8s.io", Some("shop")).len() == 2;
    assert!(api.wait_until(WAIT, two).await, "the second event arrives");
    writer.await.expect("writer task").expect("second POST");
}

#[tokio::test]
async fn cluster_scoped_suppression_rules_list_and_watch() {
    let api = MockApi::start();
    let rule: SuppressionRule = serde_yaml::from_str(SAMPLE_RULE).expect("sample rule parses");
    api.put(&rule);
    let rules: Api<SuppressionRule> = Api::all(api.client());
    assert_eq!(
        rules
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .len(),
        1
    );
    let mut stream = rules
        .watch(&WatchParams::default(), "0")
        .await
        .expect("watch")
        .boxed();
    assert!(matches!(next(&mut stream).await, Ok(WatchEvent::Added(_))));
    let mut changed = rule.clone();
    changed.spec.description = "changed".into();
    api.put(&changed);
    match next(&mut stream).await.expect("watch event") {
        WatchEvent::Modified(r) => assert_eq!(r.spec.description, "changed"),
        other => panic!("expected MODIFIED, got {other:?}"),
    }
    assert!(api.delete::<SuppressionRule>(None, "package-managers-in-ci"));
    assert!(matches!(
        next(&mut stream).await,
        Ok(WatchEvent::Deleted(_))
    ));
}

#[tokio::test]
async fn unknown_paths_get_a_404_status_and_are_recorded() {
    let api = MockApi::start();
    let client = api.client();
    assert_eq!(
        client
            .apiserver_version()
            .await
            .expect("/version")
            .git_version,
        "v1.34.0-mock"
    );
    let deployments: Api<Deployment> = Api::namespaced(client, "shop");
    assert_eq!(
        api_error(deployments.get("web").await),
        (404, "NotFound".to_owned())
    );
    let last = api.requests().pop().expect("recorded");
    assert_eq!((last.method.as_str(), last.status), ("GET", 404));
    assert_eq!(last.path, "/apis/apps/v1/namespaces/shop/deployments/web");
}

#[tokio::test]
async fn registered_types_and_malformed_fixtures() {
    let api = MockApi::start();
    api.register::<Deployment>(true);
    let deployments: Api<Deployment> = Api::namespaced(api.client(), "shop");
    match deployments.get("web").await {
        Err(Error::Api(status)) => assert_eq!(status.message, "deployments.apps \"web\" not found"),
        other => panic!("expected a NotFound from the served type, got {other:?}"),
    }
    assert!(
        deployments
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .is_empty()
    );

    // A stored object that does not parse reaches the client as it would from a real server.
    let bad = json!({"metadata": {"name": "bad", "namespace": "shop"}, "spec": {"containers": 7}});
    let stored = api.put_json("pods", bad);
    assert_eq!(stored["kind"], "Pod", "type fields are filled in");
    let pods: Api<Pod> = Api::namespaced(api.client(), "shop");
    assert!(matches!(pods.get("bad").await, Err(Error::SerdeError(_))));
    let raw = api
        .object("pods", Some("shop"), "bad")
        .expect("stored as given");
    assert_eq!(raw["spec"]["containers"], 7);
}

#[tokio::test]
async fn faults_answer_instead_of_the_server() {
    let api = MockApi::start();
    let leases: Api<Lease> = Api::namespaced(api.client(), "vigil");
    let path = "/apis/coordination.k8s.io/v1/namespaces/vigil/leases/n1";
    let statuses = |api: &MockApi| {
        api.requests_matching("GET", path)
            .iter()
            .map(|r| r.status)
            .collect::<Vec<_>>()
    };

    api.fail_next(1, 500);
    assert_eq!(
        api_error(leases.get("n1").await),
        (500, "InternalError".to_owned())
    );
    assert_eq!(api_error(leases.get("n1").await).0, 404, "one request only");

    // kube retries 503 and 429 itself (Config::default_retry), honouring Retry-After.
    api.clear_requests();
    api.inject(Fault::status(503).times(2).method("GET"));
    assert_eq!(api_error(leases.get("n1").await).0, 404);
    assert_eq!(statuses(&api), [503, 503, 404]);
    api.clear_requests();
    api.inject(Fault::status(429).times(1));
    assert_eq!(api_error(leases.get("n1").await).0, 404);
    assert_eq!(statuses(&api), [429, 404]);

    // A fault narrowed to PATCH leaves GET alone; an outage fails everything until cleared.
    api.inject(
        Fault::status(500)
            .method("PATCH")
            .path_prefix("/apis/coordination.k8s.io/"),
    );
    assert_eq!(api_error(leases.get("n1").await).0, 404);
    let patch = leases
        .patch("n1", &PatchParams::default(), &Patch::Merge(json!({})))
        .await;
    assert_eq!(api_error(patch).0, 500);
    api.clear_faults();
    api.fail_all(500);
    assert_eq!(api_error(leases.get("n1").await).0, 500);
    assert_eq!(api_error(leases.list(&ListParams::default()).await).0, 500);
    api.clear_faults();
    assert_eq!(
        leases
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .len(),
        0
    );
}

#[test]
fn a_kubeconfig_client_on_another_runtime_while_the_test_thread_blocks() {
    let api = MockApi::start();
    api.put(&pod("a", "n1", json!({})));
    let dir = std::env::temp_dir().join(format!("vigil-mock-api-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let kubeconfig = api.kubeconfig(&dir);

    // As a separate process would: its own runtime, the config from the file alone.
    let names = std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(async {
            let file = Kubeconfig::read_from(&kubeconfig).expect("kubeconfig parses");
            let config = kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                .await
                .expect("kube accepts the kubeconfig");
            assert_eq!(config.default_namespace, "default");
            let client = kube::Client::try_from(config).expect("client");
            let pods: Api<Pod> = Api::namespaced(client, "shop");
            let list = pods
                .list(&ListParams::default())
                .await
                .expect("list over the kubeconfig");
            list.items
                .iter()
                .map(|p| name_of(p).to_owned())
                .collect::<Vec<_>>()
        })
    })
    .join()
    .expect("client thread");
    assert_eq!(names, ["a"]);

    // A blocking HTTP/1.1 client straight on the socket.
    let mut socket = std::net::TcpStream::connect(api.addr()).expect("connect");
    socket
        .write_all(b"GET /version HTTP/1.1\r\nHost: mock\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut answer = String::new();
    socket.read_to_string(&mut answer).expect("read");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("v1.34.0-mock"));
    let _ = std::fs::remove_dir_all(&dir);
}
