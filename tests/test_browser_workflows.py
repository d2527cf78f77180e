"""Every shipped workflow in the real ComfyUI frontend (headless Chromium): it loads with no
alert, toast, dialog, console error or failed request, opens with all its nodes in view, and the
runnable ones run to success in the order the README gives.

Needs COMFYUI_PATH, `playwright` and Chromium (see tests/browser_harness.py); skips without
them, except in CI, where it fails.
"""

from __future__ import annotations

import copy
import json
import re
import shutil

import pytest

from tests.browser_harness import Frontend, require_browser, shipped_workflows
from tests.comfyui_harness import ComfyServer, comfyui_location

pytestmark = [pytest.mark.comfyui, pytest.mark.browser]
# Run in this order: intent_load reads the intent intent_parse_offline saved.
RUNNABLE = ["intent_parse_offline", "intent_parse_llm", "intent_edit", "intent_load"]
# Their default models are real weights, downloaded on first use; train_monitor runs with tiny
# ones in tests/test_browser_train_monitor.py, full_pipeline (baseline_lora's stages and more)
# with tiny ones and a full-size random SD 1.5 on two servers in tests/test_e2e_comfyui.py.
LOAD_ONLY = ["concept_detect", "train_monitor", "full_pipeline", "baseline_lora"]
# Run with tiny random models in place of the default weights (same loaders, same formats).
# captions runs on the set the augment run writes, so it comes after it; train_lora trains on
# that captioned set (with a small SD 1.5 ComfyUI's own loader accepts: tests/training_comfy_model),
# and evaluate compares that checkpoint with the LoRA train_lora wrote.
# prompt_adapt generates on the same small checkpoint, with a tiny random Promptist; rate_images
# generates with the "pia" LoRA into Rate Images, and reward_finetune learns from those marks.
RUN_WITH_TINY_MODELS = ["augment", "captions", "train_lora", "evaluate", "prompt_adapt",
                        "rate_images", "reward_finetune", "intent_parse_local"]
TINY = {"IntentTunerLoadDetector": "detector", "IntentTunerLoadSegmenter": "segmenter",
        "IntentTunerLoadImageEncoder": "image_encoder", "IntentTunerLoadCaptioner": "captioner",
        "IntentTunerLoadLocalLLM": "local_llm", "IntentTunerLoadIdentityEncoder": "identity_encoder",
        # the tiny predictor reads the tiny open_clip's embeddings (as the real one ViT-L/14's)
        "IntentTunerLoadQualityScorer": "aesthetic",
        "IntentTunerLoadPromptAdapter": "prompt_adapter"}


@pytest.fixture(scope="module")
def frontend(tmp_path_factory):
    require_browser()
    checkout, _ = comfyui_location()
    base = tmp_path_factory.mktemp("comfy-workflows")
    (base / "input").mkdir()
    # The shipped workflows use ComfyUI's own example image, as a new user has it.
    shutil.copy(checkout / "input" / "example.png", base / "input" / "example.png")
    write_training_folder(base / "input" / "train")
    with ComfyServer(base) as server, Frontend(server) as frontend:
        frontend.tiny_models = write_tiny_models(base / "models")
        yield frontend


def write_training_folder(folder):
    """A few training photos of different sizes, one of them a file that is not an image."""
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True)
    for i, size in enumerate([(320, 240), (240, 320), (300, 300)]):
        image = Image.new("RGB", size, (90 + 40 * i, 150, 210))
        draw = ImageDraw.Draw(image)
        draw.ellipse((60, 40, 180, 160), fill=(240, 200, 170))  # a "face"
        draw.rectangle((40, 170, 200, 235), fill=(230, 110, 170))  # a "dress"
        image.save(folder / f"pia {i + 1}.png")
    (folder / "notes.png").write_bytes(b"not an image")


def write_tiny_models(models):
    """Tiny random detector, SAM, image encoder and captioner where ComfyUI's loaders list them;
    returns {loader node type: widget value}."""
    from intenttuner.families import FAMILIES
    from intenttuner.tiny import TINY_BUILDERS

    values = {}
    for node, family in TINY.items():
        folder = models / FAMILIES[family].folder
        values[node] = TINY_BUILDERS[family](folder).relative_to(folder).as_posix()
    return values


def test_the_list_of_shipped_workflows_is_complete():
    assert sorted(RUNNABLE + LOAD_ONLY + RUN_WITH_TINY_MODELS) == sorted(shipped_workflows())


@pytest.mark.parametrize("name", RUNNABLE + LOAD_ONLY + RUN_WITH_TINY_MODELS)
def test_workflow_loads_without_alarm_with_every_node_in_view(frontend, name):
    assert frontend.load_workflow(shipped_workflows()[name]) == []


def test_a_workflow_the_frontend_rejects_is_caught(frontend):
    """The check above can fail: nulls where the frontend's schema wants a list raise the
    "Invalid workflow against zod schema" alert, and a node far off screen is out of view."""
    broken = copy.deepcopy(shipped_workflows()["intent_load"])
    broken["floatingLinks"] = None
    broken.setdefault("extra", {})["ds"] = {"scale": 1, "offset": [-5000, -5000]}
    problems = frontend.load_workflow(broken)
    assert any("zod schema" in p and "floatingLinks" in p for p in problems), problems
    assert any(p.startswith("not in view: IntentTunerIntentLoad") for p in problems), problems


def test_runnable_workflows_run_to_success(frontend):
    server = frontend.server
    finished = len(server.get("/history"))
    for i, name in enumerate(RUNNABLE, start=1):
        assert frontend.load_workflow(shipped_workflows()[name]) == [], name
        frontend.queue()
        entry = server.wait_for_history(finished + i)
        assert entry["status"]["status_str"] == "success", (name, entry["status"])
    intents = server.base / "output" / "intents"
    saved = sorted(p.relative_to(intents).as_posix() for p in intents.rglob("*.json"))
    assert saved == ["intent_00001.json", "pia/edited_00001.json", "pia/intent_00001.json"]


SET_WIDGETS = """(values) => {
  for (const n of window.app.graph._nodes)
    for (const [name, value] of Object.entries(values[n.type] || {})) {
      const widget = n.widgets.find((w) => w.name === name);
      if (!widget) throw new Error(`${n.type} has no widget ${name}`);
      widget.value = value;
    }
}"""


def run_shipped(frontend, name: str, values: dict) -> dict:
    """Set ``values`` ({node type: {widget: value}}) on the loaded workflow ``name``, queue it
    as a user does, wait for success; returns {node type: its outputs in the history}."""
    outputs = run_shipped_nodes(frontend, name, values)
    return {node["type"]: outputs[node["id"]] for node in shipped_workflows()[name]["nodes"]}


def run_shipped_nodes(frontend, name: str, values: dict) -> dict[int, dict]:
    """`run_shipped` for workflows with several nodes of one type: {node id: its outputs}."""
    server = frontend.server
    frontend.page.evaluate(SET_WIDGETS, values)
    finished = len(server.get("/history"))
    frontend.queue()
    entry = server.wait_for_history(finished + 1, timeout=300)
    errors = [f"{m[1]['node_type']}: {m[1]['exception_message']}"
              for m in entry["status"]["messages"] if m[0] == "execution_error"]
    assert entry["status"]["status_str"] == "success", errors or entry["status"]
    return {node["id"]: entry["outputs"].get(str(node["id"]), {})
            for node in shipped_workflows()[name]["nodes"]}


def test_augment_workflow_runs_from_folder_to_training_set(frontend):
    """Load Training Images -> Concept Detect -> Reference Filter -> IntentCrop ->
    IntentInpaint -> Save Training Set, as a user runs it, with tiny models in place of the
    default weights and every box the tiny detector proposes kept (thresholds 0)."""
    server = frontend.server
    assert frontend.load_workflow(shipped_workflows()["augment"]) == []
    values = {node: {"model": value} for node, value in frontend.tiny_models.items()}
    values["IntentTunerLoadTrainingImages"] = {"path": "train"}
    values["IntentTunerConceptDetect"] = {"box_threshold": 0.0, "text_threshold": 0.0}
    values["IntentTunerRefFilter"] = {"threshold": -1.0}
    values["IntentTunerIntentCrop"] = {"min_size": 64}  # the tiny detector's boxes are small
    values["IntentTunerSaveTrainingSet"] = {"name": "pia"}
    outputs = run_shipped(frontend, "augment", values)
    report = outputs["IntentTunerLoadTrainingImages"]["text"][0]
    assert "3 of 4 loaded" in report and "notes.png (not an image" in report, report
    crop_text = outputs["IntentTunerIntentCrop"]["text"][0]
    sets = list((server.base / "input" / "training_sets").glob("pia*/dataset.json"))
    assert len(sets) == 1, sets
    from intenttuner.dataset.kohya import read_training_set

    training_set = read_training_set(sets[0].parent)
    originals = [i for i in training_set.items if i.operation == "original"]
    assert sorted(i.source_name for i in originals) == ["pia 1.png", "pia 2.png", "pia 3.png"]
    # Every crop the summary announces is in the set, each with its provenance.
    crops = [i for i in training_set.items if i.operation != "original"]
    assert crops, crop_text
    assert all(i.concept and i.source_name.startswith("pia ") for i in crops)
    # The previews on the nodes: IntentCrop's pages hold one labelled tile per item (the labels
    # themselves: tests/test_augment_preview.py), IntentInpaint shows each source before | after.
    from intenttuner.augment.preview import COLUMNS, ROWS_PER_PAGE

    pages = -(-len(training_set.items) // (COLUMNS * ROWS_PER_PAGE))
    assert len(outputs["IntentTunerIntentCrop"]["images"]) == pages, crop_text
    assert len(outputs["IntentTunerIntentInpaint"]["images"]) == len(originals)
    # "No clouds in the background": with every box kept, each original has clouds painted out.
    assert all("clouds" in i.removed for i in originals), [i.removed for i in originals]


def test_captions_workflow_captions_the_set_the_augment_workflow_wrote(frontend):
    """Load Training Set (the "pia" set written by the augment run above) -> Caption Refine
    (tiny random Florence-2) -> Caption Review, as a user runs it: every image gets its caption
    beside it on disk, following the intent, and the review panel lists them all."""
    server = frontend.server
    sets = list((server.base / "input" / "training_sets").glob("pia*/dataset.json"))
    assert len(sets) == 1, "the augment workflow test writes this set first"
    assert frontend.load_workflow(shipped_workflows()["captions"]) == []
    values = {"IntentTunerLoadCaptioner": {"model": frontend.tiny_models[
                  "IntentTunerLoadCaptioner"]},
              "IntentTunerLoadTrainingSet": {"path": f"training_sets/{sets[0].parent.name}"},
              "IntentTunerCaptionRefine": {"max_new_tokens": 12}}
    outputs = run_shipped(frontend, "captions", values)
    from intenttuner.dataset.kohya import read_training_set

    training_set = read_training_set(sets[0].parent)
    assert training_set.items and all(i.caption_source == "refined" for i in training_set.items)
    for item in training_set.items:
        on_disk = (training_set.path / item.caption_file).read_text(encoding="utf-8").strip()
        assert on_disk == item.caption and on_disk.lower().startswith("pia"), on_disk
        assert "cloud" not in on_disk  # "No clouds in the background"
    report = outputs["IntentTunerCaptionRefine"]["text"][0]
    assert f"{len(training_set.items)} caption(s) refined" in report, report
    assert len(outputs["IntentTunerCaptionRefine"]["images"]) == 1  # the contact sheet
    listed = outputs["IntentTunerCaptionReview"]["it_captions"]
    assert [e["caption"] for e in listed] == [i.caption for i in training_set.items]


def test_train_lora_workflow_trains_on_the_captioned_set_and_generates_with_it(frontend):
    """Load Training Set (the "pia" set the augment and captions runs wrote) -> Load Base
    Model -> LoRA Train -> Apply Trained LoRA on Load Checkpoint's MODEL/CLIP -> KSampler ->
    Save Image, as a user runs it: 2 steps at 64 px on a small random SD 1.5 that both loaders
    read (ComfyUI refuses the tiny ones: it recognises SD 1.5 by its full-width UNet)."""
    from tests.training_comfy_model import make_comfy_sd15_checkpoint

    server = frontend.server
    sets = list((server.base / "input" / "training_sets").glob("pia*/dataset.json"))
    assert len(sets) == 1, "the augment workflow test writes this set first"
    checkpoint = make_comfy_sd15_checkpoint(server.base / "models" / "checkpoints").name
    assert frontend.load_workflow(shipped_workflows()["train_lora"]) == []
    outputs = run_shipped(frontend, "train_lora", {
        "IntentTunerLoadTrainingSet": {"path": f"training_sets/{sets[0].parent.name}"},
        "IntentTunerLoadBaseModel": {"model": checkpoint, "precision": "fp32"},
        "CheckpointLoaderSimple": {"ckpt_name": checkpoint},
        "IntentTunerLoRATrain": {"max_train_steps": 2, "resolution": 64, "rank": 4, "alpha": 4,
                                 "gradient_checkpointing": False, "upscale_small_images": True,
                                 "save_every_steps": 0},
        "EmptyLatentImage": {"width": 64, "height": 64},
        "KSampler": {"steps": 2}})
    report = outputs["IntentTunerLoRATrain"]["text"][0]
    assert "Trained pia: 2 step(s)." in report, report
    assert len(outputs["IntentTunerLoRATrain"]["images"]) == 1  # the curves (no monitor: loss)
    assert (server.base / "models" / "loras" / "pia.safetensors").is_file()
    assert len(outputs["SaveImage"]["images"]) == 1  # generated with the LoRA applied


SCORE_NODES = {"IntentTunerStabilityScore": "stability",
               "IntentTunerControllabilityScore": "controllability",
               "IntentTunerDeleteLeakage": "leakage"}


def test_evaluate_workflow_generates_from_the_plan_and_reports(frontend):
    """Intent Parse -> Evaluation Prompts -> stock CLIPTextEncode / KSampler / VAE Decode once
    per prompt, for the checkpoint alone and with the "pia" LoRA the train_lora run wrote
    (through stock Load LoRA) -> Stability, Controllability, Delete Leakage per model ->
    Evaluation Report, as a user runs it, with tiny scoring models and every box kept."""
    from tests.training_comfy_model import make_comfy_sd15_checkpoint

    server = frontend.server
    assert (server.base / "models" / "loras" / "pia.safetensors").is_file(), \
        "the train_lora workflow test writes this LoRA first"
    checkpoint = make_comfy_sd15_checkpoint(server.base / "models" / "checkpoints").name
    assert frontend.load_workflow(shipped_workflows()["evaluate"]) == []
    values = {node: {"model": value} for node, value in frontend.tiny_models.items()}
    values |= {
        "CheckpointLoaderSimple": {"ckpt_name": checkpoint},
        "EmptyLatentImage": {"width": 64, "height": 64},
        "KSampler": {"steps": 2},
        "IntentTunerEvaluationPrompts": {"prompts_per_test": 1, "images_per_prompt": 1},
        "IntentTunerStabilityScore": {"box_threshold": 0.0},
        "IntentTunerControllabilityScore": {"box_threshold": 0.0},
        "IntentTunerDeleteLeakage": {"box_threshold": 0.0}}
    outputs = run_shipped_nodes(frontend, "evaluate", values)
    nodes = shipped_workflows()["evaluate"]["nodes"]
    of_type = {t: [outputs[n["id"]] for n in nodes if n["type"] == t]
               for t in {n["type"] for n in nodes}}
    summary = of_type["IntentTunerEvaluationPrompts"][0]["text"][0]
    planned = int(re.match(r"(\d+) image\(s\) to generate", summary)[1])
    assert planned == 4, summary  # 1 stability, 2 controllability (black / blonde), 1 leakage
    # Each score node of each model got one image per prompt, paired through the plan.
    for node_type, metric in SCORE_NODES.items():
        assert len(of_type[node_type]) == 2, node_type  # base, LoRA
        for node in of_type[node_type]:
            text = node["text"][0]
            assert f"{planned} image(s) paired with the plan's {planned} prompt(s)" in text, text
            assert text.endswith(f" scored for {metric}"), text
            assert len(node["images"]) == 1  # the annotated preview
    assert len(of_type["IntentTunerEvaluationReport"][0]["images"]) == 1
    assert len(of_type["SaveImage"][0]["images"]) == 1  # the report, saved
    saved = list((server.base / "output" / "intenttuner" / "evaluations").glob("*.json"))
    assert len(saved) == 1, saved
    runs = json.loads(saved[0].read_text())["runs"]
    assert [run["label"] for run in runs] == ["base", "pia LoRA"]
    for run in runs:
        assert sorted(run["results"]) == sorted(SCORE_NODES.values()), run["label"]
        for metric, result in run["results"].items():
            # The Pia intent keeps the face, modifies hair colour and deletes the clouds, so
            # each metric applies and is scored on the images: a number, with what it counted.
            where = (run["label"], metric, result)
            assert result["applicable"], where
            assert 0.0 <= result["score"] <= 1.0, where
            assert result["concepts"] and all(c["images"] >= 1 for c in result["concepts"]
                                              if c["applicable"]), where


def test_prompt_adapt_workflow_adapts_generates_with_the_same_seeds_and_rewards(frontend):
    """Intent Parse -> Evaluation Prompts -> Prompt Adapt (a tiny random Promptist: garbage
    rewrites, so the intent checks repair them) -> stock CLIPTextEncode / KSampler / VAE Decode
    for the plain and the adapted prompts, same seeds -> Prompt Reward -> Save Image."""
    from tests.training_comfy_model import make_comfy_sd15_checkpoint

    server = frontend.server
    checkpoint = make_comfy_sd15_checkpoint(server.base / "models" / "checkpoints").name
    assert frontend.load_workflow(shipped_workflows()["prompt_adapt"]) == []
    values = {node: {"model": value} for node, value in frontend.tiny_models.items()}
    values |= {
        "CheckpointLoaderSimple": {"ckpt_name": checkpoint},
        "EmptyLatentImage": {"width": 64, "height": 64},
        "KSampler": {"steps": 2},
        "IntentTunerEvaluationPrompts": {"prompts_per_test": 1, "images_per_prompt": 1}}
    outputs = run_shipped(frontend, "prompt_adapt", values)
    # (Evaluation Prompts' own text may be cached from the evaluate run: same intent, same plan)
    report = outputs["IntentTunerPromptAdapt"]["text"][0]
    header = re.match(r"Adapted \d+ of (\d+) prompt\(s\) with promptist:", report)
    assert header, report
    planned = int(header[1])
    assert planned == 4, report  # 1 stability, 2 controllability (black / blonde), 1 leakage
    # Every prompt names the trigger word, so every rewrite keeps it (repaired where not).
    # (each prompt's line, then "   -> rewrite" unless the plain prompt was kept)
    pairs = [(plain, adapted or plain) for plain, adapted in
             re.findall(r"^\d+\. (.*)$(?:\n   -> (.*)$)?", report, re.MULTILINE)]
    assert len(pairs) == planned, report
    for plain, adapted in pairs:
        assert "pia" in plain.lower() and "pia" in adapted.lower(), (plain, adapted)
        assert "cloud" not in adapted.lower(), adapted  # the deleted concept never comes in
    reward = outputs["IntentTunerPromptReward"]
    text = reward["text"][0]
    assert text.startswith(f"Prompt reward of {planned} rewrite(s)"), text
    assert len(reward["images"]) == 1
    assert len(outputs["SaveImage"]["images"]) == 1  # the reward table, saved


def test_rate_images_then_reward_finetune_learn_from_the_marks(frontend):
    """rate_images: Intent Parse -> Evaluation Prompts -> stock Load Checkpoint + Load LoRA (the
    "pia" LoRA the train_lora run wrote) -> KSampler -> Rate Images, whose gallery lists each
    image with its prompt; the marks go in as the gallery's buttons send them (POST
    /intenttuner/feedback/mark; the clicks: tests/test_rate_images_browser.py). Then
    reward_finetune: Load Feedback -> Train Reward Model (tiny open_clip, train_anyway: 4 marks)
    -> Reward Fine-Tune of pia.safetensors, kept on its training set: a new LoRA beside the old
    one, which stays as it was, and the before/after comparison."""
    import hashlib

    from tests.training_comfy_model import make_comfy_sd15_checkpoint

    server = frontend.server
    old_lora = server.base / "models" / "loras" / "pia.safetensors"
    assert old_lora.is_file(), "the train_lora workflow test writes this LoRA first"
    old_hash = hashlib.sha256(old_lora.read_bytes()).hexdigest()
    sets = list((server.base / "input" / "training_sets").glob("pia*/dataset.json"))
    checkpoint = make_comfy_sd15_checkpoint(server.base / "models" / "checkpoints").name
    assert frontend.load_workflow(shipped_workflows()["rate_images"]) == []
    rated = run_shipped(frontend, "rate_images", {
        "CheckpointLoaderSimple": {"ckpt_name": checkpoint},
        "EmptyLatentImage": {"width": 64, "height": 64}, "KSampler": {"steps": 2},
        "IntentTunerEvaluationPrompts": {"prompts_per_test": 1, "images_per_prompt": 1}})
    gallery = rated["IntentTunerRateImages"]["it_rate"]
    assert len(gallery) == 4, gallery  # 1 stability, 2 controllability, 1 leakage prompt
    assert all("pia" in entry["prompt"].lower() and entry["mark"] is None for entry in gallery)
    for i, entry in enumerate(gallery):
        server.post("/intenttuner/feedback/mark", {"set": "my_ratings", "image": entry["image"],
                                                   "mark": "good" if i % 2 else "bad"})
    assert frontend.load_workflow(shipped_workflows()["reward_finetune"]) == []
    values = {node: {"model": value} for node, value in frontend.tiny_models.items()}
    values |= {
        "IntentTunerLoadFeedback": {"feedback_set": "my_ratings"},
        "IntentTunerTrainRewardModel": {"name": "pia_reward", "epochs": 5, "train_anyway": True},
        "IntentTunerLoadTrainingSet": {"path": f"training_sets/{sets[0].parent.name}"},
        "IntentTunerLoadBaseModel": {"model": checkpoint, "precision": "fp32"},
        "IntentTunerRewardFineTune": {"max_train_steps": 2, "compare_steps": 2}}
    outputs = run_shipped(frontend, "reward_finetune", values)
    report = outputs["IntentTunerTrainRewardModel"]["text"][0]
    assert "Trained anyway (train_anyway)" in report and "2 good, 2 bad" in report, report
    assert (server.base / "models" / "reward_models" / "pia_reward.safetensors").is_file()
    text = outputs["IntentTunerRewardFineTune"]["text"][0]
    assert text.startswith("Reward fine-tune of pia"), text
    assert (server.base / "models" / "loras" / "pia-reward.safetensors").is_file(), text
    assert hashlib.sha256(old_lora.read_bytes()).hexdigest() == old_hash  # never overwritten
    assert len(outputs["IntentTunerRewardFineTune"]["images"]) == 1  # the comparison
    assert len(outputs["SaveImage"]["images"]) == 1


def test_local_llm_workflow_runs_in_process_and_falls_back_visibly(frontend):
    """Load Local LLM (a tiny random Qwen2: its answers are garbage) -> Intent Parse: one repair
    round, then the offline parser, and the node says so; the intent is saved all the same."""
    assert frontend.load_workflow(shipped_workflows()["intent_parse_local"]) == []
    outputs = run_shipped(frontend, "intent_parse_local", {"IntentTunerLoadLocalLLM": {
        "model": frontend.tiny_models["IntentTunerLoadLocalLLM"], "max_new_tokens": 48}})
    text = outputs["IntentTunerIntentParse"]["text"][0]
    assert "Parser: offline" in text and "(in-process) failed" in text, text
    saved = frontend.server.base / "output" / "intents" / "pia"
    assert [p.name for p in saved.glob("intent_local_*.json")] == ["intent_local_00001.json"]
