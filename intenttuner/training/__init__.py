"""LoRA training on SD 1.5 / SDXL: config, latent and text caches, LoRA set-up, the loop in
named steps, kohya export with metadata, checkpoints and resume, several processes.

The entry point is `trainer.train(config)`; LoRATrain (nodes/training.py) and
``python -m intenttuner train CONFIG`` both call it.
"""
