"""Intent-aligned captions: caption rules, refinement (offline and LLM), the token limit,
and the review of captions before training."""
