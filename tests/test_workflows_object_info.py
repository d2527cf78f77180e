"""Every shipped workflow against a real ComfyUI: checked with its /object_info (node types
installed, links between matching types, widget values valid, required inputs set), converted
to an API prompt that ComfyUI's own ``validate_prompt`` accepts, and — in the browser tier — the
conversion compared with what ComfyUI's frontend itself queues.

One ComfyServer for the module (tests/comfyui_harness.py), on a base directory holding what the
workflows' widgets name: empty placeholder files for the stock loaders' model names (ComfyUI
lists files by extension and nothing is loaded), ComfyUI's example.png, a saved intent and the
training-set folder the workflows that run after others expect. The pack installs its example
data into input/ itself when it loads (checked here too, with one file changed beforehand that
it must keep). Skips without COMFYUI_PATH (and the browser tests
without Chromium), except in CI, where they fail.
"""

from __future__ import annotations

import copy
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from intenttuner.examples import INSTALLED_REFERENCE, INSTALLED_TRAIN, shipped_example
from intenttuner.workflows import check_workflow, node_spec, ui_to_api
from intenttuner.workflows.widgets import UnsupportedLayout, widget_layout
from tests.browser_harness import Frontend, require_browser, shipped_workflows
from tests.comfyui_harness import ComfyServer, comfyui_location, run_in_comfyui
from tests.workflow_builder import Ui

pytestmark = pytest.mark.comfyui
NAMES = sorted(shipped_workflows())
SCRIPT = Path(__file__).with_name("comfyui_validate_prompts.py")
# Stock loaders whose first widget is a file of this models/ folder.
STOCK_MODEL_FOLDERS = {"CheckpointLoaderSimple": "checkpoints", "LoraLoader": "loras",
                       "LoraLoaderModelOnly": "loras", "VAELoader": "vae",
                       "UNETLoader": "diffusion_models", "CLIPLoader": "text_encoders",
                       "ControlNetLoader": "controlnet", "UpscaleModelLoader": "upscale_models"}
# Folder loaders: (dropdown, typed path) widgets naming a folder of input/.
FOLDER_LOADERS = {"IntentTunerLoadTrainingImages", "IntentTunerLoadTrainingSet"}
PACK_EXAMPLES = "intenttuner_examples"  # input/ folder the pack installs its example data into
TYPE_A_PATH = "(type a path below)"


@dataclass
class Comfy:
    server: ComfyServer
    object_info: dict
    base: Path


@pytest.fixture(scope="module")
def comfy(tmp_path_factory):
    checkout, _ = comfyui_location()
    base = tmp_path_factory.mktemp("workflows-object-info")
    write_widget_files(base, checkout, shipped_workflows().values())
    changed = base / "input" / INSTALLED_TRAIN / CHANGED_EXAMPLE
    changed.parent.mkdir(parents=True)
    changed.write_bytes(b"a file the user put there")
    # With ComfyUI's API nodes: the widget-layout check covers every node type a user has.
    with ComfyServer(base, api_nodes=True) as server:
        yield Comfy(server, server.get("/object_info"), base)


CHANGED_EXAMPLE = "milo_01.png"  # an example file the user changed before the pack loaded


def test_the_pack_installs_the_example_at_startup_keeping_a_changed_file(comfy):
    train = comfy.base / "input" / INSTALLED_TRAIN
    example = shipped_example()
    assert sorted(p.name for p in train.iterdir()) == [p.name for p in
                                                       example.training_images()]
    assert (train / CHANGED_EXAMPLE).read_bytes() == b"a file the user put there"
    log = comfy.server.log()
    assert "copied the example data" in log
    assert f"kept 1 example file(s) you changed in {comfy.base / 'input'}" in log
    listed = comfy.object_info["LoadImage"]["input"]["required"]["image"][0]
    assert INSTALLED_REFERENCE in listed  # stock LoadImage lists it: top level of input/


def write_widget_files(base: Path, checkout: Path, workflows) -> None:
    """What the workflows' widgets name, where ComfyUI lists it."""
    (base / "input").mkdir(parents=True, exist_ok=True)
    shutil.copy(checkout / "input" / "example.png", base / "input" / "example.png")
    for workflow in workflows:
        for node in workflow["nodes"]:
            values = node.get("widgets_values") or []
            if node["type"] in STOCK_MODEL_FOLDERS:
                target = base / "models" / STOCK_MODEL_FOLDERS[node["type"]] / values[0]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.touch()
            elif node["type"] == "IntentTunerIntentLoad":  # an intent an earlier run saved
                target = base / values[0]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text("{}")
            elif node["type"] == "IntentTunerLoadFeedback":  # a set rate_images writes
                rating = base / "output" / "intenttuner" / "feedback" / values[0]
                rating.mkdir(parents=True, exist_ok=True)
                (rating / "images.jsonl").touch()
            elif node["type"] in FOLDER_LOADERS:  # a folder an earlier workflow writes
                for folder in values[:2]:
                    if folder and folder != TYPE_A_PATH and not folder.startswith(PACK_EXAMPLES):
                        (base / "input" / folder).mkdir(parents=True, exist_ok=True)


@pytest.mark.parametrize("name", NAMES)
def test_shipped_workflow_passes_the_check_and_converts(comfy, name):
    workflow = shipped_workflows()[name]
    assert [str(p) for p in check_workflow(workflow, comfy.object_info)] == []
    prompt = ui_to_api(workflow, comfy.object_info)
    real = [n for n in workflow["nodes"] if n["type"] not in ("MarkdownNote", "Note")]
    assert sorted(prompt) == sorted(str(n["id"]) for n in real if n.get("mode", 0) not in (2, 4))


def test_the_check_fails_on_a_broken_shipped_workflow(comfy):
    """The real /object_info catches what a user would meet: a pack node that is not
    installed, a combo value the server does not list, a value out of range."""
    workflow = copy.deepcopy(shipped_workflows()["train_lora"])
    by_type = {n["type"]: n for n in workflow["nodes"]}
    by_type["IntentTunerLoRATrain"]["type"] = "IntentTunerLoRATrainer"
    by_type["CheckpointLoaderSimple"]["widgets_values"] = ["sd_xl_base_1.0.safetensors"]
    by_type["KSampler"]["widgets_values"][2] = 0  # steps
    found = [str(p) for p in check_workflow(workflow, comfy.object_info)]
    assert found[0].endswith("IntentTunerLoRATrainer is not installed (pack: "
                             "ComfyUI-IntentTuner) — install or update that pack")
    assert any("input 'ckpt_name': value 'sd_xl_base_1.0.safetensors' is not one of the "
               "options ('v1-5-pruned-emaonly.safetensors'" in p for p in found), found
    assert any("(KSampler) input 'steps': value 0 is below min 1" in p for p in found), found


# --- ComfyUI's own validation of the converted prompts -----------------------------------------


def broken_prompts(prompts: dict) -> dict:
    """One prompt per kind of error ComfyUI's validate_prompt reports, made from a shipped
    workflow with a KSampler: {name: (prompt, (node id, input) ComfyUI should name)}."""
    name = next(n for n in NAMES if any(v["class_type"] == "KSampler"
                                        for v in prompts[n].values()))
    sampler = next(k for k, v in prompts[name].items() if v["class_type"] == "KSampler")
    model_from = prompts[name][sampler]["inputs"]["model"][0]
    cases = {"steps-below-min": ("steps", 0), "sampler-not-listed": ("sampler_name", "nope"),
             "model-gets-clip": ("model", [model_from, 1])}
    broken = {}
    for case, (field, value) in cases.items():
        prompt = copy.deepcopy(prompts[name])
        prompt[sampler]["inputs"][field] = value
        broken[case] = (prompt, (sampler, field))
    return broken


@pytest.fixture(scope="module")
def converted(comfy):
    return {name: ui_to_api(shipped_workflows()[name], comfy.object_info) for name in NAMES}


@pytest.fixture(scope="module")
def comfyui_verdicts(comfy, converted, tmp_path_factory):
    job = tmp_path_factory.mktemp("validate") / "prompts.json"
    broken = {case: prompt for case, (prompt, _) in broken_prompts(converted).items()}
    job.write_text(json.dumps({**converted, **broken}))
    return run_in_comfyui(SCRIPT, comfy.base, str(job))


@pytest.mark.parametrize("name", NAMES)
def test_comfyui_validates_the_converted_prompt(comfyui_verdicts, name):
    verdict = comfyui_verdicts[name]
    assert verdict["valid"] is True and verdict["node_errors"] == {}, verdict


def test_comfyui_and_the_check_name_the_same_errors(comfy, converted, comfyui_verdicts):
    """The cross-check can fail: ComfyUI refuses each broken prompt, naming the node and input
    the check names."""
    for case, (prompt, (node_id, field)) in broken_prompts(converted).items():
        verdict = comfyui_verdicts[case]
        # (the prompt stays valid while another output does not depend on the broken node)
        assert node_id in verdict["node_errors"], (case, verdict)
        named = [e["extra_info"]["input_name"] for e in verdict["node_errors"][node_id]["errors"]]
        assert named == [field], (case, verdict)
        ours = [(p.node_id, p.input) for p in check_workflow(prompt, comfy.object_info)]
        assert ours == [(node_id, field)], case


# --- the real frontend as the reference for the conversion (browser tier) ----------------------


@pytest.fixture(scope="module")
def frontend(comfy):
    require_browser()
    with Frontend(comfy.server) as frontend:
        yield frontend


def frontend_prompt(frontend, workflow: dict) -> dict:
    """The API prompt the frontend queues for ``workflow`` (app.graphToPrompt's output)."""
    frontend.load_workflow(workflow)
    return json.loads(frontend.page.evaluate(
        "async () => JSON.stringify((await window.app.graphToPrompt()).output)"))


@pytest.mark.browser
def test_frontend_lays_out_widgets_as_the_converter_does_for_every_node_type(comfy, frontend):
    widgets = frontend.page.evaluate("""(types) => {
      const out = {};
      for (const type of types) {
        try {
          const node = window.LiteGraph.createNode(type);
          out[type] = (node.widgets || []).map(
            (w) => [w.name, w.serialize !== false, w.options?.serialize !== false]);
        } catch (e) { out[type] = String(e); }
      }
      return out;
    }""", sorted(comfy.object_info))
    compared, differ = [], {}
    for kind, made in widgets.items():
        try:
            expected = widget_layout(node_spec(comfy.object_info, kind))
        except UnsupportedLayout:
            continue
        # saved widgets in order: the input's name when it is sent, None when it is not
        got = made if isinstance(made, str) else [n if sent else None for n, saved, sent in made
                                                  if saved]
        compared.append(kind)
        if got != expected:
            differ[kind] = {"converter": expected, "frontend": got}
    assert differ == {}, json.dumps(differ, indent=1)
    assert len(compared) > 500
    assert {"KSampler", "LoadImage", "LoadImageMask", "IntentTunerIntentParse"} <= set(compared)


@pytest.mark.browser
@pytest.mark.parametrize("name", NAMES)
def test_frontend_queues_the_prompt_the_converter_makes(comfy, frontend, name):
    workflow = shipped_workflows()[name]
    assert ui_to_api(workflow, comfy.object_info) == frontend_prompt(frontend, workflow)


def reroutes_primitive_bypass_and_mute() -> dict:
    """Stock nodes wired through every shape the converter resolves: a bypassed LoRA loader,
    a Reroute, a primitive feeding a widget turned input, a seed with its control, an upload
    button after input_order, muted nodes, notes."""
    ui = Ui()
    ui.add(1, "CheckpointLoaderSimple", ["v1-5-pruned-emaonly.safetensors"],
           outputs=["MODEL", "CLIP", "VAE"])
    ui.add(2, "LoraLoader", ["pia.safetensors", 0.8, 0.9], mode=4,
           inputs=[("model", "MODEL"), ("clip", "CLIP")], outputs=["MODEL", "CLIP"])
    ui.add(3, "Reroute", inputs=[("", "*")], outputs=["*"])
    ui.add(4, "CLIPTextEncode", ["a cat"], inputs=[("clip", "CLIP")], outputs=["CONDITIONING"])
    ui.add(5, "CLIPTextEncode", [""], inputs=[("clip", "CLIP")], outputs=["CONDITIONING"])
    ui.add(6, "PrimitiveNode", ["ugly, blurry"], outputs=["STRING"],
           properties={"Run widget replace on values": False})
    ui.add(7, "EmptyLatentImage", [256, 256, 1], outputs=["LATENT"])
    ui.add(8, "KSampler", [42, "randomize", 12, 6.5, "euler", "normal", 1],
           inputs=[("model", "MODEL"), ("positive", "CONDITIONING"),
                   ("negative", "CONDITIONING"), ("latent_image", "LATENT")], outputs=["LATENT"])
    ui.add(9, "VAEDecode", inputs=[("samples", "LATENT"), ("vae", "VAE")], outputs=["IMAGE"])
    ui.add(10, "SaveImage", ["synthetic"], inputs=[("images", "IMAGE")])
    ui.add(11, "LoadImageMask", ["example.png", "alpha", "image"], outputs=["MASK"])
    ui.add(12, "MaskToImage", inputs=[("mask", "MASK")], outputs=["IMAGE"])
    ui.add(13, "PreviewImage", inputs=[("images", "IMAGE")])
    ui.add(14, "ImageInvert", mode=2, inputs=[("image", "IMAGE")], outputs=["IMAGE"])
    ui.add(15, "PreviewImage", inputs=[("images", "IMAGE")])
    ui.add(16, "PreviewImage", mode=2, inputs=[("images", "IMAGE")])
    ui.add(17, "Note", ["a note"])
    ui.add(18, "MarkdownNote", ["# a markdown note"])
    ui.wire(1, 0, 2, "model")
    ui.wire(1, 1, 2, "clip")
    ui.wire(2, 0, 3, "")
    ui.wire(3, 0, 8, "model", kind="MODEL")
    ui.wire(2, 1, 4, "clip")
    ui.wire(2, 1, 5, "clip")
    ui.nodes[5]["outputs"][0]["widget"] = {"name": "text"}
    ui.wire(6, 0, 5, "text", widget=True)
    ui.wire(4, 0, 8, "positive")
    ui.wire(5, 0, 8, "negative")
    ui.wire(7, 0, 8, "latent_image")
    ui.wire(8, 0, 9, "samples")
    ui.wire(1, 2, 9, "vae")
    ui.wire(9, 0, 10, "images")
    ui.wire(11, 0, 12, "mask")
    ui.wire(12, 0, 13, "images")
    ui.wire(9, 0, 14, "image")
    ui.wire(14, 0, 15, "images")
    ui.wire(9, 0, 16, "images")
    workflow = ui.json()
    workflow.update(last_node_id=18, last_link_id=len(workflow["links"]))
    return workflow


@pytest.mark.browser
def test_frontend_resolves_reroutes_primitives_bypass_and_mute_as_the_converter(comfy, frontend):
    workflow = reroutes_primitive_bypass_and_mute()
    ours = ui_to_api(workflow, comfy.object_info)
    assert ours == frontend_prompt(frontend, workflow)
    # What the comparison covers: each resolution happened, not just equal emptiness.
    assert ours["8"]["inputs"]["model"] == ["1", 0]  # Reroute -> bypassed LoRA -> checkpoint
    assert ours["4"]["inputs"]["clip"] == ["1", 1]
    assert ours["5"]["inputs"]["text"] == "ugly, blurry"  # the primitive's value
    assert ours["8"]["inputs"]["seed"] == 42 and ours["11"]["inputs"] == {
        "image": "example.png", "channel": "alpha"}
    assert "images" not in ours["15"]["inputs"]  # fed by the muted ImageInvert
    assert not {"2", "3", "6", "14", "16", "17", "18"} & set(ours)
