#!/usr/bin/env bash
# The README's first command: install dependencies, build, and run the main
# job on the bundled example.  Until the VM backends land, the main job runs
# the example through the agent on this host (see docs/architecture.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
make -j"$(nproc)"
exec scripts/demo.sh
