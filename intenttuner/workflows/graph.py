"""A UI-format workflow as a graph: its nodes by id and its links by id.

The frontend saves links as ``[id, origin_id, origin_slot, target_id, target_slot, type]``
(schema 0.4) or as objects with those names (schema 1); a node's ``inputs`` name the link each
one takes (``"link": id``), its ``outputs`` the links each one feeds."""

from __future__ import annotations

from dataclasses import dataclass

from intenttuner.errors import InputError

# LiteGraph node modes: ALWAYS, ON_EVENT, NEVER (muted), ON_TRIGGER, BYPASS.
MUTED = 2
BYPASSED = 4
LINK_FIELDS = ("id", "origin_id", "origin_slot", "target_id", "target_slot", "type")


@dataclass(frozen=True)
class Link:
    id: int
    origin_id: str
    origin_slot: int
    target_id: str
    target_slot: int
    type: object  # the type the frontend recorded when the link was made ("*" through reroutes)


class UiGraph:
    """Nodes (by string id, as API prompts name them) and links (by id) of a UI workflow."""

    def __init__(self, workflow: dict):
        nodes = workflow.get("nodes")
        if not isinstance(nodes, list):
            raise InputError("the workflow has no 'nodes' list: it is not a UI-format workflow "
                             "— save it from ComfyUI with Workflow → Save")
        self.nodes: dict[str, dict] = {str(n.get("id")): n for n in nodes if isinstance(n, dict)}
        self.links: dict[int, Link] = {}
        for entry in workflow.get("links") or []:
            link = _link(entry)
            if link is not None:
                self.links[link.id] = link
        definitions = (workflow.get("definitions") or {}).get("subgraphs") or []
        self.subgraph_ids = {str(s.get("id")) for s in definitions if isinstance(s, dict)}

    def link(self, link_id: object) -> Link | None:
        return self.links.get(link_id) if isinstance(link_id, int) else None


def node_type(node: dict) -> str:
    return str(node.get("type") or "")


def node_mode(node: dict) -> int:
    mode = node.get("mode", 0)
    return mode if isinstance(mode, int) else 0


def node_inputs(node: dict) -> list[dict]:
    return [i for i in node.get("inputs") or [] if isinstance(i, dict)]


def node_outputs(node: dict) -> list[dict]:
    return [o for o in node.get("outputs") or [] if isinstance(o, dict)]


def is_group_node(node: dict) -> bool:
    """A legacy group node (its type names a group saved in the workflow's extra data)."""
    return node_type(node).startswith(("workflow>", "workflow/"))


def _link(entry: object) -> Link | None:
    if isinstance(entry, dict):
        values = [entry.get(name) for name in LINK_FIELDS]
    elif isinstance(entry, list) and len(entry) >= 6:
        values = entry[:6]
    else:
        return None
    link_id, origin, origin_slot, target, target_slot, kind = values
    if not all(isinstance(v, int) for v in (link_id, origin_slot, target_slot)):
        return None
    return Link(link_id, str(origin), origin_slot, str(target), target_slot, kind)
