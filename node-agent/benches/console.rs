//! The console's findings page over 100,000 stored findings: render time per filter (the whole
//! request: URL parsing, the store's count and page queries, the HTML), p50/p95/max, and the
//! ratio to the unfiltered first page measured in the same process.
//!
//!     cargo bench -p node-agent --bench console            # 100,000 findings, 200 requests each
//!     VIGIL_BENCH_FINDINGS=20000 cargo bench -p node-agent --bench console
//!
//! docs/CONSOLE.md has the figures measured on the development machine.

#[path = "support/console_fixture.rs"]
mod console_fixture;

use std::{sync::Arc, time::Instant};

use console_fixture::finding;
use node_agent::{
    console::HostBackend,
    store::{Store, StoreLimits},
};
use vigil_console::ConsoleOptions;

fn main() {
    let n: usize = std::env::var("VIGIL_BENCH_FINDINGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let requests: usize = std::env::var("VIGIL_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = std::env::temp_dir().join(format!("vigil-console-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("findings.db");
    let limits = StoreLimits {
        max_findings: n as u64,
        ..Default::default()
    };
    let fill = Instant::now();
    let mut store = match Store::open(&path, limits) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("console bench: {e}");
            std::process::exit(1);
        }
    };
    for i in 0..n {
        if let Err(e) = store.upsert(&finding(i), 1, i.is_multiple_of(11).then_some("bench-rule")) {
            eprintln!("console bench: {e}");
            std::process::exit(1);
        }
    }
    if let Err(e) = store.flush() {
        eprintln!("console bench: {e}");
        std::process::exit(1);
    }
    let stored = store.len().unwrap_or(0);
    println!(
        "filled {stored} findings in {:.1} s ({})",
        fill.elapsed().as_secs_f64(),
        path.display()
    );

    let backend = HostBackend::new(store, None, None);
    let router = match vigil_console::router(
        Arc::new(backend),
        ConsoleOptions::for_listen_address(([127, 0, 0, 1], 8765).into()),
    ) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("console bench: {e}");
            std::process::exit(1);
        }
    };
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
    console_fixture::run_cases(&router, &runtime, requests, stored, "127.0.0.1:8765");
    let _ = std::fs::remove_dir_all(&dir);
}
