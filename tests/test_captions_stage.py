"""CaptionRefine over a training set on disk, with the real (tiny) captioners.

The set is the augmentation stage's output (`write_training_set` of the shared sample plan:
3 originals, a face crop, two jacket crops); the captioners are tiny random Florence-2 and BLIP
folders loaded through the families' real loading code.
"""

from __future__ import annotations

import pytest

from intenttuner.captions.caption_set import CaptionSettings, caption_training_set
from intenttuner.captions.tokens import clip_counter
from intenttuner.dataset.kohya import write_training_set
from intenttuner.dataset.kohya_read import read_training_set
from intenttuner.errors import InputError
from intenttuner.families import FAMILIES
from intenttuner.tiny.captioner import make_tiny as make_tiny_blip
from tests.dataset_helpers import sample_augmented, sample_intent

# Random tiny models never emit an end token: a short generation keeps the tests quick.
QUICK = CaptionSettings(max_new_tokens=12)


@pytest.fixture(scope="module")
def florence(tmp_path_factory):
    from intenttuner.tiny import TINY_BUILDERS

    return FAMILIES["captioner"].load(TINY_BUILDERS["captioner"](tmp_path_factory.mktemp("f")))


@pytest.fixture(scope="module")
def blip(tmp_path_factory):
    return FAMILIES["captioner"].load(make_tiny_blip(tmp_path_factory.mktemp("b")))


class Counting:
    """The real captioner, counting the images it is asked to caption."""

    def __init__(self, inner, replace=None):
        self.inner, self.images, self.replace = inner, 0, replace
        self.identity, self.kind = inner.identity, inner.kind
        self.settings_key = inner.settings_key

    def caption(self, images, **kwargs):
        self.images += len(images)
        texts = self.inner.caption(images, **kwargs)
        return [self.replace(t) for t in texts] if self.replace else texts


@pytest.fixture
def training_set(tmp_path):
    return write_training_set(sample_augmented(), sample_intent(), tmp_path / "sets", "set")


def _on_disk(ts):
    return {item.image: (ts.path / item.caption_file).read_text(encoding="utf-8").strip()
            for item in ts.items}


@pytest.mark.parametrize("which", ["florence", "blip"])
def test_every_item_is_captioned_on_disk_and_follows_the_intent(which, training_set, request):
    captioner = Counting(request.getfixturevalue(which))
    ts, report = caption_training_set(training_set, captioner, settings=QUICK)
    assert captioner.images == len(ts.items) == 6
    files = _on_disk(ts)
    counter = clip_counter()
    for item in ts.items:
        assert item.caption_source == "refined"
        assert files[item.image] == item.caption
        assert item.caption.startswith("ohwx, man")
        assert "necklace" not in item.caption
        assert item.raw_caption is not None
        assert item.raw_caption_by == captioner.settings_key("detailed", 12)
        assert counter.count(item.caption) <= 77
    crops = {item.concept: item.caption for item in ts.items if item.operation == "keep"}
    assert crops["face"].startswith("ohwx, man, close-up of the face")
    jackets = [item.caption for item in ts.items if item.concept == "jacket"]
    assert any("black leather jacket" in c for c in jackets)  # the detected value
    again = read_training_set(ts.path)  # the manifest says the same as the files
    assert [i.caption for i in again.items] == [i.caption for i in ts.items]
    assert len(report.items) == 6 and "6 caption(s) refined" in report.summary()


def test_rerunning_captions_nothing_again(training_set, florence):
    first = Counting(florence)
    caption_training_set(training_set, first, settings=QUICK)
    second = Counting(florence)
    ts, report = caption_training_set(training_set, second,
                                      settings=CaptionSettings(max_new_tokens=12, max_tokens=20))
    assert second.images == 0 and report.reused == 6 and report.captioned == 0
    assert all(clip_counter().count(i.caption) <= 20 for i in ts.items)
    third = Counting(florence)
    caption_training_set(training_set, third,
                         settings=CaptionSettings(max_new_tokens=12, recaption=True))
    assert third.images == 6
    other_detail = Counting(florence)
    caption_training_set(training_set, other_detail,
                         settings=CaptionSettings(max_new_tokens=12, detail="short"))
    assert other_detail.images == 6
    longer = Counting(florence)  # captions cut short: a higher bound captions again
    caption_training_set(training_set, longer,
                         settings=CaptionSettings(max_new_tokens=16, detail="short"))
    assert longer.images == 6


def test_blip_ignores_detail_so_switching_it_captions_nothing_again(training_set, blip):
    first = Counting(blip)
    caption_training_set(training_set, first, settings=QUICK)
    second = Counting(blip)
    caption_training_set(training_set, second,
                         settings=CaptionSettings(max_new_tokens=12, detail="short"))
    assert (first.images, second.images) == (6, 0)


def test_user_edits_survive_unless_overwritten(training_set, florence):
    ts, _ = caption_training_set(training_set, florence, settings=QUICK)
    item = ts.items[1]
    (ts.path / item.caption_file).write_text("ohwx, man, my own words é\n", encoding="utf-8")
    ts, report = caption_training_set(ts, florence, settings=QUICK)
    edited = next(i for i in ts.items if i.image == item.image)
    assert edited.caption == "ohwx, man, my own words é" and edited.caption_source == "user"
    assert report.kept_user == [item.image]
    ts, report = caption_training_set(ts, florence,
                                      settings=CaptionSettings(max_new_tokens=12, overwrite_user_edits=True))
    redone = next(i for i in ts.items if i.image == item.image)
    assert redone.caption_source == "refined" and "my own words" not in redone.caption


def test_all_user_edits_means_nothing_to_do(training_set, florence):
    ts, _ = caption_training_set(training_set, florence, settings=QUICK)
    for item in ts.items:
        (ts.path / item.caption_file).write_text("ohwx, man, mine\n", encoding="utf-8")
    ts, report = caption_training_set(ts, florence, settings=QUICK)
    assert all(i.caption == "ohwx, man, mine" for i in ts.items)
    assert any("every caption is a user edit" in w for w in report.warnings)


def test_empty_and_repeating_captioner_output(training_set, florence):
    empty = Counting(florence, replace=lambda text: "")
    ts, report = caption_training_set(training_set, empty, settings=QUICK)
    assert any("wrote nothing for 6 image(s)" in w for w in report.warnings)
    assert all(i.caption.startswith("ohwx, man") for i in ts.items)
    looping = Counting(florence, replace=lambda text: "a dog a dog a dog a dog a dog")
    ts, report = caption_training_set(training_set, looping,
                                      settings=CaptionSettings(max_new_tokens=12, recaption=True))
    original = next(i for i in report.items if "_original/" in i.image)
    assert original.caption == "ohwx, man, a dog"
    assert any("repeated itself" in n for n in original.notes)


def test_no_captioner_and_only_placeholders_is_an_error(training_set):
    with pytest.raises(InputError, match="no captions yet"):
        caption_training_set(training_set, None, settings=QUICK)


def test_no_captioner_refines_the_captions_on_disk(tmp_path):
    root = tmp_path / "elsewhere"
    (root / "3_vincent").mkdir(parents=True)
    from PIL import Image

    for n, text in enumerate(["a man with a beard wearing a striped jacket",
                              "a man wearing a necklace in a park"]):
        Image.new("RGB", (64, 64), (n * 90, 40, 40)).save(root / "3_vincent" / f"{n}.png")
        (root / "3_vincent" / f"{n}.txt").write_text(text, encoding="utf-8")
    ts = read_training_set(root)
    with pytest.raises(InputError, match="no intent"):
        caption_training_set(ts, None, settings=QUICK)
    ts, report = caption_training_set(ts, None, intent=sample_intent())
    assert [i.caption for i in ts.items] == ["ohwx, man, wearing a striped jacket",
                                             "ohwx, man, in a park"]
    assert all(i.caption_source == "refined" for i in ts.items)


def test_refining_captions_from_disk_again_starts_from_the_file_not_the_refinement(tmp_path):
    from PIL import Image

    root = tmp_path / "elsewhere"
    (root / "2_me").mkdir(parents=True)
    Image.new("RGB", (64, 64), (90, 40, 40)).save(root / "2_me" / "0.png")
    (root / "2_me" / "0.txt").write_text("a man with a beard wearing a striped jacket",
                                         encoding="utf-8")
    ts, _ = caption_training_set(read_training_set(root), None, intent=sample_intent())
    assert ts.items[0].caption == "ohwx, man, wearing a striped jacket"
    assert (ts.items[0].raw_caption_by, ts.items[0].raw_caption) == (
        "file", "a man with a beard wearing a striped jacket")
    no_keep = sample_intent()
    no_keep.concepts = [c for c in no_keep.concepts if c.name != "face"]
    ts, _ = caption_training_set(ts, None, intent=no_keep)
    assert ts.items[0].caption == "ohwx, man, with a beard, wearing a striped jacket"


def test_a_new_trigger_replaces_the_old_one_in_the_captions(training_set):
    """The set was written under trigger "ohwx, man"; captions on disk that hold it, refined
    under an intent with another trigger, lose the old one."""
    for item in training_set.items:
        training_set.set_caption(item, "ohwx man standing in a park", source="file")
    training_set.save_manifest()
    ts, _ = caption_training_set(training_set, None,
                                 intent=sample_intent(trigger_words=("bob",)))
    assert all("ohwx" not in i.caption and i.caption.startswith("bob") for i in ts.items)
