"""What the monitor's HTTP routes answer (intenttuner.monitor.api): the run list (training now
and on disk), a run's history with its marks, Stop, marking samples, every bad request field
named, and sample thumbnails saved again when the UI's temp file is gone."""

from __future__ import annotations

import threading
import time

import pytest
from PIL import Image

from intenttuner import runtime
from intenttuner.errors import InputError
from intenttuner.monitor import api, events, registry
from intenttuner.monitor.grid import THUMBNAIL
from tests import monitor_record_helpers as rec


@pytest.fixture
def loras(models_root):
    return runtime.get_runtime().model_dirs("loras")[0]


@pytest.fixture
def running():
    """Runs registered by a test, unregistered after it."""
    names: list[str] = []

    def register(name, run_dir, step=0):
        entry = registry.register(name, run_dir, "9", "p2", 40)
        entry.update(step)
        names.append(name)
        return entry

    yield register
    for name in names:
        registry.unregister(name)


def _finished(loras, name, time, samples=(10,)):
    records = [(events.START, rec.start(name, time=time)), (events.STEP, rec.step(1))]
    records += [(events.SAMPLE, rec.sample(name, n, 0.5)) for n in samples]
    records.append((events.END, rec.end(name, best_step=samples[0] if samples else None)))
    return rec.write_run(loras / name, records)


def test_list_runs_puts_active_runs_first_then_the_newest(loras, running, tmp_path):
    _finished(loras, "older", time=100.0)
    _finished(loras, "newer", time=300.0)
    live = rec.write_run(loras / "live", [(events.START, rec.start("live", time=50.0))])
    running("live", live, step=12)
    outside = rec.write_run(tmp_path / "cli-out" / "cli", [(events.START, rec.start("cli"))])
    running("cli", outside, step=3)  # a CLI run with an output_dir outside the LoRA folder

    runs = api.list_runs()["runs"]
    assert [r["run"] for r in runs] == ["cli", "live", "newer", "older"]
    assert runs[1] == {"run": "live", "status": "running", "stopping": False, "step": 12,
                       "total_steps": 40, "node": "9", "prompt_id": "p2",
                       "started": registry.get("live").started, "best": None}
    assert (runs[2]["status"], runs[2]["best"]["step"], runs[2]["stopping"]) == \
        ("finished", 10, False)
    api.stop_run({"run": "live"})
    assert api.list_runs()["runs"][1]["stopping"] is True


def test_list_runs_without_any_run(loras):
    assert api.list_runs() == {"runs": []}


def test_run_history_has_the_events_and_marks(loras):
    _finished(loras, "demo", time=100.0, samples=(10, 20))
    image = rec.image_path(20, "c0")
    answer = api.mark_sample({"run": "demo", "image": image, "mark": "bad"})
    assert answer == {"run": "demo", "image": image, "mark": "bad", "marks": {image: "bad"}}

    result = api.run_history("demo")
    assert (result["run"], result["status"], result["marks"]) == ("demo", "finished",
                                                                  {image: "bad"})
    assert [e["event"] for e in result["events"]] == [
        events.START, events.STEP, events.SAMPLE, events.SAMPLE, events.END]
    assert result["events"][1]["data"]["node"] == "7"

    cleared = api.mark_sample({"run": "demo", "image": image, "mark": None})
    assert cleared["mark"] is None and cleared["marks"] == {}


def test_run_history_of_a_run_training_outside_the_lora_folders(loras, running, tmp_path):
    run_dir = rec.write_run(tmp_path / "out" / "cli", [(events.START, rec.start("cli")),
                                                       (events.SAMPLE, rec.sample("cli", 10, 0.4))])
    running("cli", run_dir, step=10)
    result = api.run_history("cli")
    assert result["status"] == "running"
    assert [e["event"] for e in result["events"]] == [events.START, events.SAMPLE]
    image = rec.image_path(10, "s0")
    assert api.mark_sample({"run": "cli", "image": image, "mark": "good"})["marks"] == \
        {image: "good"}


def test_stop_run(loras, running):
    entry = running("live", loras / "live", step=7)
    assert api.stop_run({"run": "live"}) == {"run": "live", "stopping": True, "step": 7}
    assert entry.stop.is_set()
    _finished(loras, "done", time=1.0)
    with pytest.raises(InputError, match="'done' is not training now"):
        api.stop_run({"run": "done"})


@pytest.mark.parametrize(("body", "message"), [
    (None, "send a JSON object with the field"),
    (["live"], "send a JSON object"),
    ({}, "needs the field\\(s\\) 'run'"),
    ({"run": "live", "now": True}, "Unknown field\\(s\\) 'now'"),
    ({"run": 3}, "run must be the name of a training run"),
    ({"run": "../live"}, "run '../live' must be a plain run name"),
    ({"run": "a/b"}, "must be a plain run name"),
])
def test_stop_run_names_the_bad_field(loras, running, body, message):
    entry = running("live", loras / "live")
    with pytest.raises(InputError, match=message):
        api.stop_run(body)
    assert not entry.stopping


@pytest.mark.parametrize(("body", "message"), [
    ("good", "send a JSON object with the field\\(s\\) 'run', 'image', 'mark'"),
    ({"image": "x", "mark": "good"}, "needs the field\\(s\\) 'run'"),
    ({"run": "demo", "mark": "good"}, "needs the field\\(s\\) 'image'"),
    ({"run": "demo", "image": "x"}, "needs the field\\(s\\) 'mark'"),
    ({"run": "demo", "image": "x", "mark": "good", "step": 3}, "Unknown field\\(s\\) 'step'"),
    ({"run": None, "image": "x", "mark": "good"}, "run must be the name"),
    ({"run": "..", "image": "x", "mark": "good"}, "run '..' must be a plain run name"),
    ({"run": "nope", "image": "x", "mark": "good"}, "No training run named 'nope'"),
    ({"run": "demo", "image": 5, "mark": "good"}, "image must be a sample path"),
    ({"run": "demo", "image": "../../x.png", "mark": "good"}, "inside the run folder"),
    ({"run": "demo", "image": "samples/step000099/s0.png", "mark": "good"},
     "not a sample image of run 'demo'"),
    ({"run": "demo", "image": rec.image_path(10, "s0"), "mark": "meh"}, "mark must be"),
])
def test_mark_sample_names_the_bad_field(loras, body, message):
    run_dir = _finished(loras, "demo", time=1.0)
    with pytest.raises(InputError, match=message):
        api.mark_sample(body)
    assert not (run_dir / "feedback.jsonl").exists()


@pytest.mark.parametrize("name", [None, "", "a/b", "..", "..\\x", "x:y"])
def test_run_history_refuses_paths(loras, name):
    with pytest.raises(InputError, match="run"):
        api.run_history(name)


class FakeUI(runtime.TorchRuntime):
    """A runtime with a UI whose temp folder holds only the files in ``shown``."""

    def __init__(self, models_root, shown):
        super().__init__(models_dir=models_root)
        self.shown = set(shown)
        self.saved: list[tuple[list, str]] = []

    def ui_image_exists(self, ref):
        return ref.get("type") == "temp" and ref.get("filename") in self.shown

    def save_ui_images(self, images, prefix):
        refs = [{"filename": f"again_{len(self.saved)}_{i}.png", "subfolder": "intenttuner/train",
                 "type": "temp"} for i in range(len(images))]
        self.saved.append((images, prefix))
        self.shown.update(ref["filename"] for ref in refs)
        return refs


def _images(result):
    return [image for e in result["events"] if e["event"] == events.SAMPLE
            for image in e["data"]["images"]]


def test_thumbnails_whose_temp_file_is_gone_are_saved_again(loras, models_root):
    run_dir = _finished(loras, "demo", time=1.0, samples=(10,))
    big = Image.new("RGB", (1000, 500), (10, 20, 250))
    big.save(run_dir / rec.image_path(10, "c0"))  # a full-size sample
    ui = FakeUI(models_root, shown={"demo_10_s0.png"})  # c0's temp file is gone
    runtime.set_runtime(ui)  # the models_root fixture puts the previous runtime back

    first = _images(api.run_history("demo"))
    assert first[0]["filename"] == "demo_10_s0.png"  # still shown: kept
    assert first[1]["filename"] == "again_0_0.png" and first[1]["path"] == \
        rec.image_path(10, "c0") and first[1]["item"] == "c0"
    ((pictures, prefix),) = ui.saved
    assert prefix == "train/demo" and len(pictures) == 1
    assert pictures[0].size == (THUMBNAIL, THUMBNAIL // 2)  # a thumbnail of the PNG on disk
    assert pictures[0].getpixel((THUMBNAIL // 2, THUMBNAIL // 4)) == (10, 20, 250)

    assert _images(api.run_history("demo"))[1]["filename"] == "again_0_0.png"
    assert len(ui.saved) == 1  # the saved-again file is reused, not saved once more per request

    ui.shown.clear()  # a restart emptied the temp folder again
    again = _images(api.run_history("demo"))
    assert [i["filename"] for i in again] == ["again_1_0.png", "again_1_1.png"]
    assert (run_dir / "metrics.jsonl").read_text().count("again_") == 0  # records untouched


def test_a_missing_png_keeps_its_ref(loras, models_root):
    run_dir = _finished(loras, "demo", time=1.0)
    (run_dir / rec.image_path(10, "s0")).unlink()
    ui = FakeUI(models_root, shown=())
    runtime.set_runtime(ui)
    images = _images(api.run_history("demo"))
    assert images[0]["filename"] == "demo_10_s0.png"  # nothing to show it from: as recorded
    assert images[1]["filename"].startswith("again_")


def test_without_a_ui_the_refs_stay_as_recorded(loras):
    _finished(loras, "demo", time=1.0)
    images = _images(api.run_history("demo"))  # TorchRuntime: no UI, saves nothing
    assert [i["filename"] for i in images] == ["demo_10_s0.png", "demo_10_c0.png"]


class NumberingUI(FakeUI):
    """Names new files as ComfyUI does, after the files already there, and takes a while to
    write them: two saves at once would take the same names."""

    def save_ui_images(self, images, prefix):
        first = len(self.shown)
        time.sleep(0.3)
        refs = [{"filename": f"again_{first + i:05d}.png", "subfolder": "intenttuner/train",
                 "type": "temp"} for i in range(len(images))]
        self.saved.append((images, prefix))
        self.shown.update(ref["filename"] for ref in refs)
        return refs


def test_two_history_requests_at_once_save_the_thumbnails_once(loras, models_root):
    _finished(loras, "demo", time=1.0, samples=(10,))
    ui = NumberingUI(models_root, shown=())
    runtime.set_runtime(ui)
    together = threading.Barrier(2, timeout=30)
    answers = []

    def request():
        together.wait()
        answers.append([i["filename"] for i in _images(api.run_history("demo"))])

    threads = [threading.Thread(target=request) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(ui.saved) == 1  # the second request found the first one's files
    assert answers == [["again_00000.png", "again_00001.png"]] * 2
