#!/usr/bin/env bash
# Deep over-estimation on CartPole, Figure-3 style (van Hasselt, Guez & Silver 2016), and the bias
# decomposition against Monte-Carlo returns (reproduction 5, CartPole part): the main job's settings
# (type-2 128×128 q-network, n = 3, 50k steps), τ ∈ {0, 0.01, 0.1, 1} and Double DQN, SEEDS seeds each.
# q̂ at the evaluation episodes' start states against the discounted return the policy actually
# gets (hard and soft), over training, with 95% CI bands; final return alongside.
#
#   experiments/cartpole_overestimation.sh                  # 10 seeds per config (SEEDS=10)
#   SEEDS=2 STEPS=3000 experiments/cartpole_overestimation.sh   # a quick check of the pipeline
#
# Sweeps go to multirun/cartpole_overestimation-$SEEDS/<part>, tables and figures to
# results/cartpole_overestimation-$SEEDS/ (override with SWEEP_DIR / OUT). A part already finished
# with the same arguments is reused.
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-10}
STEPS=${STEPS:-50000}
SWEEP_DIR=${SWEEP_DIR:-multirun/cartpole_overestimation-$SEEDS}
OUT=${OUT:-results/cartpole_overestimation-$SEEDS}
FIGURES=${FIGURES:-}
source experiments/sweep.sh

common=("seed=range(0,$SEEDS)" total_steps="$STEPS" eval.every="$((STEPS / 10))"
        hydra/launcher=batched logger.wandb.mode=disabled logger.progress=off "$@")
sweep "$SWEEP_DIR/soft" tau=0,0.01,0.1,1 "${common[@]}"
sweep "$SWEEP_DIR/double_dqn" tau=0 double=target "${common[@]}"

softq-analyze "$SWEEP_DIR" --out "$OUT" --n-resamples 2000 --no-cache
python experiments/decomposition.py "$OUT" --truth monte_carlo ${FIGURES:+--copy-to "$FIGURES"}
