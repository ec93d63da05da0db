"""Training: the domain adapter's fine-tuning and calibration, reason mode's cold start and
GRPO, the reward stage's GRPO step, and the labelled files they read."""
