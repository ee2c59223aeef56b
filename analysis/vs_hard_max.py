"""Each τ against the hard max: `python analysis/vs_hard_max.py RUNS... --out DIR`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable without installing

from softq_lab.analysis.cli import vs_hard_max_main

if __name__ == "__main__":
    sys.exit(vs_hard_max_main())
