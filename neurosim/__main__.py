"""``python -m neurosim``: the same command line as ``neurosim``."""

from neurosim.cli import main

main(prog_name="neurosim")
