# ruff: noqa: I001
"""Boot a real ComfyUI in this process (no HTTP server) with the pack loaded through ComfyUI's
own custom-node loader, and check what only a real ComfyUI can show: loaders run by the prompt
executor, foreign models loaded by ComfyUI's model manager, download progress through ComfyUI's
progress hook, Cancel mid-download, and freeing memory. Prints one JSON line.

Run by tests/test_comfyui_integration.py with ComfyUI's Python:
    python comfyui_inprocess.py <comfyui checkout> <base directory>
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHECKOUT, BASE = sys.argv[1], sys.argv[2]
sys.path.insert(0, CHECKOUT)
sys.argv = [sys.argv[0], "--cpu", "--base-directory", BASE]

# The order below is ComfyUI's own (main.py): utils.extra_config before comfy.model_management.
import comfy.options  # noqa: E402

comfy.options.enable_args_parsing()
import utils.extra_config  # noqa: E402,F401,I001
import comfy.model_management as mm  # noqa: E402
import comfy.utils  # noqa: E402
import execution  # noqa: E402
import nodes  # noqa: E402

PROGRESS: list[tuple[int, int]] = []


def progress_hook(value, total, preview, prompt_id=None, node_id=None):
    # What ComfyUI's main.py hook does: report, and raise when Cancel was pressed.
    PROGRESS.append((value, total))
    mm.throw_exception_if_processing_interrupted()


class ServerStandIn:
    client_id = None
    last_node_id = None
    last_prompt_id = None
    events: list = []

    def send_sync(self, event, data, sid=None):
        self.events.append((event, data))


def load_pack():
    comfy.utils.set_progress_bar_global_hook(progress_hook)
    asyncio.run(nodes.init_extra_nodes(init_custom_nodes=True, init_api_nodes=False))
    name = next(n for n, m in sys.modules.items()
                if n.endswith("ComfyUI-IntentTuner") and hasattr(m, "NODE_CLASS_MAPPINGS"))
    return name, sys.modules[name]


def check_loaders(pack_name: str) -> dict:
    families = importlib.import_module(pack_name + ".intenttuner.families").FAMILIES
    tiny_builders = importlib.import_module(pack_name + ".intenttuner.tiny").TINY_BUILDERS
    runtime = importlib.import_module(pack_name + ".intenttuner.runtime").get_runtime()
    node_for = {"detector": "IntentTunerLoadDetector", "segmenter": "IntentTunerLoadSegmenter",
                "image_encoder": "IntentTunerLoadImageEncoder",
                "captioner": "IntentTunerLoadCaptioner", "base_model": "IntentTunerLoadBaseModel",
                "inpainter": "IntentTunerLoadInpainter", "local_llm": "IntentTunerLoadLocalLLM",
                "identity_encoder": "IntentTunerLoadIdentityEncoder",
                "aesthetic": "IntentTunerLoadQualityScorer",
                "prompt_adapter": "IntentTunerLoadPromptAdapter",
                "reward_model": "IntentTunerLoadRewardModel"}
    executor = execution.PromptExecutor(ServerStandIn(), cache_args={"lru": 0, "ram": 0})
    results = {}
    for i, (name, family) in enumerate(families.items()):
        folder = runtime.download_dir(family.folder)
        path = tiny_builders[name](folder)
        widget = path.relative_to(folder).as_posix()
        node_id = str(i + 1)
        prompt, inputs, args = {}, {"model": widget, "precision": "auto"}, (widget, "auto")
        if name == "aesthetic":  # the quality scorer takes the CLIP encoder it scores with
            clip_folder = runtime.download_dir(families["image_encoder"].folder)
            clip = tiny_builders["image_encoder"](clip_folder).relative_to(clip_folder).as_posix()
            prompt["100"] = {"class_type": "IntentTunerLoadImageEncoder",
                             "inputs": {"model": clip, "precision": "auto"}}
            inputs = {"model": widget, "clip": ["100", 0]}
            args = (widget, nodes.NODE_CLASS_MAPPINGS["IntentTunerLoadImageEncoder"]().load(
                clip, "auto")[0])
        if name == "reward_model":  # trained here, no precision: the file names its encoder
            inputs, args = {"model": widget}, (widget,)
        prompt[node_id] = {"class_type": node_for[name], "inputs": inputs}
        executor.execute(prompt, f"prompt-{name}", {}, [node_id])
        model = nodes.NODE_CLASS_MAPPINGS[node_for[name]]().load(*args)[0]
        if name == "aesthetic":
            model = model.predictor  # the family's own model, inside the scorer the node makes
        output = family.exercise(model)
        # current_loaded_models lists what load_models_gpu loaded: our wrapper (_Holder) there
        # means ComfyUI's model manager loaded the model to run it. Only type names are kept:
        # holding the modules here would itself keep them alive.
        holders = [type(lm.model.model).__name__ for lm in mm.current_loaded_models if lm.model]
        results[name] = {
            "ok": executor.success,
            "listed": widget in nodes.NODE_CLASS_MAPPINGS[node_for[name]].INPUT_TYPES()[
                "required"]["model"][0],
            "output": output,
            "loaded_by_comfyui_model_manager": "_Holder" in holders,
        }
    results["runtime"] = runtime.name
    return results


class SlowFile(BaseHTTPRequestHandler):
    """Serves DATA in small chunks with pauses, so a download takes a few seconds."""

    DATA = os.urandom(8 << 20)

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self._headers()

    def do_GET(self):
        self._headers()
        try:
            for start in range(0, len(self.DATA), 256 << 10):
                self.wfile.write(self.DATA[start:start + (256 << 10)])
                time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client cancelled

    def _headers(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.DATA)))
        self.end_headers()


def check_download_and_cancel(pack_name: str) -> tuple[dict, dict]:
    download = importlib.import_module(pack_name + ".intenttuner.weights.download")
    manifest = importlib.import_module(pack_name + ".intenttuner.weights.manifest")
    runtime = importlib.import_module(pack_name + ".intenttuner.runtime").get_runtime()
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowFile)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/sam.pth"
    sha = hashlib.sha256(SlowFile.DATA).hexdigest()

    def entry(target):
        file = manifest.WeightFile(name=target, size=len(SlowFile.DATA), sha256=sha, url=url)
        return manifest.WeightEntry(id=target, family="segmenter", default=False, title=target,
                                    folder="sams", target=target, files=(file,), licence="MIT")

    PROGRESS.clear()
    server_module = importlib.import_module("server")
    server_module.PromptServer.instance = ServerStandIn()  # collects what send_sync sends
    path = download.ensure_entry(entry("downloaded.pth"))
    done = {"progress_events": len(PROGRESS), "file_ok": path.read_bytes() == SlowFile.DATA,
            "in_comfy_models_dir": str(path).startswith(BASE),
            "websocket_events": [(e, d["state"]) for e, d in ServerStandIn.events
                                 if e.startswith("intenttuner.")]}

    threading.Timer(0.6, nodes.interrupt_processing, args=(True,)).start()
    interrupted = False
    try:
        download.ensure_entry(entry("cancelled.pth"))
    except mm.InterruptProcessingException:
        interrupted = True
    finally:
        nodes.interrupt_processing(False)
    part = runtime.download_dir("sams") / "cancelled.pth.part"
    cancel = {"interrupted": interrupted, "part_kept": part.is_file() and
              0 < part.stat().st_size < len(SlowFile.DATA)}
    server.shutdown()
    return done, cancel


def check_detection_graph(pack_name: str) -> dict:
    """Load Image -> Intent Parse -> Concept Detect (with SAM) -> Reference Filter, executed by
    ComfyUI's own executor with image lists, as a user's graph would run."""
    from PIL import Image

    families = importlib.import_module(pack_name + ".intenttuner.families").FAMILIES
    tiny_builders = importlib.import_module(pack_name + ".intenttuner.tiny").TINY_BUILDERS
    runtime = importlib.import_module(pack_name + ".intenttuner.runtime").get_runtime()
    names = {}
    for family in ("detector", "segmenter", "image_encoder"):
        folder = runtime.download_dir(families[family].folder)
        names[family] = tiny_builders[family](folder).relative_to(folder).as_posix()
    (runtime.input_dir()).mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (96, 64), (200, 40, 40)).save(runtime.input_dir() / "scene.png")
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "scene.png"}},
        "2": {"class_type": "IntentTunerIntentParse", "inputs": {
            "description": "trigger: x. Keep the jacket [1]. Remove the hat.",
            "on_unplaced": "error", "reference_boxes": "[[10, 10, 60, 50]]",
            "reference_1": ["1", 0], "if_llm_fails": "error"}},
        "3": {"class_type": "IntentTunerLoadDetector",
              "inputs": {"model": names["detector"], "precision": "auto"}},
        "4": {"class_type": "IntentTunerLoadSegmenter",
              "inputs": {"model": names["segmenter"], "precision": "auto"}},
        "5": {"class_type": "IntentTunerLoadImageEncoder",
              "inputs": {"model": names["image_encoder"], "precision": "auto"}},
        "6": {"class_type": "IntentTunerConceptDetect", "inputs": {
            "images": ["1", 0], "intent": ["2", 0], "detector": ["3", 0],
            "segmenter": ["4", 0], "box_threshold": 0.0, "text_threshold": 0.0}},
        "7": {"class_type": "IntentTunerRefFilter", "inputs": {
            "images": ["1", 0], "detections": ["6", 0], "intent": ["2", 0],
            "image_encoder": ["5", 0], "threshold": 0.5, "top_k": 1}},
    }
    executor = execution.PromptExecutor(ServerStandIn(), cache_args={"lru": 0, "ram": 0})
    executor.execute(prompt, "prompt-detection", {}, ["6", "7"])
    outputs = executor.history_result["outputs"] if executor.success else {}
    errors = [m for m in executor.status_messages if m[0] == "execution_error"]
    return {"ok": executor.success, "error": str(errors[-1][1].get("exception_message"))
            if errors else "",
            "detect_text": outputs.get("6", {}).get("text", [""])[0],
            "filter_text": outputs.get("7", {}).get("text", [""])[0],
            "previews": len(outputs.get("7", {}).get("images", []))}


def main() -> None:
    pack_name, _pack = load_pack()
    result = {"loaders": check_loaders(pack_name)}
    result["detection"] = check_detection_graph(pack_name)
    result["runtime"] = result["loaders"].pop("runtime")
    result["download"], result["cancel"] = check_download_and_cancel(pack_name)
    runtime = importlib.import_module(pack_name + ".intenttuner.runtime").get_runtime()
    runtime.free_memory()
    result["free_memory"] = {"loaded_models_after": len(mm.current_loaded_models)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
