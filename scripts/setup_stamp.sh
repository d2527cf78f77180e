#!/usr/bin/env bash
# Print what the environment in .venv was set up from (checksums of the setup script and of every
# requirements list it installs). scripts/test.sh re-runs setup when this differs from the stamp
# setup.sh wrote last time.
set -euo pipefail
cd "$(dirname "$0")/.."
COMFYUI_SRC="${COMFYUI_SRC:-../shared/comfyui/ComfyUI}"
files=(scripts/setup.sh requirements.txt requirements-dev.txt)
[ -f "$COMFYUI_SRC/requirements.txt" ] && files+=("$COMFYUI_SRC/requirements.txt")
sha256sum "${files[@]}"
