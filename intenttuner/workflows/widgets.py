"""Which widgets ComfyUI's frontend gives a node, in order: the layout its saved
``widgets_values`` follow.

Mirrors the frontend bundled with ComfyUI 0.8 (comfyui-frontend-package 1.35): its litegraph
service makes a widget for every input whose type has a widget constructor (``ComfyWidgets``:
INT, FLOAT, BOOLEAN, STRING, COMBO, ...), in the server's ``input_order``
(``getOrderedInputSpecs``), unless the input is ``forceInput``. Some widgets bring companions that
are saved in ``widgets_values`` but never sent to the server: the "control after generate" combo
after a seed (``addValueControlWidget``; also a filter text after a combo that has one), and the
upload button the Comfy.UploadImage / Comfy.UploadAudio extensions add to loaders, the
auto-refresh toggle of a combo whose choices come from the server. A few core extensions add
widgets of their own to particular nodes (`NODE_EXTRAS`). DOM widgets that extensions add with
``serialize: false`` (this pack's box editor, caption review and training monitor) take no
place in ``widgets_values`` at all. tests/test_workflows_object_info.py compares this layout
with the widgets the real frontend makes, for every node type a server has.
"""

from __future__ import annotations

from intenttuner.workflows.object_info import COMBO, InputSpec, NodeSpec

# Widget types whose value is saved and sent to the server as the input's value (LOAD_3D: the
# Comfy.Load3D extension's viewer).
VALUE_WIDGETS = {"INT", "FLOAT", "BOOLEAN", "STRING", COMBO, "MARKDOWN", "COLOR", "TEXTAREA",
                 "IMAGECOMPARE", "CHART", "GALLERIA", "LOAD_3D"}
# Upload buttons: saved in widgets_values (LoadImage's "image"), never sent.
BUTTON_WIDGETS = {"IMAGEUPLOAD", "AUDIOUPLOAD"}
# Widgets that take no place in widgets_values (DOM widgets with serialize: false).
UNSAVED_WIDGETS = {"AUDIO_UI"}
# Widgets whose saved layout depends on the frontend's state (inputs that appear as a combo
# changes, camera captures): not laid out here.
DYNAMIC_WIDGETS = {"COMFY_DYNAMICCOMBO_V3", "COMFY_AUTOGROW_V3", "WEBCAM", "AUDIO_RECORD"}
DYNAMIC_NODES = {"CustomCombo"}  # its choices are widgets the user adds one by one
# Widgets the frontend's extensions add to particular nodes, saved and sent under these names
# (None: saved only): (after the widget of this input, or at the end, [names]).
NODE_EXTRAS: dict[str, tuple[str | None, tuple[str | None, ...]]] = {
    "PreviewAny": (None, ("previewMode",)),  # Comfy.PreviewAny: markdown / plain text
    "Preview3D": (None, ("image",)),  # Comfy.Load3D: the viewer's snapshot
    "SaveGLB": (None, ("image",)),
    "Load3D": ("model_file", ("upload 3d model", "upload extra resources", "clear")),
}
SEED_NAMES = ("seed", "noise_seed")  # INT widgets the frontend gives a control without asking
UPLOAD_FLAGS = ("image_upload", "video_upload", "animated_image_upload")
UPLOAD_NAME = "upload"


class UnsupportedLayout(ValueError):
    """The node has inputs whose widgets the frontend builds at run time (v3 dynamic inputs,
    webcam capture): their saved values cannot be mapped without the frontend."""


def widget_layout(spec: NodeSpec) -> list[str | None]:
    """One entry per ``widgets_values`` item of a saved node of this type: the input name its
    value goes to, or None for a value the frontend keeps to itself (control, upload button)."""
    if spec.class_type in DYNAMIC_NODES:
        raise UnsupportedLayout(f"{spec.class_type}'s widgets are added in the frontend")
    after, extras = NODE_EXTRAS.get(spec.class_type, (None, ()))
    layout: list[str | None] = []
    for item in _frontend_inputs(spec):
        if item.force_input:
            continue
        widget = str(item.options.get("widgetType") or item.kind)
        if widget in DYNAMIC_WIDGETS:
            raise UnsupportedLayout(f"input '{item.name}' is a {widget} input")
        if widget in BUTTON_WIDGETS:
            layout.append(None)
        elif widget in VALUE_WIDGETS:
            layout += [item.name, *_companions(item, widget)]
        if item.name == after:
            layout += extras
    return layout if after is not None else layout + list(extras)


def frontend_extras(spec: NodeSpec) -> set[str]:
    """Names the frontend sends besides the node's inputs (hidden ones, extension widgets such
    as a refresh button): a prompt may carry them."""
    try:
        sent = {name for name in widget_layout(spec) if name is not None}
    except UnsupportedLayout:
        sent = set()
    return (sent | set(spec.hidden)) - {i.name for i in spec.inputs}


def is_widget(item: InputSpec) -> bool:
    """Whether the frontend shows this input as a widget (a value) rather than only a socket."""
    widget = str(item.options.get("widgetType") or item.kind)
    return not item.force_input and widget in VALUE_WIDGETS


def _companions(item: InputSpec, widget: str) -> list[str | None]:
    """The widgets that follow this one (frontend: useIntWidget, useFloatWidget, useComboWidget,
    useRemoteWidget and addValueControlWidgets): None for each saved-only one."""
    control = item.options.get("control_after_generate")
    if widget == "INT":
        if control is None:
            control = item.name in SEED_NAMES
        return [None] if control else []
    if widget == "FLOAT":
        return [None] if control else []
    if widget != COMBO:
        return []
    after: list[str | None] = []
    remote = item.options.get("remote")
    if isinstance(remote, dict):  # choices fetched from the server: an auto-refresh toggle
        after.append(None)        # (saved only) and maybe a refresh button (saved and sent)
        if remote.get("refresh_button"):
            after.append("refresh")
    if control:  # the mode combo, and a filter text for the choices (not for multi-select)
        after += [None] if item.options.get("multi_select") else [None, None]
    return after


def _frontend_inputs(spec: NodeSpec) -> list[InputSpec]:
    """The inputs in the frontend's order, with the upload inputs its extensions add."""
    required = [i for i in spec.inputs if i.required]
    optional = [i for i in spec.inputs if not i.required]
    required += _upload_inputs(required)
    by_name = {i.name: i for i in required + optional}
    if not spec.input_order:
        return list(by_name.values())
    ordered = [by_name[n] for n in spec.input_order.get("required", ())
               if n in by_name and by_name[n].required]
    ordered += [by_name[n] for n in spec.input_order.get("optional", ())
                if n in by_name and not by_name[n].required]
    return ordered + [i for i in by_name.values() if i not in ordered]


def _upload_inputs(required: list[InputSpec]) -> list[InputSpec]:
    """Comfy.UploadImage adds an IMAGEUPLOAD input after the required ones when one required
    combo uploads images or videos; Comfy.UploadAudio an AUDIOUPLOAD one for audio_upload."""
    if any(i.kind == COMBO and any(i.options.get(f) is True for f in UPLOAD_FLAGS)
           for i in required):
        return [InputSpec(UPLOAD_NAME, "IMAGEUPLOAD", {}, True)]
    audio = next((i for i in required if i.name == "audio"), None)
    if audio is not None and audio.options.get("audio_upload") is True:
        return [InputSpec(UPLOAD_NAME, "AUDIOUPLOAD", {}, True)]
    return []
