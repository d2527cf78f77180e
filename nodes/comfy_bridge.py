"""The one module that imports ComfyUI (``comfy``, ``folder_paths``, ``server``).

`install()` registers the pack's model folders with ComfyUI and makes `ComfyRuntime` the
library's runtime, so the pipeline's devices, model folders, memory management, progress bars,
Cancel and websocket events all go through ComfyUI. Without ComfyUI, `install()` does nothing
and the library keeps its plain-torch runtime (``intenttuner.runtime.TorchRuntime``).
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

import torch

from ..intenttuner.runtime import ManagedModel, Progress, TorchRuntime, set_runtime
from ..intenttuner.weights.folders import MODEL_FOLDERS

log = logging.getLogger(__name__)


def comfy_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("comfy", "folder_paths"))


def install() -> bool:
    """Use ComfyUI for runtime services if this process is ComfyUI; True if it did."""
    if not comfy_available():
        return False
    register_model_folders()
    set_runtime(ComfyRuntime())
    return True


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

    def send_event(self, event: str, data: dict[str, Any]) -> None:
        from server import PromptServer

        instance = getattr(PromptServer, "instance", None)  # None when no server runs
        if instance is not None:
            instance.send_sync(event, data)


def apply_lora(model: Any, clip: Any, path: Path, strength_model: float,
               strength_clip: float) -> tuple[Any, Any]:
    """``model``/``clip`` (ComfyUI's MODEL and CLIP) patched with the LoRA file at ``path``,
    through the very calls stock LoraLoader makes, so a LoRA that works here works there."""
    import comfy.sd
    import comfy.utils

    tensors = comfy.utils.load_torch_file(str(path), safe_load=True)
    return comfy.sd.load_lora_for_models(model, clip, tensors, strength_model, strength_clip)
