#!/usr/bin/env bash
# Installs everything Vigil needs to build and test on a fresh Debian machine.
# Idempotent: a second run checks what is there and returns in seconds.
#
#   scripts/bootstrap.sh          # toolchains + bpf-linker + cargo-fuzz
#   source scripts/env.sh         # puts the tools on PATH for this shell
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/env.sh
source "$here/env.sh"

log() { printf 'bootstrap: %s\n' "$*" >&2; }

# 1. Debian packages the tests use (iproute2 for network namespaces, gcc for setuid helpers,
#    python3 for the image SBOM, ca-certificates for the images), and podman with runc for the images and the container test
#    (scripts/build-images.sh, node-agent/tests/container.rs; crun is not installed: it refuses
#    hybrid cgroup hosts). Without root, missing podman/runc only make that test skip.
need_pkgs=()
command -v ip >/dev/null 2>&1 || need_pkgs+=(iproute2)
command -v cc >/dev/null 2>&1 || need_pkgs+=(gcc)
# libfuzzer-sys compiles libFuzzer (C++) for the fuzz targets (scripts/fuzz.sh).
command -v c++ >/dev/null 2>&1 || need_pkgs+=(g++)
command -v strip >/dev/null 2>&1 || need_pkgs+=(binutils)
command -v python3 >/dev/null 2>&1 || need_pkgs+=(python3)
[ -f /etc/ssl/certs/ca-certificates.crt ] || need_pkgs+=(ca-certificates)
# A real caching resolver for node-agent/tests/detection_dns.rs; what the benign suite
# (node-agent/tests/benign_suite.rs) runs: crontab, curl, git, a Python venv.
[ -x /usr/sbin/dnsmasq ] || command -v dnsmasq >/dev/null 2>&1 || need_pkgs+=(dnsmasq-base)
command -v crontab >/dev/null 2>&1 || need_pkgs+=(cron)
# at and batch queueing jobs (node-agent/tests/detection_techniques.rs; atd need not run).
[ -x /usr/bin/at ] || need_pkgs+=(at)
command -v curl >/dev/null 2>&1 || need_pkgs+=(curl)
# wget and the OpenSSH client: downloads into hidden paths, PKCS#11 providers, port forwards
# (node-agent/tests/detection_techniques.rs).
command -v wget >/dev/null 2>&1 || need_pkgs+=(wget)
command -v ssh-keygen >/dev/null 2>&1 || need_pkgs+=(openssh-client)
command -v git >/dev/null 2>&1 || need_pkgs+=(git)
# ps and pgrep: process-list pipelines that kill competing miners (detection_techniques.rs).
command -v pgrep >/dev/null 2>&1 || need_pkgs+=(procps)
# iptables: firewall rules in network namespaces of the tests' own (detection.rs,
# detection_techniques.rs). podman depends on it too; named here so no test relies on that.
[ -x /usr/sbin/iptables ] || command -v iptables >/dev/null 2>&1 || need_pkgs+=(iptables)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need_pkgs+=(python3-venv)
# Real tools whose renamed copies node-agent/tests/detection_evasion.rs runs (found by content).
[ -x /usr/bin/socat ] || need_pkgs+=(socat)
[ -x /usr/bin/nc.openbsd ] || need_pkgs+=(netcat-openbsd)
# Real receivers for the sinks' tests (integrations/tests/): rsyslog with its GnuTLS driver,
# and nats-server with JetStream, each started by its test on loopback.
[ -x /usr/sbin/rsyslogd ] || need_pkgs+=(rsyslog)
dpkg -s rsyslog-gnutls >/dev/null 2>&1 || need_pkgs+=(rsyslog-gnutls)
[ -x /usr/sbin/nats-server ] || need_pkgs+=(nats-server)
# A real PostgreSQL server for node-agent/tests/detection_techniques.rs (a shell run by a
# database server: the test starts a scratch cluster of its own on a unix socket, no TCP).
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || need_pkgs+=(postgresql)
# The self-protection tests (node-agent/tests/self_protection.rs) read and write the agent's
# eBPF maps with bpftool, trace the agent with strace and run it in a pid namespace (unshare).
command -v bpftool >/dev/null 2>&1 || [ -x /usr/sbin/bpftool ] || need_pkgs+=(bpftool)
command -v strace >/dev/null 2>&1 || need_pkgs+=(strace)
# ed reading /etc/shadow (node-agent/tests/detection.rs).
command -v ed >/dev/null 2>&1 || need_pkgs+=(ed)
# tclsh: the interpreter command-loop reverse shell test (detection_techniques.rs).
command -v tclsh >/dev/null 2>&1 || need_pkgs+=(tcl)
# setfacl: the password hashes given to an account through an ACL (detection_techniques.rs).
command -v setfacl >/dev/null 2>&1 || need_pkgs+=(acl)
# gcore (gdb's) dumping another process's memory (node-agent/tests/detection_techniques.rs).
command -v gcore >/dev/null 2>&1 || need_pkgs+=(gdb)
# GTFOBins' shells through installed programs (node-agent/tests/detection.rs): sqlite3's
# .shell, GNU time, dmsetup's --exec (start-stop-daemon, logsave, choom, taskset and
# busctl come with dpkg, e2fsprogs, util-linux and systemd).
command -v sqlite3 >/dev/null 2>&1 || need_pkgs+=(sqlite3)
[ -x /usr/bin/time ] || need_pkgs+=(time)
command -v dmsetup >/dev/null 2>&1 || [ -x /usr/sbin/dmsetup ] || [ -x /sbin/dmsetup ] || need_pkgs+=(dmsetup)
container_pkgs=()
command -v podman >/dev/null 2>&1 || container_pkgs+=(podman)
command -v runc >/dev/null 2>&1 || container_pkgs+=(runc)
# Headless Chromium and its WebDriver for the console's browser test
# (node-agent/tests/console_browser.rs; it fails without them when CI is set).
command -v chromium >/dev/null 2>&1 || container_pkgs+=(chromium)
command -v chromedriver >/dev/null 2>&1 || container_pkgs+=(chromium-driver)
if [ "$(id -u)" -ne 0 ]; then
  if [ ${#need_pkgs[@]} -gt 0 ]; then
    log "missing Debian packages ${need_pkgs[*]} and not root: install them with apt-get"
    exit 1
  fi
  if [ ${#container_pkgs[@]} -gt 0 ]; then
    log "missing ${container_pkgs[*]} and not root: the image build, the container test and the console's browser test need them (apt-get install --no-install-recommends ${container_pkgs[*]})"
  fi
elif [ $((${#need_pkgs[@]} + ${#container_pkgs[@]})) -gt 0 ]; then
  log "installing Debian packages: ${need_pkgs[*]} ${container_pkgs[*]}"
  apt-get update -qq
  if [ ${#need_pkgs[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}"
  fi
  if [ ${#container_pkgs[@]} -gt 0 ]; then
    # No recommends: podman's pull in crun, slirp4netns and fuse, none of which is used here;
    # chromium's pull in fonts and desktop integration the headless browser does not need.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${container_pkgs[@]}"
  fi
fi
# An image can list PostgreSQL's server package as installed with its files gone (seen on this
# machine's image): apt-get install then does nothing, so reinstall the package dpkg names.
if [ "$(id -u)" -eq 0 ] && ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then
  pg=$(dpkg-query -W -f '${Package}\n' 'postgresql-[0-9]*' 2>/dev/null | grep -E '^postgresql-[0-9]+$' | head -1 || true)
  if [ -n "$pg" ]; then
    log "PostgreSQL's server files are missing: reinstalling $pg"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --reinstall "$pg"
  fi
fi

# 2. The stable toolchain must already be there (never `rustup toolchain install stable`: it upgrades).
if ! command -v cargo >/dev/null 2>&1; then
  log "cargo not found: install Rust with rustup first"
  exit 1
fi
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt

# 3. The pinned nightly with rust-src for the eBPF target (bpf-linker is tied to its LLVM).
if ! rustup run "$VIGIL_BPF_TOOLCHAIN" rustc --version >/dev/null 2>&1 \
   || [ ! -d "$(rustc +"$VIGIL_BPF_TOOLCHAIN" --print sysroot)/lib/rustlib/src/rust/library" ]; then
  log "installing $VIGIL_BPF_TOOLCHAIN with rust-src"
  rustup toolchain install "$VIGIL_BPF_TOOLCHAIN" --profile minimal --component rust-src
fi

# 4. bpf-linker built against that nightly's own LLVM (no system LLVM needed).
if [ ! -x "$VIGIL_TOOLS/bin/bpf-linker" ] || ! "$VIGIL_TOOLS/bin/bpf-linker" --version 2>/dev/null | grep -q "$VIGIL_BPF_LINKER_VERSION"; then
  sysroot="$(rustc +"$VIGIL_BPF_TOOLCHAIN" --print sysroot)"
  libllvm="$(ls "$sysroot"/lib/libLLVM.so.* | head -n 1)"
  llvm_prefix="$VIGIL_TOOLS/llvm"
  mkdir -p "$llvm_prefix/lib"
  ln -sf "$libllvm" "$llvm_prefix/lib/libLLVM.so"
  ln -sf "$libllvm" "$llvm_prefix/lib/$(basename "$libllvm")"
  log "building bpf-linker $VIGIL_BPF_LINKER_VERSION against $(basename "$libllvm") (about 75 s)"
  LLVM_PREFIX="$llvm_prefix" cargo install --locked "bpf-linker@$VIGIL_BPF_LINKER_VERSION" \
    --no-default-features --features llvm-22 --root "$VIGIL_TOOLS"
fi

# 5. cargo-fuzz for scripts/fuzz.sh (it builds the targets on the pinned nightly).
if ! "$VIGIL_TOOLS/bin/cargo-fuzz" --version 2>/dev/null | grep -q "$VIGIL_CARGO_FUZZ_VERSION"; then
  log "installing cargo-fuzz $VIGIL_CARGO_FUZZ_VERSION"
  cargo install --locked "cargo-fuzz@$VIGIL_CARGO_FUZZ_VERSION" --root "$VIGIL_TOOLS"
fi

# 6. The schemas the format tests validate against (OCSF, GuardDuty's and Security Hub's
#    models), in their own venv.
ocsf_venv="$(dirname "$(dirname "$VIGIL_OCSF_PYTHON")")"
if ! "$VIGIL_OCSF_PYTHON" -c "import importlib.metadata as m, sys; sys.exit(m.version('ocsf-json-schema') != '$VIGIL_OCSF_JSON_SCHEMA_VERSION' or m.version('jsonschema') != '$VIGIL_JSONSCHEMA_VERSION' or m.version('botocore') != '$VIGIL_BOTOCORE_VERSION')" >/dev/null 2>&1; then
  log "installing ocsf-json-schema $VIGIL_OCSF_JSON_SCHEMA_VERSION, jsonschema $VIGIL_JSONSCHEMA_VERSION and botocore $VIGIL_BOTOCORE_VERSION in $ocsf_venv"
  python3 -m venv "$ocsf_venv"
  "$ocsf_venv/bin/pip" install --quiet --disable-pip-version-check \
    "ocsf-json-schema==$VIGIL_OCSF_JSON_SCHEMA_VERSION" "jsonschema==$VIGIL_JSONSCHEMA_VERSION" \
    "botocore==$VIGIL_BOTOCORE_VERSION"
fi

log "ready: $(rustc --version), $VIGIL_BPF_TOOLCHAIN, $("$VIGIL_TOOLS/bin/bpf-linker" --version), $("$VIGIL_TOOLS/bin/cargo-fuzz" --version)"
