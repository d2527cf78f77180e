"""UI-format workflow -> API prompt, the way ComfyUI's frontend queues one.

Mirrors ``graphToPrompt`` and ``ExecutableNodeDTO.resolveInput`` of the frontend bundled with
ComfyUI 0.8 (comfyui-frontend-package 1.35):

* every node that is not frontend-only, muted (mode 2) or bypassed (mode 4) becomes
  ``{"inputs", "class_type", "_meta": {"title"}}``;
* saved widget values go to the inputs :func:`~intenttuner.workflows.widgets.widget_layout`
  names (control-after-generate and upload-button values are dropped; missing trailing values
  take the input's default, as a freshly made widget would); list values are wrapped as
  ``{"__value__": [...]}`` so the server does not read them as links;
* a connected input becomes ``[origin id, origin slot]``, resolved through Reroute nodes and
  through bypassed nodes (their first input of the same type is passed on); a widget input fed
  by a PrimitiveNode takes the primitive's value;
* inputs connected to a node that is not in the prompt (muted) are removed.

Not done (the frontend does them at queue time, with its own state): dynamic prompts
(``{a|b}`` choices are sent as written), ``%date%`` / ``%Node.widget%`` replacements in
filename prefixes, and expanding subgraphs or group nodes (reported as problems).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from intenttuner.workflows.graph import (
    BYPASSED,
    MUTED,
    UiGraph,
    is_group_node,
    node_inputs,
    node_mode,
    node_outputs,
    node_type,
)
from intenttuner.workflows.object_info import FRONTEND_ONLY, NodeSpec, node_spec
from intenttuner.workflows.packs import not_installed
from intenttuner.workflows.problems import Problem, WorkflowError
from intenttuner.workflows.sockets import litegraph_valid
from intenttuner.workflows.widgets import UnsupportedLayout, widget_layout

UNPACK_HINT = "unpack it in ComfyUI (right-click → Unpack Subgraph / Convert to nodes) and save"


@dataclass
class Conversion:
    """An API prompt and what converting it found."""

    prompt: dict = field(default_factory=dict)
    errors: list[Problem] = field(default_factory=list)  # it cannot be converted as it is
    warnings: list[Problem] = field(default_factory=list)  # the frontend would go on regardless
    # (node id, input) -> why its connection was removed (None: reported elsewhere already)
    dropped: dict[tuple[str, str], str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class _Origin:
    node_id: str
    slot: int


@dataclass(frozen=True)
class _Value:
    value: object


def ui_to_api(workflow: dict, object_info: dict) -> dict:
    """The API prompt ComfyUI's frontend would queue for ``workflow``, with the node types of the
    server whose ``/object_info`` is given. Raises WorkflowError listing every node it cannot
    convert (types not installed, broken links, subgraphs)."""
    conversion = convert(workflow, object_info)
    if conversion.errors:
        raise WorkflowError(conversion.errors)
    return conversion.prompt


def convert(workflow: dict, object_info: dict) -> Conversion:
    """:func:`ui_to_api` without raising: the prompt and every problem found on the way."""
    return _Converter(workflow, object_info).run()


def wrap(value: object) -> object:
    """A widget value as the prompt carries it (lists would read as links)."""
    return {"__value__": value} if isinstance(value, list) else value


class _Converter:
    def __init__(self, workflow: dict, object_info: dict):
        self.graph = UiGraph(workflow)
        self.object_info = object_info
        self.out = Conversion()

    def run(self) -> Conversion:
        for node_id, node in self.graph.nodes.items():
            kind = node_type(node)
            if kind in FRONTEND_ONLY:
                continue
            active = node_mode(node) not in (MUTED, BYPASSED)
            spec = self._spec(node_id, node, active)
            if spec is not None and active:
                self.out.prompt[node_id] = {
                    "inputs": self._inputs(node_id, node, spec),
                    "class_type": kind,
                    "_meta": {"title": str(node.get("title") or spec.display_name)},
                }
        self._drop_links_to_missing_nodes()
        return self.out

    def _spec(self, node_id: str, node: dict, active: bool) -> NodeSpec | None:
        """The node's spec; a node that cannot be converted is an error when it would run, a
        warning when it is muted or bypassed (the frontend skips those)."""
        kind = node_type(node)
        report = self.out.errors if active else self.out.warnings
        if kind in self.graph.subgraph_ids:
            report.append(self._problem(node_id, node, None,
                                        "is a subgraph, which is not expanded here — "
                                        f"{UNPACK_HINT}"))
            return None
        if is_group_node(node):
            report.append(self._problem(node_id, node, None,
                                        "is a group node, which is not expanded here — "
                                        f"{UNPACK_HINT}"))
            return None
        spec = node_spec(self.object_info, kind)
        if spec is None:
            report.append(self._problem(node_id, node, None, not_installed(kind)))
        return spec

    def _inputs(self, node_id: str, node: dict, spec: NodeSpec) -> dict:
        inputs = self._widget_values(node_id, node, spec)
        for index, item in enumerate(node_inputs(node)):
            if item.get("link") is None:
                continue
            name = str(item.get("name"))
            resolved = self._resolve_input(node_id, node, index, set())
            if isinstance(resolved, _Value):
                inputs[name] = wrap(resolved.value)
            elif isinstance(resolved, _Origin):
                inputs[name] = [resolved.node_id, resolved.slot]
        return inputs

    def _widget_values(self, node_id: str, node: dict, spec: NodeSpec) -> dict:
        try:
            layout = widget_layout(spec)
        except UnsupportedLayout as exc:
            self.out.errors.append(self._problem(
                node_id, node, None, f"has inputs the frontend builds as it runs ({exc}) — "
                "export the workflow with Workflow → Export (API) and use that file"))
            return {}
        saved = node.get("widgets_values")
        if isinstance(saved, dict):  # some packs save {widget name: value}
            return {n: wrap(saved[n]) for n in layout if n is not None and n in saved}
        saved = saved if isinstance(saved, list) else []
        if len(saved) > len(layout):
            self.out.warnings.append(self._problem(
                node_id, node, None, f"has {len(saved)} saved widget values, but "
                f"{spec.class_type} has {len(layout)} widget places now (the node changed "
                "since the workflow was saved) — check its values and save again"))
        values = {}
        for index, name in enumerate(layout):
            if name is not None:
                item = spec.input(name)
                value = saved[index] if index < len(saved) else item.default()
                values[name] = wrap(value)
        return values

    def _resolve_input(self, node_id: str, node: dict, index: int, visited: set,
                       wanted: object = None) -> _Origin | _Value | None:
        """Where input ``index`` of the node gets its value (frontend: resolveInput)."""
        item = node_inputs(node)[index]
        name = str(item.get("name"))
        link = self.graph.link(item.get("link"))
        if link is None:
            self.out.errors.append(self._problem(
                node_id, node, name, f"takes link {item.get('link')}, which the workflow does "
                "not have — reconnect the input"))
            return None
        origin = self.graph.nodes.get(link.origin_id)
        if origin is None:
            self.out.errors.append(self._problem(
                node_id, node, name, f"is connected to node {link.origin_id}, which the "
                "workflow does not have — reconnect the input"))
            return None
        return self._resolve_output(link.origin_id, origin, link.origin_slot,
                                    wanted if wanted is not None else item.get("type"),
                                    visited, bool(item.get("widget")), (node_id, node, name))

    def _resolve_output(self, node_id: str, node: dict, slot: int, wanted: object,
                        visited: set, to_widget: bool, target: tuple) -> _Origin | _Value | None:
        """The real output behind output ``slot`` of the node (frontend: resolveOutput)."""
        if (node_id, slot) in visited:
            self.out.errors.append(self._problem(*target, "is fed through a loop of Reroute or "
                                                 "bypassed nodes — connect it to a real output"))
            return None
        visited.add((node_id, slot))
        kind = node_type(node)
        if kind == "PrimitiveNode":  # its applyToGraph copies its value into the widget
            saved = node.get("widgets_values")
            return _Value(saved[0]) if to_widget and isinstance(saved, list) and saved else None
        if node_mode(node) == BYPASSED:
            index = bypass_slot(node, slot, wanted)
            if index < 0:
                return None
            return self._resolve_input(node_id, node, index, visited)
        if kind == "Reroute":
            inputs = node_inputs(node)
            if not inputs or inputs[0].get("link") is None:
                return None
            return self._resolve_input(node_id, node, 0, visited, wanted)
        if kind in FRONTEND_ONLY:
            return None
        return _Origin(node_id, slot)

    def _drop_links_to_missing_nodes(self) -> None:
        """Inputs connected to a node not in the prompt are removed (graphToPrompt's last step);
        why is kept for the check's "required input missing" message."""
        for node_id, entry in self.out.prompt.items():
            for name, value in list(entry["inputs"].items()):
                if isinstance(value, list) and len(value) == 2 and value[0] not in self.out.prompt:
                    del entry["inputs"][name]
                    origin = self.graph.nodes.get(value[0], {})
                    why = None  # a node that is not installed: reported already
                    if node_mode(origin) == MUTED:
                        why = (f"is connected to node {value[0]} ({node_type(origin)}), which is "
                               "muted — unmute it or connect another output")
                    self.out.dropped[(node_id, name)] = why

    def _problem(self, node_id: str, node: dict, name: str | None, message: str) -> Problem:
        return Problem(node_id, node_type(node), name, message, user_title(node, self.object_info))


def user_title(node: dict, object_info: dict) -> str:
    """The node's title when the user changed it (the default is the type's display name)."""
    title = str(node.get("title") or "")
    spec = node_spec(object_info, node_type(node))
    default = spec.display_name if spec is not None else node_type(node)
    return title if title not in ("", default, node_type(node)) else ""


def bypass_slot(node: dict, slot: int, wanted: object) -> int:
    """The input a bypassed node passes to its output ``slot`` (frontend: getBypassSlotIndex):
    the input at the same index if its type fits, else the first input of exactly the wanted
    type, else the first one whose type fits both; -1 when none does."""
    inputs, outputs = node_inputs(node), node_outputs(node)
    if not inputs or slot >= len(outputs):
        return -1
    types = [i.get("type") for i in inputs]
    if wanted in ("*", ""):
        return slot if len(inputs) > slot else 0
    output_type = outputs[slot].get("type")

    def fits(index: int) -> bool:
        return (litegraph_valid(types[index], output_type)
                and litegraph_valid(types[index], wanted))

    if slot < len(inputs) and fits(slot):
        return slot
    if wanted in types:
        return types.index(wanted)
    return next((i for i in range(len(inputs)) if fits(i)), -1)
