"""Evaluation throughput: scoring N generated images (stability + controllability + delete
leakage) batched by the library vs one image at a time, in the same run.

- batched: ``evaluate()`` over all images: per metric one detector pass, one encoder call for
  all crops (batch 32), the reference crops embedded once per run (the intent's memo is
  cleared before each run, so nothing carries over from the previous one).
- one at a time: ``evaluate()`` on each image alone with batch size 1 everywhere and the memo
  cleared before every image, so the reference embeddings and the value texts are recomputed
  per image (the models themselves stay loaded in both ways).

Both must see the same things: the per-image records (similarities, margins, leaks) of the two
are compared before anything is timed. A third way, one at a time with the memo kept, splits the
gain into the reference cache's share and the batching's. The ways take turns, ``--runs``
times; medians and each run's ratio are printed.

Models: DINO ViT-S/16 at full size (random weights; ViTConfig with facebook/dino-vits16's
sizes: hidden 384, 12 layers, 6 heads, patch 16, 224 px) through the identity-encoder
family's loader; open_clip ViT-B-32 at full size (random) for controllability and the leakage
reference filter; GroundingDINO tiny (random, the real architecture in miniature) by default,
since the full-size Swin-T costs ~4 s per image on 2 CPU cores and its batching is measured by
bench/detection.py (``--detector full`` uses it anyway). No quality scorer: the LAION
predictor's ViT-L-14 is a bigger CLIP run once per stability image, batched like the rest.

    OMP_NUM_THREADS=2 .venv/bin/python bench/evaluate.py [--prompts 2] [--images-per-prompt 2]
        [--size 512] [--detector tiny|full] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script (python bench/evaluate.py)
    sys.path.insert(0, str(ROOT))

DESCRIPTION = ("trigger: vin. Keep his face [1]. His hair colour should switch between red hair "
               "and blue hair. Never a necklace [2].")
REFERENCE_BOXES = ('[{"image": 0, "box": [40, 30, 200, 230]}, '
                   '{"image": 0, "box": [60, 240, 180, 290]}]')  # face [1], necklace [2]
# dino-vits16's config.json sizes (ViTConfig's defaults are ViT-B's).
DINO_VITS16 = {"hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 6,
               "intermediate_size": 1536, "patch_size": 16, "image_size": 224}
# The library is imported inside the functions, after the path set-up above (as in
# bench/train_lora.py).


def full_size_dino(models_dir: Path) -> str:
    """A random DINO ViT-S/16 folder in models_dir/identity_encoders; returns its name."""
    import torch
    from transformers import ViTConfig, ViTModel

    folder = models_dir / "identity_encoders" / "dino-vits16-random"
    torch.manual_seed(0)
    ViTModel(ViTConfig(**DINO_VITS16), add_pooling_layer=False).save_pretrained(folder)
    return folder.name


def models(detector: str, size: int, tmp: Path):
    """The three models (`EvalModels`) and a line saying what they are."""
    from bench.detection import full_size_detector
    from bench.model_memory import write_random
    from intenttuner import runtime
    from intenttuner.evaluation.evaluate import EvalModels
    from intenttuner.loading import load_model
    from intenttuner.tiny import TINY_BUILDERS

    clip = write_random("image_encoder", tmp)  # also makes tmp the runtime's models root
    dino = full_size_dino(tmp)
    if detector == "full":
        found = full_size_detector(size, tmp)
        what = f"full-size GroundingDINO Swin-T at {size} px"
    else:
        found = load_model("detector", TINY_BUILDERS["detector"](tmp / "grounding-dino").name)
        what = "tiny GroundingDINO"
    chosen = EvalModels(detector=found, identity_encoder=load_model("identity_encoder", dino),
                        clip=load_model("image_encoder", clip.name))
    return chosen, (f"DINO ViT-S/16 and open_clip ViT-B-32 at full size, {what} (all random "
                    f"weights), {runtime.get_runtime().torch_device()}, no quality scorer")


def images(plan, size: int) -> list:
    """One random ``size`` x ``size`` PIL image per plan item."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
            for _ in plan.items]


def reference_image():
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(1)
    return Image.fromarray(rng.integers(0, 255, (320, 240, 3), dtype=np.uint8))


def batched(generated, intent, chosen):
    from intenttuner.evaluation.evaluate import evaluate

    intent.memo().clear()
    return evaluate(generated, intent, chosen, label="batched")


def one_at_a_time(generated, intent, chosen, recompute: bool = True) -> list:
    """Each image scored alone with batch size 1 (the value texts embedded per call);
    ``recompute``: the memo cleared before every image, so the reference crops are embedded
    again, else kept (to tell the cache's share from the batching's)."""
    from intenttuner.evaluation.controllability import ControlSettings
    from intenttuner.evaluation.evaluate import evaluate
    from intenttuner.evaluation.leakage import LeakageSettings
    from intenttuner.evaluation.stability import StabilitySettings

    one = {"stability": StabilitySettings(batch_size=1),
           "controllability": ControlSettings(batch_size=1),
           "leakage": LeakageSettings(batch_size=1)}
    results = []
    for g in generated:
        if recompute:
            intent.memo().clear()
        results.append(evaluate([g], intent, chosen, label="one", **one))
    return results


def seen(results) -> dict:
    """(metric, item, concept, target, other) -> what was measured in that image."""
    return {(name, r.item, r.concept, r.target, r.other): (r.found, r.similarity, r.margin)
            for scores in results for name, result in scores.results.items()
            for r in result.records}


def check_same(batch, singles) -> int:
    """Raise unless both ways measured the same per image; returns the records compared."""
    expected, got = seen([batch]), seen(singles)
    if expected.keys() != got.keys():
        raise AssertionError("the two ways scored different (image, concept) pairs")
    for key, (found, *numbers) in expected.items():
        other_found, *other = got[key]
        close = all((a is None and b is None) or (a is not None and b is not None
                                                  and abs(a - b) < 1e-3)
                    for a, b in zip(numbers, other, strict=True))
        if found != other_found or not close:
            raise AssertionError(f"{key}: batched saw {expected[key]}, one at a time {got[key]}")
    return len(expected)


def main() -> None:
    from bench.timing import timed
    from intenttuner import runtime
    from intenttuner.evaluation.pairing import pair_images
    from intenttuner.evaluation.prompts import PlanSettings, build_plan
    from intenttuner.intent.parse import parse_intent

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=2, help="prompts per test")
    parser.add_argument("--images-per-prompt", type=int, default=2)
    parser.add_argument("--size", type=int, default=512, help="side of the generated images")
    parser.add_argument("--detector", choices=("tiny", "full"), default="tiny")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        chosen, what = models(args.detector, args.size, Path(tmp))
        intent = parse_intent(DESCRIPTION, [reference_image()], REFERENCE_BOXES)
        plan = build_plan(intent, PlanSettings(prompts_per_test=args.prompts,
                                               images_per_prompt=args.images_per_prompt))
        generated = pair_images(plan, images(plan, args.size))
        records = check_same(batched(generated, intent, chosen),  # also the warm-up
                             one_at_a_time(generated, intent, chosen))
        ways = {"one": lambda: one_at_a_time(generated, intent, chosen),
                "cached": lambda: one_at_a_time(generated, intent, chosen, recompute=False),
                "batched": lambda: batched(generated, intent, chosen)}
        # Alternating, run by run: a slow spell of the shared machine then slows all three
        # ways alike instead of whichever was being timed.
        samples: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(args.runs):
            for name, way in ways.items():
                samples[name].append(timed(way, 1))
    one, cached, batch = (statistics.median(samples[name]) for name in ways)
    ratios = ", ".join(f"{a / b:.2f}" for a, b in zip(samples["one"], samples["batched"],
                                                       strict=True))
    n = len(generated)
    counts = ", ".join(f"{len(plan.for_test(t))} {t.value}" for t in
                       sorted({g.item.test for g in generated}, key=lambda t: t.value))
    print(f"models: {what}")
    print(f"Evaluation  {n} images {args.size}px ({counts}; {records} image-concept records, "
          f"the same both ways): one at a time {n / one:5.2f} img/s, batched {n / batch:5.2f} "
          f"img/s -> {one / batch:4.2f}x (median of {args.runs}; per run {ratios})")
    print(f"            of which caching: one at a time with the references embedded once "
          f"{n / cached:5.2f} img/s ({one / cached:4.2f}x), batching on top {cached / batch:4.2f}x")
    runtime.set_runtime(runtime.TorchRuntime())


if __name__ == "__main__":
    main()
