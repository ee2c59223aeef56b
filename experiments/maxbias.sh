#!/usr/bin/env bash
# Sutton & Barto, Example 6.7 / Figure 6.5, at the book's scale: % of episodes going left from A over
# 300 episodes, for the hard max, Double Q-learning, log-sum-exp at four τ, mellowmax and Boltzmann,
# each against the 5% optimum and against its own exact fixed point's choice.
#
#   experiments/maxbias.sh                 # 1,000 runs per config (RUNS=1000), ~28 min on 2 cores
#   RUNS=16 experiments/maxbias.sh         # a quick check of the pipeline
#
# Sweeps go to multirun/maxbias-$RUNS/<part>, tables and figures to results/maxbias-$RUNS/ (override
# with SWEEP_DIR / OUT). A part whose sweep already finished with the same arguments is reused.
# Extra arguments go to every softq-train call (e.g. hydra.launcher.max_batch=512). N_RESAMPLES
# (bootstrap, default 2000) and REFERENCE_RUNS (numpy reference, default 20000) trade precision for time.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-1000}
SWEEP_DIR=${SWEEP_DIR:-multirun/maxbias-$RUNS}
OUT=${OUT:-results/maxbias-$RUNS}
PNG=${PNG:-}
source experiments/sweep.sh

common=(+experiment=maxbias "seed=range(0,$RUNS)" hydra/launcher=batched logger.wandb.mode=disabled
        logger.progress=off "$@")
sweep "$SWEEP_DIR/hard_double" "${common[@]}" tau=0 double=none,twin
sweep "$SWEEP_DIR/soft" "${common[@]}" operator=soft tau=0.01,0.1,0.5,1
sweep "$SWEEP_DIR/mellowmax_boltzmann" "${common[@]}" operator=mellowmax,boltzmann tau=0.1,1

softq-analyze "$SWEEP_DIR" --out "$OUT" --n-resamples "${N_RESAMPLES:-2000}" --no-cache
python experiments/maxbias_figure.py "$OUT" --reference-runs "${REFERENCE_RUNS:-20000}" ${PNG:+--png "$PNG"}
