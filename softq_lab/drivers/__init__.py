"""Training loops: each owns one loop around the core learner (host: a Python loop per run)."""
