#!/usr/bin/env bash
# The main job, headless and offline (the README's first command):
#   bash scripts/run.sh            # the whole pipeline on the shipped example (examples/milo)
#                                  # with tiny random models on the CPU, in a few minutes:
#                                  # python -m intenttuner run --smoke --out output/example_run
#                                  # --overwrite (each run replaces the last one's results there)
#   bash scripts/run.sh run -h     # arguments go to `python -m intenttuner` (run, smoke, train...)
#   bash scripts/run.sh smoke      # only build, load and run a tiny model of every family
# Sets up ./.venv first when it is missing or a requirements file changed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure_env.sh
[ $# -gt 0 ] || set -- run --smoke --out output/example_run --overwrite
exec .venv/bin/python -m intenttuner "$@"
