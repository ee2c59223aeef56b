#!/usr/bin/env bash
# Sutton & Barto, Figure 6.5: fraction of episodes going left from A, Q-learning vs Double Q-learning.
set -euo pipefail
softq-train -m +experiment=maxbias 'seed=range(0,20)' double=none,twin \
    hydra.sweep.dir=multirun/maxbias logger.wandb.mode=disabled "$@"
softq-analyze multirun/maxbias --out results/maxbias
