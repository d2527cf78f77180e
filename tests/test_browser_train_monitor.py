"""The training monitor as a user meets it: workflows/train_monitor.json in the real ComfyUI
frontend (headless Chromium) on a real ComfyUI server, with tiny scoring models and a small SD
1.5. While LoRA Train runs, its panel draws the loss and the intent scores and shows the samples
of each point; a reload mid-run recovers the run from the server's history; a sample marked
good is recorded; "Stop and keep best" ends the run early with the best checkpoint kept. Then
the monitor's four HTTP routes on the same server, bad requests included.

Needs COMFYUI_PATH, `playwright` and Chromium (see tests/browser_harness.py); skips without
them, except in CI, where it fails.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import urllib.error
import urllib.request

import pytest

from tests.browser_harness import Frontend, require_browser, shipped_workflows
from tests.comfyui_harness import ComfyServer, comfyui_location
from tests.test_browser_workflows import SET_WIDGETS, write_tiny_models
from tests.training_helpers import make_kohya_set

pytestmark = [pytest.mark.comfyui, pytest.mark.browser]
log = logging.getLogger(__name__)

RUN = "pia"
MAX_STEPS = 500  # far more than the test waits for: the run ends by Stop, not by its steps
TRAIN = "IntentTunerLoRATrain"
HISTORY = f"/intenttuner/train/history?run={RUN}"
END = "intenttuner.train.end"
# What the panel shows, read from the page (the DOM contract of web/js/train_monitor.js).
PANEL = """() => {
  const node = window.app.graph._nodes.find((n) => n.type === "IntentTunerLoRATrain");
  const panel = node?.intenttunerMonitor;
  if (!panel) return null;
  const root = panel.root, state = panel.state;
  const points = (name) => Number(root.querySelector(`canvas.${name}`).dataset.points);
  return {
    run: state.run, status: state.status, steps: state.steps.length,
    step: state.steps.length ? state.steps[state.steps.length - 1].step : 0,
    samples: state.samples.map((p) => p.step),
    loss_points: points("it-monitor-loss"), metric_points: points("it-monitor-metrics"),
    grid: [...root.querySelectorAll(".it-monitor-grid .it-monitor-sample")].map((e) => ({
      image: e.dataset.image, mark: e.dataset.mark,
      shown: Boolean(e.querySelector("img")?.naturalWidth)})),
    marks: state.marks, status_text: root.querySelector(".it-monitor-status").textContent,
    stop_enabled: !root.querySelector("button.it-monitor-stop").disabled,
  };
}"""
# Bring the panel to the top left of the window at 100 % zoom, as a user zooms in to click in
# it (the frontend hides DOM widgets of far zoomed-out nodes).
SHOW_PANEL = """() => {
  const canvas = window.app.canvas;
  const node = window.app.graph._nodes.find((n) => n.type === "IntentTunerLoRATrain");
  const widget = node.widgets.find((w) => w.name === "train_monitor");
  canvas.ds.scale = 1;
  canvas.ds.offset = [40 - node.pos[0], 40 - node.pos[1] - (widget.y ?? widget.last_y ?? 0)];
  canvas.setDirty(true, true);
}"""


@pytest.fixture(scope="module")
def frontend(tmp_path_factory):
    require_browser()
    checkout, _ = comfyui_location()
    from tests.training_comfy_model import make_comfy_sd15_checkpoint

    base = tmp_path_factory.mktemp("comfy-train-monitor")
    (base / "input").mkdir()
    # Intent Parse draws its reference boxes on ComfyUI's example image, as a new user has it.
    shutil.copy(checkout / "input" / "example.png", base / "input" / "example.png")
    make_kohya_set(base / "input" / "sets" / RUN, count=2)
    tiny = write_tiny_models(base / "models")
    checkpoint = make_comfy_sd15_checkpoint(base / "models" / "checkpoints").name
    # The reload mid-run is the point, not the frontend's "leave the page?" question, which it
    # asks for the modified workflow (and a dismissed dialog would cancel the reload).
    quiet = {"Comfy.Window.UnloadConfirmation": False}
    with ComfyServer(base) as server, Frontend(server, settings=quiet) as frontend:
        frontend.values = {
            **{node: {"model": value} for node, value in tiny.items()},
            "IntentTunerLoadTrainingSet": {"path": f"sets/{RUN}"},
            "IntentTunerLoadBaseModel": {"model": checkpoint, "precision": "fp32"},
            # a point every 3 steps, 2 denoising steps per sample, every box counted
            "IntentTunerTrainingMonitor": {"sample_every_steps": 3, "sample_steps": 2,
                                           "box_threshold": 0.0},
            TRAIN: {"run_name": RUN, "max_train_steps": MAX_STEPS, "resolution": 64,
                    "rank": 4, "alpha": 4, "gradient_checkpointing": False,
                    "upscale_small_images": True, "save_every_steps": 0},
        }
        yield frontend


def panel(frontend) -> dict | None:
    return frontend.page.evaluate(PANEL)


def wait_panel(frontend, until, what: str, timeout: float = 300) -> dict:
    """The panel once ``until(panel)`` holds; fails with ``what`` and the last panel seen."""
    return frontend.wait_for(lambda: panel(frontend), until, f"the panel with {what}", timeout)


def click_good(frontend, shown: dict) -> str:
    """Click "good" on the first sample the panel shows; returns its image path. A new point
    may replace the grid between reading and clicking: then the next grid's first sample."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(3):
        image = shown["grid"][0]["image"]
        try:
            frontend.page.locator(f'.it-monitor-sample[data-image="{image}"] '
                                  "button.it-mark-good").click(timeout=5_000)
            return image
        except PlaywrightTimeout:
            shown = wait_panel(frontend, lambda p: p["grid"], "samples to mark", timeout=30)
    raise AssertionError(f"could not click a sample's good button: {shown}")


def running(p: dict) -> bool:
    return p["run"] == RUN and p["status"] == "running"


def test_the_panel_follows_the_run_survives_a_reload_marks_a_sample_and_stops_it(frontend):
    server, page = frontend.server, frontend.page
    began = time.monotonic()
    assert frontend.load_workflow(shipped_workflows()["train_monitor"]) == []
    page.evaluate(SET_WIDGETS, frontend.values)
    finished = len(server.get("/history"))
    frontend.queue()

    # Live, during the run: the loss curve grows, then a first and a second scored point.
    first = wait_panel(frontend, lambda p: running(p) and p["samples"] and p["loss_points"] > 0
                       and p["grid"], "a first sample point while running")
    second = wait_panel(frontend, lambda p: running(p) and len(p["samples"]) >= 2
                        and p["steps"] > first["steps"] and p["metric_points"] >= 2,
                        "a second sample point while running")
    assert second["loss_points"] > first["loss_points"] and second["stop_enabled"]
    assert all(s % 3 == 0 for s in second["samples"]), second["samples"]
    assert "running step" in second["status_text"] and "monitoring" in second["status_text"]
    live_seconds = time.monotonic() - began

    # A reload mid-run: the panel gets the run back from the server's history, then goes on
    # with the live events.
    began_reload = time.monotonic()
    page.reload()
    page.wait_for_function("() => window.app && window.app.graph && window.LiteGraph",
                           timeout=120_000)
    reload_seconds = time.monotonic() - began_reload
    # the points and steps from before the reload: read from the history, not live events
    recovered = wait_panel(frontend, lambda p: running(p) and p["grid"]
                           and set(second["samples"]) <= set(p["samples"])
                           and p["steps"] >= second["steps"]
                           and p["loss_points"] >= second["loss_points"],
                           "the run recovered after a reload", timeout=60)
    assert recovered["samples"][0] == second["samples"][0], (recovered, second)
    wait_panel(frontend, lambda p: running(p) and p["steps"] > recovered["steps"],
               "live steps after the reload", timeout=60)

    # A sample marked good, by a click on its button.
    page.evaluate(SHOW_PANEL)
    frontend.settle()
    shown = wait_panel(frontend, lambda p: running(p) and p["grid"] and p["grid"][0]["shown"],
                       "the samples' images", timeout=60)
    image = click_good(frontend, shown)
    feedback = server.base / "models" / "loras" / RUN / "feedback.jsonl"
    wait_panel(frontend, lambda p: p["marks"].get(image) == "good" and feedback.is_file(),
               "the good mark", timeout=30)

    # Stop and keep best: the prompt ends with success, long before its steps are done.
    stopped_at = panel(frontend)["step"]
    page.locator("button.it-monitor-stop").click()
    entry = server.wait_for_history(finished + 1, timeout=300)
    assert entry["status"]["status_str"] == "success", entry["status"]
    total_seconds = time.monotonic() - began

    end = [e["data"] for e in server.get(HISTORY)["events"] if e["event"] == END][-1]
    assert end["status"] == "stopped", end
    assert end["step"] < MAX_STEPS // 2 and end["step"] - stopped_at <= 10, (end, stopped_at)
    loras = server.base / "models" / "loras"
    assert end["best"]["lora_name"] == f"{RUN}_best.safetensors", end["best"]
    assert (loras / f"{RUN}_best.safetensors").is_file()
    assert (loras / f"{RUN}.safetensors").is_file()  # the LoRA of the steps done
    marks = [json.loads(line) for line in feedback.open()]
    assert marks[-1]["image"] == image and marks[-1]["mark"] == "good", marks
    assert marks[-1]["prompt"] and image.startswith(f"samples/step{marks[-1]['step']:06d}/")

    # The node's own outputs: the curves and the last point's samples, the report says why.
    train_id = next(str(n["id"]) for n in shipped_workflows()["train_monitor"]["nodes"]
                    if n["type"] == TRAIN)
    outputs = entry["outputs"][train_id]
    assert len(outputs["images"]) == 2, outputs  # curves + sample grid
    assert f"{RUN}_best.safetensors" in outputs["text"][0], outputs["text"]
    assert "Stopped by Stop after" in outputs["text"][0], outputs["text"]
    final = wait_panel(frontend, lambda p: p["status"] == "stopped", "the stopped run", 60)
    assert not final["stop_enabled"] and "stopped" in final["status_text"]
    assert frontend.problems == []
    log.info("train_monitor in the browser: 2 live points after %.0f s, reload %.0f s, stopped "
             "at step %d of %d, %.0f s in all (monitoring %.0f %%)", live_seconds,
             reload_seconds, end["step"], MAX_STEPS, total_seconds, 100 * end["overhead"])


def request(server, method: str, path: str, body: bytes | None = None) -> tuple[int, dict]:
    """(HTTP status, JSON body) of a request, errors included."""
    req = urllib.request.Request(server.url + path, data=body, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def post(server, path: str, data: object) -> tuple[int, dict]:
    return request(server, "POST", path, json.dumps(data).encode())


def test_the_routes_answer_json_and_refuse_bad_requests_by_name(frontend):
    server = frontend.server
    # the run of the test above, on disk now; under /api/ too, as the frontend calls them
    for prefix in ("", "/api"):
        status, runs = request(server, "GET", f"{prefix}/intenttuner/train/runs")
        assert status == 200 and runs["runs"][0]["run"] == RUN, runs
        assert runs["runs"][0]["status"] == "stopped"
    status, history = request(server, "GET", f"/api{HISTORY}")
    assert status == 200 and history["run"] == RUN and history["status"] == "stopped"
    samples = [e["data"] for e in history["events"] if e["event"] == "intenttuner.train.sample"]
    image = samples[0]["images"][0]["path"]
    # Every sample image the history names can be shown (re-saved if its temp file went).
    for ref in samples[-1]["images"]:
        view = (f"/view?filename={ref['filename']}&subfolder={ref['subfolder']}"
                f"&type={ref['type']}")
        with urllib.request.urlopen(server.url + view, timeout=30) as response:
            assert response.status == 200

    status, marked = post(server, "/intenttuner/train/feedback",
                          {"run": RUN, "image": image, "mark": "bad"})
    assert status == 200 and marked["marks"][image] == "bad", marked
    status, cleared = post(server, "/intenttuner/train/feedback",
                           {"run": RUN, "image": image, "mark": None})
    assert status == 200 and image not in cleared["marks"], cleared

    bad = [
        ("GET", "/intenttuner/train/history?run=../secrets", None, "plain run name"),
        ("GET", "/intenttuner/train/history?run=nosuch", None, "No training run named"),
        ("GET", "/intenttuner/train/history", None, "run must be the name"),
        ("POST", "/intenttuner/train/stop", json.dumps({"run": RUN}).encode(),
         "is not training now"),
        ("POST", "/intenttuner/train/feedback", b"{not json", "must be a JSON object"),
        ("POST", "/intenttuner/train/feedback",
         json.dumps({"run": RUN, "image": image}).encode(), "'mark'"),
        ("POST", "/intenttuner/train/feedback",
         json.dumps({"run": RUN, "image": "samples/../../x.png", "mark": "good"}).encode(),
         "must be a path inside the run folder"),
    ]
    for method, path, body, message in bad:
        status, answer = request(server, method, path, body)
        assert status == 400 and message in answer.get("error", ""), (path, body, answer)
