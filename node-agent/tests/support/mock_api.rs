//! A fake Kubernetes API server for the cluster-mode tests: real HTTP on `127.0.0.1:<port>`, an
//! in-memory object store, list + watch, server-side apply, fault injection and a request log.
//!
//! # Use
//! ```ignore
//! mod support;                                      // in tests/<name>.rs
//! use support::mock_api::{Fault, MockApi};
//!
//! let api = MockApi::start();                       // own thread and tokio runtime
//! api.put(&pod);                                    // test-side writes emit watch events
//! let client = api.client();                        // kube::Client (inside a tokio runtime)
//! let kubeconfig = api.kubeconfig(&dir);            // KUBECONFIG for a separate process
//! api.inject(Fault::status(500).times(2));          // the next two requests fail
//! let findings: Vec<RuntimeFinding> = api.list(Some("shop"));
//! assert_eq!(api.requests_matching("PATCH", "/apis/vigil.dev/")[0].status, 201);
//! ```
//! The server runs on its own thread, so it keeps answering while the test thread blocks (on a
//! child process, say). Dropping the [`MockApi`] stops it. `tests/mock_api.rs` shows each
//! feature in use.
//!
//! # kube-rs facts this relies on (kube 5)
//! - A plain `http://` `cluster_url` works: kube's rustls connector is built `https_or_http`, so
//!   no TLS and no certificates are needed, in-process or through a kubeconfig file.
//! - A kubeconfig-loaded config takes `HTTPS_PROXY`/`https_proxy` from the environment and this
//!   workspace builds kube without `http-proxy`: a child process must not have them set.
//! - `Config::default_retry` is on by default: the client itself retries 429/503/504 (up to 15
//!   times, exponential backoff from 5 ms, honouring `Retry-After`). A 503 fault with
//!   `times(2)` is invisible to the caller; `fail_all(503)` makes a call retry for minutes. Use
//!   500 to make a call fail at once.
//!
//! # What is modelled
//! Resources ([`MockApi::register`] adds more): pods, nodes, namespaces, configmaps (core v1),
//! leases (coordination.k8s.io/v1), events (events.k8s.io/v1), runtimefindings,
//! suppressionrules, runtimemonitoringpolicies (vigil.dev/v1alpha1). For each: GET (item or
//! list, `fieldSelector` on any dotted field path and `labelSelector` with `=`, `==`, `!=`,
//! `key`, `!key`; `limit`/`continue`), `watch=true`, POST (409 `AlreadyExists`), PUT (409
//! `Conflict` on a stale `metadata.resourceVersion`), PATCH and DELETE; the `status`
//! subresource where the type has one (writes to the main resource keep the stored status,
//! writes to `/status` change only the status; a client's create drops the status).
//! PATCH: `application/apply-patch+yaml` (server-side apply, JSON or YAML body,
//! `fieldManager` required, create-or-replace of everything but identity metadata: one field
//! manager is modelled, no managedFields), `application/merge-patch+json` (RFC 7386) and
//! `application/strategic-merge-patch+json` (treated as a merge patch); JSON patch gets 415.
//! Anything else is a 404 with a `Status` body and an `eprintln!` naming the request.
//!
//! Watches: one resourceVersion counter for all objects, a full change history and live
//! streaming of JSON lines. `resourceVersion` N replays the changes after N; absent or "0"
//! sends the current objects as ADDED first; `sendInitialEvents=true` does so and ends them
//! with the `k8s.io/initial-events-end` bookmark (kube's streaming lists). Objects that start or
//! stop matching a field/label selector arrive as ADDED/DELETED. `allowWatchBookmarks=true`
//! gets a BOOKMARK every [`MockApi::set_bookmark_interval`]; `timeoutSeconds` ends the stream.
//! [`MockApi::compact`] forgets the history (older resourceVersions then get a 410 `Expired`
//! ERROR event) and [`MockApi::close_watches`] ends every open watch.

use std::{
    any::TypeId,
    collections::BTreeMap,
    convert::Infallible,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    thread::JoinHandle,
    time::Duration,
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::State,
    http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header},
    response::Response,
};
use k8s_openapi::api::{
    coordination::v1::Lease,
    core::v1::{ConfigMap, Namespace, Node, Pod},
    events::v1::Event,
};
use kube::core::NamespaceResourceScope;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, oneshot};
use vigil_crds::{
    finding::RuntimeFinding, policy::RuntimeMonitoringPolicy, suppression_rule::SuppressionRule,
};

/// A running fake API server. Cheap to query from any thread; dropping it stops the server.
pub struct MockApi {
    shared: Arc<Mutex<Store>>,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// A request as the server saw it, with the status it answered.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// `GET`, `POST`, `PATCH`, ...
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The raw query string (still percent-encoded), empty when there was none.
    pub query: String,
    /// The `Content-Type` header, when sent.
    pub content_type: Option<String>,
    /// The request body (lossy UTF-8).
    pub body: String,
    /// The HTTP status answered (200 for a watch that was started).
    pub status: u16,
}

impl RecordedRequest {
    /// A query parameter, percent-decoded (`param("fieldSelector")`).
    pub fn param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }

    /// The body as JSON, when it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }
}

/// An injected failure: matching requests are answered with `status` and a `Status` body
/// instead of being served. Build with [`Fault::status`], narrow with the other methods.
#[derive(Clone, Debug)]
pub struct Fault {
    status: u16,
    times: Option<usize>,
    method: Option<String>,
    path_prefix: Option<String>,
    retry_after: Option<u32>,
}

impl Fault {
    /// Answer every request with `status` until [`MockApi::clear_faults`]; a 429 carries
    /// `Retry-After: 1` unless [`Fault::retry_after`] says otherwise.
    pub fn status(status: u16) -> Self {
        let retry_after = (status == 429).then_some(1);
        let (times, method, path_prefix) = (None, None, None);
        Self {
            status,
            times,
            method,
            path_prefix,
            retry_after,
        }
    }

    /// Only the next `n` matching requests.
    pub fn times(mut self, n: usize) -> Self {
        self.times = Some(n);
        self
    }

    /// Only requests with this method (`"PATCH"`).
    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    /// Only requests whose path starts with this (`"/apis/vigil.dev/"`).
    pub fn path_prefix(mut self, prefix: &str) -> Self {
        self.path_prefix = Some(prefix.to_owned());
        self
    }

    /// The `Retry-After` header in seconds, or none.
    pub fn retry_after(mut self, seconds: Option<u32>) -> Self {
        self.retry_after = seconds;
        self
    }

    fn matches(&self, method: &Method, path: &str) -> bool {
        self.method.as_deref().is_none_or(|m| m == method.as_str())
            && self
                .path_prefix
                .as_deref()
                .is_none_or(|p| path.starts_with(p))
            && self.times != Some(0)
    }
}

impl MockApi {
    /// Starts a server on an ephemeral port of 127.0.0.1 with the built-in resource types.
    /// Panics (this is test support) when the port or the thread cannot be had.
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("mock-api: bind");
        listener
            .set_nonblocking(true)
            .expect("mock-api: non-blocking listener");
        let addr = listener.local_addr().expect("mock-api: listener address");
        let shared = Arc::new(Mutex::new(Store::new()));
        let (shutdown, stop) = oneshot::channel::<()>();
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let serve = move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            let runtime = runtime.expect("mock-api: tokio runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("mock-api");
                tokio::select! {
                    Err(error) = axum::serve(listener, app).into_future() => {
                        eprintln!("mock-api: server stopped: {error}");
                    }
                    _ = stop => {}
                }
            });
            // Drops open connections and watch streams at once.
            runtime.shutdown_background();
        };
        let thread = std::thread::Builder::new()
            .name("mock-api".into())
            .spawn(serve);
        let thread = Some(thread.expect("mock-api: spawn server thread"));
        let api = Self {
            shared,
            addr,
            shutdown: Some(shutdown),
            thread,
        };
        api.register::<Pod>(true);
        api.register::<Node>(true);
        api.register::<Namespace>(true);
        api.register::<ConfigMap>(false);
        api.register::<Lease>(false);
        api.register::<Event>(false);
        api.register::<RuntimeFinding>(true);
        api.register::<SuppressionRule>(true);
        api.register::<RuntimeMonitoringPolicy>(true);
        api
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kube config for the server: plain http, no credentials, default namespace `default`.
    pub fn config(&self) -> kube::Config {
        kube::Config::new(self.url().parse().expect("mock-api: url parses"))
    }

    /// A client for the server. Call inside a tokio runtime (kube spawns a buffer task).
    pub fn client(&self) -> kube::Client {
        kube::Client::try_from(self.config()).expect("mock-api: kube client")
    }

    /// Writes `<dir>/mock-api.kubeconfig` pointing at the server (context `mock-api`, namespace
    /// `default`, a dummy bearer token) and returns its path: set `KUBECONFIG` to it for a
    /// separate process (and leave `HTTPS_PROXY` unset, see the module doc).
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("mock-api.kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: mock-api\n\
             clusters: [{{name: mock-api, cluster: {{server: '{}'}}}}]\n\
             contexts: [{{name: mock-api, context: {{cluster: mock-api, user: mock-api, \
             namespace: default}}}}]\nusers: [{{name: mock-api, user: {{token: mock-api-token}}}}]\n",
            self.url()
        );
        let written = std::fs::write(&path, text);
        written.unwrap_or_else(|e| panic!("mock-api: write {}: {e}", path.display()));
        path
    }

    /// Serves the resource type `K` too (or changes its flags): namespaced or not from
    /// `K::Scope`; `status_subresource` as the real type has it.
    pub fn register<K>(&self, status_subresource: bool)
    where
        K: kube::Resource<DynamicType = ()>,
        K::Scope: 'static,
    {
        let kind = Kind {
            group: K::group(&()).into_owned(),
            version: K::version(&()).into_owned(),
            plural: K::plural(&()).into_owned(),
            kind: K::kind(&()).into_owned(),
            namespaced: TypeId::of::<K::Scope>() == TypeId::of::<NamespaceResourceScope>(),
            status_subresource,
        };
        let mut store = lock(&self.shared);
        match store.find(&kind.resource()) {
            Some(known) => store.kinds[known] = kind,
            None => store.kinds.push(kind),
        }
    }

    /// Creates or replaces an object as a test fixture, status included, and emits ADDED or
    /// MODIFIED. A given `metadata.uid` is kept (pods' uids matter to the agent).
    pub fn put<K>(&self, object: &K) -> Value
    where
        K: kube::Resource<DynamicType = ()> + Serialize,
    {
        let value = serde_json::to_value(object).expect("mock-api: object serialises");
        self.put_json(&resource_name::<K>(), value)
    }

    /// [`MockApi::put`] for a raw JSON object (malformed ones included); `resource` is a plural
    /// (`"pods"`) or plural.group (`"runtimefindings.vigil.dev"`).
    pub fn put_json(&self, resource: &str, mut object: Value) -> Value {
        let mut store = lock(&self.shared);
        let kind = store.find(resource);
        let kind = kind.unwrap_or_else(|| panic!("mock-api: unknown resource {resource}"));
        assert!(
            object["metadata"].is_object(),
            "mock-api: put_json needs metadata"
        );
        let key = store.key_of(kind, &object);
        let key = key.unwrap_or_else(|f| panic!("mock-api: put_json {resource}: {}", f.message));
        let created = match store.objects.get(&key).cloned() {
            Some(old) => {
                for field in ["uid", "creationTimestamp"] {
                    if meta_str(&object, field).is_none() {
                        object["metadata"][field] = old["metadata"][field].clone();
                    }
                }
                return store.commit(kind, Change::Modified, object, Some(old));
            }
            None => store.create(kind, object, false),
        };
        created.unwrap_or_else(|f| panic!("mock-api: put_json {resource}: {}", f.message))
    }

    /// Deletes an object as a test fixture (DELETED event); false when there was none.
    pub fn delete<K>(&self, namespace: Option<&str>, name: &str) -> bool
    where
        K: kube::Resource<DynamicType = ()>,
    {
        let mut store = lock(&self.shared);
        let Some(kind) = store.find(&resource_name::<K>()) else {
            return false;
        };
        let old = store.objects.get(&key(kind, namespace, name)).cloned();
        old.map(|old| store.commit(kind, Change::Deleted, old, None))
            .is_some()
    }

    /// A stored object, typed. Panics when the stored JSON does not parse as `K`.
    pub fn get<K>(&self, namespace: Option<&str>, name: &str) -> Option<K>
    where
        K: kube::Resource<DynamicType = ()> + DeserializeOwned,
    {
        let object = self.object(&resource_name::<K>(), namespace, name);
        object.map(|value| parse(value, name))
    }

    /// The stored objects of a type (in one namespace, or all), typed, ordered by namespace/name.
    pub fn list<K>(&self, namespace: Option<&str>) -> Vec<K>
    where
        K: kube::Resource<DynamicType = ()> + DeserializeOwned,
    {
        let objects = self.objects(&resource_name::<K>(), namespace);
        objects
            .into_iter()
            .map(|value| parse(value, "list item"))
            .collect()
    }

    /// A stored object as JSON; `resource` as for [`MockApi::put_json`].
    pub fn object(&self, resource: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let store = lock(&self.shared);
        let kind = store.find(resource)?;
        store.objects.get(&key(kind, namespace, name)).cloned()
    }

    /// The stored objects of a resource (in one namespace, or all) as JSON.
    pub fn objects(&self, resource: &str, namespace: Option<&str>) -> Vec<Value> {
        let store = lock(&self.shared);
        let Some(kind) = store.find(resource) else {
            return Vec::new();
        };
        let all = store.objects.iter();
        let wanted = all.filter(|((k, ns, _), _)| *k == kind && namespace.is_none_or(|n| n == ns));
        wanted.map(|(_, object)| object.clone()).collect()
    }

    /// The current resourceVersion (of the last write).
    pub fn resource_version(&self) -> u64 {
        lock(&self.shared).version
    }

    /// Adds a fault; faults are tried in the order added, the first match answers.
    pub fn inject(&self, fault: Fault) {
        lock(&self.shared).faults.push(fault);
    }

    /// Answers the next `n` requests (any) with `status`.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.inject(Fault::status(status).times(n));
    }

    /// Answers every request with `status` until [`MockApi::clear_faults`] (an outage).
    pub fn fail_all(&self, status: u16) {
        self.inject(Fault::status(status));
    }

    /// Removes all faults.
    pub fn clear_faults(&self) {
        lock(&self.shared).faults.clear();
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared).requests.clone()
    }

    /// The requests with this method whose path starts with `path_prefix`.
    pub fn requests_matching(&self, method: &str, path_prefix: &str) -> Vec<RecordedRequest> {
        let store = lock(&self.shared);
        let all = store.requests.iter();
        let wanted = all.filter(|r| r.method == method && r.path.starts_with(path_prefix));
        wanted.cloned().collect()
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        lock(&self.shared).requests.clear();
    }

    /// How often watches with `allowWatchBookmarks=true` get a BOOKMARK (default 1 s); applies
    /// to watches started afterwards.
    pub fn set_bookmark_interval(&self, interval: Duration) {
        lock(&self.shared).bookmark_interval = interval;
    }

    /// Forgets the change history: watches from an older resourceVersion get 410 `Expired`.
    pub fn compact(&self) {
        let mut store = lock(&self.shared);
        store.history.clear();
        store.compacted_at = store.version;
    }

    /// Ends every open watch stream (clients re-watch from their last resourceVersion).
    pub fn close_watches(&self) {
        let _ = lock(&self.shared).live.send(Live::Close);
    }

    /// Polls `condition` every 20 ms until it holds (true) or `timeout` passes (false).
    pub async fn wait_until(
        &self,
        timeout: Duration,
        mut condition: impl FnMut(&Self) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !condition(self) {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }
}

impl Drop for MockApi {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn resource_name<K: kube::Resource<DynamicType = ()>>() -> String {
    let (plural, group) = (K::plural(&()), K::group(&()));
    if group.is_empty() {
        plural.into_owned()
    } else {
        format!("{plural}.{group}")
    }
}

fn parse<K: DeserializeOwned>(value: Value, what: &str) -> K {
    let parsed = serde_json::from_value(value);
    parsed.unwrap_or_else(|e| panic!("mock-api: stored object {what} does not parse: {e}"))
}

// ---- the store ---------------------------------------------------------------------------------

/// A resource type the server serves.
#[derive(Clone, Debug)]
struct Kind {
    group: String,
    version: String,
    plural: String,
    kind: String,
    namespaced: bool,
    status_subresource: bool,
}

impl Kind {
    fn api_version(&self) -> String {
        match self.group.as_str() {
            "" => self.version.clone(),
            group => format!("{group}/{}", self.version),
        }
    }

    /// `plural` or `plural.group`, as kubectl and error messages name it.
    fn resource(&self) -> String {
        match self.group.as_str() {
            "" => self.plural.clone(),
            group => format!("{}.{group}", self.plural),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Change {
    Added,
    Modified,
    Deleted,
}

/// One write, kept for watch replay and sent to the open watches.
struct Write {
    version: u64,
    kind: usize,
    change: Change,
    object: Value,
    old: Option<Value>,
}

#[derive(Clone)]
enum Live {
    Write(Arc<Write>),
    Close,
}

/// Objects keyed by (kind index, namespace or "", name).
type Key = (usize, String, String);

fn key(kind: usize, namespace: Option<&str>, name: &str) -> Key {
    (
        kind,
        namespace.unwrap_or_default().to_owned(),
        name.to_owned(),
    )
}

struct Store {
    kinds: Vec<Kind>,
    objects: BTreeMap<Key, Value>,
    history: Vec<Arc<Write>>,
    live: broadcast::Sender<Live>,
    version: u64,
    compacted_at: u64,
    uids: u64,
    faults: Vec<Fault>,
    requests: Vec<RecordedRequest>,
    bookmark_interval: Duration,
}

fn lock(shared: &Mutex<Store>) -> MutexGuard<'_, Store> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A request the server refuses, answered with a Kubernetes `Status`.
struct Failure {
    code: u16,
    reason: &'static str,
    message: String,
}

fn fail(code: u16, message: impl Into<String>) -> Failure {
    Failure {
        code,
        reason: reason_of(code),
        message: message.into(),
    }
}

impl Store {
    fn new() -> Self {
        Self {
            kinds: Vec::new(),
            objects: BTreeMap::new(),
            history: Vec::new(),
            live: broadcast::channel(4096).0,
            version: 1,
            compacted_at: 0,
            uids: 0,
            faults: Vec::new(),
            requests: Vec::new(),
            bookmark_interval: Duration::from_secs(1),
        }
    }

    fn find(&self, resource: &str) -> Option<usize> {
        let exact = self.kinds.iter().position(|k| k.resource() == resource);
        exact.or_else(|| self.kinds.iter().position(|k| k.plural == resource))
    }

    /// The store key of an object of `kind`, from its metadata.
    fn key_of(&self, kind: usize, object: &Value) -> Result<Key, Failure> {
        let name =
            meta_str(object, "name").ok_or_else(|| fail(422, "metadata.name is required"))?;
        let namespace = match (self.kinds[kind].namespaced, meta_str(object, "namespace")) {
            (true, None) => return Err(fail(422, "metadata.namespace is required")),
            (true, namespace) => namespace,
            (false, _) => None,
        };
        Ok(key(kind, namespace, name))
    }

    fn not_found(&self, kind: usize, name: &str) -> Failure {
        fail(
            404,
            format!("{} \"{name}\" not found", self.kinds[kind].resource()),
        )
    }

    /// Records a write under a new resourceVersion, updates the store and tells the watches.
    fn commit(
        &mut self,
        kind: usize,
        change: Change,
        mut object: Value,
        old: Option<Value>,
    ) -> Value {
        self.version += 1;
        let k = &self.kinds[kind];
        object["apiVersion"] = json!(k.api_version());
        object["kind"] = json!(k.kind);
        object["metadata"]["resourceVersion"] = json!(self.version.to_string());
        if let Ok(key) = self.key_of(kind, &object) {
            match change {
                Change::Deleted => self.objects.remove(&key),
                _ => self.objects.insert(key, object.clone()),
            };
        }
        let (version, object_sent) = (self.version, object.clone());
        let write = Arc::new(Write {
            version,
            kind,
            change,
            object: object_sent,
            old,
        });
        self.history.push(write.clone());
        let _ = self.live.send(Live::Write(write));
        object
    }

    /// A new object: a client's POST or apply (`client`) or a test fixture.
    fn create(&mut self, kind: usize, mut object: Value, client: bool) -> Result<Value, Failure> {
        self.uids += 1;
        if meta_str(&object, "name").is_none() {
            let prefix = meta_str(&object, "generateName")
                .ok_or_else(|| fail(422, "metadata.name or metadata.generateName is required"))?;
            object["metadata"]["name"] = json!(format!("{prefix}{:05x}", self.uids));
        }
        let key = self.key_of(kind, &object)?;
        if self.objects.contains_key(&key) {
            let message = format!(
                "{} \"{}\" already exists",
                self.kinds[kind].resource(),
                key.2
            );
            return Err(Failure {
                reason: "AlreadyExists",
                ..fail(409, message)
            });
        }
        let metadata = &mut object["metadata"];
        if client || metadata.get("uid").is_none() {
            metadata["uid"] = json!(format!("00000000-0000-4000-8000-{:012x}", self.uids));
        }
        if client || metadata.get("creationTimestamp").is_none() {
            metadata["creationTimestamp"] = json!(now());
        }
        if metadata.get("generation").is_none() {
            metadata["generation"] = json!(1);
        }
        if client && self.kinds[kind].status_subresource {
            remove(&mut object, "status");
        }
        Ok(self.commit(kind, Change::Added, object, None))
    }

    /// A client's update of an existing object (PUT, apply, or a merge patch's result), of the
    /// main resource or of its `status`.
    fn update(
        &mut self,
        kind: usize,
        old: Value,
        new: Value,
        status: bool,
    ) -> Result<Value, Failure> {
        if let Some(version) = meta_str(&new, "resourceVersion").filter(|v| !v.is_empty())
            && Some(version) != meta_str(&old, "resourceVersion")
        {
            return Err(fail(
                409,
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        let (mut next, status_from) = match status {
            true => (old.clone(), &new),
            false if self.kinds[kind].status_subresource => (new.clone(), &old),
            false => (new.clone(), &new),
        };
        set_or_remove(&mut next, "status", status_from.get("status"));
        for field in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "generation",
        ] {
            set_or_remove(&mut next["metadata"], field, old["metadata"].get(field));
        }
        if strip(&old) != strip(&next) {
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
            next["metadata"]["generation"] = json!(generation + 1);
        }
        Ok(self.commit(kind, Change::Modified, next, Some(old)))
    }

    /// Where a path points: a kind, maybe a namespace, maybe an object name, maybe `/status`.
    fn route(&self, path: &str) -> Option<Route> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (group, version, rest) = match segments.as_slice() {
            ["api", version, rest @ ..] => ("", *version, rest),
            ["apis", group, version, rest @ ..] => (*group, *version, rest),
            _ => return None,
        };
        let (namespace, rest) = match rest {
            ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some((*ns).to_owned()), rest),
            _ => (None, rest),
        };
        let (plural, name, sub) = match rest {
            [plural] => (*plural, None, None),
            [plural, name] => (*plural, Some((*name).to_owned()), None),
            [plural, name, sub] => (*plural, Some((*name).to_owned()), Some(*sub)),
            _ => return None,
        };
        let mut kinds = self.kinds.iter();
        let kind = kinds.position(|k| {
            (k.group.as_str(), k.version.as_str(), k.plural.as_str()) == (group, version, plural)
        })?;
        let k = &self.kinds[kind];
        let scope_ok = match k.namespaced {
            true => namespace.is_some() || name.is_none(),
            false => namespace.is_none(),
        };
        let sub_ok = sub.is_none_or(|s| s == "status" && k.status_subresource);
        let status = sub.is_some();
        (scope_ok && sub_ok).then_some(Route {
            kind,
            namespace,
            name,
            status,
        })
    }
}

// ---- HTTP --------------------------------------------------------------------------------------

struct Route {
    kind: usize,
    namespace: Option<String>,
    name: Option<String>,
    status: bool,
}

struct Request<'a> {
    method: &'a Method,
    path: &'a str,
    query: &'a str,
    params: &'a [(String, String)],
    content_type: &'a str,
    body: &'a [u8],
}

impl Request<'_> {
    fn param(&self, name: &str) -> Option<&str> {
        let mut params = self.params.iter();
        params
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

async fn handle(
    State(shared): State<Arc<Mutex<Store>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (path, query) = (uri.path(), uri.query().unwrap_or_default());
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let mut store = lock(&shared);
    let fault = store
        .faults
        .iter_mut()
        .find(|f| f.matches(&method, path))
        .map(|fault| {
            fault.times = fault.times.map(|n| n - 1);
            fault.clone()
        });
    store.faults.retain(|f| f.times != Some(0));
    let response = match fault {
        Some(fault) => {
            let mut response = status_response(&fail(fault.status, "injected fault"));
            if let Some(seconds) = fault.retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            response
        }
        None => {
            let content_type = content_type.unwrap_or_default();
            let request = Request {
                method: &method,
                path,
                query,
                params: &params,
                content_type,
                body: &body,
            };
            dispatch(&mut store, &request).unwrap_or_else(|failure| status_response(&failure))
        }
    };
    let status = response.status().as_u16();
    store.requests.push(RecordedRequest {
        method: method.to_string(),
        path: path.to_owned(),
        query: query.to_owned(),
        content_type: content_type.map(str::to_owned),
        body: String::from_utf8_lossy(&body).into_owned(),
        status,
    });
    response
}

fn dispatch(store: &mut Store, request: &Request) -> Result<Response, Failure> {
    let method = request.method;
    if request.path == "/version" && method == Method::GET {
        let info = json!({"major": "1", "minor": "34", "gitVersion": "v1.34.0-mock",
            "gitCommit": "mock", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "go1.24", "compiler": "gc", "platform": "linux/amd64"});
        return ok(200, info);
    }
    let Some(route) = store.route(request.path) else {
        eprintln!(
            "mock-api: no route for {method} {}?{}",
            request.path, request.query
        );
        return Err(fail(
            404,
            format!("the mock does not serve {method} {}", request.path),
        ));
    };
    let (kind, namespace) = (route.kind, route.namespace.as_deref());
    let Some(name) = route.name.as_deref() else {
        return match *method {
            Method::GET if matches!(request.param("watch"), Some("true" | "1")) => {
                watch(store, kind, namespace, request)
            }
            Method::GET => list(store, kind, namespace, request),
            Method::POST if namespace.is_some() || !store.kinds[kind].namespaced => {
                let object = placed(parse_body(request.body)?, namespace, None)?;
                ok(201, store.create(kind, object, true)?)
            }
            _ => Err(fail(
                405,
                format!("{method} is not allowed on a collection"),
            )),
        };
    };
    let existing = store.objects.get(&key(kind, namespace, name)).cloned();
    let body = || placed(parse_body(request.body)?, namespace, Some(name));
    match (method, existing) {
        (&Method::GET, Some(object)) => ok(200, object),
        (&Method::DELETE, Some(object)) => {
            ok(200, store.commit(kind, Change::Deleted, object, None))
        }
        (&Method::PUT, Some(old)) => ok(200, store.update(kind, old, body()?, route.status)?),
        (&Method::PATCH, existing) => {
            match request.content_type.split(';').next().unwrap_or_default() {
                "application/apply-patch+yaml" => {
                    if request.param("fieldManager").is_none_or(str::is_empty) {
                        return Err(fail(400, "fieldManager is required for apply patch"));
                    }
                    let applied = body()?;
                    let k = &store.kinds[kind];
                    if (applied["apiVersion"].as_str(), applied["kind"].as_str())
                        != (Some(&k.api_version()[..]), Some(&k.kind[..]))
                    {
                        return Err(fail(
                            400,
                            format!(
                                "apply needs apiVersion {} and kind {}",
                                k.api_version(),
                                k.kind
                            ),
                        ));
                    }
                    match existing {
                        Some(old) => ok(200, store.update(kind, old, applied, route.status)?),
                        None if route.status => Err(store.not_found(kind, name)),
                        None => ok(201, store.create(kind, applied, true)?),
                    }
                }
                "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
                    let old = existing.ok_or_else(|| store.not_found(kind, name))?;
                    let mut merged = old.clone();
                    merge_patch(&mut merged, &parse_body(request.body)?);
                    let merged = placed(check_object(merged)?, namespace, Some(name))?;
                    ok(200, store.update(kind, old, merged, route.status)?)
                }
                other => Err(fail(
                    415,
                    format!("the mock does not support PATCH as {other:?}"),
                )),
            }
        }
        (&Method::GET | &Method::DELETE | &Method::PUT, None) => Err(store.not_found(kind, name)),
        _ => Err(fail(405, format!("{method} is not allowed on an object"))),
    }
}

fn list(
    store: &Store,
    kind: usize,
    namespace: Option<&str>,
    request: &Request,
) -> Result<Response, Failure> {
    let filter = Filter::new(store, kind, namespace, request)?;
    let all = store.objects.iter();
    let matching: Vec<&Value> = all
        .filter(|(_, o)| filter.selects(o))
        .map(|(_, o)| o)
        .collect();
    let start: usize = match request.param("continue").filter(|c| !c.is_empty()) {
        Some(token) => token
            .parse()
            .map_err(|_| fail(410, format!("bad continue token {token}")))?,
        None => 0,
    };
    let limit = request
        .param("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0);
    let limit = limit.unwrap_or(usize::MAX);
    let page: Vec<&Value> = matching.iter().skip(start).take(limit).copied().collect();
    let mut metadata = json!({"resourceVersion": store.version.to_string()});
    if start.saturating_add(limit) < matching.len() {
        metadata["continue"] = json!((start + limit).to_string());
    }
    let k = &store.kinds[kind];
    let list_kind = format!("{}List", k.kind);
    ok(
        200,
        json!({"apiVersion": k.api_version(), "kind": list_kind, "metadata": metadata, "items": page}),
    )
}

/// Starts a watch stream: the initial events or the replay are computed under the store lock,
/// and the live channel is subscribed under it too, so no write falls between them.
fn watch(
    store: &Store,
    kind: usize,
    namespace: Option<&str>,
    request: &Request,
) -> Result<Response, Failure> {
    let filter = Filter::new(store, kind, namespace, request)?;
    let k = store.kinds[kind].clone();
    let initial_events = request.param("sendInitialEvents") == Some("true");
    let bookmarks = request.param("allowWatchBookmarks") == Some("true");
    let timeout = request.param("timeoutSeconds").and_then(|t| t.parse().ok());
    let timeout = Duration::from_secs(timeout.unwrap_or(86_400));
    let since = request
        .param("resourceVersion")
        .filter(|v| !initial_events && !["", "0"].contains(v));
    let mut lines = Vec::new();
    let mut expired = false;
    match since.map(str::parse::<u64>) {
        None => {
            let current = store.objects.values().filter(|o| filter.selects(o));
            lines.extend(current.map(|object| event_line("ADDED", object)));
            if initial_events {
                lines.push(bookmark_line(&k, store.version, true));
            }
        }
        Some(Err(_)) => return Err(fail(400, format!("invalid resourceVersion {since:?}"))),
        Some(Ok(version)) if version < store.compacted_at => {
            let message = format!(
                "too old resource version: {version} ({})",
                store.compacted_at
            );
            lines.push(event_line("ERROR", &status_json(&fail(410, message))));
            expired = true;
        }
        Some(Ok(version)) => {
            let replay = store.history.iter().filter(|w| w.version > version);
            lines.extend(replay.filter_map(|w| filter.event(w).map(|(e, o)| event_line(e, o))));
        }
    }
    let mut updates = store.live.subscribe();
    let mut last_version = store.version;
    let interval = store.bookmark_interval;
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        for line in lines {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        if expired {
            return;
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let interval = interval.max(Duration::from_millis(1)); // tokio refuses a zero period
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        loop {
            let line = tokio::select! {
                update = updates.recv() => match update {
                    Ok(Live::Write(write)) => {
                        last_version = write.version;
                        match filter.event(&write) {
                            Some((event, object)) => event_line(event, object),
                            None => continue,
                        }
                    }
                    // Closed, told to close, or lagging behind: end; the client re-watches.
                    _ => return,
                },
                _ = ticks.tick(), if bookmarks => bookmark_line(&k, last_version, false),
                () = &mut deadline => return,
                () = tx.closed() => return,
            };
            if tx.send(line).await.is_err() {
                return;
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|line| (Ok::<_, Infallible>(line), rx))
    });
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

fn event_line(event: &str, object: &Value) -> Bytes {
    let mut line = json!({"type": event, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

fn bookmark_line(kind: &Kind, version: u64, initial_events_end: bool) -> Bytes {
    let mut metadata = json!({"resourceVersion": version.to_string()});
    if initial_events_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    let bookmark =
        json!({"apiVersion": kind.api_version(), "kind": kind.kind, "metadata": metadata});
    event_line("BOOKMARK", &bookmark)
}

// ---- selectors ---------------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Op {
    Equals,
    NotEquals,
    Exists,
    Absent,
}

/// What a list or watch selects: a kind, maybe a namespace, field and label selectors.
struct Filter {
    kind: usize,
    api_version: String,
    kind_name: String,
    namespace: Option<String>,
    fields: Vec<(String, Op, String)>,
    labels: Vec<(String, Op, String)>,
}

impl Filter {
    fn new(
        store: &Store,
        kind: usize,
        namespace: Option<&str>,
        request: &Request,
    ) -> Result<Self, Failure> {
        let fields = parse_selector(request.param("fieldSelector").unwrap_or_default(), false)?;
        let labels = parse_selector(request.param("labelSelector").unwrap_or_default(), true)?;
        let (api_version, kind_name) = (
            store.kinds[kind].api_version(),
            store.kinds[kind].kind.clone(),
        );
        let namespace = namespace.map(str::to_owned);
        Ok(Self {
            kind,
            api_version,
            kind_name,
            namespace,
            fields,
            labels,
        })
    }

    /// Whether a stored object (of any kind: lists and watches scan them all) is selected.
    fn selects(&self, object: &Value) -> bool {
        let kind_ok = object["apiVersion"] == self.api_version && object["kind"] == self.kind_name;
        let namespace = self.namespace.as_deref();
        let namespace_ok = namespace.is_none_or(|ns| meta_str(object, "namespace") == Some(ns));
        let fields_ok = self.fields.iter().all(|(path, op, want)| {
            let found = path
                .split('.')
                .try_fold(object, |v, segment| v.get(segment));
            let have = match found {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            matches!(op, Op::Equals) == (have == *want)
        });
        let labels_ok = self.labels.iter().all(|(key, op, want)| {
            let have = object["metadata"]["labels"][key].as_str();
            match op {
                Op::Equals => have == Some(want.as_str()),
                Op::NotEquals => have != Some(want.as_str()),
                Op::Exists => have.is_some(),
                Op::Absent => have.is_none(),
            }
        });
        kind_ok && namespace_ok && fields_ok && labels_ok
    }

    /// How a write looks through this filter: objects entering the selection are ADDED,
    /// leaving it DELETED.
    fn event<'w>(&self, write: &'w Write) -> Option<(&'static str, &'w Value)> {
        if write.kind != self.kind {
            return None;
        }
        let now = self.selects(&write.object);
        let before = write.old.as_ref().is_some_and(|old| self.selects(old));
        let event = match (write.change, before, now) {
            (Change::Added, _, true) | (Change::Modified, false, true) => "ADDED",
            (Change::Modified, true, true) => "MODIFIED",
            (Change::Deleted, _, true) | (Change::Modified, true, false) => "DELETED",
            _ => return None,
        };
        Some((event, &write.object))
    }
}

fn parse_selector(selector: &str, labels: bool) -> Result<Vec<(String, Op, String)>, Failure> {
    if selector.contains('(') {
        return Err(fail(
            400,
            format!("the mock has no set-based selectors: {selector}"),
        ));
    }
    let terms = selector.split(',').map(str::trim).filter(|t| !t.is_empty());
    let term = |term: &str| {
        let (key, op, value) = if let Some((k, v)) = term.split_once("!=") {
            (k, Op::NotEquals, v)
        } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            (k, Op::Equals, v)
        } else if labels {
            term.strip_prefix('!')
                .map_or((term, Op::Exists, ""), |k| (k, Op::Absent, ""))
        } else {
            return Err(fail(400, format!("invalid field selector term {term:?}")));
        };
        Ok((key.trim().to_owned(), op, value.trim().to_owned()))
    };
    terms.map(term).collect()
}

// ---- JSON helpers ------------------------------------------------------------------------------

fn parse_body(body: &[u8]) -> Result<Value, Failure> {
    let value = serde_json::from_slice(body).or_else(|_| serde_yaml::from_slice(body));
    check_object(value.map_err(|e| fail(400, format!("the body is neither JSON nor YAML: {e}")))?)
}

fn check_object(mut value: Value) -> Result<Value, Failure> {
    match value.get("metadata") {
        _ if !value.is_object() => return Err(fail(400, "the body is not an object")),
        None | Some(Value::Null) => value["metadata"] = json!({}),
        Some(Value::Object(_)) => {}
        Some(_) => return Err(fail(400, "metadata is not an object")),
    }
    Ok(value)
}

/// Fills `metadata.namespace` and `metadata.name` from the path, refusing a body that names
/// another namespace or object.
fn placed(
    mut object: Value,
    namespace: Option<&str>,
    name: Option<&str>,
) -> Result<Value, Failure> {
    for (field, want) in [("namespace", namespace), ("name", name)] {
        let Some(want) = want else { continue };
        match meta_str(&object, field) {
            Some(have) if have != want => {
                return Err(fail(
                    400,
                    format!("the {field} of the object ({have}) does not match the URL ({want})"),
                ));
            }
            _ => object["metadata"][field] = json!(want),
        }
    }
    Ok(object)
}

/// RFC 7386 JSON merge patch.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

fn meta_str<'v>(object: &'v Value, field: &str) -> Option<&'v str> {
    object.get("metadata")?.get(field)?.as_str()
}

fn remove(object: &mut Value, field: &str) {
    if let Value::Object(map) = object {
        map.remove(field);
    }
}

fn set_or_remove(object: &mut Value, field: &str, value: Option<&Value>) {
    match value.filter(|v| !v.is_null()) {
        Some(value) => object[field] = value.clone(),
        None => remove(object, field),
    }
}

/// The object without metadata and status: what `metadata.generation` counts changes of.
fn strip(object: &Value) -> Value {
    let mut object = object.clone();
    remove(&mut object, "metadata");
    remove(&mut object, "status");
    object
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn reason_of(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Expired",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "Unknown",
    }
}

fn status_json(failure: &Failure) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": failure.message, "reason": failure.reason, "code": failure.code})
}

fn status_response(failure: &Failure) -> Response {
    json_response(failure.code, &status_json(failure))
}

fn ok(code: u16, body: Value) -> Result<Response, Failure> {
    Ok(json_response(code, &body))
}

fn json_response(code: u16, body: &Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() =
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
