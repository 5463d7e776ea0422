"""Runs of models x devices: planning, parallel execution, storing results."""
