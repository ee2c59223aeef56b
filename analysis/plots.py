"""Figures of a sweep (PNG and PDF): `python analysis/plots.py RUNS... --out DIR`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable without installing

from softq_lab.analysis.cli import plots_main

if __name__ == "__main__":
    sys.exit(plots_main())
