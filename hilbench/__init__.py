"""hilbench: hardware-in-the-loop benchmarking and device selection for ML models."""

__version__ = "0.1.0"
