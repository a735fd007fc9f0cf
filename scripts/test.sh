#!/usr/bin/env bash
# The test command: installs what the build needs (idempotent), then formatting, lints and
# every test, including the eBPF tests that load programs into this kernel (they need root), then
# a bounded run of every fuzz target (scripts/fuzz.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/bootstrap.sh
# shellcheck source=scripts/env.sh
source scripts/env.sh

cargo fmt --all -- --check
cargo clippy --workspace --exclude node-agent-ebpf --all-targets -- -D warnings
if [ ! -f ../shared/threat-intel/README.md ]; then
  echo "test.sh: no ../shared/threat-intel beside this checkout: detection/tests/shared_lists.rs says 'skipped' for each of its tests (CI has the lists and runs them)" >&2
fi
cargo test --workspace --exclude node-agent-ebpf --no-fail-fast
# Every fuzz target for a bounded time from its committed corpus (about 20 s each, two at a time
# on two cores); a crash fails here and leaves its reproducer in fuzz/artifacts/.
scripts/fuzz.sh
