"""Latency prediction: graph features, training, evaluation and prediction with uncertainty."""
