"""Saved ComfyUI workflows: load them (UI or API format), check them against a server's
``/object_info`` (node types installed, links between matching types, widget values valid,
required inputs set), and convert UI-format ones to the API prompt ``/prompt`` takes, as the
frontend would queue them."""

from intenttuner.workflows.check import check_prompt, check_workflow
from intenttuner.workflows.convert import ui_to_api
from intenttuner.workflows.files import is_api_format, is_ui_format, load_workflow
from intenttuner.workflows.object_info import FRONTEND_ONLY, InputSpec, NodeSpec, node_spec
from intenttuner.workflows.packs import pack_of
from intenttuner.workflows.problems import Problem, WorkflowError

__all__ = ["FRONTEND_ONLY", "InputSpec", "NodeSpec", "Problem", "WorkflowError",
           "check_prompt", "check_workflow", "is_api_format", "is_ui_format", "load_workflow",
           "node_spec", "pack_of", "ui_to_api"]
