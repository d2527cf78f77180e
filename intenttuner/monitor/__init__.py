"""The intent-aware training monitor: samples the in-training LoRA from the intent's evaluation
prompts, scores the samples with the evaluation library, picks the best checkpoint by intent,
and reports every step and sample as ``intenttuner.train.*`` events (live panel, metrics.jsonl,
TensorBoard). Above training: it observes a run through ``training.observer``."""
