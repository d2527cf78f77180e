"""When an output may feed an input: ComfyUI's rule (what ``/prompt`` validation applies) and the
frontend's (what it uses to pass a bypassed node's input through)."""

from __future__ import annotations

from intenttuner.workflows.object_info import ANY, COMBO, MATCH_TYPE


def validate_node_input(received_type: str | list, input_type: str | list,
                        strict: bool = False) -> bool:
    """ComfyUI's ``comfy_execution.validation.validate_node_input``, rule for rule: equal types,
    ``*`` on either side, a v3 match-type socket, a combo output (a list) into a COMBO input, or
    comma-separated unions that overlap (``strict``: all received types accepted)."""
    if received_type == input_type:
        return True
    if ANY in (received_type, input_type) or MATCH_TYPE in (received_type, input_type):
        return True
    if isinstance(received_type, list) and input_type == COMBO:
        return True
    if not isinstance(received_type, str) or not isinstance(input_type, str):
        return False
    received = {t.strip() for t in received_type.split(",")}
    accepted = {t.strip() for t in input_type.split(",")}
    if ANY in received or ANY in accepted:
        return True
    return received <= accepted if strict else bool(received & accepted)


def litegraph_valid(output_type: object, input_type: object) -> bool:
    """The frontend's ``LiteGraph.isValidConnection``: empty or ``*`` matches anything, names
    compare without case, comma-separated lists match when any pair does."""
    a = "" if output_type in (None, "*", 0) else str(output_type)
    b = "" if input_type in (None, "*", 0) else str(input_type)
    if not a or not b or a == b:
        return True
    a, b = a.lower(), b.lower()
    if "," not in a and "," not in b:
        return a == b
    return any(litegraph_valid(x, y) for x in a.split(",") for y in b.split(","))
