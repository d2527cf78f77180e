"""A fake ComfyUI server on loopback for the batch runner's tests: the parts of its API the
runner uses (/object_info, /prompt, /ws, /history, /view, /interrupt, /queue), with ComfyUI's
message order, and failures on demand.

The app is aiohttp's (ComfyUI's own server library, in the venv because ComfyUI needs it), run
on an event loop in a thread of its own. Like ComfyUI, a server runs one prompt at a time; it
counts the prompts it holds (queued or running) so a test can see the runner never gives it two.

``behave(prompt) -> str`` decides what happens to each prompt:
    "ok"      runs it: executing/progress per node, output files, execution_success, history
    "reject"  answers /prompt with 400 and node errors, as ComfyUI's validation does
    "fail"    a node fails midway: execution_error, history with status "error"
    "drop"    the server goes away mid-run: websockets closed, the port closed
    "hang"    never ends until /interrupt (for the runner's timeout)
"""

from __future__ import annotations

import asyncio
import io
import json
import socket
import threading
import uuid
from collections.abc import Callable

from aiohttp import web
from PIL import Image

from intenttuner.evaluation.report import report_json
from intenttuner.evaluation.types import EvalScores, MetricResult, Test

SCORES, REPORT = "FakeScores", "IntentTunerEvaluationReport"
OBJECT_INFO = {
    "EmptyImage": {
        "input": {"required": {
            "width": ["INT", {"default": 512, "min": 1, "max": 16384, "step": 1}],
            "height": ["INT", {"default": 512, "min": 1, "max": 16384, "step": 1}],
            "batch_size": ["INT", {"default": 1, "min": 1, "max": 4096}],
            "color": ["INT", {"default": 0, "min": 0, "max": 0xFFFFFF, "display": "color"}]}},
        "output": ["IMAGE"], "output_name": ["IMAGE"], "name": "EmptyImage",
        "display_name": "EmptyImage", "output_node": False},
    "SaveImage": {
        "input": {"required": {"images": ["IMAGE", {}],
                               "filename_prefix": ["STRING", {"default": "ComfyUI"}]},
                  "hidden": {"prompt": "PROMPT"}},
        "output": [], "output_name": [], "name": "SaveImage", "display_name": "Save Image",
        "output_node": True},
    SCORES: {  # a stand-in score node: its inputs become the report's numbers
        "input": {"required": {
            "label": ["STRING", {"default": "model"}],
            "stability": ["FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.01}],
            "sampler": [["euler", "dpmpp_2m"], {}],  # a combo, legacy format
            "scheduler": ["COMBO", {"options": ["normal", "karras"]}],  # v3 format
            "measure_leakage": ["BOOLEAN", {"default": True}]},
            "optional": {"image": ["IMAGE", {}]}},
        "output": ["EVAL_SCORES"], "output_name": ["scores"], "name": SCORES,
        "display_name": "Fake Scores", "output_node": False},
    REPORT: {
        "input": {"required": {"run_1": ["EVAL_SCORES", {}], "title": ["STRING", {}]}},
        "output": ["IMAGE", "STRING"], "output_name": ["report", "json"], "name": REPORT,
        "display_name": "Evaluation Report", "output_node": True},
}


def workflow() -> dict:
    """An API-format workflow of the fake's nodes: two canvases titled alike, each saved, and
    scores into a report."""
    def node(kind, name, **inputs):
        return {"class_type": kind, "inputs": inputs, "_meta": {"title": name}}

    return {
        "1": node("EmptyImage", "Canvas", width=64, height=32, batch_size=1, color=0),
        "2": node("SaveImage", "Save Image", images=["1", 0], filename_prefix="batch"),
        "5": node("EmptyImage", "Canvas", width=16, height=16, batch_size=1, color=255),
        "6": node("SaveImage", "Save Image", images=["5", 0], filename_prefix="small"),
        "3": node(SCORES, "Scores A", label="lora", stability=0.5, sampler="euler",
                  scheduler="normal", measure_leakage=True, image=["1", 0]),
        "4": node(REPORT, "Evaluation Report", run_1=["3", 0], title="t"),
    }


def report_of(inputs: dict) -> dict:
    """What the real Evaluation Report node puts in its UI output ``it_scores`` for one model
    scored by a FakeScores node with ``inputs`` (controllability not applicable)."""
    results = {
        Test.STABILITY: MetricResult(metric=Test.STABILITY, applicable=True,
                                     score=inputs["stability"]),
        Test.CONTROLLABILITY: MetricResult.not_applicable(Test.CONTROLLABILITY,
                                                          "no modified concept"),
    }
    if inputs.get("measure_leakage"):
        results[Test.LEAKAGE] = MetricResult(metric=Test.LEAKAGE, applicable=True, score=0.25,
                                             higher_is_better=False)
    scores = EvalScores(label=inputs["label"], results={k.value: v for k, v in results.items()})
    return json.loads(report_json([scores]))


class FakeComfy:
    def __init__(self, gate: threading.Barrier | None = None):
        self.object_info = json.loads(json.dumps(OBJECT_INFO))
        self.behave: Callable[[dict], str] = lambda prompt: "ok"
        self.gate = gate  # this server's first prompt waits until every server has one
        self.prompts: list[dict] = []  # every prompt received, in order
        self.held = 0  # prompts queued or running now
        self.most_held = 0
        self.history: dict[str, dict] = {}
        self.files: dict[tuple[str, str, str], bytes] = {}  # (type, subfolder, name) -> bytes
        self.interrupted: set[str] = set()
        self._sockets: dict[str, web.WebSocketResponse] = {}
        self._interrupt: dict[str, asyncio.Event] = {}
        self._one_at_a_time: asyncio.Lock | None = None
        self._saved = 0
        self.dead = False

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> str:
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, daemon=True).start()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        asyncio.run_coroutine_threadsafe(self._serve(sock), self._loop).result(10)
        self.url = f"http://127.0.0.1:{self.port}"
        return self.url

    async def _serve(self, sock: socket.socket) -> None:
        self._one_at_a_time = asyncio.Lock()
        app = web.Application()
        app.router.add_get("/object_info", self._object_info)
        app.router.add_post("/prompt", self._prompt)
        app.router.add_get("/ws", self._ws)
        app.router.add_get("/history/{prompt_id}", self._history)
        app.router.add_get("/view", self._view)
        app.router.add_post("/interrupt", self._interrupt_prompt)
        app.router.add_post("/queue", self._queue)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    def stop(self) -> None:
        if not self._loop.is_closed():
            asyncio.run_coroutine_threadsafe(self._die(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)

    async def _die(self) -> None:
        """Close every connection and the port: a server that went away."""
        if self.dead:
            return
        self.dead = True
        for ws in list(self._sockets.values()):
            await ws.close()
        await self._runner.cleanup()

    # -- routes ----------------------------------------------------------------------------
    async def _object_info(self, request):
        return web.json_response(self.object_info)

    async def _prompt(self, request):
        body = await request.json()
        prompt = body["prompt"]
        self.prompts.append(prompt)
        behaviour = self.behave(prompt)
        if behaviour == "reject":
            return web.json_response({
                "error": {"type": "prompt_outputs_failed_validation",
                          "message": "Prompt outputs failed validation", "details": "",
                          "extra_info": {}},
                "node_errors": {"3": {"class_type": SCORES, "dependent_outputs": ["4"],
                                      "errors": [{"type": "value_not_in_list",
                                                  "message": "Value not in list",
                                                  "details": "sampler: 'heun' not in "
                                                             "['euler', 'dpmpp_2m']"}]}}},
                status=400)
        prompt_id = str(uuid.uuid4())
        self.held += 1
        self.most_held = max(self.most_held, self.held)
        self._interrupt[prompt_id] = asyncio.Event()
        asyncio.get_running_loop().create_task(
            self._execute(prompt_id, prompt, body.get("client_id"), behaviour))
        return web.json_response({"prompt_id": prompt_id, "number": len(self.prompts),
                                  "node_errors": {}})

    async def _ws(self, request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        client_id = request.query.get("clientId", "")
        self._sockets[client_id] = ws
        await ws.send_json({"type": "status", "data": {"status": {"exec_info": {
            "queue_remaining": self.held}}, "sid": client_id}})
        async for _ in ws:  # the client says nothing; wait until it or the server closes
            pass
        self._sockets.pop(client_id, None)
        return ws

    async def _history(self, request):
        prompt_id = request.match_info["prompt_id"]
        entry = self.history.get(prompt_id)
        return web.json_response({prompt_id: entry} if entry else {})

    async def _view(self, request):
        q = request.query
        data = self.files.get((q.get("type", "output"), q.get("subfolder", ""),
                               q.get("filename", "")))
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="image/png")

    async def _interrupt_prompt(self, request):
        prompt_id = (await request.json()).get("prompt_id")
        if prompt_id in self._interrupt:
            self.interrupted.add(prompt_id)
            self._interrupt[prompt_id].set()
        return web.Response()

    async def _queue(self, request):
        return web.Response()

    # -- running a prompt ------------------------------------------------------------------
    async def _send(self, client_id: str | None, kind: str, data: dict) -> None:
        ws = self._sockets.get(client_id or "")
        if ws is not None and not ws.closed:
            await ws.send_str(json.dumps({"type": kind, "data": data}))

    async def _send_preview(self, client_id: str | None) -> None:
        """A binary frame, as ComfyUI sends its step previews."""
        ws = self._sockets.get(client_id or "")
        if ws is not None and not ws.closed:
            await ws.send_bytes(b"\x00\x00\x00\x01preview")

    async def _execute(self, prompt_id: str, prompt: dict, client_id: str | None,
                       behaviour: str) -> None:
        async with self._one_at_a_time:
            if self.gate is not None:
                gate, self.gate = self.gate, None
                await asyncio.get_running_loop().run_in_executor(None, _pass, gate)
            messages = [["execution_start", {"prompt_id": prompt_id}]]
            await self._send(client_id, *messages[0])
            outputs: dict[str, dict] = {}
            for step, (node_id, node) in enumerate(prompt.items()):
                ids = {"node": node_id, "display_node": node_id, "prompt_id": prompt_id}
                await self._send(client_id, "executing", ids)
                await self._send(client_id, "progress", {**ids, "value": 1, "max": 2})
                await self._send_preview(client_id)
                await self._send(client_id, "progress", {**ids, "value": 2, "max": 2})
                if behaviour == "drop":
                    await self._die()
                    return
                if behaviour == "hang":
                    await self._interrupt[prompt_id].wait()
                    messages.append(["execution_interrupted", {
                        "prompt_id": prompt_id, "node_id": node_id,
                        "node_type": node["class_type"], "executed": []}])
                    return await self._end(prompt_id, client_id, outputs, messages, "error")
                if behaviour == "fail" and step == 1:
                    error = {"prompt_id": prompt_id, "node_id": node_id,
                             "node_type": node["class_type"], "executed": [],
                             "exception_message": "CUDA out of memory (fake)\n",
                             "exception_type": "torch.OutOfMemoryError", "traceback": []}
                    messages.append(["execution_error", error])
                    await self._send(client_id, "execution_error", error)
                    return await self._end(prompt_id, client_id, outputs, messages, "error")
                ui = self._output(node, prompt)
                if ui is not None:
                    outputs[node_id] = ui
                    await self._send(client_id, "executed", {**ids, "output": ui})
                await asyncio.sleep(0.005)
            messages.append(["execution_success", {"prompt_id": prompt_id}])
            await self._send(client_id, "execution_success", {"prompt_id": prompt_id})
            await self._end(prompt_id, client_id, outputs, messages, "success")

    async def _end(self, prompt_id, client_id, outputs, messages, status: str) -> None:
        await asyncio.sleep(0.05)  # ComfyUI stores the history just after the end message
        self.history[prompt_id] = {
            "prompt": [0, prompt_id, {}, {}, []], "outputs": outputs,
            "status": {"status_str": status, "completed": status == "success",
                       "messages": messages}}
        self.held -= 1
        await self._send(client_id, "executing", {"node": None, "prompt_id": prompt_id})

    def _output(self, node: dict, prompt: dict) -> dict | None:
        """The UI output of an output node: a saved PNG as big as its canvas; the report's
        scores."""
        if node["class_type"] == REPORT:
            scores = prompt[node["inputs"]["run_1"][0]]["inputs"]
            return {"images": [], "text": ["Saved"], "it_scores": [report_of(scores)]}
        if node["class_type"] != "SaveImage":
            return None
        canvas = prompt[node["inputs"]["images"][0]]["inputs"]
        self._saved += 1
        name = f"{node['inputs']['filename_prefix']}_{self._saved:05d}_.png"
        buffer = io.BytesIO()
        Image.new("RGB", (canvas["width"], canvas["height"])).save(buffer, format="PNG")
        self.files[("output", "", name)] = buffer.getvalue()
        return {"images": [{"filename": name, "subfolder": "", "type": "output"}]}


def _pass(gate: threading.Barrier) -> None:
    try:
        gate.wait(timeout=30)
    except threading.BrokenBarrierError:  # the other server never got a prompt: go on
        pass
