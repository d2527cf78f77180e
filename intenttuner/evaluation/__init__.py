"""Intent-aligned evaluation: the prompts to generate from, and the scores that say whether the
fine-tuned model keeps what the user keeps, lets text change what they modify, and never draws
what they delete (stability, controllability, delete leakage), plus the comparison report.

A plain library: the nodes, the command line and the training monitor all call it.
"""
