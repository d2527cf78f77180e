"""Building UI-format workflows in tests, node by node, as the frontend saves them."""

from __future__ import annotations

import copy


class Ui:
    """A UI-format workflow built node by node, as the frontend saves it (schema 0.4)."""

    def __init__(self):
        self.nodes: list[dict] = []
        self.links: list[list] = []

    def add(self, node_id, kind, values=(), inputs=(), outputs=(), mode=0, **extra) -> dict:
        node = {"id": node_id, "type": kind, "mode": mode, "widgets_values": list(values),
                "inputs": [{"name": n, "type": t, "link": None} for n, t in inputs],
                "outputs": [{"name": t, "type": t, "links": []} for t in outputs], **extra}
        self.nodes.append(node)
        return node

    def wire(self, origin, slot, target, name, kind=None, widget=False) -> int:
        source = self._node(origin)
        kind = kind or source["outputs"][slot]["type"]
        link_id = max((link[0] for link in self.links), default=0) + 1
        node = self._node(target)
        item = next((i for i in node["inputs"] if i["name"] == name), None)
        if item is None:
            item = {"name": name, "type": kind}
            node["inputs"].append(item)
        item["link"] = link_id
        if widget:
            item["widget"] = {"name": name}
        source["outputs"][slot]["links"].append(link_id)
        self.links.append([link_id, origin, slot, target, node["inputs"].index(item), kind])
        return link_id

    def _node(self, node_id) -> dict:
        return next(n for n in self.nodes if n["id"] == node_id)

    def json(self) -> dict:
        return copy.deepcopy({"nodes": self.nodes, "links": self.links, "version": 0.4})
