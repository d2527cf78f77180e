"""Run under ``torchrun --nproc_per_node 2``: trains the LoRA a config describes with
`trainer.train` and records, in every process, the exact LoRA weights it holds after the last
step, so a test can compare the processes with each other and with the file rank 0 saved.

    torchrun --standalone --nproc_per_node 2 tests/train_ranks.py CONFIG MODELS_DIR OUT_DIR

Writes ``OUT_DIR/rank<N>.safetensors`` (``<component>/<peft key>`` -> fp32 tensor) per process
and prints one JSON line per process (rank 0's with the run's result).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from intenttuner.families.base_model import load_base_model  # noqa: E402
from intenttuner.runtime import TorchRuntime, set_runtime  # noqa: E402
from intenttuner.training.config import load_config  # noqa: E402
from intenttuner.training.distributed import setup_distributed  # noqa: E402
from intenttuner.training.lora_setup import ADAPTER  # noqa: E402
from intenttuner.training.trainer import train  # noqa: E402


def lora_weights(model) -> dict[str, torch.Tensor]:
    """Every LoRA tensor of ``model`` now, keyed ``<component>/<peft key>``."""
    from peft import get_peft_model_state_dict

    weights = {}
    for name, module in model.modules().items():
        if not any("lora_" in n for n, _ in module.named_parameters()):
            continue
        state = get_peft_model_state_dict(module, adapter_name=ADAPTER)
        weights.update({f"{name}/{k}": v.detach().float().clone() for k, v in state.items()})
    return weights


def main(config_path: str, models_dir: str, out_dir: str) -> None:
    from safetensors.torch import save_file

    set_runtime(TorchRuntime(models_dir=models_dir))
    config = load_config(config_path)
    dist = setup_distributed(torch.device("cpu"))
    model = load_base_model(Path(config.base_model), precision="fp32")
    last: dict[str, torch.Tensor] = {}

    def after_step(info) -> None:
        # The adapters are removed when train() returns, so the weights are read here.
        if info.step == info.total_steps:
            last.update(lora_weights(model))

    result = train(config, base_model=model, dist=dist, on_step=after_step)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file(last, str(out / f"rank{dist.rank}.safetensors"))
    report = {"rank": dist.rank, "tensors": len(last)}
    if dist.is_main:
        report.update(lora_path=str(result.lora_path), run_dir=str(result.run_dir),
                      steps=result.steps, losses=result.losses)
    dist.close()
    print(json.dumps(report), flush=True)  # noqa: T201 - one JSON line per process


if __name__ == "__main__":
    main(*sys.argv[1:4])
