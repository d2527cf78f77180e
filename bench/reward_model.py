"""Train Reward Model throughput: the marked images and prompts embedded once, batched, then the
MLP trained on the cached vectors (the library) vs re-embedded one per encoder call every epoch
(the naive baseline), in the same run.

- cached: ``train_reward_model(examples, encoder, RewardSettings(epochs=--epochs))``, as the
  node calls it (no name, so nothing is saved): every image (batch 32) and every prompt and
  perturbed prompt (batch 256) embedded once, then ``--epochs`` passes of the MLP over them;
- naive: what a straightforward implementation does: every epoch embeds all images and texts
  again, one per encoder call, and trains that epoch on them. Built from the library's pieces
  (`train_reward._embed` over an encoder wrapper that embeds one item per call, and
  `train_reward._train_mlp` with ``reembed``), so the MLP, the loss, the seeds and the
  shuffles are the library's. The encoder runs at the host's thread count in both ways (the
  library runs only the MLP on one thread, and so does the baseline).

Both must train the same model: their per-epoch losses are compared (the embeddings differ only
by fp32 rounding between batch shapes) and the largest difference is printed.

Model: open_clip ViT-B-32 at full size (random weights, `bench.model_memory.write_random`)
through the image-encoder family's loader, fp32 on CPU. Images: ``--images`` synthetic 224 px
marked images, one red (good) or other-coloured (bad) circle or square on a light background,
half good (as tests/reward_helpers.py's ``red_rule_examples``, at the encoder's size); the
prompts name the shape and its colour ("a red circle"), so each good prompt gets perturbed
copies with the colour swapped and the auxiliary prompt loss takes part. The default settings
otherwise (MLP 128 wide, 4 perturbed prompts per good prompt, 20 % held out).

The two ways take turns, ``--runs`` times; the medians and each run's times and ratio (naive /
cached: above 1 means caching pays) are printed. Peak RSS: after writing and loading the
encoder (both in this process), then reset (Linux clear_refs) before each turn: the peak while
training, the resident encoder included.

    OMP_NUM_THREADS=2 .venv/bin/python -m bench.reward_model [--images 48] [--epochs 3]
        [--runs 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script (python bench/reward_model.py)
    sys.path.insert(0, str(ROOT))

SIZE = 224  # ViT-B-32's input side
COLOURS = {"red": (220, 30, 30), "blue": (30, 60, 220), "green": (30, 180, 60),
           "yellow": (230, 210, 40), "purple": (140, 50, 170), "gray": (128, 128, 128)}
# The library is imported inside the functions, after the path set-up above (as in
# bench/evaluate.py).


def marked_images(n: int, seed: int = 0) -> list:
    """``n`` examples: one circle or square on a light ``SIZE`` px background, good (every
    other one) exactly when it is red; the prompt names its colour and shape."""
    from PIL import Image, ImageDraw

    from intenttuner.reward.examples import Example

    rng = random.Random(seed)
    others = [c for c in COLOURS if c != "red"]
    examples = []
    for i in range(n):
        good = i % 2 == 0
        image = Image.new("RGB", (SIZE, SIZE), tuple(rng.randint(170, 255) for _ in range(3)))
        shape, side = rng.choice(("circle", "square")), rng.randint(84, 126)
        x, y = rng.randint(0, SIZE - side), rng.randint(0, SIZE - side)
        draw = ImageDraw.Draw(image)
        colour = "red" if good else rng.choice(others)
        (draw.ellipse if shape == "circle" else draw.rectangle)(
            [x, y, x + side, y + side], fill=COLOURS[colour])
        examples.append(Example(image, f"a {colour} {shape}", good))
    return examples


class OneAtATime:
    """An encoder that embeds one image (or text) per call of the wrapped one."""

    def __init__(self, encoder):
        self.encoder, self.embed_dim = encoder, encoder.embed_dim

    def embed_images(self, images, batch_size: int = 1):
        import torch

        return torch.cat([self.encoder.embed_images([im], batch_size=1) for im in images])

    def embed_texts(self, texts, batch_size: int = 1):
        import torch

        return torch.cat([self.encoder.embed_texts([t], batch_size=1) for t in texts])


def naive(examples, encoder, settings) -> list[float]:
    """The baseline: embed everything one item per call before every epoch, train that epoch
    on those vectors (the library's MLP, loss and loop). Returns the per-epoch losses."""
    import torch

    from intenttuner.reward.examples import stratified_split
    from intenttuner.reward.train_reward import _embed, _train_mlp

    one, threads = OneAtATime(encoder), torch.get_num_threads()

    def reembed():  # inside the MLP's one-thread block: the encoder gets the host's threads
        torch.set_num_threads(threads)
        try:
            return _embed(examples, one, settings)
        finally:
            torch.set_num_threads(1)

    data = _embed(examples, one, settings)
    train, held = stratified_split([e.good for e in examples], settings.held_out, settings.seed)
    _, losses, _ = _train_mlp(data, train, held, settings, reembed)
    return losses


def main() -> None:
    import torch

    from bench.model_memory import write_random
    from bench.timing import peak_rss_gib, reset_peak, rss_summary, timed
    from intenttuner import runtime
    from intenttuner.loading import load_model
    from intenttuner.reward.train_reward import RewardSettings, _embed, train_reward_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48, help="marked images, half good; at least 40 (MIN_MARKS)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    started = time.perf_counter()
    examples = marked_images(args.images)
    settings = RewardSettings(epochs=args.epochs)
    with tempfile.TemporaryDirectory() as tmp:
        encoder = load_model("image_encoder", write_random("image_encoder", Path(tmp)).name)
        rss = {"loaded": peak_rss_gib()}
        data = _embed(examples, encoder, settings)  # the warm-up: first calls allocate
        OneAtATime(encoder).embed_images([examples[0].image])

        losses: dict[str, list[float]] = {}

        def cached() -> None:
            losses["cached"] = train_reward_model(examples, encoder, settings).losses

        def one_per_call() -> None:
            losses["naive"] = naive(examples, encoder, settings)

        ways = {"naive": one_per_call, "cached": cached}
        # Alternating, run by run: a slow spell of the shared machine then slows both ways
        # alike instead of whichever was being timed.
        samples: dict[str, list[float]] = {name: [] for name in ways}
        differ = 0.0
        resets = True
        for _ in range(args.runs):
            for name, way in ways.items():
                resets = reset_peak() and resets
                samples[name].append(timed(way, 1))
                rss[name] = max(rss.get(name, 0.0), peak_rss_gib())
            differ = max(differ, *(abs(a - b) for a, b in zip(losses["naive"],
                                                               losses["cached"], strict=True)))
        device = runtime.get_runtime().torch_device()
    if differ > 1e-3:
        raise AssertionError(f"the two ways trained different models: losses differ by "
                             f"{differ:.2e} ({losses['naive']} vs {losses['cached']})")
    naive_s, cached_s = (statistics.median(samples[name]) for name in ways)
    per_run = "; ".join(f"{a:.1f} s / {b:.1f} s = {a / b:.2f}" for a, b in
                        zip(samples["naive"], samples["cached"], strict=True))
    n, texts, good = len(examples), len(data.texts), sum(e.good for e in examples)
    prompts = len({e.prompt for e in examples})
    print(f"open_clip ViT-B-32 at full size (random weights), fp32 {device}, "
          f"{torch.get_num_threads()} threads; reward MLP {settings.hidden} wide")
    print(f"{n} marked images {SIZE}px ({good} good), {texts} texts ({prompts} prompts + "
          f"{texts - prompts} perturbed), {args.epochs} epochs, {round(settings.held_out * 100)} "
          f"% held out")
    print(f"  naive (re-embedded every epoch, one per call)  {naive_s:7.2f} s   median of "
          f"{args.runs}")
    print(f"  cached (embedded once, batched)                {cached_s:7.2f} s")
    print(f"  -> {naive_s / cached_s:4.2f}x (naive / cached; per run {per_run}); same "
          f"losses: yes (largest difference {differ:.1e}); the naive way costs "
          f"{naive_s / args.epochs:.1f} s per epoch (the node's default is "
          f"{RewardSettings().epochs} epochs)")
    print(rss_summary("after writing and loading the encoder", rss, resets,
                      time.perf_counter() - started))
    runtime.set_runtime(runtime.TorchRuntime())


if __name__ == "__main__":
    main()
