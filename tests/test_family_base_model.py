"""SD 1.5 / SDXL base models: single files and diffusers folders through FAMILY.load, offline.

Tiny random models are written in the real layouts and must load back to exactly the modules
they were written from. Full-size layouts are checked on meta tensors (names and shapes, no
memory); ``INTENTTUNER_FULL_SIZE=1`` adds a real-size SD 1.5 round trip (~5 GB RAM, ~30 s).
"""

from __future__ import annotations

import json
import os
import shutil
import socket

import pytest
import torch
from safetensors.torch import load_file, save_file

from intenttuner.errors import (
    InputError,
    WeightsCorruptError,
    WeightsNotFoundError,
)
from intenttuner.families import base_model, sd_configs
from intenttuner.families.base_model import FAMILY, sniff
from intenttuner.tiny import TINY_BUILDERS
from intenttuner.tiny import base_model as tiny

KINDS = ["sd15", "sdxl"]
PROMPT = "Vincent's black-leather jacket [1], striped jacket!! 2 photos, café"


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test (loading must be offline)."""
    attempts = []

    def refuse(self, address):
        attempts.append(address)
        raise OSError(f"network access attempted in a test: {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    yield
    assert not attempts


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Tiny models written once: {(form, kind): path} with form "file" or "folder"."""
    root = tmp_path_factory.mktemp("written")
    return {
        ("file", "sd15"): tiny.make_tiny_sd15_checkpoint(root / "checkpoints"),
        ("file", "sdxl"): tiny.make_tiny_sdxl_checkpoint(root / "checkpoints"),
        ("folder", "sd15"): tiny.make_tiny_diffusers_folder(root / "diffusers", "sd15"),
        ("folder", "sdxl"): tiny.make_tiny_diffusers_folder(root / "diffusers", "sdxl"),
    }


@pytest.fixture(scope="module")
def sources():
    """The modules the tiny files were written from."""
    return {kind: tiny.tiny_components(kind) for kind in KINDS}


def _outputs(modules: dict, kind: str) -> dict[str, torch.Tensor]:
    """Each module's output on fixed inputs (UNet noise prediction, VAE decode, text states)."""
    g = torch.Generator().manual_seed(0)
    unet = modules["unet"]
    latents = torch.randn(1, 4, 8, 8, generator=g)
    context = torch.randn(1, 77, unet.config.cross_attention_dim, generator=g)
    ids = torch.randint(0, 49406, (1, 77), generator=g)
    extra = {}
    if kind == "sdxl":
        pooled = modules["text_encoder_2"].config.projection_dim
        extra["added_cond_kwargs"] = {"text_embeds": torch.randn(1, pooled, generator=g),
                                      "time_ids": torch.tensor([[64.0, 64, 0, 0, 64, 64]])}
    with torch.no_grad():
        out = {"unet": unet(latents, 10, encoder_hidden_states=context, **extra).sample,
               "vae": modules["vae"].decode(latents).sample,
               "text_encoder": modules["text_encoder"](ids).last_hidden_state}
        if kind == "sdxl":
            out["text_encoder_2"] = modules["text_encoder_2"](ids).text_embeds
    return out


# --- loading ---------------------------------------------------------------------------------
@pytest.mark.parametrize("form", ["file", "folder"])
@pytest.mark.parametrize("kind", KINDS)
def test_tiny_model_loads_back_to_the_modules_it_was_written_from(models_root, written, sources,
                                                                  form, kind):
    model = FAMILY.load(written[form, kind])
    assert model.kind == kind and model.source == written[form, kind]
    assert (model.text_encoder_2 is None) == (kind == "sd15")
    assert model.unet.device.type == "cpu" and model.dtype == torch.float32  # "auto" on CPU
    source = sources[kind]
    assert set(model.modules()) == set(source)
    for name, module in source.items():
        expected, loaded = module.state_dict(), model.modules()[name].state_dict()
        assert loaded.keys() == expected.keys(), name
        assert all(torch.equal(loaded[k], expected[k]) for k in expected), name
    expected = _outputs(source, kind)
    for name, out in _outputs(model.modules(), kind).items():
        # Equal weights, but tensors read from the file may sit at addresses that send CPU
        # kernels down another vectorised path: allow float rounding, nothing more.
        torch.testing.assert_close(out, expected[name], rtol=1e-5, atol=1e-5, msg=name)


@pytest.mark.parametrize("kind", KINDS)
def test_pipeline_generates_a_64px_image_in_two_steps(models_root, written, kind):
    pipe = FAMILY.load(written["file", kind]).pipeline()
    pipe.set_progress_bar_config(disable=True)
    result = pipe(PROMPT, num_inference_steps=2, height=64, width=64, output_type="np",
                  generator=torch.Generator().manual_seed(0))
    image = result.images[0]
    assert image.shape == (64, 64, 3)
    assert (image >= 0).all() and (image <= 1).all() and image.std() > 0


def test_pipeline_reuses_the_loaded_modules(models_root, written):
    model = FAMILY.load(written["file", "sdxl"])
    pipe = model.pipeline()
    assert pipe.unet is model.unet and pipe.vae is model.vae
    assert pipe.text_encoder_2 is model.text_encoder_2 and pipe.tokenizer_2 is model.tokenizer_2
    assert pipe.scheduler is not model.scheduler  # sampling must not disturb the original


@pytest.mark.parametrize("form,precision,dtype", [("file", "fp16", torch.float16),
                                                  ("folder", "fp16", torch.float16),
                                                  ("file", "bf16", torch.bfloat16)])
def test_precision_sets_every_module_dtype(models_root, written, form, precision, dtype):
    model = FAMILY.load(written[form, "sdxl"], precision=precision)
    for name, module in model.modules().items():
        assert {p.dtype for p in module.parameters()} == {dtype}, name


def test_registered_tiny_builder_writes_a_checkpoint_the_loader_reads(models_root):
    path = TINY_BUILDERS["base_model"](models_root / "checkpoints")
    assert path == models_root / "checkpoints" / tiny.TINY_SD15_FILE
    assert FAMILY.exercise(FAMILY.load(path)).startswith("sd15 image 64x64")


def test_ckpt_with_tensors_only_loads(models_root, written):
    path = models_root / "checkpoints" / "tiny.ckpt"
    path.parent.mkdir()
    torch.save({"state_dict": load_file(written["file", "sd15"]), "global_step": 10}, path)
    assert FAMILY.load(path).kind == "sd15"


# --- tokenizers ------------------------------------------------------------------------------
@pytest.mark.parametrize("form", ["file", "folder"])
def test_tokenizer_ids_equal_open_clip(models_root, written, form):
    import open_clip

    model = FAMILY.load(written[form, "sdxl"])
    reference = open_clip.get_tokenizer("ViT-L-14")([PROMPT])[0].tolist()  # pads with 0
    n = reference.index(49407) + 1
    ids_1 = model.tokenizer(PROMPT, padding="max_length", max_length=77).input_ids
    ids_2 = model.tokenizer_2(PROMPT, padding="max_length", max_length=77).input_ids
    assert ids_1 == reference[:n] + [49407] * (77 - n)  # CLIP-L pads with <|endoftext|>
    assert ids_2 == reference  # bigG pads with "!" (id 0), and "!!" in text stays "!!"
    assert "!!" in PROMPT and 748 in ids_2  # 748: "!!</w>"


def test_saved_tokenizer_declaring_the_pad_token_special_still_matches_open_clip(models_root,
                                                                                 written):
    """Folders re-saved by newer transformers list "!" among their special tokens."""
    root = shutil.copytree(written["folder", "sdxl"], models_root / "diffusers" / "m")
    special = {"content": "!", "lstrip": False, "normalized": False, "rstrip": False,
               "single_word": False, "special": True}
    _edit_json(root / "tokenizer_2" / "tokenizer_config.json",
               added_tokens_decoder={"0": special}, pad_token={"__type": "AddedToken", **special})
    tokenizer = FAMILY.load(root).tokenizer_2
    assert tokenizer("a!!", padding="max_length", max_length=6).input_ids == [
        49406, 320, 748, 49407, 0, 0]


# --- recognising files -------------------------------------------------------------------------
@pytest.mark.parametrize("names,expected", [
    (["model.diffusion_model.input_blocks.0.0.weight", "first_stage_model.encoder.conv_in.weight"],
     True),
    (["lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight",
      "lora_te_text_model_encoder_layers_0_mlp_fc1.alpha"], False),
    (["encoder.conv_in.weight", "decoder.conv_out.weight", "quant_conv.weight"], False),  # VAE
    (["first_stage_model.encoder.conv_in.weight"], False),
    (["input_blocks.0.0.weight", "out.2.weight"], False),  # bare UNet (models/unet)
    (["image_encoder.patch_embed.proj.weight", "mask_decoder.iou_token.weight"], False),  # SAM
    ([], False),
])
def test_sniff(names, expected):
    assert sniff(names) is expected




def _variant(written, tmp_path, edit) -> object:
    state = load_file(written["file", "sd15"])
    edit(state)
    path = tmp_path / "variant.safetensors"
    save_file(state, path)
    return path


def _sd2(state):
    for key in [k for k in state if k.startswith("cond_stage_model.transformer.")]:
        state[key.replace("transformer.text_model.", "model.")] = state.pop(key)


def _refiner(state):
    for key in [k for k in state if k.startswith("cond_stage_model.")]:
        state[key.replace("cond_stage_model.transformer.text_model.",
                          "conditioner.embedders.0.model.")] = state.pop(key)


def _only(*names):
    def edit(state):
        state.clear()
        state.update({name: torch.zeros(2) for name in names})
    return edit


@pytest.mark.parametrize("edit,what", [
    (_sd2, "Stable Diffusion 2.x"),
    (_refiner, "SDXL refiner"),
    (lambda s: s.update(v_pred=torch.zeros(0)), "v-prediction"),
    (lambda s: s.update({"model.diffusion_model.input_blocks.0.0.weight":
                         torch.zeros(32, 9, 3, 3)}), "inpainting"),
    (_only("model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight"), "Stable Diffusion 3"),
    (_only("model.diffusion_model.double_blocks.0.img_attn.qkv.weight"), "Flux"),
    (lambda s: [s.pop(k) for k in list(s) if ".middle_block.1." in k], "modified sd15"),
])
def test_other_architectures_are_refused_by_name(models_root, written, tmp_path, edit, what):
    path = _variant(written, tmp_path, edit)
    with pytest.raises(InputError, match="not supported yet: SD1.5/SDXL only") as error:
        FAMILY.load(path)
    assert what in str(error.value) and str(path) in str(error.value)


def _nine_channels(state):
    """An inpainting checkpoint: the UNet's first conv reads latents + mask + masked latents."""
    name = "model.diffusion_model.input_blocks.0.0.weight"
    out, _, kh, kw = state[name].shape
    state[name] = torch.randn(out, 9, kh, kw, generator=torch.Generator().manual_seed(0)) * 0.1


def test_inpainting_checkpoint_loads_only_when_allowed_and_inpaints(models_root, written,
                                                                    tmp_path):
    import numpy as np

    from intenttuner.augment.inpaint import inpaint
    from intenttuner.augment.inpaint_base import InpaintSettings

    path = _variant(written, tmp_path, _nine_channels)
    with pytest.raises(InputError, match="allow_inpainting"):
        FAMILY.load(path)
    model = FAMILY.load(path, precision="fp32", allow_inpainting=True)
    assert model.unet.config.in_channels == 9
    pixels = np.full((64, 96, 3), 120, np.uint8)
    mask = np.zeros((64, 96), bool)
    mask[20:44, 30:60] = True
    fast = InpaintSettings(steps=2, min_context_px=8, work_side=64)
    out = np.asarray(inpaint([pixels], [mask], "diffusion", fast, model=model)[0]).astype(int)
    diff = np.abs(out - pixels)
    assert diff[~mask].max() == 0 and diff[mask].max() > 2


def test_load_base_model_node_offers_inpainting_checkpoints_as_an_option(pack):
    node = pack.NODE_CLASS_MAPPINGS["IntentTunerLoadBaseModel"]
    option = node.INPUT_TYPES()["optional"]["allow_inpainting"]
    assert option[0] == "BOOLEAN" and option[1]["default"] is False and option[1]["tooltip"]


def test_checkpoint_without_vae_is_refused(models_root, written, tmp_path):
    path = _variant(written, tmp_path, lambda s: [s.pop(k) for k in list(s)
                                                  if k.startswith("first_stage_model.")])
    with pytest.raises(InputError, match="no VAE weights"):
        FAMILY.load(path)


def test_checkpoint_missing_one_tensor_is_corrupt_not_random(models_root, written, tmp_path):
    name = "model.diffusion_model.output_blocks.2.0.skip_connection.weight"
    path = _variant(written, tmp_path, lambda s: s.pop(name))
    with pytest.raises(WeightsCorruptError, match="lacks"):
        FAMILY.load(path)


# --- unsafe or broken files ------------------------------------------------------------------
class Payload:
    """Stands for arbitrary pickled code; torch.load(weights_only=True) must refuse it."""


def test_ckpt_with_pickled_object_is_refused(models_root):
    path = models_root / "checkpoints" / "evil.ckpt"
    path.parent.mkdir()
    torch.save({"state_dict": {"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(1)},
                "callback": Payload()}, path)
    with pytest.raises(WeightsCorruptError, match="other than tensors"):
        FAMILY.load(path)




def test_missing_file_is_reported(models_root):
    with pytest.raises(WeightsNotFoundError):
        FAMILY.load(models_root / "checkpoints" / "nope.safetensors")


@pytest.mark.parametrize("change,what", [
    (lambda root: _edit_json(root / "model_index.json", _class_name="StableDiffusion3Pipeline"),
     "StableDiffusion3Pipeline"),
    (lambda root: _edit_json(root / "scheduler" / "scheduler_config.json",
                             prediction_type="v_prediction"), "v-prediction"),
])
def test_unsupported_diffusers_folders_are_refused(models_root, written, change, what):
    root = shutil.copytree(written["folder", "sd15"], models_root / "diffusers" / "m")
    change(root)
    with pytest.raises(InputError, match="not supported yet") as error:
        FAMILY.load(root)
    assert what in str(error.value)


def test_incomplete_diffusers_folder_names_the_missing_part(models_root, written):
    root = shutil.copytree(written["folder", "sd15"], models_root / "diffusers" / "m")
    shutil.rmtree(root / "vae")
    with pytest.raises(WeightsNotFoundError, match="'vae'"):
        FAMILY.load(root)
    (root / "model_index.json").unlink()
    with pytest.raises(WeightsNotFoundError, match="model_index.json"):
        FAMILY.load(root)


def _edit_json(path, **values):
    path.write_text(json.dumps({**json.loads(path.read_text()), **values}))


# --- full-size layouts, on meta tensors ------------------------------------------------------
def _full_size_meta(kind):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    configs = sd_configs.bundled_configs(kind)
    with torch.device("meta"):
        modules = {"unet": UNet2DConditionModel.from_config(configs["unet"]),
                   "vae": AutoencoderKL.from_config(configs["vae"]),
                   "text_encoder": CLIPTextModel(CLIPTextConfig(**configs["text_encoder"]))}
        if kind == "sdxl":
            modules["text_encoder_2"] = CLIPTextModelWithProjection(
                CLIPTextConfig(**configs["text_encoder_2"]))
    return configs, modules


@pytest.mark.parametrize("kind,tensors", [("sd15", 1131), ("sdxl", 2515)])
def test_full_size_layout_reads_back_to_the_bundled_configs(kind, tensors):
    """Real-size SD 1.5 / SDXL written in the original layout (names and shapes only): the
    loader recognises the kind, reads exactly the bundled configs off the shapes, and diffusers'
    converters map every tensor the modules need."""
    from diffusers.loaders.single_file_utils import (
        convert_ldm_clip_checkpoint,
        convert_ldm_unet_checkpoint,
        convert_ldm_vae_checkpoint,
    )

    configs, modules = _full_size_meta(kind)
    state = tiny.ldm_checkpoint(kind, modules)
    assert len(state) == tensors  # as many as v1-5-pruned-emaonly / sd_xl_base_1.0 hold
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    assert sniff(shapes) and base_model.detect_kind(shapes, "x") == kind
    defaults = {"transformer_layers_per_block": 1, "use_linear_projection": False}  # diffusers'
    for component, values in sd_configs.infer_overrides(kind, shapes).items():
        assert values == {k: configs[component].get(k, defaults.get(k)) for k in values}
    unet = convert_ldm_unet_checkpoint(state, configs["unet"])
    vae = convert_ldm_vae_checkpoint(state, configs["vae"])
    clip = {k.removeprefix("text_model."): v for k, v in convert_ldm_clip_checkpoint(state).items()}
    for name, converted in [("unet", unet), ("vae", vae), ("text_encoder", clip)]:
        expected = modules[name].state_dict()
        assert set(converted) - {"embeddings.position_ids"} == set(expected), name
        assert all(converted[k].shape == expected[k].shape for k in expected), name


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("INTENTTUNER_FULL_SIZE"),
                    reason="set INTENTTUNER_FULL_SIZE=1 (needs ~5 GB RAM)")
def test_full_size_sd15_round_trip(models_root):
    _, modules = _full_size_meta("sd15")
    gen = torch.Generator().manual_seed(0)
    for module in modules.values():
        torch.nn.Module.to(module, torch.float16).to_empty(device="cpu")
        for p in module.parameters():
            p.data.copy_(torch.randn(p.shape, generator=gen) * 0.02)
    path = models_root / "checkpoints" / "sd15-random.safetensors"
    path.parent.mkdir()
    save_file(tiny.ldm_checkpoint("sd15", modules), path)
    model = FAMILY.load(path, precision="fp16")
    for name, module in modules.items():
        loaded = model.modules()[name].state_dict()
        assert all(torch.equal(loaded[k], v) for k, v in module.state_dict().items()
                   if not k.endswith("position_ids")), name
