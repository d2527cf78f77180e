"""The batch runner against fake ComfyUI servers on loopback (tests/batch_fake_server.py): a
sweep spread over two servers, failures of every kind (rejected prompt, a node failing midway,
a server down or lost, a run out of time), --resume, the command line; and one run against a
real ComfyUI."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from PIL import Image

from intenttuner.__main__ import main as cli
from intenttuner.batch import run_batch
from intenttuner.errors import InputError
from intenttuner.workflows import WorkflowError
from tests.batch_fake_server import FakeComfy, workflow
from tests.comfyui_harness import free_port

SWEEP = "1.width=8,16,24,32"


@pytest.fixture
def servers():
    """``servers(n)``: n started fake servers whose first prompts wait for each other, so
    each one surely gets a run."""
    started: list[FakeComfy] = []

    def make(count: int = 2, gate: bool = True) -> list[FakeComfy]:
        barrier = threading.Barrier(count) if gate and count > 1 else None
        fakes = [FakeComfy(barrier) for _ in range(count)]
        for fake in fakes:
            fake.start()
        started.extend(fakes)
        return fakes

    yield make
    for fake in started:
        fake.stop()


@pytest.fixture
def saved(tmp_path) -> Path:
    path = tmp_path / "workflow.json"
    path.write_text(json.dumps(workflow()))
    return path


def width(prompt: dict) -> int:
    return prompt["1"]["inputs"]["width"]


def batch(saved: Path, fakes: list, out: Path, sweeps=(SWEEP,), sets=(), **kw):
    return run_batch(saved, [f.url for f in fakes], list(sets), list(sweeps), out,
                     progress=False, **kw)


def test_a_sweep_spreads_over_two_servers_one_run_at_a_time(servers, saved, tmp_path):
    fakes = servers(2)
    out = tmp_path / "out"
    result = batch(saved, fakes, out, sets=["Scores A.label=intent"])
    assert [r.status for r in result.runs] == ["success"] * 4
    assert all(fake.prompts for fake in fakes)  # both used...
    assert [fake.most_held for fake in fakes] == [1, 1]  # ...one prompt at a time each
    assert sorted(width(p) for f in fakes for p in f.prompts) == [8, 16, 24, 32]
    for run in result.runs:
        folder = out / "runs" / run.run_id
        record = json.loads((folder / "result.json").read_text())
        sent = json.loads((folder / "prompt.json").read_text())
        server = next(f for f in fakes if f.url == record["server"])
        assert sent in server.prompts and width(sent) == int(run.values["1.width"])
        assert record["status"] == "success" and record["prompt_id"] and record["seconds"] > 0
        assert record["values"] == run.values
        assert record["scores"] == {"intent": {"stability": 0.5, "controllability": None,
                                               "leakage": 0.25}}
        # the saved images came back: the first canvas as wide as this run's sweep value
        assert sorted(record["files"]) == sorted(run.files) and len(run.files) == 2
        saved_canvas = next(name for name in run.files if name.startswith("batch_"))
        assert Image.open(folder / saved_canvas).size == (width(sent), 32)
    assert result.summary_csv.is_file() and result.summary_md.is_file()
    assert Image.open(result.summary_png).size[0] >= 640


def test_a_rejected_prompt_shows_its_node_errors_and_the_rest_run(servers, saved, tmp_path):
    (fake,) = servers(1)
    fake.behave = lambda prompt: "reject" if width(prompt) == 16 else "ok"
    result = batch(saved, [fake], tmp_path / "out")
    assert [r.status for r in result.runs] == ["success", "failed", "success", "success"]
    error = result.runs[1].error
    assert error.splitlines() == [
        "the server rejected the prompt: Prompt outputs failed validation",
        "  node 3 (FakeScores): Value not in list: sampler: 'heun' not in ['euler', "
        "'dpmpp_2m']"]
    assert result.runs[1].prompt_id is None and result.runs[1].server == fake.url


def test_a_run_failing_midway_is_recorded_and_the_others_continue(servers, saved, tmp_path):
    fakes = servers(2)
    for fake in fakes:
        fake.behave = lambda prompt: "fail" if width(prompt) == 8 else "ok"
    result = batch(saved, fakes, tmp_path / "out")
    assert [r.status for r in result.runs] == ["failed", "success", "success", "success"]
    second = list(workflow())[1]  # the fake fails at the second node it runs
    kind = workflow()[second]["class_type"]
    assert result.runs[0].error == f"node {second} ({kind}) failed: torch.OutOfMemoryError: " \
                                   "CUDA out of memory (fake)"
    assert result.runs[0].files == [] and result.runs[0].prompt_id
    record = json.loads((tmp_path / "out/runs" / result.runs[0].run_id / "result.json")
                        .read_text())
    assert record["status"] == "failed" and "CUDA out of memory" in record["error"]


def test_a_lost_servers_run_goes_to_the_other_server(servers, saved, tmp_path):
    lost, kept = servers(2)
    lost.behave = lambda prompt: "drop"
    result = batch(saved, [lost, kept], tmp_path / "out")
    assert [r.status for r in result.runs] == ["success"] * 4
    assert len(lost.prompts) == 1 and lost.dead
    assert all(r.server == kept.url for r in result.runs)
    moved = [r for r in result.runs if r.lost_servers]
    assert len(moved) == 1 and moved[0].lost_servers == [lost.url]
    assert width(lost.prompts[0]) == int(moved[0].values["1.width"])
    assert list(result.dropped_servers) == [lost.url]
    assert "websocket closed" in result.dropped_servers[lost.url]


def test_when_every_server_is_lost_the_remaining_runs_fail(servers, saved, tmp_path):
    (fake,) = servers(1)
    fake.behave = lambda prompt: "drop"
    result = batch(saved, [fake], tmp_path / "out")
    assert [r.status for r in result.runs] == ["failed"] * 4
    for run in result.runs:
        assert run.error.startswith(f"not run: no server is left ({fake.url}: ")
    assert result.runs[0].lost_servers == [fake.url]
    assert "| failed |" in result.summary_md.read_text()


def test_all_servers_down_is_named_before_anything_runs(saved, tmp_path):
    down = [f"http://127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    with pytest.raises(InputError) as error:
        run_batch(saved, down, [], [SWEEP], tmp_path / "out", progress=False)
    message = str(error.value)
    assert message.startswith("No ComfyUI server answered")
    assert down[0] in message and f"http://{down[1]}" in message and "refused" in message
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("server, message", [
    ("ftp://127.0.0.1:21", "is not a ComfyUI server address: give it as http://HOST:PORT"),
    ("http://127.0.0.1:port", "the port is not a number"),
    ("http://", "is not a ComfyUI server address"),
])
def test_a_bad_server_address_is_named(saved, tmp_path, server, message):
    with pytest.raises(InputError, match=message):
        run_batch(saved, [server], [], [], tmp_path / "out")


def test_bad_batch_arguments_are_named(saved, tmp_path):
    with pytest.raises(InputError, match="at least one ComfyUI server"):
        run_batch(saved, [], [], [], tmp_path / "out")
    with pytest.raises(InputError, match="--timeout 0: give the seconds one run may take"):
        run_batch(saved, ["http://127.0.0.1:1"], [], [], tmp_path / "out", timeout=0)
    with pytest.raises(InputError, match="does not exist"):
        run_batch(tmp_path / "nope.json", ["http://127.0.0.1:1"], [], [], tmp_path / "out")


def test_a_server_down_at_start_is_left_out(servers, saved, tmp_path):
    (fake,) = servers(1)
    down = f"http://127.0.0.1:{free_port()}"
    result = run_batch(saved, [down, fake.url], [], [SWEEP], tmp_path / "out", progress=False)
    assert [r.server for r in result.runs] == [fake.url] * 4
    assert list(result.dropped_servers) == [down]


def test_a_node_type_not_installed_is_named_with_its_pack(servers, saved, tmp_path):
    fakes = servers(2, gate=False)
    prompt = workflow()
    prompt["9"] = {"class_type": "IntentTunerLoRATrain", "inputs": {}}
    saved.write_text(json.dumps(prompt))
    with pytest.raises(WorkflowError, match=r"node 9 \(IntentTunerLoRATrain\): "
                                            r"IntentTunerLoRATrain is not installed \(pack: "
                                            r"ComfyUI-IntentTuner\)"):
        batch(saved, fakes, tmp_path / "out")
    assert not any(fake.prompts for fake in fakes)


def test_a_server_lacking_a_node_type_is_left_out(servers, saved, tmp_path):
    lacking, complete = servers(2, gate=False)
    del lacking.object_info["FakeScores"]
    result = batch(saved, [lacking, complete], tmp_path / "out")
    assert [r.server for r in result.runs] == [complete.url] * 4 and not lacking.prompts
    assert "FakeScores is not installed" in result.dropped_servers[lacking.url]


def test_a_run_out_of_time_is_stopped_and_recorded(servers, saved, tmp_path):
    (fake,) = servers(1)
    fake.behave = lambda prompt: "hang" if width(prompt) == 8 else "ok"
    result = batch(saved, [fake], tmp_path / "out", sweeps=["1.width=8,16"], timeout=1)
    assert [r.status for r in result.runs] == ["failed", "success"]
    assert result.runs[0].error.startswith("timed out after 1 s (--timeout)")
    assert fake.interrupted == {result.runs[0].prompt_id}


def test_resume_skips_the_runs_done_and_runs_the_others(servers, saved, tmp_path):
    (fake,) = servers(1)
    out = tmp_path / "out"
    fake.behave = lambda prompt: "fail" if width(prompt) == 16 else "ok"
    first = batch(saved, [fake], out)
    assert [r.status for r in first.runs] == ["success", "failed", "success", "success"]
    with pytest.raises(InputError, match="already holds the runs of a batch: add --resume"):
        batch(saved, [fake], out)
    fake.behave = lambda prompt: "ok"
    sent = len(fake.prompts)
    second = batch(saved, [fake], out, resume=True)
    assert [width(p) for p in fake.prompts[sent:]] == [16]  # only the failed run again
    assert [r.status for r in second.runs] == ["skipped", "success", "skipped", "skipped"]
    assert second.runs[0].scores == first.runs[0].scores and second.runs[0].files
    assert "4 run(s): 1 succeeded, 3 kept from an earlier call" in second.summary_md.read_text()
    sent = len(fake.prompts)
    third = batch(saved, [fake], out, resume=True, sets=["Scores A.label=other"])
    assert len(fake.prompts) - sent == 4  # another prompt: nothing is kept
    assert {r.status for r in third.runs} == {"success"}


def test_a_ui_format_workflow_is_converted_with_the_servers_node_types(servers, tmp_path):
    (fake,) = servers(1)
    ui = {"nodes": [
        {"id": 1, "type": "EmptyImage", "mode": 0, "inputs": [],
         "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [1]}],
         "widgets_values": [64, 32, 1, 0]},
        {"id": 2, "type": "SaveImage", "mode": 0, "title": "Keep",
         "inputs": [{"name": "images", "type": "IMAGE", "link": 1}], "outputs": [],
         "widgets_values": ["batch"]}],
        "links": [[1, 1, 0, 2, 0, "IMAGE"]], "version": 0.4}
    path = tmp_path / "ui.json"
    path.write_text(json.dumps(ui))
    result = run_batch(path, [fake.url], ["Keep.filename_prefix=ui"], ["1.width=8,12"],
                       tmp_path / "out", progress=False)
    assert [r.status for r in result.runs] == ["success", "success"]
    assert [p["1"]["inputs"]["width"] for p in fake.prompts] == [8, 12]
    assert fake.prompts[0]["2"] == {"class_type": "SaveImage", "_meta": {"title": "Keep"},
                                    "inputs": {"images": ["1", 0], "filename_prefix": "ui"}}


def test_cli_exit_codes_and_failure_lines(servers, saved, tmp_path, capsys):
    (fake,) = servers(1)
    args = ["batch", str(saved), "--server", fake.url, "--sweep", "1.width=8,16", "--quiet"]
    assert cli([*args, "--out", str(tmp_path / "ok")]) == 0
    printed = capsys.readouterr().out
    assert "2 of 2 run(s) succeeded; summary: " in printed and "failed:" not in printed
    fake.behave = lambda prompt: "reject" if width(prompt) == 16 else "ok"
    assert cli([*args, "--out", str(tmp_path / "bad")]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == (f"failed: run-02_1.width=16 on {fake.url}: the server rejected the "
                         "prompt: Prompt outputs failed validation; node 3 (FakeScores): Value "
                         "not in list: sampler: 'heun' not in ['euler', 'dpmpp_2m']")


def test_cli_names_a_bad_override(servers, saved, tmp_path, capsys):
    (fake,) = servers(1)
    code = cli(["batch", str(saved), "--server", fake.url, "--set", "Canvas.width=8",
                "--out", str(tmp_path / "out")])
    assert code == 1 and not fake.prompts
    assert capsys.readouterr().err.startswith("error: --set Canvas.width=8: 2 nodes have the "
                                              "title 'Canvas'")
