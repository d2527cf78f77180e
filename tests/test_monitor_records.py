"""The monitor's records: metrics.jsonl event records (runlog), TensorBoard event files read
back with tensorboard's own EventAccumulator, the registry of running runs, feedback marks, and
the history the panel replays (records written by hand, as in the contract's payloads)."""

from __future__ import annotations

import json
import sys
import threading

import pytest

from intenttuner.errors import InputError
from intenttuner.monitor import events, feedback, history, registry
from intenttuner.monitor.runlog import RunLog, read_records
from intenttuner.monitor.tensorboard_sink import open_sink
from intenttuner.training.run_folder import RunFolder, write_metrics
from tests import monitor_record_helpers as rec

# --- runlog ---------------------------------------------------------------------------------


def test_runlog_appends_event_records_beside_the_trainers_step_records(tmp_path):
    folder = RunFolder("demo", tmp_path)
    folder.run_dir.mkdir()
    log = RunLog(folder.run_dir)
    log.write(events.START, rec.start("demo"))
    write_metrics(folder, rec.step(1, loss=float("nan")))  # the trainer's own writer
    assert log.write(events.STEP, rec.step(1)) is None  # the trainer wrote it already
    written = log.write(events.SAMPLE, {**rec.sample("demo", 1, float("inf")), "event": "x"})
    log.write(events.WARNING, {"run": "demo", "node": "7", "time": 1.0, "step": 1,
                               "message": "sampling failed"})

    lines = folder.metrics_path.read_text().splitlines()
    assert [json.loads(line).get("event") for line in lines] == ["start", None, "sample",
                                                                 "warning"]
    assert lines[2].startswith('{"event": "sample"')  # the record says what it is first
    assert written["score"] is None and "NaN" not in lines[1] and "Infinity" not in lines[2]
    assert read_records(folder.run_dir) == [json.loads(line) for line in lines]


def test_read_records_skips_damaged_lines(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n{"event": "sam\n[1, 2]\n\n'
                                            '{"event": "end", "status": "failed"}\n')
    assert read_records(tmp_path) == [{"step": 1}, {"event": "end", "status": "failed"}]
    assert read_records(tmp_path / "missing") == []


# --- TensorBoard ----------------------------------------------------------------------------


def _accumulator(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(log_dir), size_guidance={"images": 0, "scalars": 0,
                                                                "tensors": 0})
    accumulator.Reload()
    return accumulator


def test_tensorboard_sink_writes_what_tensorboard_reads(tmp_path):
    from PIL import Image

    sink = open_sink(tmp_path)
    sink.write(events.START, rec.start("demo"))
    for n in (1, 2, 3):
        sink.write(events.STEP, {**rec.step(n, loss=None if n == 2 else n / 10, lr=n * 1e-4),
                                 "run": "demo", "node": "7", "time": 1.0, "eta_s": None})
    sink.write(events.SAMPLE, rec.sample("demo", 3, 0.7, stability=0.8, controllability=0.6))
    sink.add_grid(3, Image.new("RGB", (40, 30), (255, 0, 0)))
    sink.write(events.WARNING, {"run": "demo", "node": "7", "time": 1.0, "step": 3,
                                "message": "sampling failed"})
    sink.write(events.END, rec.end("demo", n=3, best_step=3))
    sink.close()

    board = _accumulator(tmp_path / "tensorboard")
    values = {tag: [(e.step, round(e.value, 6)) for e in board.Scalars(tag)]
              for tag in board.Tags()["scalars"]}
    assert values["loss"] == [(1, 0.1), (3, 0.3)]  # the non-finite loss is a gap, not a 0
    assert values["lr"] == [(1, 1e-4), (2, 2e-4), (3, 3e-4)]
    assert values["score"] == [(3, 0.7)]
    assert values["score/stability"] == [(3, 0.8)]
    assert values["score/stability/face"] == [(3, 0.8)]
    assert values["score/controllability/hair"] == [(3, 0.6)]
    assert not any(tag.startswith("score/leakage") for tag in values)  # n/a: not drawn as 0
    (grid,) = board.Images("samples")
    assert (grid.step, grid.width, grid.height) == (3, 40, 30)
    texts = [e.tensor_proto.string_val[0].decode() for e in board.Tensors("run/text_summary")]
    assert any("sampling failed" in t for t in texts)
    assert any("Best: step 3" in t for t in texts)
    assert any("1*(1 - leakage)" in t for t in texts)  # the formula of the start


def test_a_resumed_run_replaces_the_steps_it_trains_again(tmp_path):
    first = open_sink(tmp_path)
    first.write(events.START, rec.start("demo"))
    for n in range(1, 6):
        first.write(events.STEP, rec.step(n, loss=float(n)))
    first.close()
    again = open_sink(tmp_path)
    again.write(events.START, rec.start("demo", start_step=3))
    for n in (4, 5):
        again.write(events.STEP, rec.step(n, loss=10.0 * n))
    again.close()
    losses = [(e.step, e.value) for e in _accumulator(tmp_path / "tensorboard").Scalars("loss")]
    assert losses == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 40.0), (5, 50.0)]


def test_no_sink_without_tensorboard(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import raises
    assert open_sink(tmp_path) is None
    assert not (tmp_path / "tensorboard").exists()


# --- registry -------------------------------------------------------------------------------


@pytest.fixture
def clean_registry():
    before = {entry.run for entry in registry.active()}
    yield
    for entry in registry.active():
        if entry.run not in before:
            registry.unregister(entry.run)


def test_registry_lists_updates_and_stops_runs(tmp_path, clean_registry):
    older = registry.register("reg-a", tmp_path / "a", "3", "p1", 100)
    newer = registry.register("reg-b", tmp_path / "b", None, None, 50)
    newer.started = older.started + 1
    assert [r.run for r in registry.active()][:2] == ["reg-b", "reg-a"]
    with pytest.raises(InputError, match="'reg-a' is already training"):
        registry.register("reg-a", tmp_path / "a", "3", "p1", 100)

    older.update(12)
    stopped = registry.request_stop("reg-a")
    assert stopped is older and older.stop.is_set() and older.stopping and stopped.step == 12
    assert not newer.stopping
    registry.unregister("reg-a")
    registry.unregister("reg-a")  # ending twice is harmless
    assert registry.get("reg-a") is None
    with pytest.raises(InputError, match=r"'reg-a' is not training now.*reg-b"):
        registry.request_stop("reg-a")


def test_registry_is_thread_safe(tmp_path, clean_registry):
    """8 threads register 100 runs each at once, all of them are there, then each stops and
    unregisters its own while the others do the same: nothing lost, nothing left."""
    workers, per_worker = 8, 100
    errors, counts = [], []
    together = threading.Barrier(workers)

    def churn(worker: int) -> None:
        try:
            together.wait()
            names = [f"thread-{worker}-{n}" for n in range(per_worker)]
            entries = [registry.register(name, tmp_path, None, None, 10) for name in names]
            together.wait()  # every thread's runs are registered now
            counts.append(sum(r.run.startswith("thread-") for r in registry.active()))
            together.wait()
            for name, entry in zip(names, entries, strict=True):
                assert registry.request_stop(name) is entry and entry.stop.is_set()
                registry.unregister(name)
        except Exception as exc:  # noqa: BLE001 (reported below, in the test's thread)
            errors.append(exc)

    threads = [threading.Thread(target=churn, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert counts == [workers * per_worker] * workers
    assert not [r for r in registry.active() if r.run.startswith("thread-")]


def test_a_stop_from_another_thread_reaches_the_training_thread(tmp_path, clean_registry):
    entry = registry.register("reg-stop", tmp_path, None, None, 10)
    asker = threading.Thread(target=registry.request_stop, args=("reg-stop",))
    asker.start()
    assert entry.stop.wait(timeout=5)
    asker.join()


# --- feedback -------------------------------------------------------------------------------


def _run_with_samples(tmp_path):
    return rec.write_run(tmp_path / "demo", [(events.START, rec.start("demo")),
                                             (events.SAMPLE, rec.sample("demo", 10, 0.6)),
                                             (events.SAMPLE, rec.sample("demo", 20, 0.7))],
                         pngs=False)


def test_marks_are_added_revised_and_cleared(tmp_path):
    run_dir = _run_with_samples(tmp_path)
    first, second = rec.image_path(10, "s0"), rec.image_path(20, "c0")
    record = feedback.add_mark(run_dir, first, "good")
    assert record["item"] == "s0" and record["step"] == 10 and record["mark"] == "good"
    assert record["prompt"] == "photo of ohwx, s0"
    feedback.add_mark(run_dir, second, "good")
    assert feedback.marks(run_dir) == {first: "good", second: "good"}
    feedback.add_mark(run_dir, first, "bad")
    feedback.add_mark(run_dir, second, None)
    assert feedback.marks(run_dir) == {first: "bad"}
    lines = (run_dir / "feedback.jsonl").read_text().splitlines()
    assert [json.loads(line)["mark"] for line in lines] == ["good", "good", "bad", None]


@pytest.mark.parametrize(("image", "mark", "message"), [
    (rec.image_path(30, "s0"), "good", "not a sample image of run 'demo'"),
    ("samples/step000010/other.png", "bad", "not a sample image"),
    (rec.image_path(10, "s0"), "great", "mark must be 'good', 'bad' or null"),
    (rec.image_path(10, "s0"), True, "mark must be"),
    ("../demo/" + rec.image_path(10, "s0"), "good", "inside the run folder"),
    ("samples/../../secret.png", "good", "inside the run folder"),
    ("/etc/passwd", "good", "inside the run folder"),
    ("samples\\step000010\\s0.png", "good", "inside the run folder"),
    ("C:samples/x.png", "good", "inside the run folder"),
    ("", "good", "image must be a sample path"),
    (None, "good", "image must be a sample path"),
])
def test_bad_marks_are_refused(tmp_path, image, mark, message):
    run_dir = _run_with_samples(tmp_path)
    with pytest.raises(InputError, match=message):
        feedback.add_mark(run_dir, image, mark)
    assert not (run_dir / "feedback.jsonl").exists()


def test_marks_skip_damaged_lines(tmp_path):
    (tmp_path / "feedback.jsonl").write_text(
        '{"image": "a.png", "mark": "good"}\n{"image": "b.p\n7\n{"image": 3, "mark": "bad"}\n')
    assert feedback.marks(tmp_path) == {"a.png": "good"}
    assert feedback.marks(tmp_path / "missing") == {}


# --- history --------------------------------------------------------------------------------


def test_events_replay_the_run_in_order_with_run_and_node(tmp_path):
    run_dir = rec.write_run(tmp_path / "demo-2", [
        (events.STEP, rec.step(1)),  # a step before any start record (an older attempt)
        (events.START, rec.start("demo-2", node="12")),
        (events.STEP, rec.step(2, loss=None)),
        (events.SAMPLE, rec.sample("demo-2", 2, 0.5, node="12")),
        (events.WARNING, {"run": "demo-2", "node": "12", "time": 3.0, "step": 2,
                          "message": "sampling failed"}),
        (events.END, rec.end("demo-2", n=2))], pngs=False)
    with (run_dir / "metrics.jsonl").open("a") as out:
        out.write('{"event": ""}\n{"no": "step"}\n')  # neither: left out

    replay = history.events(run_dir)
    assert [e["event"] for e in replay] == [events.STEP, events.START, events.STEP,
                                            events.SAMPLE, events.WARNING, events.END]
    assert replay[0]["data"] == {"run": "demo-2", "node": None, **rec.step(1)}
    assert replay[2]["data"] == {"run": "demo-2", "node": "12", **rec.step(2, loss=None)}
    assert replay[1]["data"] == rec.start("demo-2", node="12")  # no "event" key left in data
    assert replay[3]["data"]["images"][0]["path"] == rec.image_path(2, "s0")


@pytest.mark.parametrize("name", ["a/b", "..", "../demo", "a\\b", "c:demo", ".hidden", "",
                                  "  ", None, 3])
def test_run_names_must_be_plain(tmp_path, name):
    with pytest.raises(InputError, match="run"):
        history.find_run_dir(name, [tmp_path])


def test_find_run_dir_looks_in_every_lora_folder(tmp_path):
    first, second = tmp_path / "loras", tmp_path / "lora"
    rec.write_run(second / "demo", [(events.START, rec.start("demo"))])
    assert history.find_run_dir("demo", [first, second]) == second / "demo"
    (first / "demo").mkdir(parents=True)  # a folder without metrics.jsonl is no run
    assert history.find_run_dir("demo", [first, second]) == second / "demo"
    with pytest.raises(InputError, match="No training run named 'other'"):
        history.find_run_dir("other", [first, second])


def test_run_summaries_and_statuses(tmp_path):
    loras = tmp_path / "loras"
    rec.write_run(loras / "done", [(events.START, rec.start("done", time=10.0)),
                                   (events.STEP, rec.step(1)),
                                   (events.END, rec.end("done", n=1, best_step=1))])
    # cancelled, then resumed into its own folder: the last attempt has no end yet
    rec.write_run(loras / "again", [(events.START, rec.start("again", time=30.0)),
                                    (events.END, rec.end("again", "cancelled", n=5)),
                                    (events.START, rec.start("again", time=40.0, start_step=5)),
                                    (events.STEP, rec.step(6))])
    rec.write_run(loras / "old", [(events.STEP, rec.step(1, total=2)),
                                  (events.STEP, rec.step(2, total=2))])
    (loras / "old.safetensors").write_bytes(b"lora")  # trained before the monitor existed
    rec.write_run(loras / "died", [(events.STEP, rec.step(1))])

    runs = {run["run"]: run for run in history.list_runs([loras, tmp_path / "none"])}
    assert runs["done"] == {"run": "done", "status": "finished", "step": 1, "total_steps": 40,
                            "node": "7", "prompt_id": "p1", "started": 10.0,
                            "best": rec.end("done", n=1, best_step=1)["best"]}
    assert (runs["again"]["status"], runs["again"]["step"], runs["again"]["best"]) == \
        ("unknown", 6, None)
    assert (runs["old"]["status"], runs["old"]["total_steps"], runs["old"]["node"]) == \
        ("finished", 2, None)
    assert runs["died"]["status"] == "unknown"
    order = [run["run"] for run in history.list_runs([loras])]
    assert order.index("again") < order.index("done")  # newest first

    rec.write_run(loras / "done", [(events.START, rec.start("done", time=50.0))])
    assert history.summary(loras / "done")["status"] == "unknown"  # a changed file is re-read
