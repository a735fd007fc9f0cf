//! Builds the eBPF programs in `node-agent-ebpf` with `aya-build` (a nested cargo on the pinned
//! nightly, linked by bpf-linker) and leaves the object at `$OUT_DIR/vigil`, where
//! `src/sensor/mod.rs` includes it. `scripts/bootstrap.sh` installs what this needs.
//!
//! `AYA_BUILD_SKIP=1` skips the eBPF build (for work on pure user-space modules); the agent
//! then carries an empty object and says so clearly when asked to load it.

use std::{env, fs, path::PathBuf};

use anyhow::{Context as _, anyhow};

const DEFAULT_TOOLCHAIN: &str = "nightly-2026-05-20";

fn main() -> anyhow::Result<()> {
    println!("cargo:rerun-if-env-changed=VIGIL_BPF_TOOLCHAIN");
    let toolchain =
        env::var("VIGIL_BPF_TOOLCHAIN").unwrap_or_else(|_| DEFAULT_TOOLCHAIN.to_owned());

    // bpf-linker lives where scripts/bootstrap.sh put it; find it even when the caller's PATH
    // does not name that directory.
    println!("cargo:rerun-if-env-changed=VIGIL_TOOLS");
    let tools = env::var_os("VIGIL_TOOLS")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share/vigil-tools")));
    if let Some(bin) = tools
        .map(|t| t.join("bin"))
        .filter(|b| b.join("bpf-linker").exists())
    {
        let path = env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![bin];
        dirs.extend(env::split_paths(&path));
        let joined = env::join_paths(dirs).context("PATH with the vigil tools directory")?;
        // SAFETY: build scripts are single-threaded; the nested cargo inherits this PATH.
        unsafe { env::set_var("PATH", joined) };
    }

    // aya-build turns every line the nested cargo writes on stderr into a `cargo:warning`,
    // which made a first build print a hundred `warning: node-agent@0.1.0: Compiling ...`
    // lines. A quiet nested cargo writes no progress; its errors still come (cargo's own on
    // stderr, the compiler's in the JSON messages aya-build renders), and so do real
    // warnings of the eBPF crate.
    // SAFETY: as above.
    unsafe { env::set_var("CARGO_TERM_QUIET", "true") };

    let cargo_metadata::Metadata { packages, .. } = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("cargo metadata")?;
    let ebpf = packages
        .into_iter()
        .find(|p| p.name.as_str() == "node-agent-ebpf")
        .ok_or_else(|| anyhow!("node-agent-ebpf is not in the workspace"))?;
    let root_dir = ebpf
        .manifest_path
        .parent()
        .ok_or_else(|| anyhow!("no parent for {}", ebpf.manifest_path))?;

    // The programs are built from the shared structs too: a change there (a config or event
    // layout) must rebuild them, or the object and the agent disagree on sizes.
    if let Some(workspace) = root_dir.parent() {
        println!("cargo:rerun-if-changed={workspace}/node-agent-common");
    }

    aya_build::build_ebpf(
        [aya_build::Package {
            name: ebpf.name.as_str(),
            root_dir: root_dir.as_str(),
            ..Default::default()
        }],
        aya_build::Toolchain::Custom(&toolchain),
    )
    .with_context(|| {
        format!(
            "building the eBPF programs failed; run scripts/bootstrap.sh to install {toolchain} and bpf-linker"
        )
    })?;

    let out_dir = PathBuf::from(env::var("OUT_DIR").context("OUT_DIR")?);
    // The sensors' object and the response object (the kernel deny hook).
    for name in ["vigil", "vigil-response"] {
        let object = out_dir.join(name);
        if !object.exists() {
            fs::write(&object, []).context("writing the empty eBPF placeholder")?;
        }
    }
    Ok(())
}
