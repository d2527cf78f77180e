"""Loader nodes: one per model family, plus the LLM endpoint settings.

Load Local LLM and LLM Settings both output an ``IT_LLM``: a local model run in-process or an
endpoint, accepted by every LLM input (Intent Parse, Caption Refine).

Each lists the family's models (files already in its models folder, then the manifest's
downloadable entries) and returns a loaded model object. Loading goes through
``intenttuner.loading``: a model is loaded once per process and downloaded on first use.
"""

from __future__ import annotations

from ..intenttuner.families import get_family
from ..intenttuner.families.aesthetic import AestheticScorer
from ..intenttuner.families.base import Package
from ..intenttuner.families.inpainter import PRECISIONS
from ..intenttuner.families.local_llm import DEFAULT_MAX_NEW_TOKENS
from ..intenttuner.llm import LLMSettings
from ..intenttuner.loading import default_choice, load_model, model_choices
from ..intenttuner.weights.folders import MODEL_FOLDERS
from . import types
from .schema import PRECISION, ROOT_CATEGORY, combo

CATEGORY = f"{ROOT_CATEGORY}/Loaders"


class _ModelLoader:
    """Shared shape of the family loaders; subclasses set the family and their texts."""

    FAMILY: str
    MODEL_TOOLTIP: str
    PRECISION_INPUT = PRECISION  # a family with its own precision rules sets its own
    FUNCTION = "load"
    CATEGORY = CATEGORY

    @classmethod
    def requires(cls) -> tuple[Package, ...]:
        return get_family(cls.FAMILY).packages

    @classmethod
    def INPUT_TYPES(cls):
        folder = MODEL_FOLDERS[get_family(cls.FAMILY).folder].name
        tooltip = (f"{cls.MODEL_TOOLTIP} Files in models/{folder} are listed first; the other "
                   "entries are downloaded on first use (progress shows on this node).")
        return {"required": {
            "model": combo(model_choices(cls.FAMILY), default_choice(cls.FAMILY), tooltip),
            "precision": cls.PRECISION_INPUT,
        }}

    def load(self, model: str, precision: str):
        return (load_model(self.FAMILY, model, precision=precision),)


class LoadDetector(_ModelLoader):
    FAMILY = "detector"
    DISPLAY_NAME = "Load Concept Detector (GroundingDINO)"
    DESCRIPTION = ("Loads the open-vocabulary detector that finds each concept of the intent in "
                   "the training images. Reads transformers-format folders and the original "
                   "groundingdino_*.pth files other packs use.")
    MODEL_TOOLTIP = "GroundingDINO weights (Swin-T is the default; ~0.7 GB)."
    RETURN_TYPES = (types.DETECTOR,)
    RETURN_NAMES = ("detector",)
    OUTPUT_TOOLTIPS = ("The loaded detector, for ConceptDetect and StabilityScore.",)


class LoadSegmenter(_ModelLoader):
    FAMILY = "segmenter"
    DISPLAY_NAME = "Load Segment Anything (SAM)"
    DESCRIPTION = ("Loads Segment Anything, which turns detected boxes into masks for "
                   "inpainting deleted concepts and for scoring.")
    MODEL_TOOLTIP = "SAM weights: ViT-B (default, 0.4 GB), ViT-L (1.2 GB) or ViT-H (2.6 GB)."
    RETURN_TYPES = (types.SEGMENTER,)
    RETURN_NAMES = ("segmenter",)
    OUTPUT_TOOLTIPS = ("The loaded SAM model, for ConceptDetect's optional masks.",)


class LoadImageEncoder(_ModelLoader):
    FAMILY = "image_encoder"
    DISPLAY_NAME = "Load Image Encoder (open_clip)"
    DESCRIPTION = ("Loads an open_clip image/text encoder, used to compare detections with the "
                   "reference crops and to score controllability.")
    MODEL_TOOLTIP = ("open_clip weights; the file name starts with the architecture, e.g. "
                     "ViT-B-32.laion2b_s34b_b79k.safetensors (default) or ViT-L-14.openai.")
    RETURN_TYPES = (types.IMAGE_ENCODER,)
    RETURN_NAMES = ("image_encoder",)
    OUTPUT_TOOLTIPS = ("The loaded encoder, for RefFilter and the scoring nodes.",)


class LoadCaptioner(_ModelLoader):
    FAMILY = "captioner"
    DISPLAY_NAME = "Load Captioner (Florence-2 / BLIP)"
    DESCRIPTION = ("Loads the image captioner that writes the first caption of each training "
                   "image: Florence-2 (short, detailed or paragraph captions; needs transformers "
                   ">= 4.56) or BLIP (one short sentence; any transformers).")
    MODEL_TOOLTIP = ("A Florence-2 or BLIP captioning model folder. Default: Florence-2 base "
                     "(florence-community conversion, ~0.46 GB); Florence-2 large (~1.5 GB) "
                     "writes finer detail, BLIP large (~1.9 GB) works on older transformers.")
    RETURN_TYPES = (types.CAPTIONER,)
    RETURN_NAMES = ("captioner",)
    OUTPUT_TOOLTIPS = ("The loaded captioner, for CaptionRefine.",)


class LoadBaseModel(_ModelLoader):
    FAMILY = "base_model"
    DISPLAY_NAME = "Load Base Model for Training (SD1.5/SDXL)"
    DESCRIPTION = ("Loads the Stable Diffusion 1.5 or SDXL model a LoRA is trained on, from a "
                   "single-file checkpoint (models/checkpoints) or a diffusers folder "
                   "(models/diffusers), fully offline.")
    MODEL_TOOLTIP = ("Base checkpoint. Entries marked [diffusers] are diffusers folders in "
                     "models/diffusers.")
    RETURN_TYPES = (types.BASE_MODEL,)
    RETURN_NAMES = ("base_model",)
    OUTPUT_TOOLTIPS = ("The loaded base model, for LoRATrain (and IntentInpaint's diffusion "
                       "backend).",)

    @classmethod
    def INPUT_TYPES(cls):
        inputs = super().INPUT_TYPES()
        inputs["optional"] = {"allow_inpainting": ("BOOLEAN", {
            "default": False,
            "tooltip": "Also accept inpainting checkpoints (9-channel UNet), for IntentInpaint's "
                       "diffusion backend only: LoRAs are trained on ordinary checkpoints."})}
        return inputs

    def load(self, model: str, precision: str, allow_inpainting: bool = False):
        options = {"allow_inpainting": True} if allow_inpainting else {}
        return (load_model(self.FAMILY, model, precision=precision, **options),)


class LoadInpainter(_ModelLoader):
    FAMILY = "inpainter"
    DISPLAY_NAME = "Load Inpaint Model (LaMa)"
    DESCRIPTION = ("Loads LaMa, the learned object-removal model IntentInpaint uses to paint "
                   "deleted concepts out, from models/inpaint (the folder other inpainting "
                   "packs use). Reads safetensors and plain state-dict files; TorchScript "
                   "big-lama.pt files are refused, since opening them runs code.")
    MODEL_TOOLTIP = "LaMa weights (default big-lama.safetensors, ~0.2 GB; runs in fp32)."
    RETURN_TYPES = (types.INPAINTER,)
    RETURN_NAMES = ("inpainter",)
    OUTPUT_TOOLTIPS = ("The loaded LaMa model, for IntentInpaint.",)
    PRECISION_INPUT = combo(list(PRECISIONS), "auto",
                            "LaMa runs in fp32 only (its Fourier convolutions lose too much in "
                            "16 bits; the model is 0.2 GB), so auto is fp32 on every device.")


class LoadLocalLLM(_ModelLoader):
    FAMILY = "local_llm"
    DISPLAY_NAME = "Load Local LLM (in-process)"
    DESCRIPTION = ("Loads a small instruction-tuned language model that runs inside ComfyUI "
                   "through transformers: no server, no API key. Plug it into any LLM input "
                   "(Intent Parse, Caption Refine) instead of LLM Settings. Default Qwen2.5 "
                   "1.5B Instruct: 3.1 GB of weights in bf16 on a GPU, 6.2 GB in fp32 on the "
                   "CPU (about 10 GB of RAM while loading); Qwen2.5 0.5B Instruct needs a third "
                   "of that but follows the intent schema less reliably. ComfyUI's model "
                   "manager offloads it when other models need the memory.")
    MODEL_TOOLTIP = ("An instruction-tuned (chat) model folder in models/LLM with config.json, "
                     "model.safetensors and tokenizer files; base models without a chat "
                     "template and folders that need trust_remote_code are refused.")
    RETURN_TYPES = (types.LLM,)
    RETURN_NAMES = ("llm",)
    OUTPUT_TOOLTIPS = ("The local model, for any LLM input (Intent Parse, Caption Refine).",)
    PRECISION_INPUT = combo(["auto", "fp32", "fp16", "bf16"], "auto",
                            "Weight precision. auto = bf16 on GPUs that support it (the models "
                            "are published in bf16), else fp16; fp32 on the CPU.")

    @classmethod
    def INPUT_TYPES(cls):
        inputs = super().INPUT_TYPES()
        inputs["optional"] = {"max_new_tokens": ("INT", {
            "default": DEFAULT_MAX_NEW_TOKENS, "min": 16, "max": 8192, "step": 16,
            "tooltip": "Most tokens one answer may take. An intent or a batch of 8 captions "
                       "takes a few hundred; an answer cut off is repaired once, then the "
                       "offline parser or rules take over."})}
        return inputs

    def load(self, model: str, precision: str, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS):
        llm = load_model(self.FAMILY, model, precision=precision)
        return (llm.with_max_new_tokens(max_new_tokens),)


class LoadIdentityEncoder(_ModelLoader):
    FAMILY = "identity_encoder"
    DISPLAY_NAME = "Load Identity Encoder (DINO)"
    DESCRIPTION = ("Loads DINO, the self-supervised image encoder StabilityScore compares kept "
                   "concepts with: the standard subject-fidelity measure (DreamBooth's DINO "
                   "score), which tells two similar subjects apart where CLIP sees one class.")
    MODEL_TOOLTIP = ("A DINO ViT model folder (config.json, model.safetensors, "
                     "preprocessor_config.json). Default: DINO ViT-S/16 (facebook/dino-vits16, "
                     "~0.09 GB).")
    RETURN_TYPES = (types.IDENTITY_ENCODER,)
    RETURN_NAMES = ("identity_encoder",)
    OUTPUT_TOOLTIPS = ("The loaded identity encoder, for StabilityScore.",)


class LoadQualityScorer(_ModelLoader):
    FAMILY = "aesthetic"
    DISPLAY_NAME = "Load Quality Scorer (aesthetic)"
    DESCRIPTION = ("Loads the LAION aesthetic predictor, which rates image quality from 1 to 10 "
                   "on CLIP ViT-L/14 image embeddings; StabilityScore reports it beside "
                   "identity. Connect a Load Image Encoder with ViT-L-14.openai.")
    MODEL_TOOLTIP = ("Aesthetic predictor weights (default sac+logos+ava1-l14-linearMSE.pth, "
                     "3.5 MiB; picking it also fetches ViT-L-14.openai, 1.7 GB, if missing). "
                     "Runs in fp32: the model is tiny.")
    RETURN_TYPES = (types.QUALITY_SCORER,)
    RETURN_NAMES = ("quality_scorer",)
    OUTPUT_TOOLTIPS = ("The quality scorer (predictor + its CLIP encoder), for StabilityScore's "
                       "quality term.",)

    @classmethod
    def INPUT_TYPES(cls):
        inputs = super().INPUT_TYPES()
        del inputs["required"]["precision"]  # fp32 always
        inputs["required"]["clip"] = (types.IMAGE_ENCODER, {
            "tooltip": "The CLIP encoder the predictor was trained on: ViT-L-14.openai (from "
                       "Load Image Encoder). Another width is refused with the fix."})
        return inputs

    def load(self, model: str, clip):
        return (AestheticScorer(load_model(self.FAMILY, model), clip),)


class LoadPromptAdapter(_ModelLoader):
    FAMILY = "prompt_adapter"
    DISPLAY_NAME = "Load Prompt Adapter (Promptist)"
    DESCRIPTION = ("Loads Promptist, a GPT-2 language model (microsoft, 0.5 GB; downloaded on "
                   "first use) that rewrites plain prompts into the style Stable Diffusion 1.x "
                   "renders well: the subject kept, style, lighting and quality words added. "
                   "Also loads adapters fine-tuned on your own prompt pairs.")
    MODEL_TOOLTIP = ("A GPT-2 prompt adapter folder (config.json, model.safetensors, "
                     "tokenizer.json, vocab.json). Default: Promptist (microsoft/Promptist, "
                     "~0.5 GB). Chat models belong in Load Local LLM instead.")
    RETURN_TYPES = (types.PROMPT_ADAPTER,)
    RETURN_NAMES = ("prompt_adapter",)
    OUTPUT_TOOLTIPS = ("The loaded prompt adapter, for prompt adaptation (it rewrites the "
                       "prompts before sampling).",)


class LLMSettingsNode:
    DISPLAY_NAME = "LLM Settings (OpenAI-compatible)"
    DESCRIPTION = ("Points IntentParse at any OpenAI-compatible endpoint (OpenAI, vLLM, "
                   "llama.cpp, Ollama, LM Studio). The API key is read from the environment "
                   "variable you name here, never typed in, so shared workflows cannot leak it.")
    FUNCTION = "make"
    CATEGORY = CATEGORY
    RETURN_TYPES = (types.LLM,)
    RETURN_NAMES = ("llm",)
    OUTPUT_TOOLTIPS = ("Endpoint settings for any LLM input (Intent Parse, Caption Refine).",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "base_url": ("STRING", {
                "default": "https://api.openai.com/v1",
                "tooltip": "OpenAI-compatible API root, e.g. http://127.0.0.1:8080/v1 for a "
                           "local llama.cpp or vLLM server."}),
            "model": ("STRING", {"default": "gpt-4o-mini",
                                 "tooltip": "Model name as the endpoint knows it."}),
            "api_key_env": ("STRING", {
                "default": "OPENAI_API_KEY",
                "tooltip": "NAME of the environment variable holding the API key, ending in "
                           "_API_KEY (set it before starting ComfyUI). Local servers get no "
                           "key unless their host (or host:port) is listed in "
                           "INTENTTUNER_LLM_TRUSTED_HOSTS; other hosts must be the key's "
                           "provider or listed there."}),
            "timeout_s": ("FLOAT", {"default": 60.0, "min": 1.0, "max": 600.0, "step": 1.0,
                                    "tooltip": "Seconds to wait for an answer before failing."}),
        }}

    def make(self, base_url: str, model: str, api_key_env: str, timeout_s: float):
        return (LLMSettings(base_url=base_url.strip(), model=model.strip(),
                            api_key_env=api_key_env.strip(), timeout_s=timeout_s),)


NODES = [LoadDetector, LoadSegmenter, LoadImageEncoder, LoadCaptioner, LoadBaseModel,
         LoadInpainter, LoadLocalLLM, LoadIdentityEncoder, LoadQualityScorer, LoadPromptAdapter,
         LLMSettingsNode]
