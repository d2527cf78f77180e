# ruff: noqa: I001
"""Validate API prompts with ComfyUI's own ``execution.validate_prompt`` (what ``POST /prompt``
runs before queueing), in a real ComfyUI booted in this process with the pack loaded through
ComfyUI's custom-node loader. Prints one JSON line: {name: {"valid", "error", "node_errors"}}.

Run by tests/test_workflows_object_info.py with ComfyUI's Python:
    python comfyui_validate_prompts.py <comfyui checkout> <base directory> <prompts.json>
"""

from __future__ import annotations

import asyncio
import json
import sys

CHECKOUT, BASE, JOB = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, CHECKOUT)
sys.argv = [sys.argv[0], "--cpu", "--base-directory", BASE]

# The order below is ComfyUI's own (main.py): utils.extra_config before comfy.model_management.
import comfy.options  # noqa: E402

comfy.options.enable_args_parsing()
import utils.extra_config  # noqa: E402,F401
import execution  # noqa: E402
import nodes  # noqa: E402


async def validate_all(prompts: dict) -> dict:
    await nodes.init_extra_nodes(init_custom_nodes=True, init_api_nodes=False)
    results = {}
    for name, prompt in prompts.items():
        valid, error, _outputs, node_errors = await execution.validate_prompt(name, prompt, None)
        results[name] = {"valid": valid, "error": error, "node_errors": node_errors}
    return results


def main() -> None:
    with open(JOB, encoding="utf-8") as file:
        prompts = json.load(file)
    # The protocol is one JSON line on stdout (after whatever ComfyUI logged).
    sys.stdout.write(json.dumps(asyncio.run(validate_all(prompts)), default=str) + "\n")


if __name__ == "__main__":
    main()
