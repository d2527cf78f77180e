#!/usr/bin/env bash
# Run every test that needs no GPU and no network (the README's test command):
#   bash scripts/test.sh               # lint, Python tests (incl. real ComfyUI + browser), web tests
#   bash scripts/test.sh -k download   # extra arguments go to pytest
# Sets up ./.venv first when it is missing or a requirements file changed (scripts/setup.sh).
# The ComfyUI and browser tiers run against a fresh temporary copy of ComfyUI's source
# (COMFYUI_SRC, default ../shared/comfyui/ComfyUI), or against COMFYUI_PATH if you set it. They
# skip cleanly when neither exists, except in CI (CI=true), where a skip there is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
COMFYUI_SRC="${COMFYUI_SRC:-../shared/comfyui/ComfyUI}"

if [ "$PY" = .venv/bin/python ]; then
  source scripts/ensure_env.sh
fi

if [ -z "${COMFYUI_PATH:-}" ] && [ -f "$COMFYUI_SRC/main.py" ]; then
  # ComfyUI writes user/, temp/ and caches into its folder: run a throw-away copy.
  host_dir=$(mktemp -d "${TMPDIR:-/tmp}/intenttuner-comfyui.XXXXXX")
  trap 'rm -rf "$host_dir"' EXIT
  cp -R "$COMFYUI_SRC" "$host_dir/ComfyUI"
  chmod -R u+w "$host_dir/ComfyUI"  # CI's shared/ has no write bits
  export COMFYUI_PATH="$host_dir/ComfyUI"
fi
if [ -n "${COMFYUI_PATH:-}" ]; then
  export COMFYUI_PYTHON="${COMFYUI_PYTHON:-$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")}"
fi

"$PY" -m ruff check .
"$PY" -m pytest -q "$@"
if ! command -v node >/dev/null; then
  echo "node (Node.js 18+) is needed for the web-extension tests in tests/web" >&2
  exit 1
fi
node --test tests/web/
