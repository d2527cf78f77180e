#!/usr/bin/env bash
# The main job, headless and offline (the README's first command):
#   bash scripts/run.sh            # for now: build, load and run a tiny model of every family
#   bash scripts/run.sh smoke -h   # arguments go to `python -m intenttuner`
# Sets up ./.venv first when it is missing or a requirements file changed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure_env.sh
[ $# -gt 0 ] || set -- smoke
exec .venv/bin/python -m intenttuner "$@"
