"""The latent cache (intenttuner.training.latent_cache) and the text cache
(intenttuner.training.text_cache) on tiny SD 1.5 / SDXL models."""

from __future__ import annotations

import logging

import pytest
import torch

from intenttuner.dataset.folders import sha256_of
from intenttuner.dataset.kohya_read import read_training_set
from intenttuner.dataset.training_set import TrainingSet
from intenttuner.errors import InputError
from intenttuner.families.base_model import load_base_model
from intenttuner.runtime import get_runtime
from intenttuner.tiny.base_model import make_tiny_sd15_checkpoint, make_tiny_sdxl_checkpoint
from intenttuner.training.buckets import load_for_bucket
from intenttuner.training.config import make_config
from intenttuner.training.latent_cache import cache_latents, vae_fingerprint
from intenttuner.training.text_cache import TextCache, encode_text, sdxl_time_ids
from tests.training_helpers import make_kohya_set

# resolution 128: buckets (64, 192), (64, 256), (128, 128), (192, 64), (256, 64)
SIZES = [(128, 128), (192, 64), (64, 192), (384, 128)]
BUCKETS = [(128, 128), (192, 64), (64, 192), (192, 64)]


@pytest.fixture(scope="module")
def sd15(tmp_path_factory):
    return load_base_model(make_tiny_sd15_checkpoint(tmp_path_factory.mktemp("sd15")),
                           precision="fp32")


@pytest.fixture(scope="module")
def sdxl(tmp_path_factory):
    return load_base_model(make_tiny_sdxl_checkpoint(tmp_path_factory.mktemp("sdxl")),
                           precision="fp32")


@pytest.fixture(scope="module")
def training_set(tmp_path_factory):
    return read_training_set(make_kohya_set(tmp_path_factory.mktemp("set"), count=len(SIZES),
                                            sizes=SIZES))


def config(**values):
    return make_config(base_model="base.safetensors", training_set="set", resolution=128,
                       **values)


def count_encodes(model, monkeypatch):
    """Record the batch size and VAE dtype of every ``vae.encode`` call."""
    calls, encode = [], model.vae.encode

    def counted(pixels, *args, **kwargs):
        calls.append((pixels.shape[0], model.vae.dtype, pixels.dtype))
        return encode(pixels, *args, **kwargs)

    monkeypatch.setattr(model.vae, "encode", counted)
    return calls


def count_offloads(model, name, monkeypatch):
    calls, managed = [], model.managed(name)
    original = managed.offload
    monkeypatch.setattr(managed, "offload", lambda: (calls.append(name), original()))
    return calls


def reference_latents(model, path, bucket, flip=False):
    pixels = load_for_bucket(path, bucket)[0][None]
    if flip:
        pixels = pixels.flip(-1)
    with torch.no_grad():
        mean = model.vae.encode(pixels).latent_dist.mean
    return mean[0] * model.vae.config.scaling_factor


# -- latents ---------------------------------------------------------------------------------------


def test_latents_per_bucket_equal_the_vae_encoding(sd15, training_set, models_root,
                                                   monkeypatch):
    offloads = count_offloads(sd15, "vae", monkeypatch)
    cache = cache_latents(sd15, training_set, config(flip=True), cache_dir=None)
    assert [image.bucket for image in cache.images] == BUCKETS
    assert cache.by_bucket() == {(64, 192): [2], (128, 128): [0], (192, 64): [1, 3]}
    for image, item in zip(cache.images, training_set.items, strict=True):
        width, height = image.bucket
        assert image.latents.shape == (4, height // 8, width // 8)
        assert image.latents.dtype == torch.float32 and image.latents.device.type == "cpu"
        assert not image.latents.is_inference()  # usable in autograd later
        assert image.caption == item.caption and image.repeats == item.repeats
        path = training_set.image_path(item)
        expected = reference_latents(sd15, path, image.bucket)
        assert torch.allclose(image.latents, expected, atol=1e-5)
        flipped = reference_latents(sd15, path, image.bucket, flip=True)
        assert torch.allclose(image.latents_flipped, flipped, atol=1e-5)
        assert not torch.allclose(image.latents, image.latents_flipped, atol=1e-3)
    wide = cache.images[3]  # 384x128 scaled to 192x64 fits its bucket exactly
    assert wide.original_size == (128, 384) and wide.crop_top_left == (0, 0)
    assert offloads == ["vae"]


def test_no_flip_no_flipped_latents(sd15, training_set, models_root):
    cache = cache_latents(sd15, training_set, config(), cache_dir=None)
    assert all(image.latents_flipped is None for image in cache.images)


def test_crop_of_a_square_crop(sd15, training_set, models_root):
    cache = cache_latents(sd15, training_set, config(buckets=False, upscale_small_images=True),
                         cache_dir=None)
    assert [image.bucket for image in cache.images] == [(128, 128)] * 4
    assert [image.crop_top_left for image in cache.images] == [(0, 0), (0, 128), (128, 0),
                                                               (0, 128)]
    assert cache.images[1].original_size == (64, 192)


def test_disk_cache_second_run_encodes_nothing(sd15, training_set, models_root, tmp_path,
                                               monkeypatch, caplog):
    calls = count_encodes(sd15, monkeypatch)
    first = cache_latents(sd15, training_set, config(flip=True), tmp_path / "cache")
    # 3 batches (one per bucket), each encoded as it is and flipped
    assert [size for size, _, _ in calls] == [1, 1, 1, 1, 2, 2]
    folder = tmp_path / "cache" / vae_fingerprint(sd15.vae, torch.float32)
    files = sorted(p.name for p in folder.iterdir())
    assert len(files) == 8
    key = sha256_of(training_set.image_path(training_set.items[1]))  # no manifest sha256 here
    assert {f"{key}_192x64.safetensors", f"{key}_192x64_flip.safetensors"} <= set(files)

    calls.clear()
    second = cache_latents(sd15, training_set, config(flip=True), tmp_path / "cache")
    assert calls == []
    for a, b in zip(first.images, second.images, strict=True):
        assert torch.equal(a.latents, b.latents) and torch.equal(a.latents_flipped,
                                                                 b.latents_flipped)
        assert (a.original_size, a.crop_top_left) == (b.original_size, b.crop_top_left)

    # a damaged file is encoded again (with a warning), the rest still come from disk
    damaged = next(folder.glob("*_128x128.safetensors"))
    damaged.write_bytes(b"\x00garbage")
    calls.clear()
    with caplog.at_level(logging.WARNING, logger="intenttuner.training.latent_cache"):
        third = cache_latents(sd15, training_set, config(flip=True), tmp_path / "cache")
    assert [size for size, _, _ in calls] == [1]
    assert "unusable" in caplog.text and damaged.name in caplog.text
    assert torch.allclose(third.images[0].latents, first.images[0].latents, atol=1e-6)
    calls.clear()
    cache_latents(sd15, training_set, config(flip=True), tmp_path / "cache")
    assert calls == []  # and was written back


def test_the_manifests_sha256_is_not_trusted(sd15, training_set, models_root, tmp_path):
    """Cache files are named by the image bytes' hash: a manifest sha256 that climbs out of the
    cache folder, or a stale one naming another image, changes nothing."""
    root = tmp_path / "cache"
    first = cache_latents(sd15, training_set, config(), root)
    hashes = [sha256_of(training_set.image_path(item)) for item in training_set.items]
    tampered = training_set.model_copy(deep=True)
    tampered.items[0].sha256 = "../../escaped"
    tampered.items[3].sha256 = hashes[1]  # stale: image 1's hash, and the same 192x64 bucket
    second = cache_latents(sd15, tampered, config(), root)
    folder = root / vae_fingerprint(sd15.vae, torch.float32)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()) == sorted(
        (folder / f"{key}_{w}x{h}.safetensors").relative_to(tmp_path)
        for key, (w, h) in zip(hashes, BUCKETS, strict=True))
    assert torch.equal(second.images[3].latents, first.images[3].latents)
    assert not torch.allclose(second.images[3].latents, first.images[1].latents, atol=1e-3)


@pytest.mark.parametrize("failure", ["disk full", "safetensors error"])
def test_a_failed_cache_write_only_turns_the_disk_cache_off(sd15, training_set, models_root,
                                                            tmp_path, monkeypatch, caplog,
                                                            failure):
    import errno
    import os

    from safetensors import SafetensorError

    from intenttuner.training import latent_cache

    def full_disk(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def serialise_error(*args, **kwargs):
        raise SafetensorError("Error while serializing: No space left on device")

    reference = cache_latents(sd15, training_set, config(), cache_dir=None)
    with monkeypatch.context() as patch, caplog.at_level(
            logging.WARNING, logger="intenttuner.training.latent_cache"):
        if failure == "disk full":
            patch.setattr(os, "write", full_disk)
        else:
            patch.setattr(latent_cache, "save", serialise_error)
        cache = cache_latents(sd15, training_set, config(), tmp_path / "cache")
    for a, b in zip(cache.images, reference.images, strict=True):
        assert torch.equal(a.latents, b.latents)
    warnings = [r for r in caplog.records if "cannot write the latent cache" in r.message]
    assert len(warnings) == 1  # the first failure turns the disk cache off
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # no partial files left


def test_a_cache_file_of_the_wrong_shape_is_not_trusted(sd15, training_set, models_root,
                                                        tmp_path, monkeypatch):
    from safetensors.torch import save_file

    cache_latents(sd15, training_set, config(), tmp_path / "cache")
    folder = tmp_path / "cache" / vae_fingerprint(sd15.vae, torch.float32)
    victim = next(folder.glob("*_64x192.safetensors"))
    save_file({"latents": torch.zeros(4, 2, 2)}, str(victim))
    calls = count_encodes(sd15, monkeypatch)
    cache = cache_latents(sd15, training_set, config(), tmp_path / "cache")
    assert len(calls) == 1 and cache.images[2].latents.shape == (4, 24, 8)


def test_another_vae_gets_another_cache_folder(sd15):
    before = vae_fingerprint(sd15.vae, torch.float32)
    assert before != vae_fingerprint(sd15.vae, torch.float16)
    weight = sd15.vae.encoder.conv_in.weight
    saved = weight[0, 0, 0, 0].item()
    with torch.no_grad():
        weight[0, 0, 0, 0] = saved + 1.0
        try:
            assert vae_fingerprint(sd15.vae, torch.float32) != before
        finally:
            weight[0, 0, 0, 0] = saved
    assert vae_fingerprint(sd15.vae, torch.float32) == before


def test_upcast_vae_encodes_in_fp32_and_gets_its_dtype_back(sdxl, training_set, models_root,
                                                            monkeypatch):
    assert sdxl.vae.config.force_upcast
    calls = count_encodes(sdxl, monkeypatch)
    sdxl.vae.to(torch.float16)
    try:
        cache = cache_latents(sdxl, training_set, config(), cache_dir=None)
        assert sdxl.vae.dtype == torch.float16  # shared with the graph: restored
    finally:
        sdxl.vae.to(torch.float32)
    assert calls and all(vae == pixels == torch.float32 for _, vae, pixels in calls)
    assert all(image.latents.dtype == torch.float32 for image in cache.images)


def test_latent_caching_stops_when_interrupted(sd15, training_set, models_root, monkeypatch):
    offloads = count_offloads(sd15, "vae", monkeypatch)
    checks = []

    def interrupted():
        checks.append(1)
        if len(checks) == 2:
            raise KeyboardInterrupt("cancelled")

    monkeypatch.setattr(get_runtime(), "check_interrupted", interrupted)
    calls = count_encodes(sd15, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        cache_latents(sd15, training_set, config(), cache_dir=None)
    assert len(calls) == 1 and offloads == ["vae"]  # one batch done, the VAE still offloaded


def test_empty_training_set_is_refused(sd15, models_root):
    with pytest.raises(InputError, match="the training set has no images"):
        cache_latents(sd15, TrainingSet(), config(), cache_dir=None)


# -- text ------------------------------------------------------------------------------------------


CAPTIONS = ["ohwx, pattern 0", "ohwx, pattern 1", "ohwx, pattern 0", "a photo"]


def test_sd15_text_cache_matches_live_encoding_and_the_pipeline(sd15, models_root,
                                                                monkeypatch):
    offloads = count_offloads(sd15, "text_encoder", monkeypatch)
    cache = TextCache(sd15, CAPTIONS, "cpu", batch_size=2)
    assert offloads == ["text_encoder"]
    assert "" in cache and len(cache.positions) == 4  # unique captions + the empty one
    cached = cache.get(["", CAPTIONS[1], CAPTIONS[1]])
    assert cached.hidden.shape == (3, 77, 32) and cached.pooled is None
    assert cached.hidden.dtype == torch.float32 and cached.hidden.device.type == "cpu"
    live = encode_text(sd15, ["", CAPTIONS[1]], "cpu")
    assert torch.allclose(cached.hidden[:2], live.hidden, atol=1e-5)
    assert torch.equal(cached.hidden[1], cached.hidden[2])
    with torch.no_grad():
        pipeline_embeds, _ = sd15.pipeline().encode_prompt(CAPTIONS[1], "cpu", 1, False)
    assert torch.allclose(cached.hidden[1:2], pipeline_embeds, atol=1e-5)


def test_sdxl_text_cache_matches_live_encoding_and_the_pipeline(sdxl, models_root):
    cache = TextCache(sdxl, CAPTIONS, "cpu")
    cached = cache.get([CAPTIONS[0], ""])
    # CLIP-L's 32 + bigG's 64 channels side by side; pooled: bigG's 32-wide projection
    assert cached.hidden.shape == (2, 77, 96) and cached.pooled.shape == (2, 32)
    live = encode_text(sdxl, [CAPTIONS[0], ""], "cpu")
    assert torch.allclose(cached.hidden, live.hidden, atol=1e-5)
    assert torch.allclose(cached.pooled, live.pooled, atol=1e-5)
    with torch.no_grad():
        embeds, _, pooled, _ = sdxl.pipeline().encode_prompt(
            CAPTIONS[0], device="cpu", do_classifier_free_guidance=False)
    assert torch.allclose(cached.hidden[:1], embeds, atol=1e-5)
    assert torch.allclose(cached.pooled[:1], pooled, atol=1e-5)


def test_sdxl_offloads_both_encoders(sdxl, models_root, monkeypatch):
    first = count_offloads(sdxl, "text_encoder", monkeypatch)
    second = count_offloads(sdxl, "text_encoder_2", monkeypatch)
    TextCache(sdxl, ["x"], "cpu")
    assert first == ["text_encoder"] and second == ["text_encoder_2"]


def test_long_captions_are_truncated_to_77_tokens(sd15):
    long = " ".join(["word"] * 200)
    assert encode_text(sd15, [long, "short"], "cpu").hidden.shape == (2, 77, 32)


def test_grad_flag(sd15):
    frozen = encode_text(sd15, ["a"], "cpu")
    assert not frozen.hidden.requires_grad and not frozen.hidden.is_inference()
    assert any(p.requires_grad for p in sd15.text_encoder.parameters())
    trained = encode_text(sd15, ["a"], "cpu", grad=True)
    assert trained.hidden.requires_grad


def test_unknown_caption_is_a_key_error(sd15, models_root):
    cache = TextCache(sd15, ["a"], "cpu")
    with pytest.raises(KeyError, match="not in the text cache"):
        cache.get(["b"])


def test_sdxl_time_ids_order():
    ids = sdxl_time_ids((300, 400), (10, 20), (128, 192))
    assert ids.dtype == torch.float32
    assert ids.tolist() == [300, 400, 10, 20, 128, 192]
