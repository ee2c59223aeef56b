#!/usr/bin/env bash
# Soft versus hard backups on CartPole (the main job's settings): tau in {0, 0.01, 0.1}, 5 seeds each.
set -euo pipefail
softq-train -m tau=0,0.01,0.1 seed=0,1,2,3,4 hydra/launcher=joblib hydra.launcher.n_jobs=2 \
    hydra.sweep.dir=multirun/cartpole_tau "$@"
softq-analyze multirun/cartpole_tau --out results/cartpole_tau
