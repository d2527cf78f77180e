"""The import contract: which code may import what, and how large a module may grow.

Every ``.py`` file of the repository is read with ``ast`` (nothing is imported), including
imports inside functions and ``TYPE_CHECKING`` blocks; relative imports are resolved to absolute
module names, with the repository root as the (nameless) package ComfyUI loads the pack as, so
``from ..intenttuner.runtime import X`` in ``nodes/`` is ``intenttuner.runtime.X``.

The rules are data: `LAYERS` (lowest first; a module may import its own layer and the layers
before it) and `RULES` (one row per constraint, the layer order among them). To add a module,
give it a layer; to add a rule, add a row. The checker itself is tested on synthetic trees at
the end of this file, so a rule that can no longer fail would be noticed.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_MODULE_LINES = 400  # STYLE.md: one concern per module, 100-400 lines
SKIPPED_DIRS = {".venv", "node_modules", "__pycache__"}

# Layers of the library, lowest first; a module belongs to the layer of its longest matching
# prefix (so ``intenttuner.weights.folders`` is core while the rest of ``weights`` is not).
# Stages that do not exist yet are declared so the rules hold the day they land.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # Leaves: errors, image conversion, fonts, LLM settings, the package itself, and the table
    # of model folders (plain data, read by the runtime).
    ("core", ("intenttuner", "intenttuner.errors", "intenttuner.imageio", "intenttuner.drawing",
              "intenttuner.llm", "intenttuner.llm_chat", "intenttuner.weights.folders")),
    ("runtime", ("intenttuner.runtime",)),  # the host's services: devices, folders, progress
    ("weights", ("intenttuner.weights",)),  # manifest, locating, downloading, safe loading
    ("families", ("intenttuner.families",)),  # the model registry, loaders, model wrappers
    ("loading", ("intenttuner.loading",)),  # widget value -> loaded model, through the registry
    # Pipeline stages, in the order the data flows.
    ("intent", ("intenttuner.intent",)),
    ("detection", ("intenttuner.detection",)),
    ("augment", ("intenttuner.augment",)),
    ("dataset", ("intenttuner.dataset",)),
    ("captions", ("intenttuner.captions",)),
    ("evaluation", ("intenttuner.evaluation",)),
    # Rewrites prompts for the model, keeping the intent; scored with the evaluation's models.
    ("prompt_adapt", ("intenttuner.prompt_adapt",)),
    ("training", ("intenttuner.training",)),
    ("monitor", ("intenttuner.monitor",)),  # observes training runs, scores them by intent
    # Learns from people's marks: feedback sets, the reward model, reward-weighted fine-tuning.
    ("reward", ("intenttuner.reward",)),
    ("examples", ("intenttuner.examples",)),  # the shipped example data, drawn procedurally
    ("jobs", ("intenttuner.jobs",)),  # the whole pipeline headless, stage after stage
    ("workflows", ("intenttuner.workflows",)),  # saved ComfyUI workflows: check, convert to API
    ("batch", ("intenttuner.batch",)),  # runs saved workflows on ComfyUI servers, sweeps
    # Test tooling above everything it builds models of; no stage may depend on it.
    ("tiny", ("intenttuner.tiny",)),
    ("app", ("intenttuner.smoke", "intenttuner.__main__", "intenttuner.cli_common",
             "intenttuner.cli_evaluate", "intenttuner.cli_run",
             "intenttuner.cli_batch")),  # entry points
)
LAYER_NAMES = tuple(name for name, _ in LAYERS)
HOST = ("comfy*", "folder_paths", "server", "execution")  # ComfyUI's own modules


@dataclass(frozen=True)
class Rule:
    """Modules matching ``sources`` must not import modules matching ``forbidden``.

    Patterns: ``"a.b"`` is module ``a.b`` and everything under it; ``"comfy*"`` is every
    top-level package whose name starts with ``comfy``; ``"layer:x"`` is every module of layer
    ``x`` (see `LAYERS`).
    """

    id: str
    sources: tuple[str, ...]
    forbidden: tuple[str, ...]
    why: str
    exempt: tuple[str, ...] = ()  # source modules the rule does not apply to


def _layer_rules() -> list[Rule]:
    return [Rule(f"{name}-imports-no-later-layer", (f"layer:{name}",),
                 tuple(f"layer:{later}" for later in LAYER_NAMES[i + 1:]),
                 f"layers depend downwards only: {' < '.join(LAYER_NAMES)}")
            for i, name in enumerate(LAYER_NAMES[:-1])]


RULES: tuple[Rule, ...] = (
    Rule("library-never-imports-the-host", ("intenttuner",), (*HOST, "nodes"),
         "the library runs without ComfyUI; nodes/ adapts it, never the reverse"),
    Rule("only-the-bridge-imports-comfyui", ("nodes",), HOST,
         "node classes stay thin adapters; ComfyUI is reached through nodes/comfy_bridge.py",
         exempt=("nodes.comfy_bridge",)),
    Rule("families-never-import-tiny", ("intenttuner.families",), ("intenttuner.tiny",),
         "tiny builders depend on the registry (intenttuner.tiny.TINY_BUILDERS), never the "
         "reverse"),
    Rule("evaluation-never-imports-training", ("intenttuner.evaluation",),
         ("intenttuner.training",),
         "evaluation judges weights without depending on how they were trained"),
    *_layer_rules(),
)


# --- the checker ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Import:
    file: str  # path relative to the scanned root, '/'-separated
    line: int
    module: str  # the importing module
    target: str  # absolute name: ``a.b`` for ``import a.b`` and for ``from a import b``
    name: str | None  # for ``from a import b``: ``b``


def module_name(relative: Path) -> str:
    """``intenttuner/families/base.py`` -> ``intenttuner.families.base``; a package's
    ``__init__.py`` is the package; the root ``__init__.py`` is ``""``."""
    parts = list(relative.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    """The absolute name of ``from <level dots><name> import ...`` written in ``module``."""
    if level == 0:
        return name or ""
    package = module.split(".") if module else []
    if not is_package:
        package = package[:-1]
    if level - 1 > len(package):
        raise ValueError(f"relative import beyond the top-level package in {module or '<root>'}")
    base = package[:len(package) - (level - 1)]
    return ".".join([*base, *([name] if name else [])])


def read_imports(source: str, module: str, is_package: bool, file: str) -> list[Import]:
    """Every import statement of ``source``, at any depth, as absolute names."""
    found = []
    for node in ast.walk(ast.parse(source, filename=file)):
        if isinstance(node, ast.Import):
            found += [Import(file, node.lineno, module, alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = resolve(module, is_package, node.level, node.module)
            if base == "__future__":
                continue
            for alias in node.names:
                target = base if alias.name == "*" else ".".join(filter(None, (base, alias.name)))
                found.append(Import(file, node.lineno, module, target, alias.name))
    return sorted(found, key=lambda i: i.line)


def python_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py")
                  if not any(part in SKIPPED_DIRS or part.startswith(".")
                             for part in p.relative_to(root).parts[:-1]))


def scan(root: Path) -> list[Import]:
    imports = []
    for path in python_files(root):
        relative = path.relative_to(root)
        imports += read_imports(path.read_text(encoding="utf-8"), module_name(relative),
                                path.name == "__init__.py", relative.as_posix())
    return imports


@lru_cache(maxsize=1)
def repo_imports() -> tuple[Import, ...]:
    return tuple(scan(ROOT))


def layer_of(module: str) -> str | None:
    """The layer of the longest `LAYERS` prefix ``module`` falls under, or None."""
    best, layer = -1, None
    for name, prefixes in LAYERS:
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, layer = len(prefix), name
    return layer


def matches(module: str, pattern: str) -> bool:
    if pattern.startswith("layer:"):
        return layer_of(module) == pattern.removeprefix("layer:")
    if pattern.endswith("*"):
        return module.split(".")[0].startswith(pattern[:-1])
    return module == pattern or module.startswith(pattern + ".")


def violations(rule: Rule, imports: Iterable[Import]) -> list[str]:
    """One line per import that breaks ``rule``: where it is, what it imports and why not."""
    return [f"{i.file}:{i.line}: {i.module} imports {i.target} (rule {rule.id}: {rule.why})"
            for i in imports
            if any(matches(i.module, s) for s in rule.sources)
            and not any(matches(i.module, e) for e in rule.exempt)
            and any(matches(i.target, f) for f in rule.forbidden)]


def private_imports(imports: Iterable[Import], scopes: tuple[str, ...]) -> list[str]:
    """``from a import _b`` in a module under ``scopes`` where ``a`` is another module."""
    return [f"{i.file}:{i.line}: {i.module} imports private {i.target}; make it public "
            "(no leading underscore) or keep it in its module"
            for i in imports
            if any(matches(i.module, s) for s in scopes)
            and i.name and i.name.startswith("_") and not i.name.startswith("__")]


# --- the contract, on this repository --------------------------------------------------------


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_import_rule_holds(rule):
    found = violations(rule, repo_imports())
    assert not found, "\n".join(found)


def test_no_private_name_is_imported_across_modules():
    found = private_imports(repo_imports(), ("intenttuner", "nodes"))
    assert not found, "\n".join(found)


def test_every_library_module_has_a_declared_layer():
    modules = {module_name(p.relative_to(ROOT)) for p in python_files(ROOT / "intenttuner")}
    declared = [p for _, prefixes in LAYERS for p in prefixes]
    # The bare package prefix only classifies the package itself; anything else needs its own.
    unplaced = sorted(m for m in modules if m != "intenttuner" and not any(
        m == p or m.startswith(p + ".") for p in declared if p != "intenttuner"))
    assert not unplaced, f"add these modules to a layer in LAYERS: {unplaced}"
    assert len(declared) == len(set(declared)), "a prefix is declared in two layers"


@pytest.mark.parametrize("path", python_files(ROOT / "intenttuner"),
                         ids=lambda p: p.relative_to(ROOT).as_posix())
def test_library_module_is_at_most_400_lines(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, (
        f"{path.relative_to(ROOT)} has {lines} lines (at most {MAX_MODULE_LINES}); split it into "
        "modules of one concern each")


# --- the checker on synthetic sources (so the rules above can fail) ---------------------------


def _imports(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    return [(i.line, i.target) for i in read_imports(source, module, is_package, "x.py")]


def test_imports_are_found_at_any_depth_and_resolved():
    source = ("import os.path\n"
              "from . import base\n"
              "def load():\n"
              "    from ..tiny import detector as d\n"
              "    class K:\n"
              "        import comfy.model_management as mm\n"
              "from .gdino_convert import *\n")
    assert _imports(source, "intenttuner.families.detector") == [
        (1, "os.path"), (2, "intenttuner.families.base"), (4, "intenttuner.tiny.detector"),
        (6, "comfy.model_management"), (7, "intenttuner.families.gdino_convert")]


@pytest.mark.parametrize(("module", "is_package", "source", "target"), [
    ("intenttuner.families", True, "from . import base", "intenttuner.families.base"),
    ("intenttuner.families.base", False, "from . import guess", "intenttuner.families.guess"),
    ("nodes.loaders", False, "from ..intenttuner.loading import load_model",
     "intenttuner.loading.load_model"),
    ("", True, "from .nodes import NODES", "nodes.NODES"),  # the pack's root __init__.py
])
def test_relative_imports_resolve_against_the_package(module, is_package, source, target):
    assert _imports(source, module, is_package) == [(1, target)]


def test_relative_import_beyond_the_root_is_an_error():
    with pytest.raises(ValueError, match="beyond the top-level package"):
        _imports("from ... import x", "nodes.loaders")


def test_layers_use_the_longest_prefix():
    assert layer_of("intenttuner.weights.folders") == "core"
    assert layer_of("intenttuner.weights.locate") == "weights"
    assert layer_of("intenttuner.families.detector") == "families"
    assert layer_of("intenttuner.training.loop") == "training"
    assert layer_of("nodes.loaders") is None


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_checker_reports_each_violation_with_file_line_and_import(tmp_path):
    _write(tmp_path, {
        "intenttuner/__init__.py": "",
        "intenttuner/families/__init__.py": "from . import bad\n",
        "intenttuner/families/bad.py": "import torch\n\ndef f():\n    from ..tiny import build\n",
        "intenttuner/weights/folders.py": "from .locate import find\n",  # core -> weights
        "intenttuner/weights/locate.py": "from .folders import MODEL_FOLDERS\n",  # fine
        "intenttuner/evaluation/metrics.py": "x = 1\nfrom ..training import loop\n",
        "intenttuner/detection/run.py": "from intenttuner.jobs import queue\n",
        "intenttuner/imageio.py": "from ..nodes import types\nimport folder_paths\n",
        "nodes/__init__.py": "from . import comfy_bridge\n",
        "nodes/comfy_bridge.py": "import comfy.utils\nimport folder_paths\n",  # exempt
        "nodes/loaders.py": "def f():\n    import comfy_extras.nodes_train\n",
    })
    found = sorted(line for rule in RULES for line in violations(rule, scan(tmp_path)))
    where = sorted({line.split(" (rule ")[0] for line in found})
    assert where == [
        "intenttuner/detection/run.py:1: intenttuner.detection.run imports intenttuner.jobs.queue",
        "intenttuner/evaluation/metrics.py:2: intenttuner.evaluation.metrics imports "
        "intenttuner.training.loop",
        "intenttuner/families/bad.py:4: intenttuner.families.bad imports intenttuner.tiny.build",
        "intenttuner/imageio.py:1: intenttuner.imageio imports nodes.types",
        "intenttuner/imageio.py:2: intenttuner.imageio imports folder_paths",
        "intenttuner/weights/folders.py:1: intenttuner.weights.folders imports "
        "intenttuner.weights.locate.find",
        "nodes/loaders.py:2: nodes.loaders imports comfy_extras.nodes_train",
    ]
    rules = {line.split(" (rule ")[1].split(":")[0] for line in found}
    assert {"families-never-import-tiny", "evaluation-never-imports-training",
            "library-never-imports-the-host", "only-the-bridge-imports-comfyui",
            "core-imports-no-later-layer", "detection-imports-no-later-layer"} <= rules


def test_checker_reports_private_names_imported_from_other_modules(tmp_path):
    _write(tmp_path, {"intenttuner/tiny/x.py": "from ..families.y import _helper, public, __all__\n"
                      "from . import _z\n"})
    found = private_imports(scan(tmp_path), ("intenttuner",))
    assert [line.split(";")[0] for line in found] == [
        "intenttuner/tiny/x.py:1: intenttuner.tiny.x imports private "
        "intenttuner.families.y._helper",
        "intenttuner/tiny/x.py:2: intenttuner.tiny.x imports private intenttuner.tiny._z"]
