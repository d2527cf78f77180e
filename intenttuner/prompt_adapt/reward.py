"""The prompt reward of Promptist (Hao et al. 2023): did a rewrite make better pictures of the
same thing?

For a plain prompt x, its rewrite y and images generated from each with the same seeds:

    reward = E[aesthetic(image of y)] - E[aesthetic(image of x)]
             + E[min(20 * CLIP(image of y, x) - 5.6, 0)]

The first term (the *gain*) is what the rewrite is for: more pleasing pictures, judged by the
LAION aesthetic predictor (`families.aesthetic.AestheticScorer`). The second (the *penalty*)
keeps it honest: CLIP cosine between each image of the rewrite and the *plain* text, scaled so
that it costs nothing while the cosine stays at or above 0.28 (5.6 / 20) and grows linearly
below, so a rewrite that draws something else loses what it gained in looks. CLIP is
`families.image_encoder.OpenClipEncoder` (the paper used ViT-L/14, which is also the one the
aesthetic predictor needs, so one encoder serves both).

Means are taken per prompt over its images (the paper's expectation over seeds), then over
prompts for the report, so every prompt weighs the same whatever its image count. The same
seeds for both prompts of an item matter: they cancel the noise of the seed out of the gain.

    report = prompt_reward(plain, adapted, plain_images, adapted_images, scorer, clip)
    report.mean_reward, report.helped, report.summary()
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import torch
from PIL import Image, ImageDraw

from ..drawing import column_widths, draw_table
from ..drawing import font as load_font
from ..errors import InputError
from ..evaluation.common import model_name
from ..evaluation.preview import BAD, GOOD, MUTED
from ..evaluation.report import CELL_PAD, GRID, ROW
from ..intent.preview import BACKGROUND, PAD, TEXT
from ..runtime import get_runtime

RELEVANCE_SCALE = 20.0  # the paper's constants: 20 * cosine - 5.6, clipped above at 0
RELEVANCE_OFFSET = 5.6
PENALTY_THRESHOLD = RELEVANCE_OFFSET / RELEVANCE_SCALE  # 0.28: a cosine at or above is free
FORMULA = ("reward = aesthetic(adapted) - aesthetic(plain) + min("
           f"{RELEVANCE_SCALE:g} x CLIP(adapted image, plain text) - {RELEVANCE_OFFSET:g}, 0)")
SAME_SEEDS = "generate both with the same seeds list (one image per seed for each prompt)"


@dataclass
class PromptReward:
    """The reward of one rewrite, with the numbers it is made of (each a mean over the images
    of the prompt)."""

    index: int  # 1-based, as the prompts are numbered in messages
    plain: str
    adapted: str
    images: int  # images per prompt (the seeds)
    aesthetic_plain: float
    aesthetic_adapted: float
    gain: float  # aesthetic_adapted - aesthetic_plain
    relevance: float  # mean CLIP cosine of the adapted images with the plain text
    penalty: float  # mean of min(20 x cosine - 5.6, 0): 0 or negative
    reward: float  # gain + penalty


@dataclass
class RewardReport:
    """Rewards of a list of rewrites, their means over the prompts and the models that judged."""

    items: list[PromptReward]
    mean_gain: float
    mean_relevance: float
    mean_penalty: float
    mean_reward: float
    helped: int  # items with reward > 0: the rewrite made better pictures of the same thing
    quality_name: str
    clip_name: str
    skipped: list[int] = field(default_factory=list)  # 1-based: empty plain prompts, left out

    def summary(self) -> str:
        """A header with the means, the formula, then one line per prompt pair."""
        images = sorted({item.images for item in self.items})
        per = "/".join(map(str, images))
        lines = [
            f"Prompt reward of {len(self.items)} rewrite(s), {per} image(s) each: mean "
            f"{self.mean_reward:+.3f} (aesthetic gain {self.mean_gain:+.3f}, relevance "
            f"penalty {self.mean_penalty:+.3f}, relevance {self.mean_relevance:.3f}); "
            f"{self.helped} of {len(self.items)} helped",
            f"{FORMULA}; quality: {self.quality_name}, CLIP: {self.clip_name}",
        ]
        if self.skipped:
            lines.append(f"Left out: prompt(s) {', '.join(map(str, self.skipped))}, empty (no "
                         "text for CLIP to compare the images with)")
        for item in self.items:
            note = "" if item.penalty == 0 else (
                f" (relevance {item.relevance:.3f} < {PENALTY_THRESHOLD:g}: drifts from the "
                "plain prompt)")
            lines.append(
                f"{item.index:3d}  reward {item.reward:+.3f} = gain {item.gain:+.3f} "
                f"({item.aesthetic_plain:.2f} -> {item.aesthetic_adapted:.2f}) + penalty "
                f"{item.penalty:+.3f}{note}")
            lines.append(f"     {_cut(item.plain)}  =>  {_cut(item.adapted)}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """Plain data (JSON-ready): the means, the models, the formula and every item."""
        data = asdict(self)
        data["formula"] = FORMULA
        data["penalty_threshold"] = PENALTY_THRESHOLD
        return data


def prompt_reward(plain_prompts: Sequence[str], adapted_prompts: Sequence[str],
                  plain_images: Sequence[Sequence[Image.Image]],
                  adapted_images: Sequence[Sequence[Image.Image]], quality,
                  clip) -> RewardReport:
    """The reward of each rewrite from images already generated.

    ``plain_images[i]`` / ``adapted_images[i]``: the images of prompt i (a lone image counts as a
    group of one), the same number for both (the same seeds). ``quality``: ``score_images(pils)
    -> (N,)`` (an AestheticScorer); ``clip``: ``embed_images(pils)`` / ``embed_texts(texts)``
    -> (N, D) (an OpenClipEncoder; normalised here, so any encoder does). All images are scored
    in one call and the adapted ones embedded in one call, so the models batch as they like;
    when ``quality`` is an AestheticScorer on ``clip`` itself, every image is embedded once
    and both terms come from those embeddings. An empty plain prompt (Prompt Adapt passes
    them through) is left out and listed in ``skipped``: CLIP has no text to compare with.
    """
    plain, adapted = _prompts(plain_prompts, adapted_prompts)
    skipped = [i for i, p in enumerate(plain) if not p.strip()]
    plain_groups = _groups(plain_images, len(plain), "plain", skipped)
    adapted_groups = _groups(adapted_images, len(plain), "adapted", skipped)
    for i, (p, a) in enumerate(zip(plain_groups, adapted_groups, strict=True), start=1):
        if len(p) != len(a):
            raise InputError(f"Prompt {i} has {len(p)} plain image(s) but {len(a)} adapted: "
                             f"{SAME_SEEDS}.")
    kept = [i for i in range(len(plain)) if i not in skipped]
    flat_plain = [image for i in kept for image in plain_groups[i]]
    flat_adapted = [image for i in kept for image in adapted_groups[i]]
    scores, adapted_vectors = _score_and_embed(flat_plain, flat_adapted, quality, clip)
    text_vectors = _unit(clip.embed_texts([plain[i] for i in kept]), len(kept), "embed_texts")
    counts = [len(plain_groups[i]) for i in kept]
    owner = torch.tensor([k for k, n in enumerate(counts) for _ in range(n)])
    cosines = (adapted_vectors * text_vectors[owner]).sum(dim=-1).tolist()
    scores_plain, scores_adapted = scores[:len(flat_plain)], scores[len(flat_plain):]
    items, start = [], 0
    for i, n in zip(kept, counts, strict=True):
        span = slice(start, start + n)
        start += n
        items.append(_item(i + 1, plain[i], adapted[i], scores_plain[span],
                           scores_adapted[span], cosines[span]))
    return RewardReport(
        items=items,
        mean_gain=_mean(item.gain for item in items),
        mean_relevance=_mean(item.relevance for item in items),
        mean_penalty=_mean(item.penalty for item in items),
        mean_reward=_mean(item.reward for item in items),
        helped=sum(item.reward > 0 for item in items),
        quality_name=model_name(quality), clip_name=model_name(clip),
        skipped=[i + 1 for i in skipped],
    )


def relevance_penalty(cosine: float) -> float:
    """min(20 x cosine - 5.6, 0): nothing at or above 0.28, linear below."""
    return min(RELEVANCE_SCALE * cosine - RELEVANCE_OFFSET, 0.0)


def generate_and_reward(generate: Callable[[str, int], Image.Image],
                        plain_prompts: Sequence[str], adapted_prompts: Sequence[str],
                        seeds: Sequence[int], quality, clip) -> RewardReport:
    """Generate an image of each prompt of each pair for every seed (``generate(prompt, seed)``
    -> PIL image, the same seed for both prompts of a pair) and reward the rewrites.

    A rewrite equal to its plain prompt is not generated again: with the same seed it is the
    same image, so its gain is 0 by construction rather than by two runs agreeing.
    """
    plain, adapted = _prompts(plain_prompts, adapted_prompts)
    seeds = list(seeds)
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise InputError(f"The reward needs a list of integer seeds (one image per seed for "
                         f"each prompt), got {seeds!r}.")
    runtime = get_runtime()
    # Empty plain prompts are left out of the reward, so nothing is generated for them.
    unchanged = [p == a or not p.strip() for p, a in zip(plain, adapted, strict=True)]
    total = len(seeds) * (sum(bool(p.strip()) for p in plain) + unchanged.count(False))
    plain_images: list[list[Image.Image]] = []
    adapted_images: list[list[Image.Image]] = []
    with runtime.progress(total=total, desc="Generating for the prompt reward") as bar:
        for p, a, same in zip(plain, adapted, unchanged, strict=True):
            plain_images.append([_generate(generate, p, seed, runtime, bar) for seed in seeds]
                                if p.strip() else [])
            adapted_images.append(plain_images[-1] if same else
                                  [_generate(generate, a, seed, runtime, bar) for seed in seeds])
    return prompt_reward(plain, adapted, plain_images, adapted_images, quality, clip)


# --- the table ------------------------------------------------------------------------------

MAX_PROMPT = 280  # widest prompt column, pixels: a long prompt is cut, not the table widened
HEADER = ("#", "plain prompt", "adapted prompt", "aesthetic plain", "aesthetic adapted", "gain",
          "relevance", "penalty", "reward")


def render_reward(report: RewardReport, max_rows: int = 60) -> Image.Image:
    """The report as a table: one row per prompt (at most ``max_rows``, the rest counted), then
    the means; a reward above 0 in green, below in red, a penalty that bit in red."""
    shown = report.items[:max_rows]
    rows = [[str(item.index), _cut(item.plain), _cut(item.adapted),
             f"{item.aesthetic_plain:.3f}", f"{item.aesthetic_adapted:.3f}",
             f"{item.gain:+.3f}", f"{item.relevance:.3f}", f"{item.penalty:+.3f}",
             f"{item.reward:+.3f}"] for item in shown]
    rows.append(["mean", f"{report.helped} of {len(report.items)} helped", "", "", "",
                 f"{report.mean_gain:+.3f}", f"{report.mean_relevance:.3f}",
                 f"{report.mean_penalty:+.3f}", f"{report.mean_reward:+.3f}"])
    fills = [_fills(item.penalty, item.reward) for item in shown]
    fills.append(_fills(report.mean_penalty, report.mean_reward))
    font = load_font(14)
    widths = column_widths(HEADER, rows, font, CELL_PAD)
    widths[1], widths[2] = min(MAX_PROMPT, widths[1]), min(MAX_PROMPT, widths[2])
    notes = [FORMULA, f"quality: {report.quality_name}, CLIP: {report.clip_name}; relevance "
             f"below {PENALTY_THRESHOLD:g} is penalised"]
    if report.skipped:
        notes.append(f"left out, empty: prompt(s) {', '.join(map(str, report.skipped))}")
    if len(shown) < len(report.items):
        notes.append(f"showing the first {len(shown)} of {len(report.items)} prompts")
    top = PAD + 30 + 18 * len(notes) + PAD
    canvas = Image.new("RGB", (max(640, 2 * PAD + sum(widths)),
                               top + ROW * (len(rows) + 1) + PAD), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    draw.text((PAD, PAD), f"Prompt reward {report.mean_reward:+.3f} (higher is better)",
              fill=TEXT, font=load_font(20))
    for n, note in enumerate(notes):
        draw.text((PAD, PAD + 32 + 18 * n), note, fill=MUTED, font=load_font(13))
    draw_table(draw, HEADER, rows, widths, (PAD, top), font, row_height=ROW, fill=TEXT,
               grid=GRID, fills=fills, pad=CELL_PAD)
    return canvas


def _fills(penalty: float, reward: float) -> list:
    colour = GOOD if reward > 0 else BAD if reward < 0 else TEXT
    return [TEXT] * 7 + [BAD if penalty < 0 else TEXT, colour]


# --- helpers ----------------------------------------------------------------------------------


def _item(index: int, plain: str, adapted: str, plain_scores: list[float],
          adapted_scores: list[float], cosines: list[float]) -> PromptReward:
    aesthetic_plain, aesthetic_adapted = _mean(plain_scores), _mean(adapted_scores)
    gain = aesthetic_adapted - aesthetic_plain
    penalty = _mean(relevance_penalty(c) for c in cosines)
    return PromptReward(index=index, plain=plain, adapted=adapted, images=len(cosines),
                        aesthetic_plain=aesthetic_plain, aesthetic_adapted=aesthetic_adapted,
                        gain=gain, relevance=_mean(cosines), penalty=penalty,
                        reward=gain + penalty)


def _score_and_embed(plain: list, adapted: list, quality, clip) -> tuple[list[float],
                                                                        torch.Tensor]:
    """Aesthetic scores of plain + adapted images (in that order) and the adapted images' unit
    CLIP vectors. An AestheticScorer built on ``clip`` scores the same embeddings CLIP gives,
    so every image is embedded once instead of the adapted ones twice."""
    images = plain + adapted
    predictor = getattr(quality, "predictor", None)
    if predictor is not None and getattr(quality, "encoder", None) is clip:
        vectors = _unit(clip.embed_images(images), len(images), "embed_images")
        scores = predictor.score_embeddings(vectors)
        adapted_vectors = vectors[len(plain):]
    else:
        scores = quality.score_images(images)
        adapted_vectors = _unit(clip.embed_images(adapted), len(adapted), "embed_images")
    scores = torch.as_tensor(scores, dtype=torch.float64).reshape(-1)
    if len(scores) != len(images):
        raise InputError(f"The quality scorer {model_name(quality)} returned {len(scores)} "
                         f"score(s) for {len(images)} image(s): connect an aesthetic scorer "
                         "(Load Aesthetic Scorer).")
    return scores.tolist(), adapted_vectors


def _unit(vectors, count: int, call: str) -> torch.Tensor:
    """(count, D) float64 vectors of unit length (a cosine is then a dot product)."""
    vectors = torch.as_tensor(vectors).to(torch.float64)
    if vectors.ndim != 2 or len(vectors) != count:
        raise InputError(f"The CLIP encoder's {call} returned shape {tuple(vectors.shape)} for "
                         f"{count} input(s): connect an image encoder (Load Image Encoder).")
    return torch.nn.functional.normalize(vectors, dim=-1)


def _prompts(plain: Sequence[str] | str, adapted: Sequence[str] | str) -> tuple[list[str],
                                                                              list[str]]:
    """Both lists of prompts (a lone string is a list of one), checked to pair up."""
    plain = [plain] if isinstance(plain, str) else list(plain)
    adapted = [adapted] if isinstance(adapted, str) else list(adapted)
    if len(plain) != len(adapted):
        raise InputError(f"{len(plain)} plain prompt(s) but {len(adapted)} adapted: the reward "
                         "compares each plain prompt with its own rewrite; give both lists in "
                         "the same order.")
    for which, prompts in (("plain", plain), ("adapted", adapted)):
        for i, prompt in enumerate(prompts, start=1):
            if not isinstance(prompt, str):
                raise InputError(f"{which.capitalize()} prompt {i} is a "
                                 f"{type(prompt).__name__}, not a text.")
    if not any(p.strip() for p in plain):
        raise InputError("No plain prompts to reward (the list is empty, or every prompt is): "
                         "connect the prompts Prompt Adapt was given.")
    return plain, adapted


def _groups(groups: Sequence, count: int, which: str,
            skipped: Sequence[int]) -> list[list[Image.Image]]:
    """Image groups, one per prompt; a lone image is a group of one. Only the prompts that are
    rewarded (not in ``skipped``) must have images."""
    groups = list(groups)
    if len(groups) != count:
        raise InputError(f"{len(groups)} group(s) of {which} images for {count} prompt(s): "
                         f"give one list of images per prompt ({SAME_SEEDS}).")
    out = []
    for i, group in enumerate(groups, start=1):
        group = [group] if isinstance(group, Image.Image) else list(group)
        if not group and i - 1 not in skipped:
            raise InputError(f"Prompt {i} has no {which} images: {SAME_SEEDS}.")
        bad = next((g for g in group if not isinstance(g, Image.Image)), None)
        if bad is not None:
            raise InputError(f"The {which} images of prompt {i} include a "
                             f"{type(bad).__name__}, not a PIL image.")
        out.append(group)
    return out


def _generate(generate: Callable, prompt: str, seed: int, runtime, bar) -> Image.Image:
    runtime.check_interrupted()
    image = generate(prompt, seed)
    if not isinstance(image, Image.Image):
        raise InputError(f"generate('{_cut(prompt, 40)}', {seed}) returned a "
                         f"{type(image).__name__}; it must return one PIL image.")
    bar.update(1)
    return image


def _mean(values) -> float:
    values = list(values)
    return math.fsum(values) / len(values)


def _cut(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"
