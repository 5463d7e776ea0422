"""``python -m hilbench.cli`` is the same as ``bench``."""

from hilbench.cli.app import main

main()
