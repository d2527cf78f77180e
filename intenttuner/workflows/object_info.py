"""What a ComfyUI server's ``/object_info`` says about one node type: its inputs, their types and
options, the order the server asks them to be shown in, and its outputs.

``/object_info`` is a dict ``{class_type: {"input": {"required": {...}, "optional": {...},
"hidden": {...}}, "input_order": {...}, "output": [...], "output_name": [...], ...}}``; each input
is ``[type, options]`` where ``type`` is a type name (``"INT"``, ``"MODEL"``, ``"IT_DETECTOR"``, a
comma-separated union, ``"*"``) or, for a combo in the legacy format, the list of its choices
(the v3 format writes ``["COMBO", {"options": [...]}]``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Node types that exist only in the frontend (never in /object_info, never in an API prompt).
FRONTEND_ONLY = {"MarkdownNote", "Note", "Reroute", "PrimitiveNode"}
COMBO = "COMBO"
ANY = "*"
MATCH_TYPE = "COMFY_MATCHTYPE_V3"  # v3 "same type as" sockets: ComfyUI leaves them to the frontend


@dataclass(frozen=True)
class InputSpec:
    """One input of a node type, as /object_info declares it."""

    name: str
    type: str | list  # a type name, or the choices of a legacy-format combo (as ComfyUI keeps it)
    options: dict = field(default_factory=dict)  # the second element: min, max, default, ...
    required: bool = True

    @property
    def kind(self) -> str:
        """The type name, with every combo (legacy list or v3) called ``COMBO``."""
        return COMBO if isinstance(self.type, list) else str(self.type)

    @property
    def choices(self) -> list | None:
        """A combo's allowed values (None for other inputs)."""
        if isinstance(self.type, list):
            return self.type
        if self.type == COMBO:
            return list(self.options.get("options", []))
        return None

    @property
    def force_input(self) -> bool:
        """A widget type declared as a socket only (``forceInput``): never a widget."""
        return bool(self.options.get("forceInput"))

    def default(self) -> Any:
        """The value the frontend gives a new widget of this input (its widget constructors:
        the declared default, else 0 / "" / false / the first choice)."""
        if "default" in self.options:
            return self.options["default"]
        choices = self.choices
        if choices is not None:
            return choices[0] if choices else None
        return {"INT": 0, "FLOAT": 0, "STRING": "", "BOOLEAN": False}.get(self.kind)


@dataclass(frozen=True)
class NodeSpec:
    """A node type: its inputs (hidden ones apart) and outputs."""

    class_type: str
    display_name: str
    inputs: tuple[InputSpec, ...]  # required, then optional, in the order declared
    input_order: dict[str, tuple[str, ...]]  # the server's input_order, when it sends one
    hidden: tuple[str, ...]
    outputs: tuple[str | list, ...]  # output types; a list is a combo output (its choices)
    output_names: tuple[str, ...]
    output_node: bool

    def input(self, name: str) -> InputSpec | None:
        return next((i for i in self.inputs if i.name == name), None)

    def output_type(self, slot: int) -> str | list | None:
        return self.outputs[slot] if 0 <= slot < len(self.outputs) else None

    def output_label(self, slot: int) -> str:
        if 0 <= slot < len(self.output_names):
            return self.output_names[slot]
        return type_name(self.outputs[slot]) if 0 <= slot < len(self.outputs) else str(slot)


def type_name(value: str | list) -> str:
    """How a type reads in a message: combos (option lists) are COMBO."""
    return COMBO if isinstance(value, list) else str(value)


def node_spec(object_info: dict, class_type: str) -> NodeSpec | None:
    """The spec of ``class_type``, or None when the server does not have that node type."""
    info = object_info.get(class_type)
    if not isinstance(info, dict):
        return None
    declared = info.get("input") or {}
    inputs = [_input(name, spec, category == "required")
              for category in ("required", "optional")
              for name, spec in (declared.get(category) or {}).items()]
    outputs = tuple(info.get("output") or ())
    return NodeSpec(
        class_type=class_type,
        display_name=str(info.get("display_name") or class_type),
        inputs=tuple(inputs),
        input_order={k: tuple(v) for k, v in (info.get("input_order") or {}).items()},
        hidden=tuple(declared.get("hidden") or ()),
        outputs=outputs,
        output_names=tuple(info.get("output_name") or (type_name(o) for o in outputs)),
        output_node=bool(info.get("output_node")),
    )


def _input(name: str, declared: Any, required: bool) -> InputSpec:
    if isinstance(declared, (list, tuple)) and declared:
        options = declared[1] if len(declared) > 1 and isinstance(declared[1], dict) else {}
        return InputSpec(name, declared[0], dict(options), required)
    return InputSpec(name, str(declared), {}, required)
