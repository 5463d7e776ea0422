"""Value objects shared by every hilbench package (stdlib only, Python >= 3.8)."""
