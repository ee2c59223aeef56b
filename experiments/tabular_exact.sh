#!/usr/bin/env bash
# Exact tabular truth (reproduction 4) and the bias decomposition (reproduction 5, tabular part):
# FrozenLake and CliffWalking, tabular q, τ ∈ {0, 0.01, 0.1, 0.5}, n ∈ {1, 3} (n = 3 with and without
# entropy_bonus), SEEDS seeds each; error and bias of q̂ against Q*_hard and against each operator's
# own fixed point Q*_op, and q̂ − Q*_hard split into estimation bias + entropy offset.
# Adam at lr 0.03: it reaches the fixed point in 50k steps, where the default 1e-3 moves a table
# entry too little (CliffWalking, τ = 0.1: 7.4 from its fixed point at 1e-3, 1e-4 at 0.03).
#
#   experiments/tabular_exact.sh            # 20 seeds per config (SEEDS=20)
#   SEEDS=2 STEPS=3000 experiments/tabular_exact.sh   # a quick check of the pipeline
#
# Sweeps go to multirun/tabular_exact-$SEEDS/<part>, tables and figures to results/tabular_exact-$SEEDS/
# (override with SWEEP_DIR / OUT). A part already finished with the same arguments is reused.
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-20}
STEPS=${STEPS:-50000}
SWEEP_DIR=${SWEEP_DIR:-multirun/tabular_exact-$SEEDS}
OUT=${OUT:-results/tabular_exact-$SEEDS}
FIGURES=${FIGURES:-}
source experiments/sweep.sh

# updates start after 1000 steps (the default), or after 2% of a shorter run
common=(network=tabular lr=0.03 "seed=range(0,$SEEDS)" total_steps="$STEPS" eval.every="$((STEPS / 5))"
        buffer.learning_starts="$((STEPS / 50 < 1000 ? STEPS / 50 : 1000))"
        tau=0,0.01,0.1,0.5 hydra/launcher=batched logger.wandb.mode=disabled logger.progress=off "$@")
for env in frozenlake cliffwalking; do
    sweep "$SWEEP_DIR/$env-n1" env=$env n_step=1 "${common[@]}"
    sweep "$SWEEP_DIR/$env-n3" env=$env n_step=3 entropy_bonus=false,true "${common[@]}"
done

softq-analyze "$SWEEP_DIR" --out "$OUT" --n-resamples 2000 --no-cache --no-figures \
    --ignore "env.kwargs.*" --ignore env.max_episode_steps   # they follow env
python experiments/decomposition.py "$OUT" --truth exact ${FIGURES:+--copy-to "$FIGURES"}
