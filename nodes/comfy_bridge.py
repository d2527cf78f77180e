"""The one module that imports ComfyUI (``comfy``, ``folder_paths``, ``server``).

`install()` registers the pack's model folders with ComfyUI, makes `ComfyRuntime` the
library's runtime, so the pipeline's devices, model folders, memory management, progress bars,
Cancel and websocket events all go through ComfyUI, and adds the training monitor's and the
feedback sets' HTTP routes to ComfyUI's server. Without ComfyUI, `install()` does nothing and
the library keeps its plain-torch runtime (``intenttuner.runtime.TorchRuntime``).
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..intenttuner.errors import InputError
from ..intenttuner.runtime import ManagedModel, Progress, TorchRuntime, set_runtime
from ..intenttuner.weights.folders import MODEL_FOLDERS

log = logging.getLogger(__name__)

ROUTES = "/intenttuner/train/"  # the monitor's routes (ComfyUI serves them under /api/ too)
FEEDBACK_ROUTES = "/intenttuner/feedback/"  # feedback sets' (Rate Images' panel)
# The library modules that answer the routes, imported on first use: the pack loads light.
MONITOR_API = "..intenttuner.monitor.api"
FEEDBACK_API = "..intenttuner.reward.api"


def comfy_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("comfy", "folder_paths"))


def install() -> bool:
    """Use ComfyUI for runtime services if this process is ComfyUI; True if it did."""
    if not comfy_available():
        return False
    register_model_folders()
    set_runtime(ComfyRuntime())
    register_routes()
    return True


def executing_context() -> tuple[str, str] | None:
    """(prompt id, node id) of the node ComfyUI is running in this thread; None outside a
    prompt or outside ComfyUI."""
    try:
        from comfy_execution.utils import get_executing_context
    except ImportError:
        return None
    context = get_executing_context()
    return (context.prompt_id, context.node_id) if context is not None else None


def register_routes() -> bool:
    """The training monitor's routes (`intenttuner.monitor.api`) and the feedback sets' routes
    (`intenttuner.reward.api`) on ComfyUI's server; False when no server runs (a script
    booting ComfyUI without one)."""
    from server import PromptServer

    routes = getattr(getattr(PromptServer, "instance", None), "routes", None)
    if routes is None:
        return False
    if any(getattr(route, "path", "").startswith(ROUTES) for route in routes):
        return True  # already there: aiohttp refuses a route twice
    routes.get(ROUTES + "runs")(_handler(lambda api, request, _: api.list_runs()))
    routes.get(ROUTES + "history")(_handler(
        lambda api, request, _: api.run_history(request.query.get("run"))))
    routes.post(ROUTES + "stop")(_handler(lambda api, request, body: api.stop_run(body),
                                          body=True))
    routes.post(ROUTES + "feedback")(_handler(lambda api, request, body: api.mark_sample(body),
                                              body=True))
    routes.get(FEEDBACK_ROUTES + "sets")(_handler(lambda api, request, _: api.list_sets(),
                                                  module=FEEDBACK_API))
    routes.get(FEEDBACK_ROUTES + "set")(_handler(
        lambda api, request, _: api.feedback_set(request.query.get("name")), module=FEEDBACK_API))
    routes.post(FEEDBACK_ROUTES + "mark")(_handler(
        lambda api, request, body: api.mark_image(body), body=True, module=FEEDBACK_API))
    return True


def _handler(call: Callable[[Any, Any, Any], Any], body: bool = False, module: str = MONITOR_API):
    """An aiohttp handler running ``call(api module, request, JSON body or None)``: its result
    as JSON, an InputError as HTTP 400 ``{"error": message}``. ``module``: the library module
    that answers, relative to this package."""
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        api = importlib.import_module(module, __package__)

        try:
            data = await _json_body(request) if body else None
            # The calls read and write run files: off the server's event loop.
            result = await asyncio.to_thread(call, api, request, data)
        except InputError as error:
            return web.json_response({"error": str(error)}, status=400)
        return web.json_response(result)

    return handle


async def _json_body(request) -> Any:
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"The request body must be a JSON object ({error}).") from error


def register_model_folders() -> None:
    """Declare our folders with explicit extensions, keeping paths users added in
    ``extra_model_paths.yaml`` (which ComfyUI loads before custom nodes)."""
    import folder_paths

    for spec in MODEL_FOLDERS.values():
        default = str(Path(folder_paths.models_dir) / spec.name)
        paths, extensions = folder_paths.folder_names_and_paths.get(spec.name, ([], set()))
        if default not in paths:
            paths = [*paths, default]
        wanted = set(spec.extensions) or {""}  # {""} lists nothing but keeps the folder valid
        folder_paths.folder_names_and_paths[spec.name] = (paths, set(extensions) | wanted)


class _Holder(torch.nn.Module):
    """ModelPatcher sets bookkeeping attributes (``device``...) on the module it manages;
    transformers models expose ``device`` as a read-only property, so we give it a plain
    container to own instead."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = inner


class ComfyManagedModel(ManagedModel):
    """A foreign torch module loaded and offloaded by ComfyUI's model manager, like its own."""

    def __init__(self, module: torch.nn.Module, load_device: torch.device,
                 offload_device: torch.device):
        import comfy.model_patcher

        super().__init__(module, load_device, offload_device)
        self.patcher = comfy.model_patcher.ModelPatcher(_Holder(module), load_device,
                                                        offload_device)

    def load(self) -> torch.nn.Module:
        import comfy.model_management as mm

        # Full load: our modules are not built from comfy.ops, so ComfyUI's partial (lowvram)
        # loading cannot cast their weights on the fly.
        mm.load_models_gpu([self.patcher], force_full_load=True)
        return self.module

    def offload(self) -> None:
        self.patcher.detach()


class ComfyRuntime(TorchRuntime):
    name = "comfyui"

    def __init__(self) -> None:
        import folder_paths

        super().__init__(models_dir=folder_paths.models_dir,
                         output_dir=folder_paths.get_output_directory())

    def torch_device(self) -> torch.device:
        import comfy.model_management as mm

        return mm.get_torch_device()

    def intermediate_device(self) -> torch.device:
        import comfy.model_management as mm

        return mm.intermediate_device()

    def offload_device(self) -> torch.device:
        import comfy.model_management as mm

        return mm.unet_offload_device()

    def model_dirs(self, folder: str) -> list[Path]:
        import folder_paths

        spec = MODEL_FOLDERS[folder]
        dirs = [Path(p) for p in folder_paths.get_folder_paths(spec.name)]
        dirs += [Path(folder_paths.models_dir) / alias for alias in spec.aliases]
        return dirs

    def output_dir(self) -> Path:
        import folder_paths

        return Path(folder_paths.get_output_directory())

    def input_dir(self) -> Path:
        import folder_paths

        return Path(folder_paths.get_input_directory())

    def save_ui_images(self, images: list, prefix: str) -> list[dict[str, str]]:
        """Write PNGs to ComfyUI's temp folder, the way its PreviewImage node does."""
        import folder_paths

        temp = folder_paths.get_temp_directory()
        folder, name, counter, subfolder, _ = folder_paths.get_save_image_path(
            f"intenttuner/{prefix}", temp, images[0].width if images else 0,
            images[0].height if images else 0)
        saved = []
        for image in images:
            filename = f"{name}_{counter:05}_.png"
            image.save(Path(folder) / filename, compress_level=1)
            saved.append({"filename": filename, "subfolder": subfolder, "type": "temp"})
            counter += 1
        return saved

    def manage(self, module: torch.nn.Module) -> ManagedModel:
        return ComfyManagedModel(module, self.torch_device(), self.offload_device())

    def free_memory(self) -> None:
        import comfy.model_management as mm

        mm.unload_all_models()
        mm.soft_empty_cache(True)
        super().free_memory()

    def progress(self, total: int | None, desc: str, unit: str = "it") -> Progress:
        import comfy.utils

        bar = comfy.utils.ProgressBar(total or 1)
        # ComfyUI's progress hook raises InterruptProcessingException when Cancel is pressed.
        return Progress(total, desc, unit=unit,
                        host_update=lambda done, whole: bar.update_absolute(done, whole))

    def check_interrupted(self) -> None:
        import comfy.model_management as mm

        mm.throw_exception_if_processing_interrupted()

    def is_cancel(self, exc: BaseException) -> bool:
        """Whether ``exc`` is the user's Cancel (ComfyUI's interrupt) rather than a failure."""
        import comfy.model_management as mm

        return isinstance(exc, (mm.InterruptProcessingException, KeyboardInterrupt))

    def ui_image_exists(self, ref: dict[str, str]) -> bool:
        """Whether the image ``ref`` (a `save_ui_images` descriptor) is still there for the
        frontend's /view (ComfyUI empties its temp folder at every start)."""
        import folder_paths

        base = folder_paths.get_directory_by_type(str(ref.get("type", "")))
        if base is None or not ref.get("filename"):
            return False
        base = Path(base).resolve()
        path = (base / str(ref.get("subfolder", "")) / str(ref["filename"])).resolve()
        return path.is_relative_to(base) and path.is_file()

    def send_event(self, event: str, data: dict[str, Any]) -> None:
        from server import PromptServer

        instance = getattr(PromptServer, "instance", None)  # None when no server runs
        if instance is not None:
            # To the client that queued the running prompt, as ComfyUI's own progress events
            # go (a tab keeps its client id over a reload): another tab's panels, whose node
            # ids may be the same numbers, never take this run's events for theirs. Prompts
            # queued without a client id (the HTTP API alone) reach every client.
            instance.send_sync(event, data, getattr(instance, "client_id", None))


def apply_lora(model: Any, clip: Any, path: Path, strength_model: float,
               strength_clip: float) -> tuple[Any, Any]:
    """``model``/``clip`` (ComfyUI's MODEL and CLIP) patched with the LoRA file at ``path``,
    through the very calls stock LoraLoader makes, so a LoRA that works here works there."""
    import comfy.sd
    import comfy.utils

    tensors = comfy.utils.load_torch_file(str(path), safe_load=True)
    return comfy.sd.load_lora_for_models(model, clip, tensors, strength_model, strength_clip)
