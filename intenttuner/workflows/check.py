"""Checking a saved workflow against a server's ``/object_info`` before anything runs: every node
type installed, every link between matching types, every widget value valid for its input,
every required input connected or set. UI-format workflows are converted the way the frontend
queues them (:mod:`intenttuner.workflows.convert`) and the prompt is checked as ComfyUI's
``validate_inputs`` would, with messages that name the node, the input and what to do."""

from __future__ import annotations

from intenttuner.errors import InputError
from intenttuner.workflows.convert import convert, user_title
from intenttuner.workflows.files import is_api_format, is_ui_format
from intenttuner.workflows.graph import UiGraph, node_inputs, node_type
from intenttuner.workflows.object_info import FRONTEND_ONLY, InputSpec, node_spec, type_name
from intenttuner.workflows.packs import not_installed
from intenttuner.workflows.problems import Problem
from intenttuner.workflows.sockets import validate_node_input
from intenttuner.workflows.values import value_problem
from intenttuner.workflows.widgets import frontend_extras, is_widget

NO_OUTPUT = ("the workflow has no output node (Save Image, Preview Image, a node that shows a "
             "result): ComfyUI refuses to run it — add one")


def check_workflow(workflow: dict, object_info: dict) -> list[Problem]:
    """Every problem of ``workflow`` (UI or API format) on the server whose ``/object_info`` is
    given; an empty list when it would be accepted."""
    if is_api_format(workflow):
        return check_prompt(workflow, object_info)
    if not is_ui_format(workflow):
        raise InputError("this is not a ComfyUI workflow (neither 'nodes' and 'links' nor "
                         "API-format nodes) — save it from ComfyUI with Workflow → Save")
    conversion = convert(workflow, object_info)
    graph = UiGraph(workflow)
    titles = {node_id: user_title(node, object_info) for node_id, node in graph.nodes.items()}
    return (conversion.errors + conversion.warnings + recorded_link_problems(graph, object_info)
            + check_prompt(conversion.prompt, object_info, conversion.dropped, titles))


def check_prompt(prompt: dict, object_info: dict,
                 dropped: dict[tuple[str, str], str | None] | None = None,
                 titles: dict[str, str] | None = None) -> list[Problem]:
    """Every problem of an API prompt. ``dropped``: inputs whose connection the conversion
    removed, and why; ``titles``: the nodes' own titles for the messages."""
    checker = _PromptChecker(prompt, object_info, dropped or {}, titles or {})
    problems = [p for node_id in prompt for p in checker.node(node_id)]
    specs = [node_spec(object_info, str(e.get("class_type"))) for e in prompt.values()
             if isinstance(e, dict)]
    if prompt and all(specs) and not any(s.output_node for s in specs):
        problems.append(Problem("", "", None, NO_OUTPUT))
    return problems


def recorded_link_problems(graph: UiGraph, object_info: dict) -> list[Problem]:
    """Links whose recorded type no longer fits the output they come from: the origin node
    changed since the workflow was saved (the frontend would show a broken link)."""
    problems = []
    for node_id, node in graph.nodes.items():
        for item in node_inputs(node):
            link = graph.link(item.get("link"))
            origin = graph.nodes.get(link.origin_id) if link else None
            # Reroutes record "*"; event links a number, not a type: nothing to compare.
            if origin is None or node_type(origin) in FRONTEND_ONLY \
                    or not isinstance(link.type, str) or not link.type:
                continue
            spec = node_spec(object_info, node_type(origin))
            actual = spec.output_type(link.origin_slot) if spec else None
            if actual is None or validate_node_input(link.type, type_name(actual)):
                continue
            output = f"node {link.origin_id} ({spec.class_type}) output " \
                     f"'{spec.output_label(link.origin_slot)}'"
            problems.append(Problem(
                node_id, node_type(node), str(item.get("name")),
                f"is connected by link {link.id}, recorded as {link.type}, but {output} gives "
                f"{type_name(actual)} now (the node changed since the workflow was saved) — "
                "reconnect the link", user_title(node, object_info)))
    return problems


class _PromptChecker:
    def __init__(self, prompt: dict, object_info: dict, dropped: dict, titles: dict):
        self.prompt, self.object_info = prompt, object_info
        self.dropped, self.titles = dropped, titles

    def node(self, node_id: str) -> list[Problem]:
        entry = self.prompt[node_id]
        kind = str(entry.get("class_type") or "") if isinstance(entry, dict) else ""
        problem = self._maker(node_id, kind, entry)
        if not kind:
            return [problem(None, "has no class_type — export the workflow again with "
                                  "Workflow → Export (API)")]
        if kind in FRONTEND_ONLY:
            return [problem(None, "is a frontend-only node, which an API prompt cannot hold — "
                                  "export the workflow again with Workflow → Export (API)")]
        spec = node_spec(self.object_info, kind)
        if spec is None:
            return [problem(None, not_installed(kind))]
        inputs = entry.get("inputs") if isinstance(entry.get("inputs"), dict) else {}
        found = []
        for item in spec.inputs:
            if item.name in inputs:
                message = self._input_problem(item, inputs[item.name])
            else:
                message = self._missing(node_id, item)
            if message:
                found.append(problem(item.name, message))
        extras = frontend_extras(spec)
        for name in inputs:
            # v3 dynamic inputs are named "<group>.<input>": their layout is the server's own
            if spec.input(name) is None and name not in extras and "." not in name:
                found.append(problem(name, f"is set, but {kind} has no such input (the node "
                                           "changed since the workflow was saved) — remove it "
                                           "or reconnect it to an input the node has"))
        return found

    def _input_problem(self, item: InputSpec, value: object) -> str | None:
        if isinstance(value, list):
            return self._link_problem(item, value)
        return value_problem(item, value)

    def _link_problem(self, item: InputSpec, value: list) -> str | None:
        if len(value) != 2 or not isinstance(value[1], int) or isinstance(value[1], bool):
            return (f"has {value!r}, which is neither a value nor a link [node id, output] — "
                    "set the value again (a list value is written {\"__value__\": [...]})")
        source_id, slot = str(value[0]), value[1]
        source = self.prompt.get(source_id)
        if not isinstance(source, dict):
            return (f"is connected to node {source_id}, which is not in the workflow — "
                    "connect it to another node's output")
        spec = node_spec(self.object_info, str(source.get("class_type")))
        if spec is None:
            return None  # that node is reported as not installed
        received = spec.output_type(slot)
        if received is None:
            return (f"is connected to output {slot} of node {source_id} ({spec.class_type}), "
                    f"which has {len(spec.outputs)} output(s) — reconnect it")
        if validate_node_input(received, item.type):
            return None
        return (f"gets {type_name(received)} from node {source_id} ({spec.class_type}) output "
                f"'{spec.output_label(slot)}', but takes {type_name(item.type)} — connect "
                f"a {type_name(item.type)} output")

    def _missing(self, node_id: str, item: InputSpec) -> str | None:
        if not item.required:
            return None
        if (node_id, item.name) in self.dropped:
            return self.dropped[(node_id, item.name)]
        if is_widget(item):
            return "is required but has no value — set it"
        return f"is required but not connected — connect a {type_name(item.type)} output to it"

    def _maker(self, node_id: str, kind: str, entry: object):
        title = self.titles.get(node_id)
        if title is None:  # API format: the title the frontend exported, if the user set one
            meta = entry.get("_meta") if isinstance(entry, dict) else None
            title = str(meta.get("title") or "") if isinstance(meta, dict) else ""
            spec = node_spec(self.object_info, kind)
            if title in (kind, spec.display_name if spec else kind):
                title = ""

        def problem(name: str | None, message: str) -> Problem:
            return Problem(str(node_id), kind, name, message, title)
        return problem

