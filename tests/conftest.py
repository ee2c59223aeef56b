"""Test-wide settings: CPU JAX, offline wandb, a compilation cache that outlives one test."""

import os
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), "softq-lab-test-jax-cache")
)


def pytest_collection_modifyitems(items):
    """The slow end-to-end tests first (in their files' order): with two workers the long ones
    then run side by side, rather than one of them running alone at the end of the suite."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
