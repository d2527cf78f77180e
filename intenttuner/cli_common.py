"""What several subcommands of ``python -m intenttuner`` share: the models root and the
scoring models' flags (evaluate, train with --monitor-every, run)."""

from __future__ import annotations

from pathlib import Path


def add_model_flags(parser) -> None:
    """The scoring models' flags (evaluate, and train with --monitor-every)."""
    for flag, family in (("--detector", "detector"), ("--identity-encoder", "identity encoder"),
                         ("--clip", "CLIP image/text encoder")):
        parser.add_argument(flag, metavar="NAME",
                            help=f"the {family}, as its loader lists it (default: the "
                                 "manifest's)")
    parser.add_argument("--quality", metavar="NAME|none",
                        help="the quality predictor (default: the manifest's, the LAION "
                             "aesthetic predictor on ViT-L-14); none: identity only")
    parser.add_argument("--quality-clip", metavar="NAME",
                        help="the CLIP image encoder the quality predictor reads (default: "
                             "--clip when its width fits, else the one the predictor's "
                             "manifest entry requires)")


def use_models_dir(models_dir: Path | None) -> None:
    if models_dir is not None:
        from .runtime import TorchRuntime, set_runtime

        set_runtime(TorchRuntime(models_dir=models_dir))
