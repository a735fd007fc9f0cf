#!/usr/bin/env bash
# Builds the agent's Debian package: /usr/bin/node-agent, the hardened systemd unit
# vigil-agent.service, and /etc/vigil/vigil.yaml (a conffile: the file form of the flags).
#
#   scripts/build-deb.sh                          # release build, into target/deb/
#   scripts/build-deb.sh --binary PATH --out DIR  # package a binary already built
#
# Needs dpkg-deb (Debian's dpkg). docs/HOST.md says how to install and run it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'build-deb: %s\n' "$*" >&2; }

binary=""
out="target/deb"
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) log "usage: scripts/build-deb.sh [--binary PATH] [--out DIR]"; exit 2 ;;
  esac
done
command -v dpkg-deb >/dev/null || { log "dpkg-deb not found (apt-get install dpkg)"; exit 1; }

version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)"
arch="$(dpkg --print-architecture)"
if [ -z "$binary" ]; then
  # shellcheck source=scripts/env.sh
  source scripts/env.sh
  log "building node-agent (release)"
  cargo build --release --locked -p node-agent --bin node-agent
  binary="target/release/node-agent"
fi
[ -x "$binary" ] || { log "$binary is not an executable"; exit 1; }

stage="$(mktemp -d)"
chmod 0755 "$stage"
trap 'rm -rf "$stage"' EXIT
install -D -m 0755 "$binary" "$stage/usr/bin/node-agent"
install -D -m 0644 packaging/vigil-agent.service "$stage/lib/systemd/system/vigil-agent.service"
install -D -m 0640 packaging/vigil.yaml "$stage/etc/vigil/vigil.yaml"
install -D -m 0644 README.md "$stage/usr/share/doc/vigil-agent/README.md"
install -D -m 0644 LICENSE "$stage/usr/share/doc/vigil-agent/copyright" 2>/dev/null ||
  printf 'Vigil\nLicense: Apache-2.0\n' | install -D -m 0644 /dev/stdin "$stage/usr/share/doc/vigil-agent/copyright"
mkdir -p "$stage/DEBIAN"
for script in postinst prerm postrm; do
  install -m 0755 "packaging/deb/$script" "$stage/DEBIAN/$script"
done
echo /etc/vigil/vigil.yaml >"$stage/DEBIAN/conffiles"
size_kib="$(du -sk --exclude=DEBIAN "$stage" | cut -f1)"
cat >"$stage/DEBIAN/control" <<CONTROL
Package: vigil-agent
Version: $version
Architecture: $arch
Maintainer: Vigil maintainers <vigil@example.invalid>
Section: admin
Priority: optional
Installed-Size: $size_kib
Depends: libc6
Homepage: https://example.invalid/vigil
Description: Vigil runtime threat detection agent
 eBPF sensors for process, file, network, DNS and kernel activity, detection of
 the GuardDuty Runtime Monitoring finding types, and an embedded findings store,
 run by the vigil-agent systemd unit with settings in /etc/vigil/vigil.yaml.
CONTROL
mkdir -p "$out"
deb="$out/vigil-agent_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zgzip --build "$stage" "$deb" >/dev/null
log "wrote $deb"
echo "$deb"
