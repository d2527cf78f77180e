#!/usr/bin/env bash
# Set up a development/CI environment from scratch in ./.venv:
#   bash scripts/setup.sh
# ComfyUI users do not need this: ComfyUI-Manager installs requirements.txt into ComfyUI's Python,
# which already has torch. Here we install torch + torchvision explicitly (the versions known to
# work on this project's machines, see README), then the pack's requirements and test tools.
#
# The host tier: when ComfyUI's source is beside the project (COMFYUI_SRC, default
# ../shared/comfyui/ComfyUI) its requirements go into the same venv (that is how users run the
# pack: inside ComfyUI's Python), with the `playwright` package and Debian's `chromium` for the
# browser tests. In CI (CI=true) a missing ComfyUI source or browser is an error, not a skip.
# The last step writes a stamp that scripts/test.sh compares, so it re-runs setup by itself
# whenever a requirements file changes.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.14.*}"
TORCHVISION_SPEC="${TORCHVISION_SPEC:-torchvision==0.29.*}"
# torchaudio 2.11 is the newest build; ComfyUI imports it and it works with torch 2.14.
TORCHAUDIO_SPEC="${TORCHAUDIO_SPEC:-torchaudio==2.11.*}"
COMFYUI_SRC="${COMFYUI_SRC:-../shared/comfyui/ComfyUI}"
in_ci() { [ "${CI:-}" = "true" ]; }

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# --no-compile: no .pyc for the ~40k files of torch & co. up front; Python writes them for the
# modules it actually imports (a fresh CI machine saves about half a minute).
pip_install() {
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-compile "$@"
}

# Debian's chromium (for the browser tests) installs in the background while pip works: the two
# wait on different servers. Its result is collected before the final check below.
chromium_pid=""
if ! command -v "${CHROMIUM:-chromium}" >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    mkdir -p .venv
    ( apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium ) \
      > .venv/chromium-install.log 2>&1 &
    chromium_pid=$!
  elif in_ci; then
    echo "CI needs Debian's chromium for the browser tests (apt-get install chromium)" >&2
    exit 1
  else
    echo "note: no chromium; the browser tests will skip (apt-get install chromium)" >&2
  fi
fi
pip_install --upgrade pip
pip_install "$TORCH_SPEC" "$TORCHVISION_SPEC"
pip_install -r requirements.txt -r requirements-dev.txt
pip_install --no-deps "groundingdino-py==0.4.0"  # see requirements-dev.txt

if [ -f "$COMFYUI_SRC/requirements.txt" ]; then
  # ComfyUI's own list, less the torch lines (ours stay as installed above).
  grep -vE '^\s*(torch|torchvision|torchaudio)\s*$' "$COMFYUI_SRC/requirements.txt" \
    > .venv/comfyui-requirements.txt
  # `requests` is imported by ComfyUI but not listed in its requirements.
  pip_install -r .venv/comfyui-requirements.txt "$TORCHAUDIO_SPEC" requests
elif in_ci; then
  echo "CI needs ComfyUI's source at $COMFYUI_SRC (set COMFYUI_SRC)" >&2
  exit 1
else
  echo "note: no ComfyUI source at $COMFYUI_SRC; the ComfyUI and browser tests will skip" >&2
fi

if [ -n "$chromium_pid" ] && ! wait "$chromium_pid"; then
  tail -20 .venv/chromium-install.log >&2
  echo "installing Debian's chromium failed (log above; apt-get install chromium)" >&2
  exit 1
fi

.venv/bin/python - <<'PY'
import torch, torchvision, transformers, diffusers, open_clip, segment_anything, peft  # noqa: F401
print(f"ready: torch {torch.__version__}, torchvision {torchvision.__version__}, "
      f"transformers {transformers.__version__}, diffusers {diffusers.__version__}")
PY
bash scripts/setup_stamp.sh > .venv/intenttuner-setup.stamp
