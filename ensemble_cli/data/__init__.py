"""Data shipped with the package (the small benchmark sets in ``bench/``)."""
