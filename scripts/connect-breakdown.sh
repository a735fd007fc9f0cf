#!/usr/bin/env bash
# Connect-storm slowdown under one agent configuration, for breakdowns (docs/PERFORMANCE.md).
# Usage (root, after `cargo build --release -p node-agent`):
#   scripts/connect-breakdown.sh LABEL [node-agent run ARGS...]
# Three pairs of 4 s loopback connect storms, untraced then traced, against one listener on
# 127.0.0.1:47000; the agent gets 6 s to finish start-up before each traced storm. Prints the
# median rates and their ratio.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
B=target/release
label=$1
shift
"$B/vigil-trigger" listen 127.0.0.1:47000 600 >/dev/null 2>&1 &
listener=$!
trap 'kill $listener 2>/dev/null || true' EXIT
sleep 0.5
untraced=()
traced=()
for _ in 1 2 3; do
  untraced+=("$("$B/vigil-trigger" connect-storm 127.0.0.1:47000 4)")
  "$B/node-agent" run "$@" >/dev/null 2>/dev/null &
  agent=$!
  sleep 6
  traced+=("$("$B/vigil-trigger" connect-storm 127.0.0.1:47000 4)")
  kill -INT "$agent"
  wait "$agent" 2>/dev/null || true
done
python3 - "$label" "${untraced[@]}" "${traced[@]}" <<'PY'
import statistics, sys
label, rates = sys.argv[1], [float(x) for x in sys.argv[2:]]
u, t = statistics.median(rates[:3]), statistics.median(rates[3:])
print(f"{label}: untraced {u:.0f}/s traced {t:.0f}/s slowdown {u / t:.3f}x")
PY
