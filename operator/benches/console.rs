//! The console's findings page over 100,000 RuntimeFindings in the cluster backend's reflector
//! store: the same cases, timing and output as the host benchmark
//! (`cargo bench -p node-agent --bench console`), through the same router.
//!
//!     cargo bench -p vigil-operator --bench console            # 100,000 findings, 200 requests each
//!     VIGIL_BENCH_FINDINGS=20000 cargo bench -p vigil-operator --bench console
//!
//! docs/CONSOLE.md has the figures measured on the development machine.

#[path = "../../node-agent/benches/support/console_fixture.rs"]
mod console_fixture;

use std::{sync::Arc, time::Instant};

use console_fixture::finding;
use kube::{
    core::DeserializeGuard,
    runtime::{reflector, watcher},
};
use vigil_console::ConsoleOptions;
use vigil_crds::RuntimeFinding;
use vigil_operator::console::{ClusterBackend, ConsoleStores};

fn main() {
    let n: usize = std::env::var("VIGIL_BENCH_FINDINGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let requests: usize = std::env::var("VIGIL_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("console bench: {e}");
            std::process::exit(1);
        }
    };
    let fill = Instant::now();
    let (findings, mut writer) = reflector::store::<DeserializeGuard<RuntimeFinding>>();
    for i in 0..n {
        let f = finding(i);
        let ns = f
            .resource
            .pod
            .as_ref()
            .map_or_else(|| "vigil-system".to_owned(), |p| p.namespace.clone());
        let mut object = RuntimeFinding::new(&f.object_name(), f);
        object.metadata.namespace = Some(ns);
        writer.apply_watcher_event(&watcher::Event::Apply(DeserializeGuard(Ok(object))));
    }
    let stored = findings.state().len() as u64;
    println!(
        "filled {stored} RuntimeFindings into a reflector store in {:.1} s",
        fill.elapsed().as_secs_f64()
    );
    let router = runtime.block_on(async {
        // Reads come from the stores only; the client is never called by the findings page.
        let (service, _handle) = tower_test::mock::pair::<
            http::Request<kube::client::Body>,
            http::Response<kube::client::Body>,
        >();
        let client = kube::Client::new(service, "default");
        let stores = ConsoleStores {
            findings,
            node_coverage: reflector::store().0,
            rules: reflector::store().0,
            policies: reflector::store().0,
            nodes: reflector::store().0,
            leases: reflector::store().0,
        };
        let backend = ClusterBackend::new(client, stores, "vigil-system", "bench");
        let mut options = ConsoleOptions::for_listen_address(([127, 0, 0, 1], 8765).into());
        options.read_only = Some("benchmark".into());
        vigil_console::router(Arc::new(backend), options)
    });
    let router = match router {
        Ok(r) => r,
        Err(e) => {
            eprintln!("console bench: {e}");
            std::process::exit(1);
        }
    };
    console_fixture::run_cases(&router, &runtime, requests, stored, "127.0.0.1:8765");
}
