"""`python -m ensemble_cli` runs the console script."""

from .cli import main

main()
