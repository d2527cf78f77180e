"""What the feedback routes answer (intenttuner.reward.api): the list of sets, one set with its
images' /view references and marks (empty before the set exists), marking an image, and every
bad request field named. (The routes on a real ComfyUI server: tests/test_rate_images_browser.py.)"""

from __future__ import annotations

import pytest
from PIL import Image

from intenttuner import runtime
from intenttuner.errors import InputError
from intenttuner.monitor import events
from intenttuner.reward import api
from intenttuner.reward import feedback_set as fsets
from tests import monitor_record_helpers as rec


@pytest.fixture
def rated(models_root):
    fs = fsets.rating_set("mine")
    images = fsets.add_images(fs, [Image.new("RGB", (8, 8), c) for c in ("red", "blue")],
                              ["a red box", "a blue box"], seeds=[3, 4])
    return fs, images


def test_a_set_lists_its_images_with_view_refs_and_marks(rated):
    fs, images = rated
    fsets.set_mark(fs, images[1], "bad")
    answer = api.feedback_set("mine")
    assert (answer["name"], answer["kind"], answer["exists"]) == ("mine", "rating", True)
    assert answer["counts"] == {"good": 0, "bad": 1, "unmarked": 1}
    first = answer["images"][0]
    assert first == {"image": images[0], "prompt": "a red box", "mark": None, "seed": 3,
                     "filename": images[0].split("/")[1],
                     "subfolder": "intenttuner/feedback/mine/images", "type": "output"}
    output = runtime.get_runtime().output_dir()
    assert (output / first["subfolder"] / first["filename"]).is_file()
    assert answer["images"][1]["mark"] == "bad"


def test_a_set_not_made_yet_answers_empty(models_root):
    assert api.feedback_set("my_ratings") == {
        "name": "my_ratings", "kind": "rating", "exists": False,
        "counts": {"good": 0, "bad": 0, "unmarked": 0}, "images": []}
    assert api.list_sets() == {"sets": []}
    assert not runtime.get_runtime().output_dir().joinpath("intenttuner").exists()


def test_marks_are_recorded_revised_and_cleared(rated):
    _, images = rated
    answer = api.mark_image({"set": "mine", "image": images[0], "mark": "good"})
    assert answer == {"set": "mine", "image": images[0], "mark": "good",
                      "counts": {"good": 1, "bad": 0, "unmarked": 1},
                      "marks": {images[0]: "good"}}
    api.mark_image({"set": "mine", "image": images[1], "mark": "bad"})
    api.mark_image({"set": "mine", "image": images[0], "mark": "bad"})
    answer = api.mark_image({"set": "mine", "image": images[1], "mark": None})
    assert answer["marks"] == {images[0]: "bad"}
    (listed,) = api.list_sets()["sets"]
    assert listed["counts"] == {"good": 0, "bad": 1, "unmarked": 1}


def test_a_runs_marks_are_served_without_view_refs(models_root):
    loras = runtime.get_runtime().model_dirs("loras")[0]
    rec.write_run(loras / "demo", [(events.START, rec.start("demo")),
                                   (events.SAMPLE, rec.sample("demo", 10, 0.6))])
    image = rec.image_path(10, "c0")
    assert api.mark_image({"set": "run:demo", "image": image, "mark": "good"})["set"] == "run:demo"
    answer = api.feedback_set("run:demo")
    assert answer["kind"] == "run" and answer["images"][1] == {
        "image": image, "prompt": "photo of ohwx, c0", "mark": "good", "seed": 1}
    assert api.feedback_set("demo")["name"] == "run:demo"  # the run's plain name finds it too


@pytest.mark.parametrize(("body", "message"), [
    ("good", "send a JSON object with the field\\(s\\) 'set', 'image', 'mark'"),
    ({"image": "x", "mark": "good"}, "needs the field\\(s\\) 'set'"),
    ({"set": "mine", "mark": "good"}, "needs the field\\(s\\) 'image'"),
    ({"set": "mine", "image": "x"}, "needs the field\\(s\\) 'mark'"),
    ({"set": "mine", "image": "x", "mark": "good", "run": "r"}, "Unknown field\\(s\\) 'run'"),
    ({"set": None, "image": "x", "mark": "good"}, "set must be the name"),
    ({"set": "../mine", "image": "x", "mark": "good"}, "plain folder name"),
    ({"set": "nope", "image": "x", "mark": "good"}, "No feedback set or training run"),
    ({"set": "run:nope", "image": "x", "mark": "good"}, "No training run named 'nope'"),
    ({"set": "mine", "image": "images/other.png", "mark": "good"}, "not an image of"),
    ({"set": "mine", "image": "../../x.png", "mark": "good"}, "not an image of"),
    ({"set": "mine", "image": 5, "mark": "good"}, "not an image of"),
])
def test_mark_image_names_the_bad_field(rated, body, message):
    fs, _ = rated
    with pytest.raises(InputError, match=message):
        api.mark_image(body)
    assert not (fs.folder / "feedback.jsonl").exists()


@pytest.mark.parametrize("name", [None, "", "a/b", "..", "x:y"])
def test_set_refuses_paths(models_root, name):
    with pytest.raises(InputError):
        api.feedback_set(name)


def test_the_bridge_registers_the_feedback_routes_once(pack, models_root, monkeypatch):
    """On a stand-in of ComfyUI's PromptServer: the three routes, under their paths, answering
    JSON, and HTTP 400 with the message for a bad request."""
    import asyncio
    import json
    import sys
    import types

    class Routes(list):
        def _add(self, method, path):
            def register(handler):
                self.append(types.SimpleNamespace(method=method, path=path, handler=handler))
                return handler
            return register

        def get(self, path):
            return self._add("GET", path)

        def post(self, path):
            return self._add("POST", path)

    server = types.ModuleType("server")
    server.PromptServer = types.SimpleNamespace(instance=types.SimpleNamespace(routes=Routes()))
    monkeypatch.setitem(sys.modules, "server", server)
    bridge = sys.modules[f"{pack.__name__}.nodes.comfy_bridge"]
    assert bridge.register_routes() and bridge.register_routes()
    routes = {(r.method, r.path) for r in server.PromptServer.instance.routes}
    assert {("GET", "/intenttuner/feedback/sets"), ("GET", "/intenttuner/feedback/set"),
            ("POST", "/intenttuner/feedback/mark")} <= routes
    assert len(server.PromptServer.instance.routes) == 7
    by_path = {r.path: r.handler for r in server.PromptServer.instance.routes}

    class Request:
        def __init__(self, query=None, body=None):
            self.query, self.body = query or {}, body

        async def json(self):
            return self.body

    def answer(path, **request):
        response = asyncio.run(by_path[path](Request(**request)))
        return response.status, json.loads(response.body)

    assert answer("/intenttuner/feedback/sets") == (200, {"sets": []})
    assert answer("/intenttuner/feedback/set", query={"name": "mine"})[1]["exists"] is False
    status, body = answer("/intenttuner/feedback/mark", body={"set": "mine"})
    assert status == 400 and "needs the field(s) 'image', 'mark'" in body["error"]
