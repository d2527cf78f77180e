#!/usr/bin/env bash
# Run every test that needs no GPU and no network (the README's test command):
#   bash scripts/test.sh            # lint, Python tests, web-extension tests
#   bash scripts/test.sh -k download   # extra arguments go to pytest
# Integration tests against a real ComfyUI run when COMFYUI_PATH points at a ComfyUI checkout
# whose Python has this pack's requirements (COMFYUI_PYTHON, default $COMFYUI_PATH/.venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
"$PY" -m ruff check .
"$PY" -m pytest -q "$@"
if ! command -v node >/dev/null; then
  echo "node (Node.js 18+) is needed for the web-extension tests in tests/web" >&2
  exit 1
fi
node --test tests/web/
