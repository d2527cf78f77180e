"""Prompt adaptation nodes: Prompt Adapt rewrites plain prompts into the form the model renders
well (Promptist, or any LLM) while keeping the intent; Prompt Reward shows whether that helped
for this model (the paper's reward: aesthetic gain, penalised when the image drifts from the
plain prompt); Train Prompt Adapter fine-tunes an adapter on the user's own prompt pairs.

Prompt Adapt and Prompt Reward take every input as a list (``INPUT_IS_LIST``): prompts come as
the list Evaluation Prompts makes, and images as one batch per prompt (ComfyUI runs the sampler
once per prompt), so each prompt's images stay together.
"""

from __future__ import annotations

from ..intenttuner.dataset.naming import MAX_NAME, next_free, slug
from ..intenttuner.errors import InputError
from ..intenttuner.families.prompt_adapter import FOLDER
from ..intenttuner.imageio import batch_to_pils, pils_to_batch
from ..intenttuner.loading import load_model
from ..intenttuner.prompt_adapt.adapt import adapt_prompts
from ..intenttuner.prompt_adapt.finetune import AdapterTrainSettings, read_pairs, train_adapter
from ..intenttuner.prompt_adapt.reward import prompt_reward, render_reward
from ..intenttuner.runtime import get_runtime
from . import types
from .schema import ROOT_CATEGORY

CATEGORY = f"{ROOT_CATEGORY}/Prompts"
PAIRS_EXAMPLE = ("a cat on a sofa => a cat on a sofa, soft window light, highly detailed, "
                 "sharp focus, 8k\n"
                 "portrait of milo => portrait of milo, studio lighting, digital painting, "
                 "trending on artstation")


def _one(values):
    """The single value of a list input (every input of a list node arrives as a list)."""
    return values[0] if values else None


def _backend(adapter, llm):
    adapter, llm = _one(adapter), _one(llm)
    if adapter is not None and llm is not None:
        raise InputError("Prompt Adapt has both an adapter and an llm connected: connect one, "
                         "the Promptist adapter (Load Prompt Adapter) or an LLM (LLM Settings "
                         "/ Load Local LLM).")
    if adapter is None and llm is None:
        raise InputError("Prompt Adapt needs a rewriter: connect Load Prompt Adapter "
                         "(Promptist) to adapter, or LLM Settings / Load Local LLM to llm.")
    return adapter if adapter is not None else llm


class PromptAdapt:
    DISPLAY_NAME = "Prompt Adapt"
    DESCRIPTION = (
        "Rewrites plain prompts into ones the model renders well: with Promptist (the "
        "prompt-adaptation paper's released model: the prompt plus ' Rephrase:', 8-beam search) "
        "or with any LLM following explicit instructions. With an intent connected, the "
        "trigger word and every kept or modified concept the prompt names survive and no "
        "deleted concept is added: a rewrite that breaks this is repaired, or the plain prompt "
        "kept, and the report says which. Empty items pass through, so the list stays aligned "
        "with its seeds.")
    CATEGORY = CATEGORY
    FUNCTION = "adapt"
    INPUT_IS_LIST = True
    RETURN_TYPES = ("STRING", "STRING")
    RETURN_NAMES = ("prompts", "report")
    OUTPUT_IS_LIST = (True, False)
    OUTPUT_TOOLTIPS = (
        "The adapted prompts, one per input prompt in the same order (a list: connect to "
        "CLIPTextEncode, which runs once per prompt).",
        "What happened to each prompt: adapted, repaired (and how), kept or passed through.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "prompts": ("STRING", {
                    "multiline": True, "default": "",
                    "tooltip": "The plain prompt, or a list of prompts (e.g. Evaluation "
                               "Prompts' prompts output). Each item is one prompt."}),
            },
            "optional": {
                "adapter": (types.PROMPT_ADAPTER, {
                    "tooltip": "From Load Prompt Adapter: Promptist or your own adapter."}),
                "llm": (types.LLM, {
                    "tooltip": "Instead of an adapter: LLM Settings (an endpoint) or Load "
                               "Local LLM, given explicit rewriting instructions."}),
                "intent": (types.INTENT, {
                    "tooltip": "The intent to keep: its trigger word and the concepts the "
                               "prompts name survive the rewrite; deleted ones never appear."}),
                "batch_size": ("INT", {
                    "default": 8, "min": 1, "max": 64,
                    "tooltip": "Prompts rewritten at once (beam search on 8 beams each)."}),
            },
        }

    def adapt(self, prompts, adapter=None, llm=None, intent=None, batch_size=None):
        result = adapt_prompts(list(prompts), _backend(adapter, llm),
                               intent=_one(intent),
                               batch_size=_one(batch_size) or 8)
        report = result.summary()
        return {"ui": {"text": [report]}, "result": (result.prompts, report)}


class PromptReward:
    DISPLAY_NAME = "Prompt Reward"
    DESCRIPTION = (
        "Did adaptation help for this model? Give it the images of the plain and of the "
        "adapted prompts, made with the same seeds. Reward per prompt, as in the "
        "prompt-adaptation paper: the aesthetic gain of the adapted prompt's images over the "
        "plain one's, plus min(20 x CLIP(adapted image, plain prompt) - 5.6, 0), which "
        "penalises images that drift from what the user asked for (CLIP similarity below "
        "0.28).")
    CATEGORY = CATEGORY
    FUNCTION = "score"
    OUTPUT_NODE = True
    INPUT_IS_LIST = True
    RETURN_TYPES = ("FLOAT", "STRING", "IMAGE")
    RETURN_NAMES = ("reward", "report", "preview")
    OUTPUT_TOOLTIPS = (
        "The mean reward over the prompts: above 0, adaptation helped on average.",
        "Per prompt: aesthetic of plain and adapted images, gain, CLIP relevance, penalty, "
        "reward; then the means.",
        "The same as a table.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "plain_prompts": ("STRING", {"forceInput": True, "tooltip": (
                    "The prompts as the user wrote them (Prompt Adapt's input).")}),
                "adapted_prompts": ("STRING", {"forceInput": True, "tooltip": (
                    "Prompt Adapt's prompts output, in the same order.")}),
                "plain_images": ("IMAGE", {"tooltip": (
                    "The images of the plain prompts (VAE Decode: one batch per prompt).")}),
                "adapted_images": ("IMAGE", {"tooltip": (
                    "The images of the adapted prompts, with the same seeds as the plain ones.")}),
                "quality_scorer": (types.QUALITY_SCORER, {"tooltip": (
                    "From Load Quality Scorer: the LAION aesthetic predictor, as in the paper.")}),
            },
            "optional": {
                "image_encoder": (types.IMAGE_ENCODER, {"tooltip": (
                    "The CLIP for the relevance term (the paper's: ViT-L/14). Not connected: "
                    "the quality scorer's own CLIP.")}),
            },
        }

    def score(self, plain_prompts, adapted_prompts, plain_images, adapted_images,
              quality_scorer, image_encoder=None):
        scorer = _one(quality_scorer)
        clip = _one(image_encoder) or scorer.encoder
        report = prompt_reward(list(plain_prompts), list(adapted_prompts),
                               [batch_to_pils(b) for b in plain_images],
                               [batch_to_pils(b) for b in adapted_images], scorer, clip)
        preview = render_reward(report)
        text = report.summary()
        ui = {"images": get_runtime().save_ui_images([preview], "prompt_reward"),
              "text": [text]}
        return {"ui": ui, "result": (report.mean_reward, text, pils_to_batch([preview]))}


class TrainPromptAdapter:
    DISPLAY_NAME = "Train Prompt Adapter"
    DESCRIPTION = (
        "Your own adapter, for a model that prefers another style: fine-tunes a prompt adapter "
        "(Promptist or one trained before) on your pairs of a plain prompt and the prompt you "
        "found renders well, as the paper's supervised stage does, and saves it as a new "
        "adapter folder in models/prompt_adapters (never over an existing one). Load Prompt "
        "Adapter lists it after a refresh.")
    CATEGORY = CATEGORY
    FUNCTION = "train"
    OUTPUT_NODE = True
    RETURN_TYPES = (types.PROMPT_ADAPTER, "STRING", "STRING")
    RETURN_NAMES = ("adapter", "name", "report")
    OUTPUT_TOOLTIPS = (
        "The fine-tuned adapter, loaded: connect it to Prompt Adapt.",
        "Its folder name in models/prompt_adapters, for Load Prompt Adapter.",
        "Pairs, steps, the loss at the start and the end, and where it was saved.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        d = AdapterTrainSettings()
        return {"required": {
            "adapter": (types.PROMPT_ADAPTER, {"tooltip": "The adapter to start from."}),
            "pairs": ("STRING", {"multiline": True, "default": PAIRS_EXAMPLE, "tooltip": (
                "One pair per line: plain prompt => preferred prompt (a tab also separates "
                "them; lines starting with # are skipped). A few dozen pairs are a good start.")}),
            "name": ("STRING", {"default": "my_prompt_adapter", "tooltip": (
                "Folder name of the new adapter (letters, digits, _ and -; a name in use gets "
                "a number, like ComfyUI's saved files).")}),
            "epochs": ("INT", {"default": d.epochs, "min": 1, "max": 1000,
                               "tooltip": "Passes over the pairs."}),
            "learning_rate": ("FLOAT", {"default": d.learning_rate, "min": 1e-7, "max": 1e-2,
                                        "step": 1e-6, "round": False,
                                        "tooltip": "AdamW learning rate."}),
            "batch_size": ("INT", {"default": d.batch_size, "min": 1, "max": 64,
                                   "tooltip": "Pairs per optimiser step."}),
            "seed": ("INT", {"default": d.seed, "min": 0, "max": 2**31 - 1,
                             "control_after_generate": False,
                             "tooltip": "Seed of the shuffling: the same seed, the same adapter."}),
        }}

    def train(self, adapter, pairs, name, epochs, learning_rate, batch_size, seed):
        settings = AdapterTrainSettings(epochs=epochs, learning_rate=learning_rate,
                                        batch_size=batch_size, seed=seed)
        parent = get_runtime().download_dir(FOLDER)
        target = next_free(parent, slug(name, "prompt_adapter", MAX_NAME, lower=False))
        result = train_adapter(adapter, read_pairs(pairs), target, settings=settings)
        trained = load_model("prompt_adapter", result.folder.name)
        report = result.summary()
        return {"ui": {"text": [report]}, "result": (trained, result.folder.name, report)}


NODES = [PromptAdapt, PromptReward, TrainPromptAdapter]
