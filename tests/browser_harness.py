"""The real ComfyUI frontend in headless Chromium, driven by Playwright, for browser tests and
for taking workflow thumbnails (scripts/export_workflows.py).

Needs the `playwright` package (not its browser download) and Debian's `chromium` (CHROMIUM,
default /usr/bin/chromium). Without them the browser tests skip, except in CI, where they fail.

A `Frontend` collects everything a user would be alarmed by: page errors, console errors,
dialogs, toasts, and failed requests to the ComfyUI server.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import time
from pathlib import Path
from urllib.parse import urlsplit

from tests.conftest import require

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run"]
WORKFLOWS = Path(__file__).resolve().parents[1] / "workflows"
# What a fresh user profile asks for and the server does not have yet (a custom stylesheet,
# saved workflows, subgraphs and templates): ComfyUI answers 404, and that is no problem of ours.
FRESH_PROFILE_404 = ("/user.css", "/api/userdata/user.css", "/api/userdata?dir=",
                     "/api/userdata/comfy.templates.json")
# A fresh user would see the template browser and the new-version check (which calls out to the
# internet, not reachable here); settings for this user, not for the workflows under test.
QUIET_SETTINGS = {"Comfy.TutorialCompleted": True, "Comfy.Notification.ShowVersionUpdates": False}


def require_browser() -> None:
    require(importlib.util.find_spec("playwright") is not None,
            "the `playwright` package is not installed (pip install playwright)")
    require(shutil.which(CHROMIUM) is not None,
            f"no Chromium at {CHROMIUM} (apt-get install chromium, or set CHROMIUM)")


class Frontend:
    """One browser page on a running ComfyServer; ``problems`` lists what went wrong."""

    def __init__(self, server, viewport: tuple[int, int] = (1280, 800),
                 settings: dict | None = None):
        require_browser()
        self.server = server
        self.viewport = viewport
        self.settings = {**QUIET_SETTINGS, **(settings or {})}
        self.problems: list[str] = []

    def __enter__(self) -> Frontend:
        from playwright.sync_api import sync_playwright

        self.server.post("/settings", self.settings)
        self._playwright = sync_playwright().start()
        self.browser = self._playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS,
                                                        chromium_sandbox=False)
        width, height = self.viewport
        page = self.page = self.browser.new_page(viewport={"width": width, "height": height})
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("console", self._on_console)
        page.on("dialog", self._on_dialog)
        page.on("response", self._on_response)
        page.goto(self.server.url)
        page.wait_for_function("() => window.app && window.app.graph && window.LiteGraph",
                               timeout=60_000)
        return self

    def __exit__(self, *exc: object) -> None:
        self.browser.close()
        self._playwright.stop()

    def _on_console(self, message) -> None:
        # Failed loads show up twice: as a console error and as a response; judge the response.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.problems.append(f"console error: {message.text[:500]}")

    def _on_dialog(self, dialog) -> None:
        self.problems.append(f"{dialog.type} dialog: {dialog.message[:500]}")
        dialog.dismiss()

    def _on_response(self, response) -> None:
        url = urlsplit(response.url)
        if response.status < 400 or f"{url.scheme}://{url.netloc}" != self.server.url:
            return
        path = url.path + (f"?{url.query}" if url.query else "")
        if not path.startswith(FRESH_PROFILE_404):
            self.problems.append(f"HTTP {response.status} for {path}")

    def toasts(self) -> list[str]:
        """Texts of the toasts on screen (ComfyUI shows validation alerts as toasts)."""
        return self.page.evaluate(
            "() => [...document.querySelectorAll('.p-toast-message')].map(e => e.innerText)")

    def dismiss_toasts(self) -> None:
        """Close the toasts still on screen, so the next check sees only new ones."""
        self.page.evaluate("""() => document.querySelectorAll('.p-toast-close-button')
                                     .forEach((b) => b.click())""")
        self.page.wait_for_function(
            "() => !document.querySelector('.p-toast-message')", timeout=10_000)

    def settle(self, frames: int = 10) -> None:
        """Let the canvas draw and queued toasts appear."""
        self.page.evaluate("""async (n) => {
          for (let i = 0; i < n; i++) await new Promise((r) => requestAnimationFrame(r));
        }""", frames)
        self.page.wait_for_timeout(300)

    def load_workflow(self, workflow: dict) -> list[str]:
        """Load ``workflow`` as a user does (drag and drop ends in the same call); return the
        problems it caused: unknown nodes, alerts, toasts, errors, nodes out of view."""
        self.dismiss_toasts()
        self.problems.clear()
        unknown = self.page.evaluate("""async (wf) => {
          await window.app.loadGraphData(wf);
          return window.app.graph._nodes.filter(
            (n) => !window.LiteGraph.registered_node_types[n.type]).map((n) => n.type);
        }""", workflow)
        self.settle()
        found = [f"unknown node type {t}" for t in unknown]
        found += [f"toast: {t[:500]}" for t in self.toasts()]
        found += [f"not in view: {n}" for n in self.nodes_out_of_view()]
        return found + self.problems

    def node_rects(self) -> dict[str, list[float]]:
        """Each node's rectangle on screen, title bar included: ``"Type #id" -> [x1, y1, x2,
        y2]`` in CSS pixels of the page."""
        return self.page.evaluate("""() => {
          const canvas = window.app.canvas, ds = canvas.ds, LG = window.LiteGraph;
          const rect = canvas.canvas.getBoundingClientRect();
          const out = {};
          for (const n of window.app.graph._nodes) {
            const [x, y] = ds.convertOffsetToCanvas([n.pos[0], n.pos[1] - LG.NODE_TITLE_HEIGHT]);
            const [x2, y2] = ds.convertOffsetToCanvas([n.pos[0] + n.size[0],
                                                         n.pos[1] + n.size[1]]);
            out[`${n.type} #${n.id}`] = [rect.x + x, rect.y + y, rect.x + x2, rect.y + y2];
          }
          return out;
        }""")

    def nodes_out_of_view(self) -> list[str]:
        """Nodes not wholly inside the visible canvas."""
        box = self.page.evaluate("""() => {
          const r = window.app.canvas.canvas.getBoundingClientRect();
          return [r.x, r.y, r.x + r.width, r.y + r.height];
        }""")
        return [name for name, (x, y, x2, y2) in self.node_rects().items()
                if x < box[0] or y < box[1] or x2 > box[2] or y2 > box[3]]

    def exported_workflow(self) -> dict:
        """The open graph as the frontend itself saves it (Workflow > Export). Serialised to
        JSON in the page, as Export does: Playwright would turn each undefined field into null,
        and the frontend's schema rejects those nulls."""
        return json.loads(self.page.evaluate(
            "async () => JSON.stringify((await window.app.graphToPrompt()).workflow)"))

    def wait_for(self, read, until, what: str, timeout: float, pause_ms: int = 250):
        """``read()`` once ``until`` holds for it (polled in the page's own timer); fails
        naming ``what`` and the last value read."""
        deadline = time.monotonic() + timeout
        seen = None
        while time.monotonic() < deadline:
            seen = read()
            if seen is not None and until(seen):
                return seen
            self.page.wait_for_timeout(pause_ms)
        raise AssertionError(f"{what} not seen within {timeout:.0f} s; last: {seen}")

    def queue(self) -> None:
        self.page.evaluate("() => window.app.queuePrompt(0, 1)")


def shipped_workflows() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(WORKFLOWS.glob("*.json"))}
