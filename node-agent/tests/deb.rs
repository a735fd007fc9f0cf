//! The host package (issue 16, item 5): `scripts/build-deb.sh` packages the agent built for these
//! tests; dpkg installs it into a temporary root (a chrootless install: the maintainer scripts run
//! with `DPKG_ROOT`, as dpkg does for `--force-script-chrootless`), the unit passes
//! `systemd-analyze verify`, the installed agent starts with its installed settings file (root:
//! it loads its eBPF programs), and a purge removes what it installed and the findings.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Output},
};

const AGENT: &str = env!("CARGO_BIN_EXE_node-agent");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn ok(out: &Output, what: &str) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what}: {}\n{text}", out.status);
    text
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn dpkg(root: &Path, args: &[&str]) -> Output {
    Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args([
            "--force-script-chrootless",
            "--force-not-root",
            // The temporary root has no libc6 package; the host's libc runs the binary.
            "--force-depends",
            "--log=/dev/null",
        ])
        .args(args)
        .output()
        .expect("run dpkg")
}

#[test]
fn the_deb_installs_verifies_starts_and_purges() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("out");
    let built = Command::new(repo().join("scripts/build-deb.sh"))
        .args(["--binary", AGENT, "--out"])
        .arg(&out_dir)
        .output()
        .expect("run scripts/build-deb.sh");
    let deb = ok(&built, "build-deb.sh");
    let deb = PathBuf::from(
        deb.lines()
            .find(|l| l.ends_with(".deb"))
            .expect("the .deb's path"),
    );
    assert!(deb.starts_with(&out_dir), "{}", deb.display());

    // What the package holds, with the modes it installs.
    let listing = ok(
        &Command::new("dpkg-deb")
            .arg("-c")
            .arg(&deb)
            .output()
            .unwrap(),
        "dpkg-deb -c",
    );
    for (mode, path) in [
        ("-rwxr-xr-x", "./usr/bin/node-agent"),
        ("-rw-r--r--", "./lib/systemd/system/vigil-agent.service"),
        ("-rw-r-----", "./etc/vigil/vigil.yaml"),
    ] {
        assert!(
            listing
                .lines()
                .any(|l| l.starts_with(mode) && l.contains("root/root") && l.ends_with(path)),
            "{mode} {path}:\n{listing}"
        );
    }
    let info = ok(
        &Command::new("dpkg-deb")
            .arg("-I")
            .arg(&deb)
            .output()
            .unwrap(),
        "dpkg-deb -I",
    );
    assert!(info.contains("Package: vigil-agent"), "{info}");

    // Install into an empty root.
    let root = tmp.path().join("root");
    for dir in ["var/lib/dpkg/info", "var/lib/dpkg/updates"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    for file in ["var/lib/dpkg/status", "var/lib/dpkg/available"] {
        std::fs::write(root.join(file), "").unwrap();
    }
    ok(&dpkg(&root, &["-i", deb.to_str().unwrap()]), "dpkg -i");
    let status = ok(&dpkg(&root, &["-s", "vigil-agent"]), "dpkg -s");
    assert!(status.contains("Status: install ok installed"), "{status}");
    let settings = root.join("etc/vigil/vigil.yaml");
    assert_eq!(mode(&settings), 0o640);
    // postinst made the state directory (0700) under DPKG_ROOT, not on this host.
    assert_eq!(mode(&root.join("var/lib/vigil")), 0o700);
    let binary = root.join("usr/bin/node-agent");
    assert_eq!(mode(&binary), 0o755);

    // The unit, with its ExecStart pointing at the installed binary.
    let unit =
        std::fs::read_to_string(root.join("lib/systemd/system/vigil-agent.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/node-agent run --settings /etc/vigil/vigil.yaml"));
    for hardening in [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "StateDirectoryMode=0700",
    ] {
        assert!(unit.contains(hardening), "{hardening}");
    }
    match Command::new("systemd-analyze").arg("--version").output() {
        Ok(_) => {
            let copy = tmp.path().join("vigil-agent.service");
            std::fs::write(
                &copy,
                unit.replace(
                    "ExecStart=/usr/bin/node-agent",
                    &format!("ExecStart={}", binary.display()),
                ),
            )
            .unwrap();
            let verify = Command::new("systemd-analyze")
                .arg("verify")
                .arg(&copy)
                .output()
                .unwrap();
            let text = ok(&verify, "systemd-analyze verify");
            assert!(!text.contains("vigil-agent.service:"), "{text}");
        }
        Err(e) => eprintln!("not verified: systemd-analyze is not installed here ({e})"),
    }

    // The installed settings file is what the agent reads; a bad key stops it, naming the key.
    let bad = tmp.path().join("bad.yaml");
    std::fs::write(&bad, "db: /tmp/x.db\nfindings-onyl: true\n").unwrap();
    let refused = Command::new(&binary)
        .args(["run", "--duration", "1s", "--settings"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let text = String::from_utf8_lossy(&refused.stderr);
    assert!(
        text.contains("unknown setting \"findings-onyl\"") && text.contains("bad.yaml"),
        "{text}"
    );

    // Started with the installed settings (the store under the temporary root, no metrics port).
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        let db = root.join("var/lib/vigil/findings.db");
        let run = Command::new(&binary)
            .args([
                "run",
                "--duration",
                "3s",
                "--metrics-addr",
                "off",
                "--settings",
            ])
            .arg(&settings)
            .arg("--db")
            .arg(&db)
            .output()
            .unwrap();
        let text = ok(&run, "the installed agent");
        assert!(!text.contains("panicked"), "{text}");
        assert_eq!(mode(&db), 0o600, "{text}");
    } else {
        eprintln!(
            "not started: the installed agent needs root to load its eBPF programs (CI runs this as root)"
        );
    }

    // Purge: the files, the settings and the findings go.
    ok(&dpkg(&root, &["--purge", "vigil-agent"]), "dpkg --purge");
    assert!(!binary.exists());
    assert!(!settings.exists());
    assert!(!root.join("var/lib/vigil").exists());
}
