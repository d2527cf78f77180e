"""The whole pipeline end to end on real ComfyUI servers: workflows/full_pipeline.json, as
shipped, driven by the batch runner (`intenttuner.batch.run_batch`) with a sweep of two LoRA
ranks over two headless CPU servers the test starts.

Each server gets the tiny random scoring, captioning, detection and inpainting models in place
of the default weights (same loaders, same formats; written once and linked into both) and a
full-size random SD 1.5 made by scripts/make_random_checkpoint.py (the session fixture
`full_size_sd15`, linked, not copied): ComfyUI's own CheckpointLoaderSimple / KSampler /
VAEDecode generate with it and our trainer trains on it. The ``--set`` values shrink the work
to what a 2-CPU machine runs in minutes: 4 of the example's 16 pictures at 128 px, 2 training
steps at 64 px, one monitor point of 1 denoising step, 64 x 64 images of 1 step without the
negative pass (cfg 1), and thresholds that keep every box the tiny detector proposes. The
servers run with ``--cache-none`` (ComfyUI frees each output once its last consumer ran), so
our trainer's copy of the checkpoint is gone before ComfyUI loads its own, and with one thread
each, so the two do not fight over the two cores.

It logs the batch's time, each server's peak memory and the summary table
(``pytest -rP --log-level=INFO`` shows them). Skips without COMFYUI_PATH
(tests/comfyui_harness.py), except in CI, where it fails.
"""

from __future__ import annotations

import csv
import json
import logging
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.browser_harness import WORKFLOWS
from tests.comfyui_harness import ComfyServer

pytestmark = pytest.mark.comfyui
log = logging.getLogger(__name__)

WORKFLOW = WORKFLOWS / "full_pipeline.json"
SWEEP = "IntentTunerLoRATrain.rank=2,4"
RANKS = {"2": 2, "4": 4}
# The loaders the tiny models replace ({node type: family}); test_browser_workflows.TINY plus
# the inpainter, which only the full pipeline loads.
TINY = {"IntentTunerLoadDetector": "detector", "IntentTunerLoadSegmenter": "segmenter",
        "IntentTunerLoadImageEncoder": "image_encoder", "IntentTunerLoadCaptioner": "captioner",
        "IntentTunerLoadIdentityEncoder": "identity_encoder",
        "IntentTunerLoadQualityScorer": "aesthetic", "IntentTunerLoadInpainter": "inpainter",
        "IntentTunerLoadPromptAdapter": "prompt_adapter"}
PICTURES = 4  # of the example's 16 (milo_03 wears the necklace the intent deletes)
TRAIN_FOLDER = "e2e_train"  # under each server's input/
# {node type: {input: value}} for every node of the type; values as --set writes them.
SETTINGS = {
    "IntentTunerLoadTrainingImages": {"path": TRAIN_FOLDER, "max_side": "128"},
    "IntentTunerConceptDetect": {"box_threshold": "0", "text_threshold": "0"},
    "IntentTunerRefFilter": {"threshold": "-1"},
    "IntentTunerIntentCrop": {"min_size": "64"},  # the tiny detector's boxes are small
    "IntentTunerCaptionRefine": {"max_new_tokens": "12"},
    "IntentTunerTrainingMonitor": {"sample_every_steps": "2", "sample_steps": "1",
                                   "prompts_per_test": "1", "guidance_scale": "1",
                                   "sample_size": "64", "box_threshold": "0"},
    "IntentTunerLoRATrain": {"max_train_steps": "2", "resolution": "64", "alpha": "2",
                             "gradient_checkpointing": "false", "upscale_small_images": "true",
                             "save_every_steps": "0"},
    "EmptyLatentImage": {"width": "64", "height": "64"},
    "KSampler": {"steps": "1", "cfg": "1"},
    "IntentTunerEvaluationPrompts": {"prompts_per_test": "1", "images_per_prompt": "1"},
    "IntentTunerStabilityScore": {"box_threshold": "0"},
    "IntentTunerControllabilityScore": {"box_threshold": "0"},
    "IntentTunerDeleteLeakage": {"box_threshold": "0"},
}
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def write_tiny_models(shared: Path, node_types: set[str]) -> dict[str, str]:
    """The tiny model of every loader type in ``node_types`` under ``shared`` (a models
    folder); returns {loader node type: widget value}."""
    from intenttuner.families import FAMILIES
    from intenttuner.tiny import TINY_BUILDERS

    values = {}
    for node, family in TINY.items():
        if node in node_types:
            folder = shared / FAMILIES[family].folder
            values[node] = TINY_BUILDERS[family](folder).relative_to(folder).as_posix()
    return values


def server_base(base: Path, shared: Path, checkpoint: Path) -> Path:
    """A ComfyUI base folder whose models link to the shared tiny models and the checkpoint
    (each server writes its own LoRAs, outputs and input), with the training pictures."""
    from intenttuner.examples import shipped_example

    for family_folder in shared.iterdir():
        folder = base / "models" / family_folder.name
        folder.mkdir(parents=True)
        for entry in family_folder.iterdir():
            (folder / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    (base / "models" / "checkpoints").mkdir(parents=True)
    (base / "models" / "checkpoints" / checkpoint.name).symlink_to(checkpoint)
    pictures = base / "input" / TRAIN_FOLDER
    pictures.mkdir(parents=True)
    for picture in sorted(shipped_example().images.glob("*.png"))[:PICTURES]:
        shutil.copy(picture, pictures / picture.name)
    return base


def overrides(workflow: dict, tiny: dict[str, str], checkpoint: str) -> list[str]:
    """The --set values: by node id, so node types that occur more than once are covered."""
    settings = {node: {"model": value} for node, value in tiny.items()}
    settings["IntentTunerLoadBaseModel"] = {"model": checkpoint}
    settings["CheckpointLoaderSimple"] = {"ckpt_name": checkpoint}
    for node_type, values in SETTINGS.items():
        settings.setdefault(node_type, {}).update(values)
    return [f"{node['id']}.{name}={value}" for node in workflow["nodes"]
            for name, value in settings.get(node["type"], {}).items()]


def peak_memory_gb(pid: int) -> float:
    """The process's peak resident memory (VmHWM), GB."""
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(row for row in status.splitlines() if row.startswith("VmHWM:"))
    return int(line.split()[1]) / 1e6


@pytest.fixture(scope="module")
def servers(tmp_path_factory, full_size_sd15):
    work = tmp_path_factory.mktemp("e2e")
    workflow = json.loads(WORKFLOW.read_text())
    tiny = write_tiny_models(work / "shared-models", {n["type"] for n in workflow["nodes"]})
    started = [ComfyServer(server_base(work / f"server-{n}", work / "shared-models",
                                       full_size_sd15),
                           extra_env=ONE_THREAD, extra_args=("--cache-none",))
               for n in (1, 2)]
    with ExitStack() as stack:
        with ThreadPoolExecutor(len(started)) as pool:  # each waits a minute for ComfyUI
            futures = [pool.submit(server.__enter__) for server in started]
        for server, future in zip(started, futures, strict=True):
            if future.exception() is None:
                stack.push(server.__exit__)
        for future in futures:
            future.result()
        yield started, overrides(workflow, tiny, full_size_sd15.name)


def test_full_pipeline_sweeps_two_ranks_over_two_servers(servers, tmp_path):
    from intenttuner.batch import run_batch
    from intenttuner.training.lora_file import read_lora_file

    started, sets = servers
    began = time.monotonic()
    result = run_batch(WORKFLOW, [s.url for s in started], sets, [SWEEP], tmp_path / "batch",
                       timeout=1200, progress=False)
    seconds = time.monotonic() - began
    peaks = [peak_memory_gb(s.process.pid) for s in started]
    summary = result.summary_md.read_text(encoding="utf-8")
    # The closing note quotes these (pytest -rP shows them).
    log.info("batch of %d runs in %.0f s; peak memory per server %s GB\n%s", len(result.runs),
             seconds, ", ".join(f"{p:.2f}" for p in peaks), summary)

    assert [r.status for r in result.runs] == ["success", "success"], \
        [(r.run_id, r.error) for r in result.runs]
    by_url = {s.url: s for s in started}
    assert sorted(r.server for r in result.runs) == sorted(by_url)  # one run on each
    for run in result.runs:
        rank = RANKS[run.values["IntentTunerLoRATrain.rank"]]
        # The LoRA its server trained, with the swept rank (run_name milo, one run per server).
        lora = by_url[run.server].base / "models" / "loras" / "milo.safetensors"
        tensors, _ = read_lora_file(lora)
        downs = [t for k, t in tensors.items() if k.endswith(".lora_down.weight")]
        assert downs and all(t.shape[0] == rank for t in downs), (run.run_id, lora)
        # The report image of its Evaluation Report, collected into the run's folder.
        assert any(f.startswith("milo_report") and f.endswith(".png") for f in run.files), \
            run.files
        # A number for each metric of the base checkpoint and of the LoRA.
        assert sorted(run.scores) == ["base", "milo LoRA"], run.scores
        for label, scores in run.scores.items():
            assert sorted(scores) == ["controllability", "leakage", "stability"]
            assert all(0.0 <= s <= 1.0 for s in scores.values()), (run.run_id, label, scores)

    with result.summary_csv.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert sorted((row["run"], row["model"]) for row in rows) == sorted(
        (run.run_id, label) for run in result.runs for label in ("base", "milo LoRA"))
    for row in rows:
        assert row["status"] == "success" and row["IntentTunerLoRATrain.rank"] in RANKS
        assert all(0.0 <= float(row[m]) <= 1.0 for m in ("stability", "controllability",
                                                          "leakage")), row
    assert all(run.run_id in summary for run in result.runs)
    from PIL import Image

    with Image.open(result.summary_png) as image:
        assert image.format == "PNG" and image.height > 100


def test_an_api_format_workflow_runs_as_saved_and_its_images_come_back(servers, tmp_path):
    """Export (API)'s format goes to the servers as it is: stock EmptyImage -> SaveImage with
    the width swept, each run's image collected; a value its input refuses is named before
    anything is queued."""
    from PIL import Image

    from intenttuner.batch import run_batch
    from intenttuner.errors import InputError

    started, _ = servers
    prompt = {"1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 32,
                                                          "batch_size": 1, "color": 0}},
              "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0],
                                                          "filename_prefix": "batch"}}}
    path = tmp_path / "api.json"
    path.write_text(json.dumps(prompt))
    urls = [s.url for s in started]
    result = run_batch(path, urls, [], ["EmptyImage.width=16,24"], tmp_path / "out",
                       progress=False, timeout=120)
    assert [r.status for r in result.runs] == ["success", "success"], result.runs
    for run, expected in zip(result.runs, (16, 24), strict=True):
        (name,) = run.files
        with Image.open(tmp_path / "out" / "runs" / run.run_id / name) as image:
            assert image.size == (expected, 32)
    with pytest.raises(InputError, match="'x' is not a whole number"):
        run_batch(path, urls, [], ["EmptyImage.width=16,x"], tmp_path / "out2")
