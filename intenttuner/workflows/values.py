"""Whether a widget value suits its input: the checks ComfyUI's ``validate_inputs`` makes before
it runs a prompt (min, max, combo choices), plus the value's kind (a whole number for INT, a
number for FLOAT, true/false for BOOLEAN, text for STRING), which ComfyUI would only coerce."""

from __future__ import annotations

from intenttuner.workflows.object_info import COMBO, InputSpec

SHOWN_CHOICES = 12  # a longer choice list is shortened in the message


def value_problem(item: InputSpec, value: object) -> str | None:
    """What is wrong with ``value`` for ``item`` (None: nothing)."""
    if isinstance(value, dict) and "__value__" in value:
        value = value["__value__"]
    if item.kind == COMBO:
        return _combo_problem(item, value)
    check = {"INT": _int_problem, "FLOAT": _float_problem, "BOOLEAN": _bool_problem,
             "STRING": _string_problem}.get(item.kind)
    return check(item, value) if check else None


def _int_problem(item: InputSpec, value: object) -> str | None:
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not whole:
        return f"value {value!r} is not a whole number — set a whole number{_range(item)}"
    return _bounds_problem(item, value)


def _float_problem(item: InputSpec, value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"value {value!r} is not a number — set a number{_range(item)}"
    return _bounds_problem(item, value)


def _bool_problem(item: InputSpec, value: object) -> str | None:
    if not isinstance(value, bool):
        return f"value {value!r} is not true or false — switch the toggle on or off"
    return None


def _string_problem(item: InputSpec, value: object) -> str | None:
    if not isinstance(value, str):
        return f"value {value!r} is not text — type a text"
    return None


def _bounds_problem(item: InputSpec, value: float) -> str | None:
    low, high = item.options.get("min"), item.options.get("max")
    if isinstance(low, (int, float)) and value < low:
        return f"value {value} is below min {low} — set a value{_range(item)}"
    if isinstance(high, (int, float)) and value > high:
        return f"value {value} is above max {high} — set a value{_range(item)}"
    return None


def _range(item: InputSpec) -> str:
    low, high = item.options.get("min"), item.options.get("max")
    if low is not None and high is not None:
        return f" from {low} to {high}"
    if low is not None:
        return f" of at least {low}"
    return f" of at most {high}" if high is not None else ""


def _combo_problem(item: InputSpec, value: object) -> str | None:
    if "remote" in item.options:  # the frontend fetches these choices from the server
        return None
    choices = item.choices or []
    wanted = value if isinstance(value, list) and item.options.get("multi_select") else [value]
    missing = [v for v in wanted if v not in choices]
    if not missing:
        return None
    if not choices:
        return (f"value {missing[0]!r} cannot be chosen: the list is empty on this server — add "
                "the file it lists (models/ or input/ folder) and restart or refresh ComfyUI")
    shown = ", ".join(repr(c) for c in choices[:SHOWN_CHOICES])
    if len(choices) > SHOWN_CHOICES:
        shown += f", ... ({len(choices)} in all)"
    return (f"value {missing[0]!r} is not one of the options ({shown}) — pick one of them, or "
            "add the file it names (models/ or input/ folder) and refresh ComfyUI")
