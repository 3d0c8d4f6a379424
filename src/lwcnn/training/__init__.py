"""Training: the paper's recipe, gradual training, fine-tuning (kept apart from the pure models)."""
