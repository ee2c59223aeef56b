"""The console's pieces as functions: the bar follows the records of a batch, the summary block and
the sweep table format what they are given."""

from pathlib import Path

from softq_lab.run import console
from softq_lab.run.config import WandbConfig


def test_the_bar_follows_the_records_and_shows_the_mean_of_the_last_evaluations(capsys):
    bar = console.Progress(total_steps=1000, runs=2)
    logged: list[tuple[int, int, dict]] = []
    logs = [bar.tap(r, lambda step, rec, r=r: logged.append((r, step, rec))) for r in range(2)]
    logs[0](400, {"train/episode_return": 9.0})
    logs[0](500, {"eval/return_mean": 10.0, "overestimation/bias_hard": 1.0})
    logs[1](500, {"eval/return_mean": 30.0, "overestimation/bias_hard": 3.0})
    logs[1](1000, {"learner/loss": 0.5})
    bar.close()
    err = capsys.readouterr().err
    assert len(logged) == 4  # every record still reaches the run's own logger
    assert "2000/2000" in err and "env steps/s" in err  # env steps of both runs
    assert "last eval (mean of 2): greedy return 20.0, bias_hard +2" in err


def test_the_summary_block_shows_the_final_numbers_the_run_dir_and_what_to_run_next():
    result = {"status": "finished", "step": 600,
              "eval": {"eval/return_mean": 0.5, "overestimation/bias_hard": -0.25,
                       "overestimation/bias_soft": 0.125, "exact/mae_qstar": 0.0625}}  # fmt: skip
    lines = console.summary_block(result, Path("out/run"), WandbConfig(mode="offline"))
    assert lines == [
        "softq-train: run finished at step 600",
        "  greedy eval return:                   0.5",
        "  over-estimation bias vs hard return:  -0.25",
        "  over-estimation bias vs soft return:  +0.125",
        "  exact |q - Q*|:                       0.0625",
        "  run dir:                              out/run",
        "  upload to wandb:                      wandb sync out/run/wandb/offline-run-*",
        "  analyze:                              softq-analyze out/run --out out/run/analysis",
    ]
    disabled = console.summary_block(result, Path("out/run"), WandbConfig(mode="disabled"))
    assert not any("wandb sync" in line for line in disabled)


def test_the_sweep_table_has_one_row_per_job_and_a_dash_for_no_return():
    rows = [("0", "tau=0", "finished", 500.0), ("1", "tau=0.1", "diverged", None)]
    assert console.sweep_table(rows) == [
        "  job  overrides  status    return",
        "  #0   tau=0      finished   500.0",
        "  #1   tau=0.1    diverged       -",
    ]
