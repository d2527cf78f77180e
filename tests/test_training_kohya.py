"""kohya-format LoRA export: key names for every module type, alpha, metadata, hashes, files.

The adapters are made here with peft's own injection (the call diffusers' ``add_adapter``
makes) on the tiny SD 1.5 / SDXL models, over every module type the trainer may target. What
ComfyUI maps is checked by tests/test_training_comfyui_keys.py in a real ComfyUI; here the
names are checked against the model itself: SD 1.5 names are diffusers module paths, SDXL names
are tensor names of the single-file (SGM) checkpoint, ``.`` -> ``_``, as ComfyUI maps them.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re

import pytest
import torch

from intenttuner.dataset.kohya_read import read_training_set
from intenttuner.errors import DiskFullError, InputError
from intenttuner.tiny.base_model import ldm_checkpoint, make_tiny_sd15_checkpoint, tiny_components
from intenttuner.training import kohya_keys, lora_file, lora_metadata
from intenttuner.training.config import make_config
from tests.training_helpers import make_kohya_set, peft_adapters

KEY = re.compile(r"(lora_unet|lora_te|lora_te1|lora_te2)_[a-z0-9_]+"
                 r"\.(lora_down\.weight|lora_up\.weight|alpha)")
ALPHA, CONV_ALPHA = 8.0, 3.0


def tiny_adapters(kind: str):
    """(modules, adapters): the tiny ``kind`` model with LoRA on every targetable module."""
    modules = tiny_components(kind)
    return modules, peft_adapters(modules)


@pytest.fixture(scope="module", params=["sd15", "sdxl"])
def exported(request):
    kind = request.param
    modules, adapters = tiny_adapters(kind)
    alphas = kohya_keys.module_alphas(adapters, ALPHA, CONV_ALPHA)
    tensors = kohya_keys.kohya_state_dict(adapters, kind, alphas, torch.float32,
                                          unet_config=modules["unet"].config)
    return kind, modules, adapters, alphas, tensors


def test_every_module_type_gets_a_kohya_name_alpha_and_peft_shapes(exported):
    kind, modules, adapters, alphas, tensors = exported
    assert all(KEY.fullmatch(k) for k in tensors), [k for k in tensors if not KEY.fullmatch(k)]
    modules_found = {k.rsplit(".", 2)[0] if k.endswith(".weight") else k.rsplit(".", 1)[0]
                     for k in tensors}
    assert len(modules_found) == sum(len(a) for a in adapters.values()) // 2
    for name in modules_found:
        down, up = tensors[f"{name}.lora_down.weight"], tensors[f"{name}.lora_up.weight"]
        alpha = tensors[f"{name}.alpha"]
        assert alpha.ndim == 0
        is_3x3 = down.ndim == 4 and down.shape[2:] != (1, 1)
        assert alpha.item() == (CONV_ALPHA if is_3x3 else ALPHA)
        assert down.shape[0] == up.shape[1] == 4
        if down.ndim == 4:  # conv: down [r, in, k, k], up [out, r, 1, 1]
            assert up.shape[2:] == (1, 1)
    # Every module type is there, with kohya's spelling for this kind.
    expected = {
        "sd15": ["lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q",
                 "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_out_0",
                 "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_ff_net_0_proj",
                 "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_ff_net_2",
                 "lora_unet_down_blocks_0_attentions_0_proj_in",
                 "lora_unet_mid_block_attentions_0_proj_out",
                 "lora_unet_down_blocks_0_resnets_0_conv1",
                 "lora_unet_down_blocks_1_resnets_0_conv_shortcut",
                 "lora_unet_down_blocks_0_resnets_0_time_emb_proj",
                 "lora_unet_down_blocks_0_downsamplers_0_conv",
                 "lora_unet_up_blocks_0_upsamplers_0_conv",
                 "lora_unet_mid_block_resnets_1_conv2",
                 "lora_te_text_model_encoder_layers_0_self_attn_q_proj",
                 "lora_te_text_model_encoder_layers_1_mlp_fc2"],
        "sdxl": ["lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q",
                 "lora_unet_input_blocks_4_1_transformer_blocks_0_ff_net_0_proj",
                 "lora_unet_input_blocks_4_1_proj_in",
                 "lora_unet_middle_block_1_transformer_blocks_1_attn2_to_out_0",
                 "lora_unet_input_blocks_1_0_in_layers_2",
                 "lora_unet_input_blocks_1_0_out_layers_3",
                 "lora_unet_input_blocks_1_0_emb_layers_1",
                 "lora_unet_input_blocks_4_0_skip_connection",
                 "lora_unet_input_blocks_3_0_op",
                 "lora_unet_output_blocks_2_2_conv",
                 "lora_unet_output_blocks_5_2_conv",
                 "lora_unet_middle_block_2_in_layers_2",
                 "lora_te1_text_model_encoder_layers_0_self_attn_q_proj",
                 "lora_te2_text_model_encoder_layers_1_mlp_fc1"],
    }[kind]
    assert not set(expected) - modules_found


def test_unet_names_are_the_models_own_tensor_names(exported):
    """SD 1.5: the diffusers module path; SDXL: a tensor of the single-file checkpoint with
    the same shape. Both are what ComfyUI's key map derives its names from."""
    kind, modules, _, _, tensors = exported
    if kind == "sd15":
        own = {n.replace(".", "_"): m for n, m in modules["unet"].named_modules()}
    else:
        checkpoint = ldm_checkpoint(kind, tiny_components(kind))
        own = {k.removeprefix("model.diffusion_model.").removesuffix(".weight").replace(".", "_"):
               v for k, v in checkpoint.items() if k.startswith("model.diffusion_model.")}
    for key, down in tensors.items():
        if not (key.startswith("lora_unet_") and key.endswith(".lora_down.weight")):
            continue
        name = key.removeprefix("lora_unet_").removesuffix(".lora_down.weight")
        assert name in own, key
        up = tensors[key.replace("lora_down", "lora_up")]
        weight = own[name].weight if kind == "sd15" else own[name]
        assert (up.shape[0], *down.shape[1:]) == tuple(weight.shape), key


def test_round_trip_is_exact(exported):
    kind, modules, adapters, alphas, tensors = exported
    back, back_alphas = kohya_keys.adapters_from_kohya(tensors, kind, modules=modules)
    assert back_alphas == alphas
    assert back.keys() == adapters.keys()
    for component, state in adapters.items():
        assert back[component].keys() == state.keys()
        for key, value in state.items():
            assert torch.equal(back[component][key], value), key
    # Without the modules, text-encoder paths take the canonical transformers form.
    canonical, _ = kohya_keys.adapters_from_kohya(tensors, kind)
    assert all(k.startswith("text_model.encoder.layers.") for k in canonical["text_encoder"])
    assert canonical["unet"].keys() == adapters["unet"].keys()  # bundled structure suffices


def test_fp16_export_and_missing_alpha():
    _, adapters = tiny_adapters("sd15")
    alphas = kohya_keys.module_alphas(adapters, ALPHA, CONV_ALPHA)
    tensors = kohya_keys.kohya_state_dict(adapters, "sd15", alphas)
    assert {v.dtype for k, v in tensors.items() if not k.endswith(".alpha")} == {torch.float16}
    key = "lora_unet_down_blocks_0_attentions_0_proj_in"
    without = {k: v for k, v in tensors.items() if k != f"{key}.alpha"}
    _, back = kohya_keys.adapters_from_kohya(without, "sd15")
    assert back["unet:down_blocks.0.attentions.0.proj_in"] == 4.0  # alpha = rank: scale 1


def test_bad_adapters_and_names_are_refused():
    with pytest.raises(ValueError, match="not a Linear/Conv2d module"):
        kohya_keys.kohya_module_name("sdxl", "unet", "down_blocks.9.nothing")
    with pytest.raises(ValueError, match="no component"):
        kohya_keys.kohya_module_name("sd15", "text_encoder_2", "encoder.layers.0.mlp.fc1")
    with pytest.raises(ValueError, match="not a text-encoder attention"):
        kohya_keys.kohya_module_name("sd15", "text_encoder", "text_projection")
    a, b = torch.zeros(4, 8), torch.zeros(8, 4)
    dora = {"unet": {"conv_in.lora_A.weight": a, "conv_in.lora_B.weight": b,
                     "conv_in.lora_magnitude_vector": torch.ones(8)}}
    with pytest.raises(ValueError, match="DoRA"):
        kohya_keys.kohya_state_dict(dora, "sd15", {"unet:conv_in": 1.0})
    plain = {"unet": {"conv_in.lora_A.weight": a, "conv_in.lora_B.weight": b}}
    with pytest.raises(ValueError, match="no alpha"):
        kohya_keys.kohya_state_dict(plain, "sd15", {})
    with pytest.raises(ValueError, match="prefix other than"):
        kohya_keys.adapters_from_kohya({"lora_te2_x.lora_down.weight": a,
                                        "lora_te2_x.lora_up.weight": b}, "sd15")


# --- metadata ------------------------------------------------------------------------------
REQUIRED = ["ss_network_module", "ss_network_dim", "ss_network_alpha", "ss_base_model_version",
            "ss_resolution", "ss_steps", "ss_tag_frequency", "ss_training_started_at",
            "ss_training_finished_at", "ss_learning_rate", "ss_num_train_images", "ss_epoch",
            "ss_bucket_info", "ss_dataset_dirs", "ss_sd_model_name", "ss_output_name",
            "ss_seed", "ss_optimizer", "ss_mixed_precision", "modelspec.sai_model_spec",
            "modelspec.architecture", "modelspec.title", "modelspec.resolution",
            "modelspec.prediction_type", "modelspec.trigger_phrase", "modelspec.date",
            "modelspec.implementation", "intenttuner.intent", "intenttuner.config"]
CROP = "iVBORw0KGgo" + "A" * 600  # a base64 PNG, as Intent.to_json(with_crops=True) has them


def training_set_and_config(tmp_path, **settings):
    root = make_kohya_set(tmp_path / "secret-project-set", count=3, trigger="ohwx", repeats=2)
    make_kohya_set(root, count=1, trigger="ohwx", group="style")
    training_set = read_training_set(root)
    intent = {"trigger_words": ["ohwx", "vincent"], "domain": "person",
              "references": [{"index": 1, "box": [0, 0, 10, 10], "crop_png": CROP}],
              "notes": {"thumbnail": "data:image/png;base64,AAAA"}}
    config = make_config(base_model="/home/alice/ComfyUI/models/checkpoints/mybase.safetensors",
                         training_set=str(root), output_dir="/home/alice/loras", intent=intent,
                         **settings)
    return training_set, config


def metadata_for(config, training_set, kind="sd15"):
    return lora_metadata.training_metadata(
        config, kind=kind, training_set=training_set, steps=10, epoch=2,
        started_at=1_700_000_000.5, finished_at=1_700_000_100.25, resolution=512,
        optimizer="AdamW", base_model_name=config.base_model, run_name="ohwx-run",
        bucket_info=lora_metadata.bucket_info([(512, 512)] * 3 + [(448, 576)], [2, 2, 2, 1]))


@pytest.mark.parametrize("kind", ["sd15", "sdxl"])
def test_metadata_has_kohya_and_modelspec_keys_all_strings(tmp_path, kind, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-SECRET-1234567890")
    training_set, config = training_set_and_config(tmp_path)
    meta = metadata_for(config, training_set, kind)
    assert not set(REQUIRED) - set(meta)
    assert all(isinstance(v, str) for v in meta.values())
    assert meta["ss_network_module"] == "networks.lora"
    assert meta["ss_network_dim"] == "16" and meta["ss_network_alpha"] == "8.0"
    assert meta["ss_base_model_version"] == {"sd15": "sd_v1", "sdxl": "sdxl_base_v1-0"}[kind]
    assert meta["modelspec.architecture"] == {
        "sd15": "stable-diffusion-v1/lora", "sdxl": "stable-diffusion-xl-v1-base/lora"}[kind]
    assert meta["modelspec.sai_model_spec"] == "1.0.1"
    assert meta["modelspec.resolution"] == "512x512"
    assert meta["modelspec.title"] == meta["ss_output_name"] == "ohwx-run"
    assert meta["modelspec.trigger_phrase"] == "ohwx, vincent"
    assert meta["ss_training_started_at"] == "1700000000.5"
    assert meta["ss_steps"] == "10" and meta["ss_epoch"] == "2"
    assert meta["ss_num_train_images"] == "7"  # 3 images x 2 + 1 x 1
    assert json.loads(meta["ss_tag_frequency"]) == {
        "2_subject": {"ohwx": 3, "pattern 0": 1, "pattern 1": 1, "pattern 2": 1},
        "1_style": {"ohwx": 1, "pattern 0": 1}}
    assert json.loads(meta["ss_dataset_dirs"]) == {
        "2_subject": {"n_repeats": 2, "img_count": 3}, "1_style": {"n_repeats": 1, "img_count": 1}}
    assert json.loads(meta["ss_bucket_info"])["buckets"] == {
        "0": {"resolution": [448, 576], "count": 1}, "1": {"resolution": [512, 512], "count": 6}}
    assert "ss_network_args" not in meta  # no LoCon


def test_metadata_keeps_no_paths_pixels_or_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-SECRET-1234567890")
    training_set, config = training_set_and_config(tmp_path)
    meta = metadata_for(config, training_set)
    text = json.dumps(meta)
    for leak in ("/home/alice", str(tmp_path), "crop_png", CROP[:40], "base64", "SECRET"):
        assert leak not in text, leak
    assert meta["ss_sd_model_name"] == "mybase.safetensors"
    saved = json.loads(meta["intenttuner.config"])
    assert saved["base_model"] == "mybase.safetensors"
    assert saved["training_set"] == "secret-project-set"
    assert saved["output_dir"] == "loras"
    assert saved["rank"] == config.rank and saved["seed"] == config.seed
    intent = json.loads(meta["intenttuner.intent"])
    assert intent["trigger_words"] == ["ohwx", "vincent"]
    assert intent["references"] == [{"index": 1, "box": [0, 0, 10, 10]}]


def test_locon_is_networks_lora_with_conv_args(tmp_path):
    training_set, config = training_set_and_config(tmp_path, conv_rank=4, conv_alpha=2.0)
    meta = metadata_for(config, training_set)
    assert meta["ss_network_module"] == "networks.lora"
    assert json.loads(meta["ss_network_args"]) == {"conv_dim": "4", "conv_alpha": "2.0"}


def test_set_without_intent_has_no_trigger_phrase(tmp_path):
    training_set, config = training_set_and_config(tmp_path)
    config = config.model_copy(update={"intent": None})
    meta = metadata_for(config, training_set)
    assert "modelspec.trigger_phrase" not in meta and "intenttuner.intent" not in meta


# --- files ---------------------------------------------------------------------------------
def small_lora(scale: float = 1.0, big: bool = False):
    rows = 2048 if big else 4  # big: > 1.1 MiB, so the legacy hash reads real bytes
    varied = (torch.arange(rows * 320) % 251).reshape(rows, 320)  # no period the header hides
    return {"lora_unet_conv_in.lora_down.weight": (varied * scale).half(),
            "lora_unet_conv_in.lora_up.weight": torch.arange(8.0).reshape(2, 4).half(),
            "lora_unet_conv_in.alpha": torch.tensor(4.0)}


def addnet_hashes(path) -> tuple[str, str]:
    """sd-webui-additional-networks' hashes of a .safetensors file, as it reads the file:
    ``addnet_hash_safetensors`` (sha256 of everything after the header) and
    ``addnet_hash_legacy`` (sha256 of the 64 KiB at offset 1 MiB, first 8 hex digits)."""
    with open(path, "rb") as f:
        header = int.from_bytes(f.read(8), "little")
        f.seek(8 + header)
        model_hash = hashlib.sha256(f.read()).hexdigest()
        f.seek(0x100000)
        legacy_hash = hashlib.sha256(f.read(0x10000)).hexdigest()[:8]
    return model_hash, legacy_hash


@pytest.mark.parametrize("big", [False, True])
def test_saved_file_reads_back_with_kohya_hashes(tmp_path, big):
    """kohya hashes the file it would write with only the ss_* metadata; here that file is
    written with safetensors (as kohya does) and hashed the way the web UI reads files."""
    from safetensors.torch import save_file

    tensors = small_lora(big=big)
    metadata = {"ss_network_dim": "4", "modelspec.title": "x", "intenttuner.config": "{}"}
    path = lora_file.save_lora_file(tmp_path / "a.safetensors", tensors, metadata)
    back, meta = lora_file.read_lora_file(path)
    assert back.keys() == tensors.keys()
    assert all(torch.equal(back[k], v) for k, v in tensors.items())
    assert {k: meta[k] for k in metadata} == metadata
    kohya_file = tmp_path / "kohya.safetensors"
    save_file(tensors, str(kohya_file), metadata={"ss_network_dim": "4"})
    assert (meta["sshs_model_hash"], meta["sshs_legacy_hash"]) == addnet_hashes(kohya_file)
    # The model hash covers the tensor bytes only, so hashing our own file gives it too.
    assert meta["sshs_model_hash"] == addnet_hashes(path)[0]
    if big:  # our header is longer (more metadata): the legacy hash is of kohya's file only
        assert meta["sshs_legacy_hash"] != addnet_hashes(path)[1]
    else:  # under 1 MiB kohya's legacy hash reads nothing
        assert meta["sshs_legacy_hash"] == hashlib.sha256(b"").hexdigest()[:8]


def test_known_file_hashes():
    """Values known without any serialiser: one fp32 tensor's data section is its raw bytes;
    a constant fp16 tensor over 1.1 MiB has its value's two bytes at every even offset (the
    header is padded to 8 bytes), whatever the header holds."""
    t = {"lora_unet_x.alpha": torch.tensor(8.0)}
    model_hash, _ = lora_file.lora_hashes(t, {})
    assert model_hash == hashlib.sha256(b"\x00\x00\x00\x41").hexdigest()
    ones = {"lora_unet_x.lora_down.weight": torch.ones(1024, 640, dtype=torch.float16)}
    fp16_one = b"\x00\x3c"  # 1.0 in IEEE half precision, little-endian
    model_hash, legacy_hash = lora_file.lora_hashes(ones, {"ss_output_name": "pinned"})
    assert model_hash == hashlib.sha256(fp16_one * (1024 * 640)).hexdigest()
    assert legacy_hash == hashlib.sha256(fp16_one * 0x8000).hexdigest()[:8]


@pytest.mark.parametrize("orphan, lacks", [("lora_up.weight", "lora_down.weight"),
                                           ("alpha", "lora_down.weight"),
                                           ("lora_down.weight", "lora_up.weight")])
def test_a_module_stored_incompletely_is_named_not_dropped(tmp_path, orphan, lacks):
    from safetensors.torch import save_file

    module = "lora_unet_conv_in."
    damaged = {module + orphan: small_lora()[module + orphan]}
    message = re.escape(f"'{module}{orphan}' has no matching '{module}{lacks}'")
    with pytest.raises(InputError, match=message):
        kohya_keys.adapters_from_kohya(damaged, "sd15")
    save_file(damaged, str(tmp_path / "damaged.safetensors"))
    with pytest.raises(InputError, match=message):
        lora_file.read_lora_file(tmp_path / "damaged.safetensors")


def test_existing_file_is_never_replaced(tmp_path, monkeypatch):
    first = lora_file.save_lora_file(tmp_path / "a.safetensors", small_lora(1.0), {})
    before = first.read_bytes()
    with pytest.raises(InputError, match="never replaced"):
        lora_file.save_lora_file(first, small_lora(2.0), {})
    # A file that appears while ours is written (another process) is not replaced either.
    target = tmp_path / "b.safetensors"
    real_link = os.link

    def racing_link(src, dst):
        target.write_bytes(b"theirs")
        return real_link(src, dst)

    monkeypatch.setattr(lora_file.os, "link", racing_link)
    with pytest.raises(InputError, match="appeared"):
        lora_file.save_lora_file(target, small_lora(2.0), {})
    assert first.read_bytes() == before and target.read_bytes() == b"theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.safetensors", "b.safetensors"]


@pytest.mark.parametrize("code, where", [(errno.ENOSPC, "write"), (errno.EDQUOT, "fsync")])
def test_disk_full_leaves_earlier_files_and_no_temp(tmp_path, monkeypatch, code, where):
    earlier = lora_file.save_lora_file(tmp_path / "step100.safetensors", small_lora(1.0), {})
    before = earlier.read_bytes()
    real = getattr(os, where)

    def full(fd, *args):
        if where == "write":
            real(fd, args[0][:100])  # a partial write, then the disk is full
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(lora_file.os, where, full)
    target = tmp_path / "step200.safetensors"
    with pytest.raises(DiskFullError) as caught:
        lora_file.save_lora_file(target, small_lora(2.0, big=True), {})
    assert isinstance(caught.value, OSError) and caught.value.errno == code
    assert str(target) in str(caught.value)
    assert [p.name for p in tmp_path.iterdir()] == ["step100.safetensors"]
    assert earlier.read_bytes() == before


def test_reading_something_else_says_what_it_is(tmp_path):
    from safetensors.torch import save_file

    checkpoint = make_tiny_sd15_checkpoint(tmp_path)
    with pytest.raises(InputError, match="full model checkpoint"):
        lora_file.read_lora_file(checkpoint)
    peft_file = tmp_path / "peft.safetensors"
    save_file({"unet.conv_in.lora_A.weight": torch.zeros(2, 2)}, str(peft_file))
    with pytest.raises(InputError, match="PEFT"):
        lora_file.read_lora_file(peft_file)
    unpaired = tmp_path / "half.safetensors"
    save_file({"lora_unet_conv_in.lora_down.weight": torch.zeros(2, 2)}, str(unpaired))
    with pytest.raises(InputError, match="no matching"):
        lora_file.read_lora_file(unpaired)
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(lora_file_bytes(tmp_path)[:-10])
    with pytest.raises(InputError, match="truncated"):
        lora_file.read_lora_file(truncated)
    with pytest.raises(InputError, match="No LoRA file"):
        lora_file.read_lora_file(tmp_path / "missing.safetensors")
    with pytest.raises(InputError, match="not a .safetensors"):
        lora_file.read_lora_file(tmp_path / "x.pt")


def lora_file_bytes(tmp_path):
    return lora_file.save_lora_file(tmp_path / "ok.safetensors", small_lora(), {}).read_bytes()
