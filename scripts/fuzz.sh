#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for a bounded time, from the committed seed corpora.
# A crash, a timeout or an out-of-memory input fails the run and leaves its reproducer in
# fuzz/artifacts/<target>/ (replay: fuzz/target/x86_64-unknown-linux-gnu/release/<target> FILE).
# docs/TESTING.md says what each target covers.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]   # default 20; targets run in parallel, one per core
#   scripts/fuzz.sh --seeds                # rewrites fuzz/corpus/ (fuzz/examples/make_seeds.rs)
#
# Needs the pinned nightly (for -Zsanitizer and the coverage passes) and cargo-fuzz, both
# installed by scripts/bootstrap.sh. New inputs found during a run go to fuzz/corpus-run/
# (ignored), never into the committed corpora.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/env.sh
source scripts/env.sh

log() { printf 'fuzz.sh: %s\n' "$*" >&2; }

mode=run
seconds=20
case "${1:-}" in
  --seeds) mode=seeds ;;
  '') ;;
  *[!0-9]* | 0)
    log "usage: scripts/fuzz.sh [SECONDS_PER_TARGET] | --seeds"
    exit 2
    ;;
  *) seconds=$1 ;;
esac

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  log "cargo-fuzz not found: run scripts/bootstrap.sh"
  exit 1
fi

# The fuzz crate is not in the workspace, so `cargo fmt --all` does not see it.
cargo fmt --manifest-path fuzz/Cargo.toml -- --check

# The targets use no eBPF object: skip node-agent's nested eBPF build.
export AYA_BUILD_SKIP=1
# No AddressSanitizer: the code under test is safe Rust apart from decode's checked views, and
# ASan would instrument the whole dependency tree. 16 codegen units instead of cargo-fuzz's 1,
# and opt-level 0 (fuzz/Cargo.toml): the tree is built cold in CI for seconds of fuzzing.
build_flags=(--sanitizer none --codegen-units 16 --fuzz-dir fuzz --target-dir fuzz/target)
triple="$(rustc +"$VIGIL_BPF_TOOLCHAIN" -vV | sed -n 's/^host: //p')"
bin_dir="fuzz/target/$triple/release"

start=$SECONDS
log "building the fuzz targets ($VIGIL_BPF_TOOLCHAIN, cargo-fuzz $(cargo-fuzz --version | cut -d' ' -f2))"
if ! cargo +"$VIGIL_BPF_TOOLCHAIN" fuzz build "${build_flags[@]}"; then
  log "the fuzz targets do not build"
  exit 1
fi
mapfile -t targets < <(cargo +"$VIGIL_BPF_TOOLCHAIN" fuzz list --fuzz-dir fuzz)
log "built ${#targets[@]} targets in $((SECONDS - start)) s"

if [ "$mode" = seeds ]; then
  # The generator is built with the flags cargo-fuzz $VIGIL_CARGO_FUZZ_VERSION gives the targets
  # (scripts/bootstrap.sh pins it), so it reuses their build instead of building everything again.
  RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing \
-Cllvm-args=-simplifycfg-branch-fold-threshold=0 -Cllvm-args=-sanitizer-coverage-stack-depth \
-Cdebug-assertions -Ccodegen-units=16" \
    cargo +"$VIGIL_BPF_TOOLCHAIN" run --manifest-path fuzz/Cargo.toml --target "$triple" --release \
    --config 'profile.release.debug="line-tables-only"' --target-dir fuzz/target \
    --example make_seeds
  exit 0
fi

jobs="$(nproc)"
log "running ${#targets[@]} targets for $seconds s each, $jobs at a time"
logs="fuzz/corpus-run/logs"
mkdir -p "$logs"
run_one() {
  local target=$1
  local scratch="fuzz/corpus-run/$target"
  rm -rf "$scratch"
  mkdir -p "$scratch" "fuzz/artifacts/$target"
  # -timeout: one input taking 10 s is a hang; -rss_limit_mb (and the malloc limit it implies):
  # an input that makes the code allocate 2 GiB is a bug. The first corpus directory receives
  # new inputs; the committed one is only read.
  "$bin_dir/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$target/" \
    "$scratch" "fuzz/corpus/$target" >"$logs/$target.log" 2>&1
}
declare -A pids=()
failed=()
for target in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
    wait -n || true
  done
  run_one "$target" &
  pids[$target]=$!
done
for target in "${targets[@]}"; do
  if wait "${pids[$target]}"; then
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$target.log")"
    cov="$(grep -o 'cov: [0-9]*' "$logs/$target.log" | tail -n 1)"
    log "$target: ok, ${runs:-?} runs, ${cov:-cov: ?}"
  else
    failed+=("$target")
    log "$target: FAILED; the panic, then the last lines of $logs/$target.log:"
    # The backtrace fills the tail: the panic's message (an assertion's left and right) is above.
    grep -m 1 -A 4 'panicked at' "$logs/$target.log" | cut -c 1-2000 >&2 || true
    tail -n 40 "$logs/$target.log" >&2
    log "reproducer(s): $(ls -d fuzz/artifacts/"$target"/* 2>/dev/null | tr '\n' ' ')"
  fi
done
log "done in $((SECONDS - start)) s"
if [ ${#failed[@]} -gt 0 ]; then
  log "failed: ${failed[*]}"
  exit 1
fi
