"""The classic maximization-bias effect (Sutton & Barto, Figure 6.5), reproduced by the trainer.

Tabular one-step Q-learning with the hard max goes left from A far more often than the 5% that an
optimal ε = 0.1 policy takes (ε/2), early in training; Double Q-learning (two estimators) does not.
"""

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from softq_lab.drivers import host
from softq_lab.envs import make as make_env
from softq_lab.run.config import from_dict
from softq_lab.run.train import CONFIG_DIR

SEEDS = range(12)


def left_fractions(double: str, seed: int) -> np.ndarray:
    with initialize_config_dir(str(CONFIG_DIR), version_base=None):
        cfg = compose(
            "config", overrides=["+experiment=maxbias", f"double={double}", f"seed={seed}"]
        )
    run_cfg = from_dict(OmegaConf.to_container(cfg, resolve=True))
    records = []
    host.train(run_cfg, make_env.make(run_cfg.env), lambda step, r: records.append(r))
    return np.array([r["maxbias/left"] for r in records if "maxbias/left" in r])


@pytest.fixture(scope="module")
def early_left():
    """Mean fraction of episodes 11–100 that went left from A, over seeds, per `double` mode."""
    return {
        double: np.mean([left_fractions(double, seed)[10:100].mean() for seed in SEEDS])
        for double in ["none", "twin"]
    }


def test_hard_max_q_learning_goes_left_far_more_than_the_optimal_five_percent(early_left):
    assert early_left["none"] > 0.4  # measured ≈ 0.7


def test_double_q_learning_stays_near_the_optimal_five_percent(early_left):
    assert early_left["twin"] < 0.2  # measured ≈ 0.1
    assert early_left["twin"] < early_left["none"] / 3
