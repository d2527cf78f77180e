"""The pack as ComfyUI sees it: light import, complete node schemas, graceful missing deps."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import PACK_DIR

# Libraries the pack must not import when ComfyUI imports it (each costs from a few hundred
# milliseconds to seconds, or starts network clients): the model families import them inside
# their loaders. torch is not among them: the library uses it at module level throughout, and
# ComfyUI has imported it long before it imports custom nodes, so it costs nothing there.
# (Import time itself is measured, not asserted: bench/pack_import.py.)
HEAVY = ["transformers", "diffusers", "open_clip", "segment_anything", "cv2", "openai", "timm",
         "huggingface_hub", "torchvision", "tokenizers", "safetensors", "peft", "accelerate",
         "groundingdino", "kornia", "scipy", "matplotlib", "sklearn"]
# Everything the pack may import on top of torch and the standard library.
LIGHT = {"numpy", "PIL", "pydantic", "pydantic_core", "annotated_types", "typing_inspection",
         "typing_extensions", "tqdm", "filelock"}


def run_python(code: str, preload_torch: bool = True) -> dict:
    """Run ``code`` in a fresh interpreter (torch preloaded, as in ComfyUI, unless
    ``preload_torch`` is False); it prints JSON."""
    prelude = f"""
import importlib.util, json, sys
{"import torch  # ComfyUI has imported torch long before it imports custom nodes"
 if preload_torch else ""}
def load_pack():
    spec = importlib.util.spec_from_file_location(
        "intenttuner_pack", {str(PACK_DIR / '__init__.py')!r},
        submodule_search_locations=[{str(PACK_DIR)!r}])
    module = importlib.util.module_from_spec(spec)
    sys.modules["intenttuner_pack"] = module
    spec.loader.exec_module(module)
    return module
"""
    out = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                         capture_output=True, text=True, timeout=120, cwd="/")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


_IMPORT_PACK = """
    before = {name.split(".")[0] for name in sys.modules}
    pack = load_pack()
    added = {name.split(".")[0] for name in sys.modules} - before
    print(json.dumps({"nodes": len(pack.NODE_CLASS_MAPPINGS),
                      "added": sorted(m for m in added if m not in sys.stdlib_module_names
                                      and not m.startswith("_") and m != "intenttuner_pack")}))
"""


def test_pack_imports_no_heavy_library():
    result = run_python(_IMPORT_PACK, preload_torch=False)
    assert result["nodes"] >= 6
    assert [m for m in HEAVY if m in result["added"]] == []


def test_pack_adds_only_light_libraries_to_what_comfyui_has_loaded():
    result = run_python(_IMPORT_PACK)
    assert set(result["added"]) - LIGHT == set()


def test_every_node_has_a_complete_explicit_schema(pack, models_root):
    for node_id, cls in pack.NODE_CLASS_MAPPINGS.items():
        assert node_id.startswith("IntentTuner")
        assert cls.CATEGORY.startswith("IntentTuner/")
        assert cls.DESCRIPTION and pack.NODE_DISPLAY_NAME_MAPPINGS[node_id]
        assert callable(getattr(cls(), cls.FUNCTION))
        assert len(cls.OUTPUT_TOOLTIPS) == len(cls.RETURN_TYPES) == len(cls.RETURN_NAMES)
        for kind, section in cls.INPUT_TYPES().items():
            for name, spec in section.items():
                # hidden inputs (the node's id, the prompt) are filled in by ComfyUI, not shown
                assert kind == "hidden" or spec[1].get("tooltip"), \
                    f"{node_id}.{name} has no tooltip"


def test_loader_lists_local_files_then_downloadable_defaults(pack, models_root):
    (models_root / "sams").mkdir()
    (models_root / "sams" / "my_sam.pth").write_bytes(b"x")
    (models_root / "sams" / "notes.txt").write_text("not a model")
    options, extra = pack.NODE_CLASS_MAPPINGS["IntentTunerLoadSegmenter"].INPUT_TYPES()[
        "required"]["model"]
    assert options[0] == "my_sam.pth"
    assert "notes.txt" not in options
    assert {"sam_vit_b_01ec64.pth", "sam_vit_l_0b3195.pth", "sam_vit_h_4b8939.pth"} <= set(options)
    assert extra["default"] == "sam_vit_b_01ec64.pth"


@pytest.mark.parametrize("value", ["sk-abc123def456", "hf_abcdefghijklmnop", "MY KEY", ""])
def test_llm_settings_refuse_a_key_in_the_env_name_widget(pack, value):
    input_error = sys.modules[f"{pack.__name__}.intenttuner.errors"].InputError
    node = pack.NODE_CLASS_MAPPINGS["IntentTunerLLMSettings"]()
    with pytest.raises(input_error, match="NAME of an environment variable"):
        node.make("http://127.0.0.1:8080/v1", "llama", value, 30.0)


def test_missing_optional_package_disables_only_its_nodes():
    result = run_python("""
        class Block:  # makes `import segment_anything` fail as if it were not installed
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "segment_anything":
                    raise ModuleNotFoundError(name)
        sys.meta_path.insert(0, Block())
        importlib.util.find_spec = (lambda f: (lambda name, package=None: None
            if name.split(".")[0] == "segment_anything" else f(name, package)))(
            importlib.util.find_spec)
        pack = load_pack()
        nodes = pack.NODE_CLASS_MAPPINGS
        error = None
        try:
            nodes["IntentTunerLoadSegmenter"]().load("sam_vit_b_01ec64.pth", "auto")
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        print(json.dumps({
            "sam": nodes["IntentTunerLoadSegmenter"].DESCRIPTION,
            "detector": nodes["IntentTunerLoadDetector"].DESCRIPTION,
            "error": error}))
    """)
    assert result["sam"].startswith("UNAVAILABLE") and "segment-anything" in result["sam"]
    assert not result["detector"].startswith("UNAVAILABLE")
    assert result["error"].startswith("MissingDependencyError")
    assert "pip install segment-anything" in result["error"]
