//! podman for the container tests: runc (crun refuses the hybrid cgroups of the test VM),
//! explicit ulimits, scratch directories and images FROM scratch made of host binaries.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use node_agent::collector::{root_or_skip, unique_name};

/// Root, podman and runc, or `skipped: <why>` (a failure under `CI`).
pub fn podman_or_skip(test: &str) -> bool {
    if !root_or_skip(test) {
        return false;
    }
    let missing: Vec<&str> = ["podman", "runc"]
        .into_iter()
        .filter(|tool| {
            Command::new(tool)
                .arg("--version")
                .output()
                .map_or(true, |o| !o.status.success())
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    let message = format!(
        "{test}: needs {} (scripts/bootstrap.sh installs them, as root); not run",
        missing.join(" and ")
    );
    assert!(std::env::var_os("CI").is_none(), "{message}");
    eprintln!("skipped: {message}");
    false
}

/// `podman --runtime runc ARGS`, its output whatever the outcome.
pub fn podman(args: &[&str]) -> Output {
    Command::new("podman")
        .args(["--runtime", "runc"])
        .args(args)
        .output()
        .unwrap()
}

/// `podman ARGS`, which must succeed; its stdout, trimmed.
pub fn podman_ok(args: &[&str]) -> String {
    let out = podman(args);
    assert!(
        out.status.success(),
        "podman {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Explicit limits at or below this process's hard limits: without CAP_SYS_RESOURCE podman
/// cannot give a container its defaults (above them), and runc on the test VM refused nproc
/// limits above 32768.
pub fn ulimits() -> Vec<String> {
    let hard = |resource| {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: a valid resource and a pointer to a live rlimit.
        assert_eq!(unsafe { libc::getrlimit(resource, &mut limit) }, 0);
        limit.rlim_max
    };
    let nofile = hard(libc::RLIMIT_NOFILE).min(65_536);
    let nproc = hard(libc::RLIMIT_NPROC).min(32_768);
    vec![
        "--ulimit".into(),
        format!("nofile={nofile}:{nofile}"),
        "--ulimit".into(),
        format!("nproc={nproc}:{nproc}"),
    ]
}

/// A directory of its own, and the images and containers this test made, removed at the end.
pub struct Scratch {
    pub dir: PathBuf,
    pub images: Vec<String>,
    pub containers: Vec<String>,
}

impl Scratch {
    pub fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(unique_name(test));
        std::fs::create_dir_all(&dir).unwrap();
        Self {
            dir,
            images: Vec::new(),
            containers: Vec::new(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        let path = self.dir.join(rel);
        std::fs::create_dir_all(&path).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = podman(&["rm", "--force", "--time", "0", c]);
        }
        for i in &self.images {
            let _ = podman(&["rmi", "--force", i]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Copies `binary` to `<rootfs>/<dest>` and every shared library `ldd` lists for it to the same
/// path under `rootfs`.
pub fn copy_with_libraries(binary: &Path, rootfs: &Path, dest: &str) {
    let copy = |from: &Path, to: &Path| {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    };
    copy(binary, &rootfs.join(dest));
    let ldd = Command::new("ldd").arg(binary).output().unwrap();
    assert!(ldd.status.success(), "ldd {}", binary.display());
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let lib = match words.as_slice() {
            [_, "=>", path, ..] if path.starts_with('/') => *path,
            [path, ..] if path.starts_with('/') => *path,
            _ => continue,
        };
        copy(Path::new(lib), &rootfs.join(lib.trim_start_matches('/')));
    }
}

impl Scratch {
    /// Builds `image` FROM scratch out of the `rootfs` under this scratch's `context`
    /// directory (filled by the caller), and removes it at the end.
    pub fn build_image(&mut self, context: &Path, image: &str) {
        std::fs::write(
            context.join("Containerfile"),
            "FROM scratch\nCOPY rootfs/ /\n",
        )
        .unwrap();
        self.images.push(image.to_owned());
        podman_ok(&[
            "build",
            "--quiet",
            "--tag",
            image,
            context.to_str().unwrap(),
        ]);
    }

    /// Starts a long-lived container of `image` (`/bin/sleep 600`, no network unless `options`
    /// give one, the explicit ulimits) with `options`, removed at the end: its id and name.
    pub fn run_detached(&mut self, options: &[&str], image: &str) -> (String, String) {
        let name = unique_name("vigil-ctr");
        self.containers.push(name.clone());
        let limits = ulimits();
        let mut args = vec!["run", "--detach", "--name", name.as_str()];
        // No network unless the test gives one (`--network host`: podman takes one mode).
        if !options.contains(&"--network") {
            args.extend(["--network", "none"]);
        }
        args.extend(limits.iter().map(String::as_str));
        args.extend(options);
        args.extend([image, "/bin/sleep", "600"]);
        (podman_ok(&args), name)
    }
}
