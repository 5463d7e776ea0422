"""What runs ON a device: job JSON in, result JSON out. Stdlib + the runtime present.

Kept light and Python >= 3.8 compatible: nothing here may import pandas or hilbench.profiles.
"""

AGENT_VERSION = "0.1.0"
