"""The shipped workflows as files: each has its thumbnail and one-line description for
ComfyUI's template browser, none keeps a saved view or a null the frontend rejects. (How they
behave in the real frontend: tests/test_browser_workflows.py.)"""

from __future__ import annotations

import pytest
from PIL import Image

from tests.browser_harness import WORKFLOWS, shipped_workflows

NAMES = sorted(shipped_workflows())
NOTE_TITLE = "About this workflow"  # as scripts/export_workflows.py writes it


def nulls(value, path="") -> list[str]:
    if value is None:
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in nulls(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in nulls(v, f"{path}[{i}]")]
    return []


def description(workflow: dict) -> str:
    notes = [n for n in workflow["nodes"]
             if n["type"] == "MarkdownNote" and n.get("title") == NOTE_TITLE]
    assert len(notes) == 1, "one note titled 'About this workflow'"
    return notes[0]["widgets_values"][0]


@pytest.mark.parametrize("name", NAMES)
def test_workflow_has_a_thumbnail_for_the_template_browser(name):
    path = WORKFLOWS / f"{name}.jpg"  # the name the template browser asks for
    with Image.open(path) as image:
        assert image.format == "JPEG"
        assert 200 <= image.width <= 640 and 150 <= image.height <= 400, image.size
        # A screenshot of nodes, not a blank frame: it has detail.
        extrema = image.convert("L").getextrema()
        assert extrema[1] - extrema[0] > 100, extrema


@pytest.mark.parametrize("name", NAMES)
def test_workflow_has_a_one_line_description_listed_in_the_readme(name):
    text = description(shipped_workflows()[name])
    assert "\n" not in text and 30 <= len(text) <= 200, text
    readme = (WORKFLOWS / "README.md").read_text()
    assert f"`{name}`" in readme and text in readme.replace("\n", " ")


@pytest.mark.parametrize("name", NAMES)
def test_workflow_has_no_nulls_and_no_saved_view(name):
    workflow = shipped_workflows()[name]
    # Links between nodes are lists whose slots may not be null either; nothing is.
    assert nulls(workflow) == []
    # Without a saved view the frontend fits every node into the window that opens it.
    assert "ds" not in workflow.get("extra", {})
