//! A binary dropped in a real container, then a flood of written files that evicts its writer
//! from the kernel's written-files map (issue 11, item 3: exhaustion of a tracking map cannot
//! turn a detection off): `Execution:Runtime/NewBinaryExecuted` still fires, from the file's
//! change time, and the image's own binaries (unpacked after the agent started, before the
//! container did) raise nothing.
//!
//! Its own test binary: the flood leaves the agent's map full for the rest of its life.
//! Needs root and podman with runc (`scripts/bootstrap.sh`); without them the test says
//! `skipped` and passes, except under `CI`, where it fails.

mod support;

use std::{collections::BTreeMap, path::Path, process::Command, sync::LazyLock, time::Duration};

use node_agent::{
    collector::{Collector, ReplayTable, unique_name},
    event::Event,
    sensor::SensorOptions,
};
use support::podman::{Scratch, copy_with_libraries, podman, podman_ok, podman_or_skip};
use vigil_crds::finding::{Finding, SeverityLabel};

const TRIGGER: &str = env!("CARGO_BIN_EXE_vigil-trigger");
/// Generous, for a busy shared machine; a passing run returns as soon as the events are in.
const WAIT: Duration = Duration::from_secs(60);

static AGENT: LazyLock<Collector> = LazyLock::new(|| {
    Collector::start(SensorOptions::default()).expect("the sensor starts as root")
});

/// The NewBinaryExecuted findings of every event of container `id` seen so far.
fn new_binaries(id: &str) -> Vec<Finding> {
    let mut d = support::detection::builtin_detector();
    // The pipeline's table as it stood at each event, as the agent's detector saw it.
    let mut table = ReplayTable::default();
    let mut by_id = BTreeMap::new();
    for (event, view) in AGENT.replay() {
        table.saw(view.as_ref());
        for outcome in d.process(&event, &table) {
            by_id.insert(outcome.finding.id.clone(), outcome.finding);
        }
    }
    by_id
        .into_values()
        .filter(|f| f.finding_type == "Execution:Runtime/NewBinaryExecuted")
        .filter(|f| f.resource.container.as_ref().is_some_and(|c| c.id == id))
        .collect()
}

/// Waits for the exit of `comm` in container `id`.
fn exited(id: &str, comm: &str) {
    let seen = AGENT.wait_for(WAIT, |e| {
        matches!(e, Event::Exit(x) if x.process.comm == comm)
            && e.process().container.as_ref().is_some_and(|c| c.id == id)
    });
    assert!(
        seen.is_some(),
        "no exit of {comm} in container {id} within {WAIT:?}"
    );
}

#[test]
fn a_binary_dropped_in_a_container_before_a_file_flood_is_still_new() {
    let test = "a_binary_dropped_in_a_container_before_a_file_flood_is_still_new";
    if !podman_or_skip(test) {
        return;
    }
    // The agent first: the image is unpacked after it started, so the image's files changed
    // since then too, and only the container's start tells them from the dropped one.
    LazyLock::force(&AGENT);
    let mut scratch = Scratch::new("vigil-ctr-flood");
    let context = scratch.path("image");
    let rootfs = context.join("rootfs");
    for (binary, dest) in [
        ("/bin/sleep", "bin/sleep"),
        ("/bin/true", "bin/true"),
        ("/bin/cp", "bin/cp"),
    ] {
        copy_with_libraries(Path::new(binary), &rootfs, dest);
    }
    std::fs::create_dir_all(rootfs.join("app")).expect("app dir");
    let image = format!("localhost/{}:flood", unique_name("vigil-ctr"));
    scratch.build_image(&context, &image);
    let (id, name) = scratch.run_detached(&[], &image);

    // Dropped in the container: `cp` is its writer in the kernel's map.
    podman_ok(&["exec", &name, "/bin/cp", "/bin/true", "/app/dropper"]);
    exited(&id, "cp");
    // Twice as many new files as the map holds, written on the host: the map is one for all.
    let flood = scratch.path("flood");
    std::fs::create_dir_all(&flood).expect("flood dir");
    let n = 2 * node_agent_common::WRITTEN_FILES_MAX;
    let status = Command::new(TRIGGER)
        .args(["file-flood", flood.to_str().expect("utf-8"), &n.to_string()])
        .status()
        .expect("file-flood runs");
    assert!(status.success(), "file-flood: {status}");

    let out = podman(&["exec", &name, "/app/dropper"]);
    assert!(out.status.success(), "the dropper runs: {out:?}");
    exited(&id, "dropper");
    // An image binary, unpacked before the container started.
    podman_ok(&["exec", &name, "/bin/true"]);
    exited(&id, "true");

    let found = new_binaries(&id);
    let paths: Vec<_> = found
        .iter()
        .map(|f| f.context.file_path.clone().unwrap_or_default())
        .collect();
    assert_eq!(paths, ["/app/dropper"], "{found:#?}");
    let f = &found[0];
    assert_eq!(f.severity_label, SeverityLabel::Medium);
    assert!(
        f.context
            .additional
            .get("writer")
            .is_some_and(|w| w.starts_with("unknown")),
        "the writer was evicted by the flood: {:?}",
        f.context
    );
    assert!(f.context.modified_at.is_some(), "{:?}", f.context);
}
