"""The box editor in the real ComfyUI frontend, driven in headless Chromium with real mouse
events: draw boxes on two reference images, label, select, delete, run the graph, and read the
intent the server built from those boxes.

Needs COMFYUI_PATH (see comfyui_harness.py), the `playwright` package and a Chromium binary
(CHROMIUM, default /usr/bin/chromium; Debian package `chromium`). Skips without them, except
in CI, where it fails.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser_harness import Frontend, require_browser
from tests.comfyui_harness import ComfyServer

pytestmark = [pytest.mark.comfyui, pytest.mark.browser]
EDITOR = ".intenttuner-box-editor"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    require_browser()
    base = tmp_path_factory.mktemp("comfy-browser")
    from PIL import Image, ImageDraw

    (base / "input").mkdir()
    red = Image.new("RGB", (200, 100), (40, 60, 200))
    ImageDraw.Draw(red).rectangle((50, 20, 150, 80), fill=(220, 30, 30))
    red.save(base / "input" / "ref1.png")
    blue = Image.new("RGB", (120, 240), (30, 160, 60))
    ImageDraw.Draw(blue).rectangle((10, 100, 110, 140), fill=(20, 20, 220))
    blue.save(base / "input" / "ref2.png")
    with ComfyServer(base) as srv:
        yield srv


@pytest.fixture
def page(server, tmp_path):
    with Frontend(server, viewport=(1400, 900)) as frontend:
        yield frontend.page
        frontend.page.screenshot(path=str(tmp_path / "box-editor.png"))
        assert not frontend.problems, frontend.problems


BUILD_GRAPH = """() => {
  const app = window.app, LG = window.LiteGraph;
  app.graph.clear();
  const first = LG.createNode("LoadImage"); first.pos = [20, 20]; app.graph.add(first);
  const second = LG.createNode("LoadImage"); second.pos = [20, 420]; app.graph.add(second);
  first.widgets.find((w) => w.name === "image").value = "ref1.png";
  second.widgets.find((w) => w.name === "image").value = "ref2.png";
  const parse = LG.createNode("IntentTunerIntentParse"); parse.pos = [400, 20];
  app.graph.add(parse);
  parse.size = [520, 800];
  first.connect(0, parse, parse.inputs.findIndex((i) => i.name === "reference_1"));
  second.connect(0, parse, parse.inputs.findIndex((i) => i.name === "reference_2"));
  app.graph.setDirtyCanvas(true, true);
  window.parseNode = parse;
}"""


SETTLED = """async () => {
  // DOM widgets are positioned over the graph canvas on animation frames: wait until the
  // editor's canvas has an image and stops moving, so mouse events land where computed.
  const editor = window.parseNode.intenttunerBoxEditor;
  let last = "";
  for (let stable = 0; stable < 5;) {
    await new Promise((r) => requestAnimationFrame(r));
    const r = editor.canvas.getBoundingClientRect();
    const now = [r.x, r.y, r.width, r.height, !!editor.view()].join();
    stable = now === last && r.width > 0 && editor.view() ? stable + 1 : 0;
    last = now;
  }
}"""


def settle(page) -> None:
    page.evaluate(SETTLED)


def editor_state(page) -> dict:
    return page.evaluate("""() => {
      const e = window.parseNode.intenttunerBoxEditor;
      return {boxes: JSON.parse(window.parseNode.widgets.find(w => w.name ===
                                "reference_boxes").value),
              images: e.images.map(i => i.img.naturalWidth), status: e.statusLine.textContent};
    }""")


def client_point(page, x: float, y: float) -> tuple[float, float]:
    """Screen position of image pixel (x, y) of the image the editor shows."""
    return tuple(page.evaluate("""([x, y]) => {
      const e = window.parseNode.intenttunerBoxEditor, v = e.view();
      const rect = e.canvas.getBoundingClientRect();
      const k = rect.width / e.canvas.width;
      return [rect.x + (x * v.scale + v.ox) * k, rect.y + (y * v.scale + v.oy) * k];
    }""", [x, y]))


def drag(page, box: tuple[float, float, float, float]) -> None:
    page.mouse.move(*client_point(page, box[0], box[1]))
    page.mouse.down()
    page.mouse.move(*client_point(page, (box[0] + box[2]) / 2, box[3] - 1), steps=4)
    page.mouse.move(*client_point(page, box[2], box[3]), steps=4)
    page.mouse.up()


def test_boxes_drawn_in_the_browser_reach_the_intent(server, page, tmp_path):
    page.evaluate(BUILD_GRAPH)
    settle(page)
    assert editor_state(page)["images"] == [200, 120]  # both Load Image files, live

    drag(page, (50, 20, 150, 80))  # the red square on image 1
    page.select_option(f"{EDITOR} select", "1")
    settle(page)
    page.fill(f"{EDITOR} input", "blue bar")
    drag(page, (10, 100, 110, 140))  # the blue bar on image 2, labelled
    drag(page, (2, 2, 30, 30))  # a third box, deleted again below
    page.keyboard.press("Delete")

    state = editor_state(page)
    assert [(b["image"], b.get("label")) for b in state["boxes"]] == [(0, None),
                                                                      (1, "blue bar")]
    for got, want in zip(state["boxes"], [(50, 20, 150, 80), (10, 100, 110, 140)], strict=True):
        assert all(abs(g - w) <= 1 for g, w in zip(got["box"], want, strict=True)), got
    assert state["status"].startswith("deleted [3]")

    page.select_option(f"{EDITOR} select", "0")  # select box 1 by clicking it, label it
    settle(page)
    page.mouse.click(*client_point(page, 100, 50))
    page.fill(f"{EDITOR} input", "red square")
    page.keyboard.press("Tab")
    assert editor_state(page)["boxes"][0]["label"] == "red square"

    page.evaluate("""() => {
      window.parseNode.widgets.find(w => w.name === "description").value =
        "trigger: vin. Keep the red square [1]. Remove the blue bar [2].";
      return window.app.queuePrompt(0, 1);
    }""")
    entry = server.wait_for_history()
    assert entry["status"]["status_str"] == "success", entry["status"]
    (output,) = entry["outputs"].values()
    summary = output["text"][0]
    assert "KEEP    red square (instance) [1]" in summary
    assert "DELETE  blue bar (instance) [2]" in summary
    assert len(output["intenttuner_references"]) == 2
    assert output["images"][0]["type"] == "temp"
    Path(tmp_path / "summary.txt").write_text(summary)
