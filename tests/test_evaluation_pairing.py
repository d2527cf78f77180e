"""Pairing generated images with the evaluation plan, in the shapes ComfyUI hands a score node
(a list of IMAGE batches, or one batch), and the refusals when the images cannot be paired."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
import torch
from PIL import Image

from intenttuner.errors import InputError
from intenttuner.evaluation.pairing import check_intent, pair_images
from intenttuner.evaluation.prompts import PlanSettings, build_plan
from intenttuner.intent.schema import Concept, ConceptValue, Intent, ReferenceBox


def vincent(**extra) -> Intent:
    return Intent(description="Vincent", trigger_words=["Vincent"], domain="portrait", concepts=[
        Concept(name="face", phrase="face", granularity="instance", operation="keep",
                references=[1] if extra.get("references") else []),
        Concept(name="hair colour", phrase="hair", granularity="attribute", operation="modify",
                values=[ConceptValue(text="black hair"), ConceptValue(text="blonde hair")]),
        Concept(name="necklace", phrase="necklace", granularity="instance", operation="delete"),
    ], **extra)


@pytest.fixture
def plan():
    return build_plan(vincent(), PlanSettings(prompts_per_test=2, images_per_prompt=1))


def marked(k: int, batch: int = 1, size=(24, 16)) -> torch.Tensor:
    """A (batch, H, W, 3) IMAGE whose image b is filled with grey level 10 * k + b: which
    image ended up where can be read back from its pixels."""
    width, height = size
    levels = torch.tensor([10 * k + b for b in range(batch)], dtype=torch.float32) / 255.0
    return levels[:, None, None, None].expand(batch, height, width, 3).clone()


def level(pil: Image.Image) -> int:
    return int(np.asarray(pil)[0, 0, 0])


def test_one_batch_per_item_pairs_every_image_of_batch_i_with_item_i(plan):
    images = [marked(k, batch=2) for k in range(len(plan.items))]
    generated = pair_images(plan, images, plan.prompts())

    assert len(generated) == 2 * len(plan.items)
    assert [g.index for g in generated] == list(range(len(generated)))
    for g in generated:
        k, b = divmod(g.index, 2)
        assert g.item == plan.items[k]
        assert level(g.image) == 10 * k + b
        assert g.image.mode == "RGB" and g.image.size == (24, 16)


def test_one_batch_holding_one_image_per_item_pairs_image_j_with_item_j(plan):
    k = len(plan.items)
    batch = torch.cat([marked(j) for j in range(k)])
    for images in ([batch], batch):  # as a list input gives it, and bare
        generated = pair_images(plan, images)
        assert [g.item for g in generated] == plan.items
        assert [level(g.image) for g in generated] == [10 * j for j in range(k)]


def test_pil_images_and_lists_of_them_pair_like_batches(plan):
    pils = [Image.fromarray(np.full((8, 8, 3), 10 * k, np.uint8)) for k in range(len(plan.items))]
    nested = [[pil] for pil in pils]
    for images in (pils, nested):
        generated = pair_images(plan, images)
        assert [(g.item, level(g.image)) for g in generated] == \
               [(item, 10 * k) for k, item in enumerate(plan.items)]


def test_images_of_different_sizes_keep_their_sizes(plan):
    sizes = [(16 + 8 * k, 40 - 4 * k) for k in range(len(plan.items))]
    generated = pair_images(plan, [marked(k, size=s) for k, s in enumerate(sizes)])
    assert [g.image.size for g in generated] == sizes


def test_rgba_and_grey_batches_become_rgb(plan):
    images = [torch.rand(1, 8, 8, 4 if k % 2 else 1) for k in range(len(plan.items))]
    assert {g.image.mode for g in pair_images(plan, images)} == {"RGB"}


def test_a_batch_of_one_for_a_plan_of_one():
    intent = Intent(description="x", trigger_words=["zara"], domain="portrait", concepts=[
        Concept(name="face", phrase="face", granularity="instance", operation="keep")])
    plan = build_plan(intent, PlanSettings(prompts_per_test=1, images_per_prompt=1))
    assert len(plan.items) == 1
    for images in ([marked(3)], marked(3), Image.new("RGB", (5, 7), (30, 30, 30))):
        [generated] = pair_images(plan, images, plan.prompts())
        assert generated.item == plan.items[0] and level(generated.image) == 30


@pytest.mark.parametrize("shape", ["one short", "one extra", "single batch too big", "split"])
def test_counts_that_do_not_fit_the_plan_are_refused_saying_what_to_connect(plan, shape):
    k = len(plan.items)
    images, total, items = {
        "one short": ([marked(j) for j in range(k - 1)], k - 1, k - 1),
        "one extra": ([marked(j) for j in range(k + 1)], k + 1, k + 1),
        "single batch too big": ([marked(0, batch=k + 1)], k + 1, 1),
        "split": ([marked(0, batch=2), marked(1, batch=k - 2)], k, 2),
    }[shape]
    with pytest.raises(InputError, match=rf"{total} images \(in {items} list items\) for the "
                                         rf"{k} prompts of the evaluation plan.*CLIPTextEncode"):
        pair_images(plan, images)


@pytest.mark.parametrize("images", [[], None, [torch.zeros(0, 8, 8, 3)]])
def test_no_images_at_all_is_refused(plan, images):
    with pytest.raises(InputError, match="no images"):
        pair_images(plan, images)


def test_an_empty_batch_for_one_item_is_refused_naming_the_item(plan):
    images = [marked(k) for k in range(len(plan.items))]
    images[2] = torch.zeros(0, 8, 8, 3)
    with pytest.raises(InputError, match=f"'{plan.items[2].id}' is empty"):
        pair_images(plan, images)


def test_prompts_that_are_not_the_plans_are_refused_naming_the_first_difference(plan):
    images = [marked(k) for k in range(len(plan.items))]
    prompts = plan.prompts()
    prompts[3] = "a photo of someone else"
    prompts[5] = "another"
    with pytest.raises(InputError, match=r"do not come from this plan's prompts: prompt 3 is "
                                         r"'a photo of someone else', but the plan's prompt 3 is "
                                         + re.escape(f"'{plan.items[3].prompt}'")):
        pair_images(plan, images, prompts)
    with pytest.raises(InputError, match=f"got {len(plan.items) - 1} prompts for the plan's "
                                         f"{len(plan.items)}"):
        pair_images(plan, images, plan.prompts()[:-1])


def test_a_plan_for_another_intent_is_refused(plan):
    check_intent(plan, vincent())  # an equal intent, built again
    other = vincent().model_copy(update={"trigger_words": ["Victor"]})
    with pytest.raises(InputError, match="made for another intent.*trigger 'Victor'"):
        check_intent(plan, other)


def test_the_intent_with_or_without_its_reference_crops_is_the_same_intent():
    # A plan made from the intent with crops still fits the intent exported without them (the
    # form stored in LoRA metadata): crops are pixels, not part of what is evaluated.
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 10, 10)).save(buffer, format="PNG")
    box = dict(index=1, image=0, box=(0, 0, 10, 10), image_size=(20, 20))
    with_crop = vincent(references=[ReferenceBox(**box, crop_png=base64.b64encode(
        buffer.getvalue()).decode())])
    without = vincent(references=[ReferenceBox(**box)])
    check_intent(build_plan(with_crop), without)


def test_something_that_is_not_an_image_is_refused(plan):
    with pytest.raises(InputError, match="got str"):
        pair_images(plan, ["not an image"] * len(plan.items))
