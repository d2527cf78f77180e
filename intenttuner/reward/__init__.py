"""Learning from people's marks (Lee et al. 2023, "Aligning Text-to-Image Models using Human
Feedback"): feedback sets of marked images (Rate Images, the training monitor's marks), a
reward model trained on them (CLIP image and text features into a small MLP), and
reward-weighted fine-tuning of a trained LoRA with a regularising term on its training set."""
