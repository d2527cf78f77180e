"""Saved workflows: UI -> API conversion as the frontend queues them, and the check against a
server's /object_info, on small synthetic node definitions shaped like ComfyUI's own. Each check
starts from a workflow that passes and breaks one thing. (Against the real ComfyUI and its
frontend: tests/test_workflows_object_info.py.)"""

from __future__ import annotations

import copy
import json

import pytest
from PIL import Image, PngImagePlugin

from intenttuner.errors import InputError
from intenttuner.workflows import (
    Problem,
    WorkflowError,
    check_workflow,
    is_api_format,
    load_workflow,
    pack_of,
    ui_to_api,
)
from intenttuner.workflows.sockets import validate_node_input
from tests.workflow_builder import Ui

COMBO_LIST = ["euler", "ddim"]
OBJECT_INFO = {
    "Loader": {"input": {"required": {"ckpt_name": [["a.safetensors", "b.safetensors"], {}]}},
               "output": ["MODEL", "CLIP"], "output_name": ["MODEL", "CLIP"],
               "display_name": "Load Checkpoint"},
    "Sampler": {"input": {"required": {
        "model": ["MODEL", {}],
        "seed": ["INT", {"default": 0, "min": 0, "max": 100}],  # a seed: gets a control widget
        "steps": ["INT", {"default": 20, "min": 1, "max": 50}],
        "cfg": ["FLOAT", {"default": 7.0, "min": 0.0, "max": 30.0}],
        "sampler": [COMBO_LIST, {}]},
        "optional": {"denoise": ["FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0}],
                     "latent": ["LATENT", {}]},
        "hidden": {"unique_id": "UNIQUE_ID"}},
        "output": ["LATENT"], "output_name": ["LATENT"], "display_name": "KSampler"},
    "Text": {"input": {"required": {"text": ["STRING", {"multiline": True}], "clip": ["CLIP", {}]}},
             "input_order": {"required": ["text", "clip"]},
             "output": ["CONDITIONING"], "display_name": "Text Encode"},
    "LoadPicture": {"input": {"required": {"image": [["example.png"], {"image_upload": True}]},
                              "optional": {"strength": ["FLOAT", {"default": 1.0}]}},
                    "input_order": {"required": ["image"], "optional": ["strength"]},
                    "output": ["IMAGE", "MASK"], "display_name": "Load Image"},
    "Save": {"input": {"required": {"images": ["IMAGE", {}],
                                    "prefix": ["STRING", {"default": "x"}]},
                       "optional": {"flag": ["BOOLEAN", {"default": False}],
                                    "anything": ["*", {}]}},
             "output": [], "output_node": True, "display_name": "Save Image"},
    "Controls": {"input": {"required": {
        "noise_seed": ["INT", {}],
        "amount": ["FLOAT", {"control_after_generate": True}],
        "mode": ["COMBO", {"options": ["a", "b"], "control_after_generate": True}],
        "count": ["INT", {"control_after_generate": False, "default": 3}],
        "prompts": ["STRING", {"forceInput": True}]}},
        # the server's input_order wins over the dict order
        "input_order": {"required": ["count", "mode", "amount", "noise_seed", "prompts"]},
        "output": ["NOISE"], "output_node": True, "display_name": "Controls"},
    "Score": {"input": {"required": {"encoder": ["ENC_A,ENC_B", {}]}}, "output": ["FLOAT"],
              "output_node": True},
    "EncA": {"input": {}, "output": ["ENC_A"]},
    "EncC": {"input": {}, "output": ["ENC_C"]},
    "Choice": {"input": {}, "output": [COMBO_LIST]},  # a combo output (the list as its type)
    "Number": {"input": {}, "output": ["INT"]},
    "Pass": {"input": {"required": {"images": ["IMAGE", {}], "model": ["MODEL", {}]}},
             "output": ["MODEL", "IMAGE"]},
}


def pipeline() -> Ui:
    """Loader -> Sampler <- Text; LoadPicture -> Save: every check passes on it."""
    ui = Ui()
    ui.add(1, "Loader", ["a.safetensors"], outputs=["MODEL", "CLIP"])
    ui.add(2, "Sampler", [5, "randomize", 20, 7.5, "euler", 1.0],
           inputs=[("model", "MODEL"), ("latent", "LATENT")], outputs=["LATENT"])
    ui.add(3, "Text", ["a cat"], inputs=[("clip", "CLIP")], outputs=["CONDITIONING"])
    # The upload button comes after the inputs of input_order (Comfy.UploadImage adds it last)
    ui.add(4, "LoadPicture", ["example.png", 0.5, "image"], outputs=["IMAGE", "MASK"])
    ui.add(5, "Save", ["out", True], inputs=[("images", "IMAGE")])
    ui.add(6, "MarkdownNote", ["# notes"], title="About this workflow")
    ui.add(7, "Note", ["more notes"])
    ui.wire(1, 0, 2, "model")
    ui.wire(1, 1, 3, "clip")
    ui.wire(4, 0, 5, "images")
    return ui


def problems(workflow, object_info=OBJECT_INFO) -> list[str]:
    return [str(p) for p in check_workflow(workflow, object_info)]


# --- conversion ------------------------------------------------------------------------------


def test_widget_values_map_onto_widget_inputs_in_object_info_order():
    api = ui_to_api(pipeline().json(), OBJECT_INFO)
    # Sockets take no widget value; the seed's "randomize" and LoadPicture's upload button
    # value ("image") are the frontend's own; notes are not sent.
    assert api == {
        "1": {"inputs": {"ckpt_name": "a.safetensors"}, "class_type": "Loader",
              "_meta": {"title": "Load Checkpoint"}},
        "2": {"inputs": {"seed": 5, "steps": 20, "cfg": 7.5, "sampler": "euler", "denoise": 1.0,
                         "model": ["1", 0]}, "class_type": "Sampler",
              "_meta": {"title": "KSampler"}},
        "3": {"inputs": {"text": "a cat", "clip": ["1", 1]}, "class_type": "Text",
              "_meta": {"title": "Text Encode"}},
        "4": {"inputs": {"image": "example.png", "strength": 0.5}, "class_type": "LoadPicture",
              "_meta": {"title": "Load Image"}},
        "5": {"inputs": {"prefix": "out", "flag": True, "images": ["4", 0]}, "class_type": "Save",
              "_meta": {"title": "Save Image"}},
    }
    assert problems(pipeline().json()) == []


def test_control_widgets_follow_input_order_and_are_dropped():
    ui = Ui()
    # input_order: count (no control: declared false), mode (+ control + filter), amount
    # (+ control), noise_seed (+ control by its name); prompts is forceInput: no widget.
    ui.add(1, "Controls", [4, "b", "fixed", "", 0.5, "fixed", 9, "increment"])
    assert ui_to_api(ui.json(), OBJECT_INFO)["1"]["inputs"] == {
        "count": 4, "mode": "b", "amount": 0.5, "noise_seed": 9}


def test_remote_combos_and_extension_widgets_take_their_places():
    info = {**OBJECT_INFO,
            "Outputs": {"input": {"required": {"image": ["COMBO", {
                "image_upload": True, "remote": {"route": "/files", "refresh_button": True}}]}},
                        "output": ["IMAGE"], "output_node": True},
            "PreviewAny": {"input": {"required": {"source": ["*", {}]}}, "output": [],
                           "output_node": True}}
    ui = Ui()
    # image, its auto-refresh toggle (saved only), its refresh button (sent), the upload button
    ui.add(1, "Outputs", ["a.png", False, "refresh", "image"], outputs=["IMAGE"])
    ui.add(2, "PreviewAny", [True], inputs=[("source", "*")])  # Comfy.PreviewAny's mode toggle
    ui.wire(1, 0, 2, "source")
    api = ui_to_api(ui.json(), info)
    assert api["1"]["inputs"] == {"image": "a.png", "refresh": "refresh"}
    assert api["2"]["inputs"] == {"previewMode": True, "source": ["1", 0]}
    assert problems(ui.json(), info) == []  # names the frontend sends are not unknown inputs


@pytest.mark.parametrize("kind, spec", [
    ("CustomCombo", {"choice": ["COMBO", {"options": []}]}),
    ("Batch", {"images": ["COMFY_AUTOGROW_V3", {}]}),
])
def test_nodes_whose_widgets_the_frontend_builds_at_run_time_are_refused(kind, spec):
    ui = pipeline()
    ui.add(40, kind, ["x"])
    info = {**OBJECT_INFO, kind: {"input": {"required": spec}, "output": ["IMAGE"]}}
    with pytest.raises(WorkflowError, match=f"node 40 \\({kind}\\): has inputs the frontend "
                                            "builds as it runs .* Export \\(API\\)"):
        ui_to_api(ui.json(), info)


def test_missing_trailing_widget_values_take_defaults_and_extra_ones_are_reported():
    ui = pipeline()
    ui.nodes[1]["widgets_values"] = [5, "fixed", 20]  # saved before cfg, sampler, denoise existed
    assert ui_to_api(ui.json(), OBJECT_INFO)["2"]["inputs"] == {
        "seed": 5, "steps": 20, "cfg": 7.0, "sampler": "euler", "denoise": 1.0, "model": ["1", 0]}
    ui.nodes[1]["widgets_values"] = [5, "fixed", 20, 7.5, "euler", 1.0, "surplus"]
    assert problems(ui.json()) == [
        "node 2 (Sampler): has 7 saved widget values, but Sampler has 6 widget places now (the "
        "node changed since the workflow was saved) — check its values and save again"]


def test_links_saved_as_objects_convert_the_same():
    workflow = pipeline().json()
    fields = ("id", "origin_id", "origin_slot", "target_id", "target_slot", "type")
    workflow["links"] = [dict(zip(fields, link, strict=True)) for link in workflow["links"]]
    workflow["version"] = 1  # the frontend's schema 1 writes links as objects
    assert ui_to_api(workflow, OBJECT_INFO) == ui_to_api(pipeline().json(), OBJECT_INFO)


def test_widgets_values_saved_as_a_dict_map_by_name():
    ui = pipeline()
    ui.nodes[1]["widgets_values"] = {"steps": 30, "seed": 1, "sampler": "ddim", "cfg": 2.0,
                                     "denoise": 0.5}
    assert ui_to_api(ui.json(), OBJECT_INFO)["2"]["inputs"]["steps"] == 30


def test_list_values_are_wrapped_so_they_do_not_read_as_links():
    ui = pipeline()
    ui.nodes[2]["widgets_values"] = [["a", "b"]]
    assert ui_to_api(ui.json(), OBJECT_INFO)["3"]["inputs"]["text"] == {"__value__": ["a", "b"]}
    assert "input 'text': value ['a', 'b'] is not text" in problems(ui.json())[0]


def test_widget_converted_to_an_input_takes_the_link():
    ui = pipeline()
    ui.add(8, "Number", outputs=["INT"])
    ui.wire(8, 0, 2, "seed", widget=True)
    assert ui_to_api(ui.json(), OBJECT_INFO)["2"]["inputs"]["seed"] == ["8", 0]
    assert problems(ui.json()) == []


def test_links_are_resolved_through_reroutes_and_a_primitive_gives_its_value():
    ui = pipeline()
    ui.nodes[0]["outputs"][0]["links"] = []  # rewire Loader.MODEL -> Reroute -> Reroute -> Sampler
    ui.links = [link for link in ui.links if link[3] != 2]
    ui.add(10, "Reroute", inputs=[("", "*")], outputs=["*"])
    ui.add(11, "Reroute", inputs=[("", "*")], outputs=["*"])
    ui.wire(1, 0, 10, "")
    ui.wire(10, 0, 11, "", kind="MODEL")
    ui.wire(11, 0, 2, "model", kind="MODEL")
    ui.add(12, "PrimitiveNode", [33, "fixed"], outputs=["INT"])
    ui.wire(12, 0, 2, "steps", widget=True)
    api = ui_to_api(ui.json(), OBJECT_INFO)
    assert api["2"]["inputs"]["model"] == ["1", 0]
    assert api["2"]["inputs"]["steps"] == 33
    assert "10" not in api and "12" not in api
    # The primitive's value is checked as the widget's: 99 is above steps' max.
    ui.nodes[-1]["widgets_values"] = [99, "fixed"]
    assert [p for p in problems(ui.json()) if "steps" in p] == [
        "node 2 (Sampler) input 'steps': value 99 is above max 50 — set a value from 1 to 50"]


def test_an_unconnected_reroute_leaves_the_input_unset():
    ui = pipeline()
    ui.add(10, "Reroute", inputs=[("", "*")], outputs=["*"])
    ui.wire(10, 0, 2, "latent", kind="LATENT")
    assert "latent" not in ui_to_api(ui.json(), OBJECT_INFO)["2"]["inputs"]


def test_a_bypassed_node_passes_its_input_of_the_same_type_through():
    ui = pipeline()
    # Pass: inputs (images, model), outputs (MODEL, IMAGE): its MODEL output is slot 0, whose
    # same-index input is IMAGE, so the first MODEL input (slot 1) is passed on.
    ui.add(9, "Pass", inputs=[("images", "IMAGE"), ("model", "MODEL")],
           outputs=["MODEL", "IMAGE"], mode=4)
    ui.nodes[1]["inputs"][0]["link"] = None
    ui.links = [link for link in ui.links if link[3] != 2]
    ui.wire(1, 0, 9, "model")
    ui.wire(4, 0, 9, "images")
    ui.wire(9, 0, 2, "model")
    api = ui_to_api(ui.json(), OBJECT_INFO)
    assert "9" not in api
    assert api["2"]["inputs"]["model"] == ["1", 0]


def test_a_muted_node_is_dropped_with_the_links_it_fed():
    ui = pipeline()
    ui.nodes[0]["mode"] = 2
    api = ui_to_api(ui.json(), OBJECT_INFO)
    assert "1" not in api and "model" not in api["2"]["inputs"] and "clip" not in api["3"]["inputs"]
    assert problems(ui.json()) == [
        "node 2 (Sampler) input 'model': is connected to node 1 (Loader), which is muted — "
        "unmute it or connect another output",
        "node 3 (Text) input 'clip': is connected to node 1 (Loader), which is muted — unmute it "
        "or connect another output"]


def test_nodes_that_cannot_be_converted_are_all_listed():
    ui = pipeline()
    ui.add(20, "IntentTunerFoo", [1])
    ui.add(21, "SomeoneElsesNode", title="My node")
    ui.add(22, "0b5a-subgraph-id")
    ui.nodes[1]["inputs"][1]["link"] = 99  # a link the workflow does not have
    workflow = ui.json()
    workflow["definitions"] = {"subgraphs": [{"id": "0b5a-subgraph-id"}]}
    with pytest.raises(WorkflowError) as caught:
        ui_to_api(workflow, OBJECT_INFO)
    assert [str(p) for p in caught.value.problems] == [
        "node 2 (Sampler) input 'latent': takes link 99, which the workflow does not have — "
        "reconnect the input",
        "node 20 (IntentTunerFoo): IntentTunerFoo is not installed (pack: ComfyUI-IntentTuner) "
        "— install or update that pack",
        "node 21 (SomeoneElsesNode 'My node'): SomeoneElsesNode is not installed, and its pack "
        "is not known here — install the custom node pack that provides it (ComfyUI-Manager: "
        "Install Missing Custom Nodes) or update ComfyUI",
        "node 22 (0b5a-subgraph-id): is a subgraph, which is not expanded here — unpack it in "
        "ComfyUI (right-click → Unpack Subgraph / Convert to nodes) and save"]
    assert str(caught.value).startswith("the workflow has 4 problems:\n- node 2 (Sampler)")
    assert isinstance(caught.value, InputError)


# --- checks ------------------------------------------------------------------------------------


@pytest.mark.parametrize("received, accepted, ok", [
    ("IMAGE", "IMAGE", True), ("IMAGE", "MODEL", False), ("*", "MODEL", True),
    ("MODEL", "*", True), ("ENC_A", "ENC_A,ENC_B", True), ("ENC_A,ENC_C", "ENC_B, ENC_C", True),
    ("ENC_C", "ENC_A,ENC_B", False), (COMBO_LIST, "COMBO", True), ("STRING", COMBO_LIST, False),
    (COMBO_LIST, COMBO_LIST, True), ("INT", "COMFY_MATCHTYPE_V3", True)])
def test_socket_types_match_by_comfyuis_rules(received, accepted, ok):
    # The cases of validate_node_input's own docstring and branches (comfy_execution/validation)
    assert validate_node_input(received, accepted) is ok


def test_links_between_mismatched_types_are_reported():
    ui = pipeline()
    ui.add(30, "EncA", outputs=["ENC_A"])
    ui.add(31, "EncC", outputs=["ENC_C"])
    ui.add(32, "Score", inputs=[("encoder", "ENC_A,ENC_B")], outputs=["FLOAT"])
    ui.wire(30, 0, 32, "encoder")
    ui.add(33, "Choice", outputs=["COMBO"])
    ui.wire(33, 0, 2, "sampler", widget=True)
    ui.wire(1, 0, 5, "anything")  # '*' takes anything
    assert problems(ui.json()) == []
    broken = ui.json()
    links = {link[0]: link for link in broken["links"]}
    links[4][1], links[4][5] = 31, "ENC_C"  # EncC's ENC_C into the ENC_A,ENC_B input
    links[3][1:3] = [1, 1]  # Loader's CLIP into Save's images, still recorded as IMAGE
    assert problems(broken) == [
        "node 5 (Save) input 'images': is connected by link 3, recorded as IMAGE, but node 1 "
        "(Loader) output 'CLIP' gives CLIP now (the node changed since the workflow was saved) "
        "— reconnect the link",
        "node 5 (Save) input 'images': gets CLIP from node 1 (Loader) output 'CLIP', but takes "
        "IMAGE — connect a IMAGE output",
        "node 32 (Score) input 'encoder': gets ENC_C from node 31 (EncC) output 'ENC_C', but "
        "takes ENC_A,ENC_B — connect a ENC_A,ENC_B output"]


@pytest.mark.parametrize("index, value, message", [
    (2, 0, "input 'steps': value 0 is below min 1 — set a value from 1 to 50"),
    (2, 51, "input 'steps': value 51 is above max 50 — set a value from 1 to 50"),
    (2, 2.5, "input 'steps': value 2.5 is not a whole number — set a whole number from 1 to 50"),
    (2, True, "input 'steps': value True is not a whole number"),
    (3, "7", "input 'cfg': value '7' is not a number — set a number from 0.0 to 30.0"),
    (3, 31.0, "input 'cfg': value 31.0 is above max 30.0"),
    (4, "heun", "input 'sampler': value 'heun' is not one of the options ('euler', 'ddim') — "
                "pick one of them"),
])
def test_widget_values_out_of_range_or_of_the_wrong_kind_are_reported(index, value, message):
    ui = pipeline()
    ui.nodes[1]["widgets_values"][index] = value
    found = problems(ui.json())
    assert len(found) == 1 and found[0].startswith(f"node 2 (Sampler) {message}"), found


def test_boolean_string_and_long_combo_values_are_checked():
    ui = pipeline()
    ui.nodes[4]["widgets_values"] = [7, "yes"]
    info = copy.deepcopy(OBJECT_INFO)
    info["Loader"]["input"]["required"]["ckpt_name"][0] = [f"m{i}.safetensors" for i in range(30)]
    found = problems(ui.json(), info)
    assert found[0].startswith("node 1 (Loader) input 'ckpt_name': value 'a.safetensors' is not "
                               "one of the options ('m0.safetensors', ")
    assert "'m11.safetensors', ... (30 in all)) — pick one of them" in found[0]
    assert found[1:] == [
        "node 5 (Save) input 'prefix': value 7 is not text — type a text",
        "node 5 (Save) input 'flag': value 'yes' is not true or false — switch the toggle on or "
        "off"]


def test_required_inputs_must_be_connected_or_set():
    ui = pipeline()
    ui.nodes[2]["inputs"][0]["link"] = None
    api = ui_to_api(ui.json(), OBJECT_INFO)
    del api["2"]["inputs"]["steps"]
    assert problems(ui.json()) == [
        "node 3 (Text) input 'clip': is required but not connected — connect a CLIP output to it"]
    assert [str(p) for p in check_workflow(api, OBJECT_INFO)] == [
        "node 2 (Sampler) input 'steps': is required but has no value — set it",
        "node 3 (Text) input 'clip': is required but not connected — connect a CLIP output to it"]


def test_api_prompts_are_checked_too():
    api = ui_to_api(pipeline().json(), OBJECT_INFO)
    assert is_api_format(api) and check_workflow(api, OBJECT_INFO) == []
    api["2"]["inputs"]["model"] = ["9", 0]
    api["3"]["inputs"]["clip"] = ["1", 5]
    api["4"]["inputs"]["colour"] = "red"
    api["5"]["_meta"]["title"] = "Final save"
    api["5"]["inputs"]["images"] = ["1", 0]
    api["6"] = {"class_type": "Reroute", "inputs": {}}
    api["7"] = {"class_type": "VHS_LoadVideo", "inputs": {}}
    assert [str(p) for p in check_workflow(api, OBJECT_INFO)] == [
        "node 2 (Sampler) input 'model': is connected to node 9, which is not in the workflow — "
        "connect it to another node's output",
        "node 3 (Text) input 'clip': is connected to output 5 of node 1 (Loader), which has 2 "
        "output(s) — reconnect it",
        "node 4 (LoadPicture) input 'colour': is set, but LoadPicture has no such input (the node "
        "changed since the workflow was saved) — remove it or reconnect it to an input the node "
        "has",
        "node 5 (Save 'Final save') input 'images': gets MODEL from node 1 (Loader) output "
        "'MODEL', but takes IMAGE — connect a IMAGE output",
        "node 6 (Reroute): is a frontend-only node, which an API prompt cannot hold — export the "
        "workflow again with Workflow → Export (API)",
        "node 7 (VHS_LoadVideo): VHS_LoadVideo is not installed (pack: "
        "ComfyUI-VideoHelperSuite) — install or update that pack"]


def test_a_workflow_without_an_output_node_is_reported():
    ui = pipeline()
    ui.nodes = [n for n in ui.nodes if n["type"] != "Save"]
    ui.links = [link for link in ui.links if link[3] != 5]
    ui.nodes[3]["outputs"][0]["links"] = []
    assert problems(ui.json()) == [
        "the workflow has no output node (Save Image, Preview Image, a node that shows a "
        "result): ComfyUI refuses to run it — add one"]


def test_problem_reads_as_node_type_input_and_message():
    problem = Problem("12", "KSampler", "steps", "value 0 is below min 1")
    assert str(problem) == "node 12 (KSampler) input 'steps': value 0 is below min 1"
    assert str(Problem("3", "Foo", None, "x", title="Mine")) == "node 3 (Foo 'Mine'): x"


def test_pack_of_names_this_pack_and_a_few_well_known_ones():
    assert pack_of("IntentTunerLoRATrain") == "ComfyUI-IntentTuner"
    assert pack_of("VHS_VideoCombine") == "ComfyUI-VideoHelperSuite"
    assert pack_of("Seed (rgthree)") == "rgthree-comfy"
    assert pack_of("KSampler") is None


# --- files -------------------------------------------------------------------------------------


def test_load_workflow_reads_json_and_comfyui_pngs(tmp_path):
    workflow = pipeline().json()
    (tmp_path / "w.json").write_text(json.dumps(workflow))
    assert load_workflow(tmp_path / "w.json") == workflow
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", json.dumps(ui_to_api(workflow, OBJECT_INFO)))
    info.add_text("workflow", json.dumps(workflow))
    Image.new("RGB", (4, 4)).save(tmp_path / "w.png", pnginfo=info)
    assert load_workflow(tmp_path / "w.png") == workflow


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not JSON (Expecting property name enclosed in double quotes, line 1"),
    ('{"a": 1}', "is JSON but not a ComfyUI workflow"),
    ("[]", "is JSON but not a ComfyUI workflow"),
])
def test_load_workflow_refuses_what_is_not_a_workflow(tmp_path, content, message):
    (tmp_path / "w.json").write_text(content)
    with pytest.raises(InputError, match="Workflow → Save") as caught:
        load_workflow(tmp_path / "w.json")
    assert message in str(caught.value)


def test_load_workflow_refuses_missing_files_and_plain_pngs(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_workflow(tmp_path / "missing.json")
    Image.new("RGB", (4, 4)).save(tmp_path / "plain.png")
    with pytest.raises(InputError, match="holds no ComfyUI workflow"):
        load_workflow(tmp_path / "plain.png")
