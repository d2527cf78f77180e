#!/usr/bin/env bash
# Set up a development/CI environment from scratch in ./.venv:
#   bash scripts/setup.sh
# ComfyUI users do not need this: ComfyUI-Manager installs requirements.txt into ComfyUI's Python,
# which already has torch. Here we install torch + torchvision explicitly (the versions known to
# work on this project's machines, see README), then the pack's requirements and test tools.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.14.*}"
TORCHVISION_SPEC="${TORCHVISION_SPEC:-torchvision==0.29.*}"

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "$TORCH_SPEC" "$TORCHVISION_SPEC"
.venv/bin/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt
.venv/bin/python - <<'PY'
import torch, torchvision, transformers, diffusers, open_clip, segment_anything  # noqa: F401
print(f"ready: torch {torch.__version__}, torchvision {torchvision.__version__}, "
      f"transformers {transformers.__version__}, diffusers {diffusers.__version__}")
PY
