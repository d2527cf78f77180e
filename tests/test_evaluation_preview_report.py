"""The metric previews and the comparison report, on hand-made results: what each caption says,
where boxes land on thumbnails of any size, and that a metric without a number is never drawn
or written as a 0."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from intenttuner.detection.preview import colour_of
from intenttuner.errors import InputError
from intenttuner.evaluation.pairing import Generated
from intenttuner.evaluation.preview import (
    BAD,
    GOOD,
    MIN_WIDTH,
    THUMB,
    caption,
    headline,
    plan_summary,
    render_metric,
)
from intenttuner.evaluation.report import (
    HATCH,
    METRIC_COLOURS,
    report_image,
    report_json,
    table_rows,
)
from intenttuner.evaluation.types import (
    ConceptResult,
    EvalItem,
    EvalPlan,
    EvalScores,
    ImageRecord,
    MetricResult,
)
from intenttuner.evaluation.types import Test as EvalTest  # pytest would collect 'Test*'
from intenttuner.intent.preview import PAD

COLOURS = [(250, 0, 0), (0, 250, 0), (0, 0, 250), (250, 250, 0), (0, 250, 250), (250, 0, 250),
           (120, 60, 0), (0, 60, 120)]


def shots(test: EvalTest, sizes: list[tuple[int, int]], mode: str = "RGB") -> list[Generated]:
    """Solid images of distinct colours (so a test can tell which were drawn), one per item."""
    out = []
    for k, size in enumerate(sizes):
        item = EvalItem(id=f"{test.value}-{k:03d}", test=test, prompt=f"a photo of sks, {k}",
                        seed=k)
        image = Image.new("RGB", size, COLOURS[k]).convert(mode)
        out.append(Generated(item=item, image=image, index=k))
    return out


def stability(generated: list[Generated], found: bool = True, **extra) -> MetricResult:
    records = [ImageRecord(item=g.item.id, image=g.index, concept="face", found=found,
                           box=(0.0, 0.0, 10.0, 10.0) if found else None,
                           similarity=0.8 if found else None) for g in generated]
    return MetricResult(metric=EvalTest.STABILITY, applicable=True, score=0.8 if found else 0.0,
                        records=records, **extra)


def pixels_of(image: Image.Image, colour: tuple[int, int, int]) -> np.ndarray:
    """(N, 2) x, y of the pixels exactly ``colour``."""
    ys, xs = np.nonzero(np.all(np.asarray(image) == colour, axis=-1))
    return np.stack([xs, ys], axis=1)


# --- captions and headlines -----------------------------------------------------------------


@pytest.mark.parametrize(("metric", "record", "expected"), [
    (EvalTest.STABILITY, dict(concept="face", found=True, similarity=0.8234), ("face 0.82", None)),
    (EvalTest.STABILITY, dict(concept="face", found=False), ("face MISSING", BAD)),
    (EvalTest.STABILITY, dict(concept="face", found=True), ("face found", None)),
    (EvalTest.LEAKAGE, dict(concept="necklace", found=True), ("necklace LEAKED", BAD)),
    (EvalTest.LEAKAGE, dict(concept="necklace", found=True, similarity=0.91),
     ("necklace LEAKED 0.91", BAD)),
    (EvalTest.LEAKAGE, dict(concept="necklace", found=False), ("necklace clean", GOOD)),
    (EvalTest.CONTROLLABILITY, dict(concept="hair", target="red hair", other="blue hair",
                                predicted="red hair", margin=0.0312, correct=True, found=True),
     ("red hair->red hair +0.031", GOOD)),
    (EvalTest.CONTROLLABILITY, dict(concept="hair", target="red hair", other="blue hair",
                                predicted="blue hair", margin=-0.02, correct=False, found=False),
     ("red hair->blue hair -0.020 (whole image)", BAD)),
])
def test_caption_says_what_the_metric_saw(metric, record, expected):
    text, colour = caption(ImageRecord(item="x-000", image=0, **record), metric)
    assert text == expected[0]
    if expected[1] is not None:
        assert colour == expected[1]


def test_nothing_is_captioned_where_nothing_was_looked_for():
    record = ImageRecord(item="stability-000", image=0, concept="style", found=None)
    assert caption(record, EvalTest.STABILITY) is None
    assert caption(record, EvalTest.LEAKAGE) is None


def test_headline_says_not_applicable_and_which_way_is_better():
    na = MetricResult.not_applicable(EvalTest.STABILITY, "the intent keeps no concept")
    assert headline(na) == "Stability: not applicable: the intent keeps no concept"
    leak = MetricResult(metric=EvalTest.LEAKAGE, applicable=True, score=0.25,
                        higher_is_better=False)
    assert headline(leak) == "Delete leakage 0.250 (lower is better)"


# --- the preview grid -------------------------------------------------------------------------


def test_boxes_are_scaled_onto_thumbnails_of_any_size():
    generated = shots(EvalTest.STABILITY, [(400, 200), (50, 100)])
    records = [ImageRecord(item="stability-000", image=0, concept="face", found=True,
                           box=(100, 50, 300, 150), similarity=0.9),
               ImageRecord(item="stability-001", image=1, concept="face", found=False)]
    result = MetricResult(metric=EvalTest.STABILITY, applicable=True, score=0.45, records=records)
    preview = render_metric(generated, result)

    assert preview.width == MIN_WIDTH
    # 400x200 -> 192x96: the box (100, 50)-(300, 150) becomes 96 x 48 pixels, outline 2 px
    box = pixels_of(preview, colour_of("face"))
    assert tuple(box.max(axis=0) - box.min(axis=0) + 1) == (97, 49)
    # the tall image is scaled to 96 x 192 and drawn in the second tile
    tall = pixels_of(preview, COLOURS[1])
    assert tuple(tall.max(axis=0) - tall.min(axis=0) + 1) == (96, THUMB)
    assert tall[:, 0].min() == PAD + THUMB + PAD + (THUMB - 96) // 2


def test_grid_draws_at_most_max_images_in_scored_order():
    generated = shots(EvalTest.STABILITY, [(64, 64)] * 8)
    preview = render_metric(generated, stability(generated), max_images=3)
    drawn = [k for k, colour in enumerate(COLOURS) if len(pixels_of(preview, colour))]
    assert drawn == [0, 1, 2]
    full = render_metric(generated, stability(generated))
    assert full.width == PAD + 6 * (THUMB + PAD)  # six per row, then a second row
    assert full.height > preview.height + THUMB


def test_batch_of_one_and_greyscale_or_rgba_images():
    for mode in ("L", "RGBA"):
        generated = shots(EvalTest.STABILITY, [(30, 90)], mode)
        preview = render_metric(generated, stability(generated))
        assert preview.mode == "RGB" and preview.width == MIN_WIDTH


def test_a_result_without_records_is_the_header_alone():
    na = MetricResult.not_applicable(EvalTest.CONTROLLABILITY, "no modified concept has two values")
    preview = render_metric([], na)
    assert preview.width == MIN_WIDTH and preview.height < THUMB
    # the images of a not applicable test are not drawn either
    generated = shots(EvalTest.STABILITY, [(64, 64)])
    assert render_metric(generated, na).size == preview.size


def test_a_record_of_an_image_that_was_not_given_is_refused():
    generated = shots(EvalTest.STABILITY, [(64, 64)] * 3)
    with pytest.raises(InputError, match="record of image 2"):
        render_metric(generated[:2], stability(generated))


def test_the_header_grows_with_concepts_and_warnings():
    generated = shots(EvalTest.STABILITY, [(64, 64)])
    plain = render_metric(generated, stability(generated))
    detailed = render_metric(generated, stability(
        generated, found=False, warnings=["face ('face') was never found"],
        concepts=[ConceptResult(concept="face", score=0.0, images=1, detection_rate=0.0)]))
    assert detailed.height == plain.height + 2 * 18


def test_plan_summary_counts_the_tests_and_numbers_the_prompts_as_the_lists_do():
    items = [g.item for g in shots(EvalTest.STABILITY, [(8, 8)] * 3)]
    items += [g.item for g in shots(EvalTest.LEAKAGE, [(8, 8)] * 2)]
    plan = EvalPlan(intent_fingerprint="0" * 16, trigger="sks", items=items,
                    notes=["no modified concept: controllability is not applicable"])
    lines = plan_summary(plan, max_prompts=4).splitlines()
    assert lines[0] == "5 image(s) to generate for 'sks' (3 stability, 2 leakage)"
    assert lines[1] == "Note: no modified concept: controllability is not applicable"
    assert lines[2:] == [f"{i:3d}  seed {i % 3}  a photo of sks, {i % 3}" for i in range(4)] + [
        "... and 1 more"]


# --- the report -------------------------------------------------------------------------------


def run(label: str, stability_score: float | None = 0.8, leakage: float | None = 0.25,
        quality: float | None = 0.6) -> EvalScores:
    if stability_score is None:
        stab = MetricResult.not_applicable(EvalTest.STABILITY, "the intent keeps no concept")
    else:
        stab = MetricResult(metric=EvalTest.STABILITY, applicable=True, score=stability_score,
                            parts={"identity": 0.9, "quality": quality, "aesthetic": 6.4},
                            records=[ImageRecord(item="stability-000", image=0)])
    scores = EvalScores(label=label).with_result(stab)
    if leakage is not None:
        scores = scores.with_result(MetricResult(metric=EvalTest.LEAKAGE, applicable=True,
                                                 score=leakage, higher_is_better=False))
    return scores


def test_table_rows_say_why_a_number_is_missing():
    rows = table_rows([run("plain"), run("intent", stability_score=None, leakage=None),
                       run("no scorer", quality=None)])
    assert rows[0] == {"label": "plain", "stability": 0.8, "controllability": None,
                       "leakage": 0.25, "identity": 0.9, "quality": 0.6,
                       "balanced_accuracy": None,
                       "missing": {"controllability": "not run", "balanced_accuracy": "not run"}}
    assert rows[1]["stability"] is None and rows[1]["identity"] is None
    assert rows[1]["missing"]["stability"] == "n/a: the intent keeps no concept"
    assert rows[1]["missing"]["leakage"] == "not run"
    assert rows[2]["quality"] is None and rows[2]["missing"]["quality"] == "not measured"


def test_json_holds_the_runs_without_records_and_the_table():
    runs = [run("plain"), run("intent", stability_score=None)]
    data = json.loads(report_json(runs))
    assert data["table"] == table_rows(runs)
    assert [r["label"] for r in data["runs"]] == ["plain", "intent"]
    stab = data["runs"][0]["results"]["stability"]
    assert "records" not in stab and stab["parts"]["aesthetic"] == 6.4
    assert data["runs"][0]["results"]["leakage"]["higher_is_better"] is False
    assert EvalScores.model_validate({**data["runs"][1], "results": {}}).label == "intent"


def test_duplicate_labels_and_no_runs_are_refused():
    with pytest.raises(InputError, match="'lora'"):
        report_json([run("lora"), run("other"), run("lora")])
    with pytest.raises(InputError, match="'lora'"):
        report_image([run("lora"), run("lora")])
    with pytest.raises(InputError, match="at least one"):
        report_image([])


def bar_pixels(image: Image.Image, metric: EvalTest) -> int:
    legend_swatch = 15 * 15
    return len(pixels_of(image, METRIC_COLOURS[metric])) - legend_swatch


def test_bars_are_proportional_and_not_applicable_is_hatched_never_zero():
    half, full = report_image([run("a", 0.5)]), report_image([run("a", 1.0)])
    assert bar_pixels(full, EvalTest.STABILITY) == pytest.approx(
        2 * bar_pixels(half, EvalTest.STABILITY), rel=0.03)
    na = report_image([run("a", None)])
    assert bar_pixels(na, EvalTest.STABILITY) == 0  # no bar at all, not even a line at 0
    assert len(pixels_of(na, HATCH)) > len(pixels_of(half, HATCH))
    zero = report_image([run("a", 0.0)])
    assert bar_pixels(zero, EvalTest.STABILITY) > 0  # a real 0 is drawn, as a line on the axis


def test_report_compares_runs_side_by_side():
    one = report_image([run("plain")], title="Vincent")
    four = report_image([run(f"lora {k}", 0.2 * k) for k in range(1, 5)], title="Vincent")
    assert four.height > one.height  # a table row per run
    stability_bars = bar_pixels(four, EvalTest.STABILITY)
    assert stability_bars == pytest.approx(
        sum(0.2 * k for k in range(1, 5)) / 0.8 * bar_pixels(one, EvalTest.STABILITY), rel=0.05)
