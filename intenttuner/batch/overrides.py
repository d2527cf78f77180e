"""``--set NODE.INPUT=VALUE`` and ``--sweep NODE.INPUT=A,B,C`` on an API-format prompt.

NODE is a node id, a node title (``_meta.title``) or a class type that only one node of the
workflow has, tried in that order; INPUT one of that node's inputs as the server's
/object_info lists them. Values are read by the input's type there: INT and FLOAT numbers
within the input's min/max, BOOLEAN true/false, a COMBO one of its choices, a STRING as
written. A sweep value cannot hold a comma (it separates the values).

The sweeps multiply: every combination is one run, numbered in order (the last sweep varies
fastest), its id naming the swept values (``run-02_KSampler.steps=8``) so a folder per run is
readable, stable from one call to the next and safe as a file name.
"""

from __future__ import annotations

import copy
import itertools
import re
from dataclasses import dataclass

from ..errors import InputError
from ..workflows.object_info import COMBO, InputSpec, node_spec
from ..workflows.values import value_problem

VALUE_TYPES = ("INT", "FLOAT", "BOOLEAN", "STRING", COMBO)  # the widget types of ComfyUI
TRUE, FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
LISTED = 24  # at most this many nodes / choices named in a message


@dataclass(frozen=True)
class Override:
    """One ``--set`` (one value) or ``--sweep`` (several) after checking."""

    key: str  # "NODE.INPUT" as written, the name of the value in results and the summary
    node_id: str
    input: str
    texts: tuple[str, ...]  # the values as written
    values: tuple  # the same, as the input's type wants them


@dataclass(frozen=True)
class RunPlan:
    """One run of the batch: its id, the swept values (as written) and the prompt to send."""

    run_id: str
    values: dict[str, str]
    prompt: dict


def parse_override(text: str, flag: str, prompt: dict, object_info: dict) -> Override:
    """``NODE.INPUT=VALUE[,VALUE...]`` of ``flag`` ("--set" / "--sweep") checked against the
    workflow and the server's node types; `InputError` naming what is wrong otherwise."""
    target, sep, raw = text.partition("=")
    node_name, input_name = split_target(target.strip(), prompt, object_info)
    if not sep or not node_name or not input_name:
        raise InputError(f"{flag} {text!r}: write NODE.INPUT=VALUE (for example "
                         "KSampler.steps=20), NODE being a node id, title or type.")
    where = f"{flag} {text}"
    node_id = find_node(node_name, prompt, where)
    node = prompt[node_id]
    item = input_kind(node, input_name, object_info, where, node_id)
    texts = tuple(v.strip() for v in raw.split(",")) if flag == "--sweep" else (raw,)
    if flag == "--sweep" and (not raw.strip() or "" in texts):
        raise InputError(f"{where}: an empty value; write NODE.INPUT=A,B,C (a value cannot "
                         "hold a comma).")
    if flag == "--sweep" and len(set(texts)) < len(texts):
        raise InputError(f"{where}: a value is given twice; each run would be the same.")
    about = f"input '{input_name}' of node {describe(node_id, node)}"
    values = tuple(coerce(t, item, f"{where}: ", about) for t in texts)
    return Override(f"{node_name}.{input_name}", node_id, input_name, texts, values)


def split_target(target: str, prompt: dict, object_info: dict) -> tuple[str, str]:
    """``NODE.INPUT`` -> (NODE, INPUT). Titles and (v3 dynamic) input names may hold dots too:
    the split is the one where NODE names a node that has INPUT, else where NODE names a node,
    else at the last dot."""
    splits = [(target[:i], target[i + 1:]) for i, c in enumerate(target) if c == "."]
    nodes = [(node, name, _named(node, prompt)) for node, name in splits]
    nodes = [(node, name, ids) for node, name, ids in nodes if ids]
    for node, name, ids in nodes:
        if any(name in _inputs(prompt[i], object_info) for i in ids):
            return node, name
    if nodes:
        return nodes[0][:2]
    return splits[-1] if splits else ("", "")


def _named(name: str, prompt: dict) -> list[str]:
    """The ids of the nodes ``name`` may stand for (an id, a title, a type)."""
    return [i for i, n in prompt.items() if name in (i, n.get("class_type"),
                                                       (n.get("_meta") or {}).get("title"))]


def _inputs(node: dict, object_info: dict) -> set[str]:
    spec = node_spec(object_info, node.get("class_type", ""))
    return {*(i.name for i in (spec.inputs if spec else ())), *(node.get("inputs") or {})}


def find_node(name: str, prompt: dict, where: str) -> str:
    """The id of the node ``name`` stands for: an id, else a unique title, else a unique
    class type."""
    if name in prompt:
        return name
    for what, of in (("title", lambda n: (n.get("_meta") or {}).get("title")),
                     ("type", lambda n: n.get("class_type"))):
        found = [node_id for node_id, node in prompt.items() if of(node) == name]
        if len(found) == 1:
            return found[0]
        if found:
            listed = ", ".join(describe(i, prompt[i]) for i in found)
            raise InputError(f"{where}: {len(found)} nodes have the {what} '{name}': "
                             f"{listed}. Name one by its id (or give it its own title).")
    listed = ", ".join(describe(i, n) for i, n in list(prompt.items())[:LISTED])
    more = ", …" if len(prompt) > LISTED else ""
    raise InputError(f"{where}: the workflow has no node '{name}'. Name a node by its id, "
                     f"its title or its type (when only one node has it): {listed}{more}.")


def describe(node_id: str, node: dict) -> str:
    """``12 (KSampler, 'Sampler A')``; the title only when it differs from the type."""
    kind = node.get("class_type", "?")
    title = (node.get("_meta") or {}).get("title")
    return f"{node_id} ({kind}, '{title}')" if title and title != kind else f"{node_id} ({kind})"


def input_kind(node: dict, name: str, object_info: dict, where: str,
               node_id: str) -> InputSpec:
    """The spec of input ``name`` as the server declares it; `InputError` when the node has no
    such input or it takes a connection, not a value."""
    spec = node_spec(object_info, node.get("class_type", ""))
    declared = {i.name: i for i in spec.inputs} if spec is not None else {}
    given = node.get("inputs") or {}
    if name not in declared and name not in given:
        names = ", ".join(dict.fromkeys([*declared, *given])) or "none"
        raise InputError(f"{where}: node {describe(node_id, node)} has no input '{name}'; its "
                         f"inputs: {names}.")
    found = declared.get(name)
    if found is not None and found.kind in VALUE_TYPES:
        return found
    if name in given and not _is_link(given[name]):
        # a type the server does not list as a widget, holding a plain value: keep its kind
        return InputSpec(name, _kind_of(given[name]))
    widgets = [i.name for i in declared.values() if i.kind in VALUE_TYPES]
    kind = found.kind if found is not None else "linked"
    raise InputError(f"{where}: input '{name}' of node {describe(node_id, node)} is a {kind} "
                     f"connection, not a value. Inputs that take a value: "
                     f"{', '.join(widgets) or 'none'}.")


def coerce(text: str, item: InputSpec, prefix: str, about: str):
    """``text`` as a value of ``item``'s widget type (INT, FLOAT, BOOLEAN, STRING, COMBO), and
    within its range or choices (the checks of `workflows.values`)."""
    if item.kind == "STRING":
        return text
    if item.kind == COMBO:
        choices = item.choices or []
        for choice in choices:
            if str(choice) == text:
                return choice
        listed = ", ".join(str(c) for c in choices[:LISTED])
        more = ", …" if len(choices) > LISTED else ""
        raise InputError(f"{prefix}'{text}' is not a choice of {about}: "
                         f"{listed + more or 'none'}.")
    if item.kind == "BOOLEAN":
        if text.strip().lower() in TRUE + FALSE:
            return text.strip().lower() in TRUE
        raise InputError(f"{prefix}'{text}' is not true or false ({about} is BOOLEAN).")
    number = _number(text, item.kind)
    if number is None:
        word = "a whole number" if item.kind == "INT" else "a number"
        raise InputError(f"{prefix}'{text}' is not {word} ({about} is {item.kind}).")
    problem = value_problem(item, number)
    if problem:
        raise InputError(f"{prefix}{problem} ({about}).")
    return number


def _number(text: str, kind: str) -> int | float | None:
    try:
        value = int(text) if kind == "INT" else float(text)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None  # no NaN, inf


def _is_link(value) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[1], int)


def _kind_of(value) -> str:
    if isinstance(value, bool):
        return "BOOLEAN"
    return "INT" if isinstance(value, int) else "FLOAT" if isinstance(value, float) else "STRING"


def expand(prompt: dict, sets: list[Override], sweeps: list[Override]) -> list[RunPlan]:
    """Every run of the batch: the ``sets`` applied to all, one run per combination of the
    ``sweeps`` values (one run without sweeps)."""
    seen: set[tuple[str, str]] = set()
    for override in (*sets, *sweeps):
        target = (override.node_id, override.input)
        if target in seen:
            raise InputError(f"{override.key} is set twice (by --set or --sweep): give each "
                             "input once.")
        seen.add(target)
    base = copy.deepcopy(prompt)
    for override in sets:
        base[override.node_id]["inputs"][override.input] = override.values[0]
    combos = list(itertools.product(*(range(len(s.values)) for s in sweeps)))
    digits = max(2, len(str(len(combos))))
    plans = []
    for number, combo in enumerate(combos, start=1):
        run = copy.deepcopy(base)
        values = {}
        for sweep, k in zip(sweeps, combo, strict=True):
            run[sweep.node_id]["inputs"][sweep.input] = sweep.values[k]
            values[sweep.key] = sweep.texts[k]
        plans.append(RunPlan(run_id(number, digits, values), values, run))
    return plans


def run_id(number: int, digits: int, values: dict[str, str]) -> str:
    """``run-03_KSampler.steps=8_cfg=7.5``: filesystem-safe, at most ~120 characters."""
    parts = [f"run-{number:0{digits}d}"]
    parts += [f"{_safe(key, 40)}={_safe(text, 30)}" for key, text in values.items()]
    return "_".join(parts)[:120].rstrip("_-.")


def _safe(text: str, length: int) -> str:
    return re.sub(r"[^A-Za-z0-9.+=-]+", "-", text).strip("-.")[:length] or "x"
