"""softq-lab: soft Q-learning and over-estimation, on JAX."""

__version__ = "0.1.0"
