#!/usr/bin/env bash
# Builds the agent and operator images with podman, from scratch: no registry, nothing pulled.
#
#   scripts/build-images.sh                  # release build, both images, OCI archives + SBOMs
#   scripts/build-images.sh --print-names    # the image references it builds, one a line
#
# Each image is FROM scratch with a root filesystem assembled here: the binary (debug info
# stripped), the exact shared libraries `ldd` lists for it (glibc, libm, libgcc_s and the
# loader, from this machine's Debian packages), the CA certificate bundle, a CycloneDX SBOM (images/sbom.py, from
# `cargo metadata` and dpkg) and, for the operator, a passwd/group naming its non-root user.
# Reproducible: file times and the image's creation time are SOURCE_DATE_EPOCH (the last
# commit's time unless set), the SBOM is deterministic, so the same binaries and libraries give
# the same image id.
#
# Tags: $VIGIL_REGISTRY/vigil-agent:$VERSION and $VIGIL_REGISTRY/vigil-operator:$VERSION, where
# VERSION is the chart's appVersion (which must equal the Cargo workspace version) and
# VIGIL_REGISTRY defaults to ghcr.io/vigil-dev: the names the chart, examples/ and the
# operator's default agent image use.
#
# Out (default target/images/): vigil-agent-$VERSION.oci.tar and vigil-operator-$VERSION.oci.tar
# (OCI image layout archives; on a node: `ctr -n k8s.io images import FILE`), and
# each image's SBOM beside it (vigil-agent-$VERSION.cdx.json).
#
# Options:
#   --only agent|operator   build one image
#   --agent-bin PATH        use this agent binary instead of a release build (the tests use the
#   --operator-bin PATH     debug binaries cargo test built); no cargo build for that image
#   --out DIR               where archives and SBOMs go (default target/images)
#   --no-archive            tag the images only, no OCI archive
#   --print-names           print the references and exit (needs neither podman nor cargo)
set -euo pipefail
umask 022
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

die() { printf 'build-images: %s\n' "$*" >&2; exit 1; }
log() { printf 'build-images: %s\n' "$*" >&2; }

only="" agent_bin="" operator_bin="" out="$root/target/images" archive=1 print_names=0
while [ $# -gt 0 ]; do
  case "$1" in
    --only) only="${2:?--only needs agent or operator}"; shift 2 ;;
    --agent-bin) agent_bin="${2:?--agent-bin needs a path}"; shift 2 ;;
    --operator-bin) operator_bin="${2:?--operator-bin needs a path}"; shift 2 ;;
    --out) out="${2:?--out needs a directory}"; shift 2 ;;
    --no-archive) archive=0; shift ;;
    --print-names) print_names=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (try --help)" ;;
  esac
done
case "$only" in ""|agent|operator) ;; *) die "--only takes agent or operator, not $only" ;; esac

# The version: the chart's appVersion, which must be the Cargo workspace's.
chart_version="$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' charts/vigil/Chart.yaml)"
cargo_version="$(awk '/^\[workspace\.package\]/ {p=1; next} /^\[/ {p=0}
  p && $1 == "version" {gsub(/"/, "", $3); print $3}' Cargo.toml)"
[ -n "$chart_version" ] || die "charts/vigil/Chart.yaml has no appVersion"
[ "$chart_version" = "$cargo_version" ] \
  || die "charts/vigil/Chart.yaml appVersion $chart_version differs from the Cargo workspace version $cargo_version"
version="$chart_version"
registry="${VIGIL_REGISTRY:-ghcr.io/vigil-dev}"
agent_image="$registry/vigil-agent:$version"
operator_image="$registry/vigil-operator:$version"

want() { [ -z "$only" ] || [ "$only" = "$1" ]; }

if [ "$print_names" = 1 ]; then
  want agent && echo "$agent_image"
  want operator && echo "$operator_image"
  exit 0
fi

# Binaries: a release build unless given.
build=()
want agent && [ -z "$agent_bin" ] && build+=(-p node-agent --bin node-agent)
want operator && [ -z "$operator_bin" ] && build+=(-p vigil-operator --bin vigil-operator)
# shellcheck source=scripts/env.sh
source scripts/env.sh
# bootstrap.sh installs the build tools and, as root, podman and runc.
[ ${#build[@]} -eq 0 ] || scripts/bootstrap.sh
command -v cargo >/dev/null 2>&1 || die "cargo not found (the SBOM reads cargo metadata)"
command -v podman >/dev/null 2>&1 || die "podman not found: run scripts/bootstrap.sh (as root) or apt-get install podman"
command -v python3 >/dev/null 2>&1 || die "python3 not found (the SBOM is written with it)"
if [ ${#build[@]} -gt 0 ]; then
  log "cargo build --release ${build[*]}"
  cargo build --locked --release "${build[@]}"
  target_dir="$(cargo metadata --format-version 1 --no-deps --offline | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
  [ -n "$agent_bin" ] || agent_bin="$target_dir/release/node-agent"
  [ -n "$operator_bin" ] || operator_bin="$target_dir/release/vigil-operator"
fi

# Provenance and reproducibility.
if git rev-parse --git-dir >/dev/null 2>&1; then
  revision="$(git rev-parse HEAD)"
  : "${SOURCE_DATE_EPOCH:=$(git log -1 --format=%ct)}"
  git diff --quiet HEAD -- 2>/dev/null || log "warning: the work tree has uncommitted changes; the images are labelled with HEAD ($revision)"
else
  revision="unknown"
  : "${SOURCE_DATE_EPOCH:=0}"
  log "warning: not a git checkout: revision unknown, SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH"
fi
export SOURCE_DATE_EPOCH
created="$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
source_url="$(sed -n 's/^repository *= *"\(.*\)"/\1/p' Cargo.toml | head -n 1)"

mkdir -p "$out"
out="$(cd "$out" && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/vigil-images.XXXXXX")"
trap 'rm -rf "$work"' EXIT
metadata="$work/metadata.json"
cargo metadata --format-version 1 --locked --offline --filter-platform x86_64-unknown-linux-gnu >"$metadata" 2>/dev/null \
  || cargo metadata --format-version 1 --locked --filter-platform x86_64-unknown-linux-gnu >"$metadata"

ca_bundle=/etc/ssl/certs/ca-certificates.crt

# The shared libraries a binary loads, as ldd resolves them here (none for a static binary).
libraries() {
  if ! ldd "$1" >"$work/ldd" 2>&1; then
    grep -q 'not a dynamic executable' "$work/ldd" && return 0
    die "ldd $1: $(cat "$work/ldd")"
  fi
  grep -q 'not found' "$work/ldd" && die "ldd $1: a library is missing: $(grep 'not found' "$work/ldd")"
  awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' "$work/ldd" | sort -u
}

# build NAME IMAGE BINARY PACKAGES...: rootfs, SBOM, podman build, archive.
build_image() {
  local name="$1" image="$2" binary="$3"
  shift 3
  [ -x "$binary" ] || die "$binary: not an executable (build it, or leave out --${name#vigil-}-bin)"
  local context="$work/$name" exe
  local rootfs="$context/rootfs"
  case "$name" in vigil-agent) exe=node-agent ;; vigil-operator) exe=vigil-operator ;; esac
  mkdir -p "$rootfs/usr/bin" "$rootfs/tmp" "$rootfs/usr/share/doc/$name"
  chmod 1777 "$rootfs/tmp"
  # Debug info is most of a debug build's size and none of its behaviour.
  strip --strip-debug -o "$rootfs/usr/bin/$exe" "$binary"
  chmod 0755 "$rootfs/usr/bin/$exe"
  local libs=() lib
  while IFS= read -r lib; do
    libs+=("$lib")
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
    chmod 0755 "$rootfs$lib"
  done < <(libraries "$binary")
  # CA certificates: kube's TLS client loads the system roots even when a kubeconfig or the
  # service account names the cluster's CA, and fails without any.
  [ -f "$ca_bundle" ] || die "$ca_bundle missing: apt-get install ca-certificates"
  install -D -m 0644 "$ca_bundle" "$rootfs$ca_bundle"
  libs+=(/usr/share/ca-certificates)
  if [ "$name" = vigil-operator ]; then
    mkdir -p "$rootfs/etc"
    printf 'root:x:0:0:root:/:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/:/sbin/nologin\n' >"$rootfs/etc/passwd"
    printf 'root:x:0:\nnonroot:x:65532:\n' >"$rootfs/etc/group"
  fi
  local roots=() pkg
  for pkg in "$@"; do roots+=(--root "$pkg"); done
  local file_args=()  # what the SBOM names by its Debian package
  for lib in "${libs[@]}"; do file_args+=(--file "$lib"); done
  local sbom="$rootfs/usr/share/doc/$name/sbom.cdx.json"
  python3 images/sbom.py --image "${image%:*}" --version "$version" --revision "$revision" \
    --epoch "$SOURCE_DATE_EPOCH" --lockfile Cargo.lock "${roots[@]}" "${file_args[@]}" \
    <"$metadata" >"$sbom"
  cp "$sbom" "$out/$name-$version.cdx.json"

  log "podman build $image ($(du -sh "$rootfs" | cut -f1) root filesystem)"
  # --layers=false: no intermediate image per instruction (nothing to cache here, and buildah
  # sometimes left one behind).
  podman build --quiet --timestamp "$SOURCE_DATE_EPOCH" --no-cache --layers=false \
    --file "images/${name#vigil-}/Containerfile" \
    --build-arg "VERSION=$version" --build-arg "REVISION=$revision" \
    --build-arg "CREATED=$created" --build-arg "SOURCE=$source_url" \
    --tag "$image" "$context" >"$work/id"
  log "$image: image id $(cut -c1-12 "$work/id")"
  if [ "$archive" = 1 ]; then
    local tar="$out/$name-$version.oci.tar" layout="$work/$name.oci"
    # An OCI layout, then a tar of it with fixed times, owners and order: podman's own
    # oci-archive stamps the time of saving, so the same image would give different bytes.
    podman save --quiet --format oci-dir --output "$layout" "$image"
    tar --create --file "$tar" --directory "$layout" --format=gnu --sort=name \
      --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner oci-layout index.json blobs
    log "$tar ($(du -h "$tar" | cut -f1)); on a node: ctr -n k8s.io images import $tar"
  fi
}

want agent && build_image vigil-agent "$agent_image" "$agent_bin" node-agent node-agent-ebpf
want operator && build_image vigil-operator "$operator_image" "$operator_bin" vigil-operator
log "done; SBOMs in $out"
