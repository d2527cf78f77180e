"""Prompt adaptation: rewrite the user's plain prompts into the style the base model renders
well (a Promptist-style adapter, or an LLM), without losing what the intent says: the trigger
words, the kept and modified concepts as the prompt states them, never a deleted concept.

A plain library, imported by the nodes; nothing heavy is imported here (torch and the models
come with the backend the caller passes in).
"""
