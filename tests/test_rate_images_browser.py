"""Rate Images in the real ComfyUI frontend (headless Chromium), one server for all of it:
after a run the gallery shows each image with its prompt; Good / Bad clicks reach the set's
feedback.jsonl at once (the monitor's line format); after a page reload the gallery reads the
set back with its marks; a revised mark wins; the next queue re-runs the node because its
marks changed (and one more does not); the feedback routes answer, bad requests with HTTP
400.

Needs COMFYUI_PATH, `playwright` and Chromium (see tests/browser_harness.py); skips without
them, except in CI, where it fails.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error

import pytest

from intenttuner.monitor import feedback
from tests.browser_harness import Frontend, require_browser
from tests.comfyui_harness import ComfyServer

pytestmark = [pytest.mark.comfyui, pytest.mark.browser]
log = logging.getLogger(__name__)
NODE = "IntentTunerRateImages"
SET = "browser_ratings"
PROMPTS = ["a red square", "two red squares", "a red square on grass"]
CARD = ".intenttuner-rate-card"
LINE_KEYS = ["image", "item", "prompt", "step", "mark", "time"]

# Three same-colour images, told apart by their prompts (an image's key is pixels + prompt).
BUILD_GRAPH = """([set, prompts]) => {
  const app = window.app, LG = window.LiteGraph;
  app.graph.clear();
  const empty = LG.createNode("EmptyImage"); empty.pos = [20, 40]; app.graph.add(empty);
  const value = (node, name, v) => { node.widgets.find((w) => w.name === name).value = v; };
  value(empty, "width", 32); value(empty, "height", 32); value(empty, "batch_size", 3);
  value(empty, "color", 0xcc2222);
  const text = LG.createNode("PrimitiveStringMultiline"); text.pos = [20, 300];
  app.graph.add(text);
  value(text, "value", prompts.join("\\n"));
  const rate = LG.createNode("IntentTunerRateImages"); rate.pos = [360, 40]; app.graph.add(rate);
  value(rate, "feedback_set", set);
  empty.connect(0, rate, rate.inputs.findIndex((i) => i.name === "images"));
  text.connect(0, rate, rate.inputs.findIndex((i) => i.name === "prompts"));
  app.canvas.ds.offset = [0, 0]; app.canvas.ds.scale = 1;
  app.graph.setDirtyCanvas(true, true);
}"""

GALLERY = """() => {
  const cards = [...document.querySelectorAll('.intenttuner-rate-card')];
  return {
    cards: cards.map((c) => ({
      image: c.dataset.image, mark: c.dataset.mark,
      prompt: c.querySelector('.intenttuner-rate-prompt').textContent,
      state: c.querySelector('.intenttuner-rate-state').textContent,
      shown: c.querySelector('img').complete && c.querySelector('img').naturalWidth > 0})),
    headline: document.querySelector('.intenttuner-rate-headline')?.textContent ?? null,
  };
}"""

# The gallery at the top left at 100 % zoom, as a user zooms in to click in it.
SHOW_GALLERY = """() => {
  const node = window.app.graph._nodes.find((n) => n.type === "IntentTunerRateImages");
  const canvas = window.app.canvas;
  canvas.ds.scale = 1; canvas.ds.offset = [120 - node.pos[0], 60 - node.pos[1]];
  canvas.setDirty(true, true);
}"""


@pytest.fixture(scope="module")
def frontend(tmp_path_factory):
    require_browser()
    base = tmp_path_factory.mktemp("comfy-rate-images")
    quiet = {"Comfy.Window.UnloadConfirmation": False}  # the reload is the point
    with ComfyServer(base) as server, Frontend(server, viewport=(1400, 1000),
                                               settings=quiet) as frontend:
        yield frontend


def gallery(frontend) -> dict:
    return frontend.page.evaluate(GALLERY)


def wait_gallery(frontend, until, what: str, timeout: float = 60) -> dict:
    return frontend.wait_for(lambda: gallery(frontend), until, f"the gallery with {what}",
                             timeout, pause_ms=200)


def click(frontend, image: str, button: str) -> None:
    frontend.page.locator(f'{CARD}[data-image="{image}"] button.intenttuner-rate-{button}').click()


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def wait_lines(path, count: int, timeout: float = 20) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = lines(path)
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{path} has {len(lines(path))} line(s), not {count}")


def queue(frontend, finished: int) -> dict:
    frontend.queue()
    entry = frontend.server.wait_for_history(finished + 1, timeout=120)
    assert entry["status"]["status_str"] == "success", entry["status"]
    return entry


def cached_nodes(entry: dict) -> list[str]:
    return [node for name, data in entry["status"]["messages"] if name == "execution_cached"
            for node in data["nodes"]]


def test_marks_made_in_the_gallery_reach_the_set_survive_a_reload_and_can_be_revised(frontend,
                                                                                    tmp_path):
    server, page = frontend.server, frontend.page
    began = time.monotonic()
    page.evaluate(BUILD_GRAPH, [SET, PROMPTS])
    frontend.settle()
    before = wait_gallery(frontend, lambda g: g["headline"] and "no images yet" in g["headline"],
                          "the empty set before the first run")
    assert before["cards"] == []
    rate_id = page.evaluate(f"() => String(window.app.graph._nodes.find("
                            f"(n) => n.type === '{NODE}').id)")

    queue(frontend, 0)
    page.evaluate(SHOW_GALLERY)
    shown = wait_gallery(frontend, lambda g: len(g["cards"]) == 3 and all(
        c["shown"] for c in g["cards"]), "three rated images")
    assert [c["prompt"] for c in shown["cards"]] == PROMPTS
    assert all(c["mark"] == "" and c["state"] == "not marked" for c in shown["cards"])
    images = [c["image"] for c in shown["cards"]]
    marks_file = server.base / "output" / "intenttuner" / "feedback" / SET / "feedback.jsonl"

    click(frontend, images[0], "good")
    click(frontend, images[1], "good")
    click(frontend, images[2], "bad")
    written = wait_lines(marks_file, 3)
    assert [(w["image"], w["mark"]) for w in written] == [
        (images[0], "good"), (images[1], "good"), (images[2], "bad")]
    assert all(list(w) == LINE_KEYS and w["step"] is None for w in written)
    assert [w["prompt"] for w in written] == PROMPTS
    marked = wait_gallery(frontend, lambda g: [c["mark"] for c in g["cards"]] ==
                          ["good", "good", "bad"], "the marks after the clicks", timeout=10)
    assert "2 good · 1 bad · 0 unmarked" in marked["headline"]
    click(frontend, images[0], "good")  # the active button again: nothing new is written
    frontend.settle(2)
    assert len(lines(marks_file)) == 3

    # A reload: the workflow comes back, the gallery reads the set with its marks.
    page.reload()
    page.wait_for_function("() => window.app && window.app.graph && window.LiteGraph",
                           timeout=120_000)
    page.evaluate(SHOW_GALLERY)
    reloaded = wait_gallery(frontend, lambda g: len(g["cards"]) == 3 and all(
        c["shown"] for c in g["cards"]), "the set after a reload")
    assert [c["image"] for c in reloaded["cards"]] == images
    assert [c["mark"] for c in reloaded["cards"]] == ["good", "good", "bad"]

    # Revised: the latest line wins; Skip clears.
    click(frontend, images[2], "good")
    click(frontend, images[1], "skip")
    written = wait_lines(marks_file, 5)
    assert [(w["image"], w["mark"]) for w in written[3:]] == [(images[2], "good"),
                                                              (images[1], None)]
    assert feedback.marks(marks_file.parent) == {images[0]: "good", images[2]: "good"}
    wait_gallery(frontend, lambda g: [c["mark"] for c in g["cards"]] == ["good", "", "good"],
                 "the revised marks", timeout=10)
    page.screenshot(path=str(tmp_path / "rate-images.png"))

    # The marks changed since the first run: the node runs again; with none changed, not.
    assert rate_id not in cached_nodes(queue(frontend, 1))
    assert rate_id in cached_nodes(queue(frontend, 2))

    # The routes, as any client calls them.
    sets = server.get("/api/intenttuner/feedback/sets")["sets"]
    assert sets == [{"name": SET, "set": SET, "kind": "rating", "images": 3,
                     "counts": {"good": 2, "bad": 0, "unmarked": 1}}]
    answer = server.get(f"/intenttuner/feedback/set?name={SET}")
    assert [i["mark"] for i in answer["images"]] == ["good", None, "good"]
    with pytest.raises(urllib.error.HTTPError) as refused:
        server.post("/intenttuner/feedback/mark", {"set": SET, "image": "../x.png",
                                                   "mark": "good"})
    assert refused.value.code == 400
    assert "not an image of feedback set" in json.loads(refused.value.read())["error"]
    assert server.get("/intenttuner/train/runs") == {"runs": []}  # the monitor's still answer
    assert not frontend.problems, frontend.problems
    log.info("rate images browser test: %.1f s after the server start", time.monotonic() - began)
