#!/usr/bin/env bash
# The main job: installs what the build needs (idempotent), builds the agent and runs it in
# standalone mode on this host. Arguments go to `node-agent run` (try --format text,
# --duration 30s); it needs root to load its eBPF sensors.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/bootstrap.sh
# shellcheck source=scripts/env.sh
source scripts/env.sh
cargo build --release -p node-agent --bin node-agent
exec target/release/node-agent run "$@"
