"""Socket types of the pack, declared once. Prefixed so they never collide with other packs'
objects of the same idea (a GroundingDINO+SAM pack's SAM_MODEL is a different Python object)."""

DETECTOR = "IT_DETECTOR"
SEGMENTER = "IT_SEGMENTER"
IMAGE_ENCODER = "IT_IMAGE_ENCODER"
CAPTIONER = "IT_CAPTIONER"
BASE_MODEL = "IT_BASE_MODEL"
INPAINTER = "IT_INPAINTER"  # intenttuner.families.inpainter.LamaModel
LLM = "IT_LLM"
IDENTITY_ENCODER = "IT_IDENTITY_ENCODER"  # intenttuner.families.identity_encoder.DinoEncoder
QUALITY_SCORER = "IT_QUALITY_SCORER"  # intenttuner.families.aesthetic.AestheticScorer
PROMPT_ADAPTER = "IT_PROMPT_ADAPTER"  # intenttuner.families.prompt_adapter.PromptAdapter
REWARD_MODEL = "IT_REWARD_MODEL"  # intenttuner.families.reward_model.RewardModel

# Pipeline data (plain, JSON-serialisable objects of the intenttuner library).
INTENT = "INTENT"
DETECTIONS = "DETECTIONS"
AUGMENTED = "IT_AUGMENTED"  # intenttuner.augment.types.Augmented: a crop plan + its source images
TRAINING_SET = "TRAINING_SET"  # intenttuner.dataset: a kohya-layout folder + dataset.json
LORA = "IT_LORA"  # intenttuner.training.trainer.TrainResult: a finished run and its LoRA file
EVAL_PLAN = "IT_EVAL_PLAN"  # intenttuner.evaluation.types.EvalPlan: the prompts and seeds to score
EVAL_SCORES = "IT_EVAL_SCORES"  # intenttuner.evaluation.types.EvalScores: one run's metric results
FEEDBACK = "IT_FEEDBACK"  # intenttuner.reward.feedback_set.FeedbackSet: marked images + prompts
MONITOR = "IT_MONITOR"  # intenttuner.monitor.settings.MonitorSpec: what LoRA Train scores
