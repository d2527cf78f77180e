"""The Caption Review panel in the real ComfyUI frontend (headless Chromium): after a run it
shows every item's thumbnail and caption; what is typed there is saved in the workflow, written
to the caption file by the next run, and "Discard edit" takes it out again.

Needs COMFYUI_PATH (see comfyui_harness.py), the `playwright` package and a Chromium binary
(see browser_harness.py). Skips without them, except in CI, where it fails.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from intenttuner.dataset.kohya import write_training_set
from tests.browser_harness import Frontend, require_browser
from tests.comfyui_harness import ComfyServer
from tests.dataset_helpers import sample_augmented, sample_intent

pytestmark = [pytest.mark.comfyui, pytest.mark.browser]
NODE = "IntentTunerCaptionReview"
ROW = ".intenttuner-caption-row"
TYPED = "ohwx man, close-up of his face, typed in the browser — Amélie"

BUILD_GRAPH = """() => {
  const app = window.app, LG = window.LiteGraph;
  app.graph.clear();
  const load = LG.createNode("IntentTunerLoadTrainingSet"); load.pos = [20, 20];
  app.graph.add(load);
  load.widgets.find((w) => w.name === "folder").value = "training_sets/ohwx";
  const review = LG.createNode("IntentTunerCaptionReview"); review.pos = [380, 20];
  app.graph.add(review);
  load.connect(0, review, review.inputs.findIndex((i) => i.name === "training_set"));
  app.canvas.ds.offset = [0, 0]; app.canvas.ds.scale = 1;
  app.graph.setDirtyCanvas(true, true);
  window.reviewNode = review;
}"""

PANEL = """() => {
  const rows = [...document.querySelectorAll('.intenttuner-caption-row')];
  const widget = window.reviewNode.widgets.find((w) => w.name === "edits");
  return {
    rows: rows.map((r) => ({key: r.dataset.key, text: r.querySelector("textarea").value,
                            state: r.querySelector(".intenttuner-caption-state").textContent,
                            image: r.querySelector("img").naturalWidth})),
    edits: widget.value, hidden: !!widget.hidden,
    headline: document.querySelector(".intenttuner-caption-headline").textContent,
  };
}"""

THUMBNAILS_LOADED = """(count) => {
  const images = [...document.querySelectorAll('.intenttuner-caption-row img')];
  return images.length === count && images.every((i) => i.complete && i.naturalWidth > 0);
}"""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    require_browser()
    base = tmp_path_factory.mktemp("comfy-caption-review")
    training_set = write_training_set(sample_augmented(), sample_intent(),
                                      base / "input" / "training_sets", "ohwx")
    with ComfyServer(base) as server:
        yield server, training_set


@pytest.fixture
def frontend(served, tmp_path):
    server, _ = served
    with Frontend(server, viewport=(1400, 1000)) as frontend:
        yield frontend
        frontend.page.screenshot(path=str(tmp_path / "caption-review.png"))
        assert not frontend.problems, frontend.problems


def queue_and_wait(frontend, server, count: int) -> dict:
    frontend.queue()
    entry = server.wait_for_history(count=count, timeout=180)
    assert entry["status"]["status_str"] == "success", entry["status"]
    return entry


def review_widgets(frontend) -> list:
    (node,) = [n for n in frontend.exported_workflow()["nodes"] if n["type"] == NODE]
    return node["widgets_values"]


def test_panel_shows_captions_and_typed_edits_reach_the_set(served, frontend):
    server, ts = served
    page = frontend.page
    page.evaluate(BUILD_GRAPH)
    frontend.settle()
    before = page.evaluate(PANEL)
    assert before["rows"] == [] and before["hidden"]  # raw JSON hidden until "Show JSON"
    assert before["headline"].startswith("queue the graph")

    queue_and_wait(frontend, server, 1)
    page.wait_for_function(THUMBNAILS_LOADED, arg=len(ts.items), timeout=30_000)
    panel = page.evaluate(PANEL)
    assert [r["key"] for r in panel["rows"]] == [i.sha256 for i in ts.items]
    assert [r["text"] for r in panel["rows"]] == [i.caption for i in ts.items]
    assert [r["image"] for r in panel["rows"]] == [min(160, i.size[0]) if i.size[0] >= i.size[1]
                                                   else round(i.size[0] * 160 / i.size[1])
                                                   for i in ts.items]

    page.locator(ROW).nth(3).locator("textarea").fill(TYPED)
    panel = page.evaluate(PANEL)
    assert json.loads(panel["edits"]) == {ts.items[3].sha256: TYPED}
    assert panel["rows"][3]["state"] == "edited: applied on the next queue"
    assert review_widgets(frontend) == [json.dumps({ts.items[3].sha256: TYPED},
                                                   ensure_ascii=False, separators=(",", ":"))]

    queue_and_wait(frontend, server, 2)
    caption = Path(ts.root) / ts.items[3].caption_file
    assert caption.read_text(encoding="utf-8") == TYPED + "\n"
    page.wait_for_function(THUMBNAILS_LOADED, arg=len(ts.items), timeout=30_000)
    panel = page.evaluate(PANEL)
    assert panel["rows"][3]["text"] == TYPED  # the pending edit, shown over the new caption
    assert panel["rows"][3]["state"] == "your edit (applied)"
    assert [r["text"] for r in panel["rows"][:3]] == [i.caption for i in ts.items[:3]]

    # typed but not queued yet, then the panel re-renders (as after another run): kept
    page.locator(ROW).nth(4).locator("textarea").fill("ohwx man, not queued yet")
    page.evaluate("""() => {
      const p = window.reviewNode.intenttunerCaptionPanel;
      window.reviewNode.onExecuted({it_captions: p.entries, it_thumbnails: p.thumbnails,
                                    text: [p.summary]});
    }""")
    panel = page.evaluate(PANEL)
    assert panel["rows"][4]["text"] == "ohwx man, not queued yet"
    assert panel["rows"][4]["state"] == "edited: applied on the next queue"

    page.locator(ROW).nth(3).get_by_role("button", name="Discard edit").click()
    page.locator(ROW).nth(4).get_by_role("button", name="Discard edit").click()
    panel = page.evaluate(PANEL)
    assert panel["edits"] == ""
    assert review_widgets(frontend) == [""]
    assert panel["rows"][3]["state"] == "edited earlier (on disk)"
    assert panel["rows"][4]["text"] == ts.items[4].caption


def test_saved_edits_survive_a_reload_before_any_run(served, frontend):
    """A workflow opened with edits in it lists them before the first run: nothing lost."""
    _, ts = served
    page = frontend.page
    page.evaluate(BUILD_GRAPH)
    frontend.settle()
    workflow = frontend.exported_workflow()
    (node,) = [n for n in workflow["nodes"] if n["type"] == NODE]
    node["widgets_values"] = [json.dumps({ts.items[0].sha256: "kept across the reload"})]
    workflow.get("extra", {}).pop("ds", None)  # no saved view: the frontend fits the graph
    assert frontend.load_workflow(workflow) == []
    page.evaluate("() => { window.reviewNode = window.app.graph._nodes.find("
                  f"(n) => n.type === '{NODE}'); }}")
    panel = page.evaluate(PANEL)
    assert panel["rows"] == [] and panel["hidden"]
    listed = page.locator(".intenttuner-caption-unmatched").inner_text()
    assert "kept across the reload" in listed and "queue the graph" in listed

    raw = """() => [...document.querySelectorAll('textarea')]
      .filter((t) => t.offsetParent !== null && t.value.includes('kept across the reload'))
      .length"""
    assert page.evaluate(raw) == 0  # the raw JSON is hidden...
    page.get_by_role("button", name="Show JSON").click()  # ...until asked for
    frontend.settle()
    assert page.evaluate(raw) == 1 and not page.evaluate(PANEL)["hidden"]
