//! A benign suite of real programs, run with the agent (`node-agent run`) watching: ordinary
//! administration and development work, without the network, must raise nothing at Medium or
//! above. What it runs (`SUITE` below): build a .deb with a binary, a cron file, a systemd unit
//! and maintainer scripts, install it with dpkg (the scripts run, the unit is enabled) and purge
//! it; build a wheel (a module and a shared library it loads, a console script) and pip-install
//! it into a venv, offline, and run both; pack an npm package with a bin script and npm-install
//! the tarball, offline, and run the bin (skipped, with the reason printed, when npm is
//! missing); create, build and run a tiny crate with cargo, offline; compile and run a C program
//! with gcc; git init, add and commit; useradd and userdel; crontab -l; curl from an HTTP server
//! on loopback; tar and untar.
//!
//! Only findings of the suite's process tree count (the acting process or an ancestor is the
//! suite's shell), so other tests running on the machine do not interfere. Every finding of the
//! tree is printed, Low ones too.
//!
//! Needs root (the agent loads eBPF programs; dpkg, useradd). Without root it says so and
//! stops; under CI (`CI` set) a missing privilege fails the test instead. The Debian packages
//! it uses are installed by `scripts/bootstrap.sh`.

use std::{
    io::{BufRead, BufReader},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc::{Receiver, channel},
    time::{Duration, Instant},
};

use node_agent::collector::{root_or_skip, unique_name};
use vigil_crds::finding::{Finding, SeverityLabel};

const AGENT_BIN: &str = env!("CARGO_BIN_EXE_node-agent");
/// Loading every eBPF program and the threat lists takes tens of seconds on a busy machine.
const START: Duration = Duration::from_secs(300);
/// The suite itself (dpkg, pip, npm and cargo included) on a busy 2-core machine.
const SUITE: Duration = Duration::from_secs(600);

/// The suite, run by `bash -e` in `$WORK` with `$ID` a unique lowercase name.
const SCRIPT: &str = r#"
set -euo pipefail
cd "$WORK"
step() { printf '== %s\n' "$*"; }
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 npm_config_audit=false \
  npm_config_fund=false npm_config_update_notifier=false npm_config_cache="$WORK/npm-cache"

step "tar"
mkdir -p src && printf 'hello\n' > src/a.txt && cp /etc/os-release src/
tar czf src.tgz src && mkdir -p untar && tar xzf src.tgz -C untar && cmp src/a.txt untar/src/a.txt

step "gcc: compile and run"
cat > hello.c <<'C'
#include <stdio.h>
int main(void) { puts("hello from C"); return 0; }
C
gcc -O2 -o hello hello.c && ./hello

step "cargo: new, build and run (offline)"
cargo new --quiet --vcs none --name vigil_benign_crate crate
( cd crate && CARGO_TARGET_DIR="$WORK/crate-target" cargo build --quiet --offline )
"$WORK/crate-target/debug/vigil_benign_crate"

step "git: init, add, commit"
git init -q repo
( cd repo && printf '# notes\n' > README.md && git add README.md \
  && git -c user.name=Vigil -c user.email=vigil@example.invalid commit -q -m 'first' \
  && git log --oneline )

step "dpkg: build a .deb and install it (maintainer scripts run), then purge it"
pkg="vigil-benign-$ID"
root="$WORK/deb/$pkg"
mkdir -p "$root/DEBIAN" "$root/usr/bin" "$root/etc/cron.d" "$root/lib/systemd/system"
install -m 0755 hello "$root/usr/bin/$pkg"
printf '# %s\n17 3 * * * root /usr/bin/%s >/dev/null\n' "$pkg" "$pkg" > "$root/etc/cron.d/$pkg"
printf '[Unit]\nDescription=%s\n[Service]\nExecStart=/usr/bin/%s\n[Install]\nWantedBy=multi-user.target\n' \
  "$pkg" "$pkg" > "$root/lib/systemd/system/$pkg.service"
cat > "$root/DEBIAN/control" <<CONTROL
Package: $pkg
Version: 1.0
Architecture: $(dpkg --print-architecture)
Maintainer: Vigil tests <vigil@example.invalid>
Description: Vigil benign suite package
CONTROL
cat > "$root/DEBIAN/postinst" <<SCRIPT
#!/bin/sh
set -e
mkdir -p /var/lib/$pkg
/usr/bin/$pkg > /var/lib/$pkg/first-run
if [ "\$1" = configure ] && command -v deb-systemd-helper >/dev/null; then
  deb-systemd-helper enable $pkg.service
fi
SCRIPT
cat > "$root/DEBIAN/postrm" <<SCRIPT
#!/bin/sh
set -e
if [ "\$1" = purge ]; then
  rm -rf /var/lib/$pkg
  if command -v deb-systemd-helper >/dev/null; then deb-systemd-helper purge $pkg.service; fi
fi
SCRIPT
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/postrm"
dpkg-deb --build --root-owner-group "$root" "$WORK/$pkg.deb" >/dev/null
dpkg -i "$WORK/$pkg.deb" >/dev/null
test -s "/var/lib/$pkg/first-run"
"/usr/bin/$pkg"
dpkg -P "$pkg" >/dev/null

step "pip: build a wheel and install it into a venv (offline), run it"
python3 -m venv "$WORK/venv"
whl="$WORK/wheel"
mkdir -p "$whl/vigil_benign"
cat > lib.c <<'C'
int vigil_benign_answer(void) { return 42; }
C
gcc -shared -fPIC -o "$whl/vigil_benign/libvigilbenign.so" lib.c
cat > "$whl/vigil_benign/__init__.py" <<'PY'
import ctypes, os
_lib = ctypes.CDLL(os.path.join(os.path.dirname(__file__), "libvigilbenign.so"))
def main():
    print("answer", _lib.vigil_benign_answer())
PY
python3 - "$whl" <<'PY'
import base64, hashlib, os, sys, zipfile
root = sys.argv[1]
name, version = "vigil_benign", "1.0"
info = f"{name}-{version}.dist-info"
files = {
    f"{info}/METADATA": f"Metadata-Version: 2.1\nName: vigil-benign\nVersion: {version}\n",
    f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: vigil-tests\nRoot-Is-Purelib: false\nTag: py3-none-any\n",
    f"{info}/entry_points.txt": "[console_scripts]\nvigil-benign = vigil_benign:main\n",
}
for rel in ("vigil_benign/__init__.py", "vigil_benign/libvigilbenign.so"):
    files[rel] = open(os.path.join(root, rel), "rb").read()
record = []
path = os.path.join(root, f"{name}-{version}-py3-none-any.whl")
with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
    for rel, data in files.items():
        data = data.encode() if isinstance(data, str) else data
        z.writestr(rel, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{rel},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    z.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
PY
"$WORK/venv/bin/pip" install --quiet --no-index --no-deps "$whl"/vigil_benign-1.0-py3-none-any.whl
"$WORK/venv/bin/vigil-benign"
"$WORK/venv/bin/python" -c 'import vigil_benign; vigil_benign.main()'

step "npm: pack a package and install the tarball (offline), run its bin"
if command -v npm >/dev/null; then
  mkdir -p npm-pkg npm-app
  cat > npm-pkg/package.json <<'JSON'
{"name": "vigil-benign-npm", "version": "1.0.0", "bin": {"vigil-benign-npm": "cli.js"}}
JSON
  printf '#!/usr/bin/env node\nconsole.log("hello from npm");\n' > npm-pkg/cli.js
  ( cd npm-pkg && npm pack --silent >/dev/null )
  ( cd npm-app && printf '{"name": "app", "version": "1.0.0", "private": true}\n' > package.json \
    && npm install --offline --silent ../npm-pkg/vigil-benign-npm-1.0.0.tgz \
    && ./node_modules/.bin/vigil-benign-npm )
else
  echo "skipped: npm is not installed (scripts/bootstrap.sh does not install it: Debian's npm is hundreds of packages)"
fi

step "useradd, userdel"
user="vgb$ID"
useradd -m -s /bin/sh "$user"
id "$user"
userdel -r "$user" 2>/dev/null

step "crontab -l"
crontab -l || true

step "curl from an HTTP server on loopback"
printf 'served\n' > served.txt
python3 -c '
import http.server, socketserver, sys
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args): pass
with socketserver.TCPServer(("127.0.0.1", 0), Quiet) as s:
    open("port", "w").write(str(s.server_address[1]))
    s.handle_request()
' &
server=$!
for _ in $(seq 100); do [ -s port ] && break; sleep 0.1; done
curl -fsS "http://127.0.0.1:$(cat port)/served.txt" -o fetched.txt
wait "$server"
cmp served.txt fetched.txt

step "done"
"#;

/// The scratch directory, and what the suite installs should it stop half-way: its package
/// and its user.
struct Scratch {
    dir: PathBuf,
    id: String,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let quiet = |program: &str, args: &[&str]| {
            let _ = Command::new(program)
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        };
        quiet("dpkg", &["-P", &format!("vigil-benign-{}", self.id)]);
        quiet("userdel", &["-r", &format!("vgb{}", self.id)]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The agent, printing new findings as JSON lines.
struct Agent {
    child: Child,
    lines: Receiver<String>,
    findings: Vec<Finding>,
}

impl Agent {
    fn start(log: &Path) -> Self {
        let mut child = Command::new(AGENT_BIN)
            .args(["run", "--findings-only", "--no-store", "--format", "json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).expect("agent log"))
            .spawn()
            .expect("start the agent");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Self {
            child,
            lines,
            findings: Vec::new(),
        }
    }

    /// Reads what the agent printed so far (waiting up to `wait` for the first line).
    fn read(&mut self, wait: Duration) {
        while let Ok(line) = self.lines.recv_timeout(wait) {
            let f: Finding = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("a finding per line ({e}): {line}"));
            self.findings.push(f);
        }
    }

    /// Runs `beacon` until the agent prints a finding of it: proof that everything the agent
    /// received before has been looked at.
    fn beacon(&mut self, beacon: &Path, deadline: Duration) {
        let started = Instant::now();
        let path = beacon.display().to_string();
        loop {
            let _ = Command::new(beacon)
                .arg("127.0.0.1")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            self.read(Duration::from_millis(500));
            if self.findings.iter().any(|f| {
                f.process
                    .as_ref()
                    .is_some_and(|p| p.executable_path == path)
            }) {
                return;
            }
            assert!(
                started.elapsed() < deadline,
                "the agent did not report the beacon {path} within {deadline:?}"
            );
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// A copy of `/bin/true` named like a scanner: the agent reports it (SuspiciousTool).
fn beacon(dir: &Path, sub: &str) -> PathBuf {
    let dir = dir.join(sub);
    std::fs::create_dir_all(&dir).expect("beacon dir");
    let to = dir.join("masscan");
    std::fs::copy(std::fs::canonicalize("/bin/true").expect("true"), &to).expect("copy");
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    to
}

fn in_tree(f: &Finding, root: u32) -> bool {
    f.process
        .as_ref()
        .is_some_and(|p| p.pid == root || p.lineage.iter().any(|a| a.pid == root))
}

#[test]
fn a_suite_of_real_benign_programs_raises_nothing_at_medium_or_above() {
    if !root_or_skip("a_suite_of_real_benign_programs_raises_nothing_at_medium_or_above") {
        return;
    }
    let id = unique_name("b").to_ascii_lowercase();
    let scratch = Scratch {
        dir: std::env::temp_dir().join(format!("vigil-benign-{id}")),
        id: id.clone(),
    };
    let work = scratch.dir.join("work");
    std::fs::create_dir_all(&work).expect("work dir");
    std::fs::write(scratch.dir.join("suite.sh"), SCRIPT).expect("suite script");
    let beacons = scratch.dir.join("beacons");

    let mut agent = Agent::start(&scratch.dir.join("agent.log"));
    agent.beacon(&beacon(&beacons, "start"), START);

    let output = scratch.dir.join("suite.out");
    let mut suite = Command::new("bash")
        .arg(scratch.dir.join("suite.sh"))
        .env("WORK", &work)
        .env("ID", &id)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&output).expect("suite output"))
        .stderr(Stdio::from(
            std::fs::File::options()
                .append(true)
                .open(&output)
                .expect("suite output"),
        ))
        .spawn()
        .expect("run the suite");
    let root = suite.id();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = suite.try_wait().expect("wait for the suite") {
            break status;
        }
        if started.elapsed() > SUITE {
            let _ = suite.kill();
            break suite.wait().expect("wait for the suite");
        }
        agent.read(Duration::from_millis(200));
    };
    let printed = std::fs::read_to_string(&output).unwrap_or_default();
    println!("{printed}");
    assert!(status.success(), "the suite failed ({status}):\n{printed}");

    // A second beacon: once it is reported, every event of the suite has been looked at.
    agent.beacon(&beacon(&beacons, "end"), START);
    let ours: Vec<&Finding> = agent.findings.iter().filter(|f| in_tree(f, root)).collect();
    for f in &ours {
        println!(
            "suite finding: {:?} {} {} ({})",
            f.severity_label,
            f.finding_type,
            f.description,
            f.process
                .as_ref()
                .map(|p| p.executable_path.as_str())
                .unwrap_or("")
        );
    }
    let serious: Vec<String> = ours
        .iter()
        .filter(|f| f.severity_label >= SeverityLabel::Medium)
        .map(|f| {
            format!(
                "{:?} {}: {}",
                f.severity_label, f.finding_type, f.description
            )
        })
        .collect();
    println!(
        "benign suite: {} findings in its process tree, {} at Medium or above",
        ours.len(),
        serious.len()
    );
    assert!(serious.is_empty(), "{serious:#?}");
}
