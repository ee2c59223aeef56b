"""softq-lab's Hydra configs, shipped as the package `softq_lab.conf` (the clone's top-level conf/).

`CONFIG_DIR` is the one place that says where they are, in a clone (editable install) and in an
installed wheel alike."""

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent
