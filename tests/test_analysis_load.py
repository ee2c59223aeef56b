"""The loader: run discovery, metrics/config/status parsing, partial runs, cache, wandb frames."""

from __future__ import annotations

import contextlib
import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from softq_lab.analysis import load
from softq_lab.analysis.load import (
    AnalysisError,
    AnalysisWarning,
    combine,
    flatten_config,
    frame_from_wandb_runs,
    load_runs,
    load_wandb,
)

from fake_runs import (
    make_config,
    make_records,
    tau_grid,
    write_rejected_job,
    write_run,
    write_sweep,
)


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SOFTQ_LAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def raw_records(run_dir: Path) -> list[dict[str, Any]]:
    out = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        with contextlib.suppress(ValueError):
            out.append(json.loads(line))
    return out


def test_multirun_and_single_run_dirs_load_into_one_row_per_run_and_step(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path / "multirun/2025-01-01/12-00-00", tau_grid([0, 0.1], [0, 1]))
    single = write_run(tmp_path / "outputs/2025-01-01/13-00-00", tau=1.0, seed=3)
    runs = load_runs([tmp_path / "multirun", tmp_path / "outputs"])

    assert len(runs.runs) == 5  # .hydra/config.yaml and wandb/**/config.yaml are not runs
    assert set(runs.runs["status"]) == {"finished"} and not runs.runs["partial"].any()
    for column in (
        "env",
        "env.id",
        "network",
        "n_step",
        "gamma",
        "tau",
        "operator",
        "double",
        "seed",
        "lr",
        "total_steps",
        "network.hidden",
        "logger.every",
        "eval.every",
    ):
        assert column in runs.runs.columns, column
    assert runs.runs["env"].eq("cartpole").all() and runs.runs["network"].eq("type1").all()
    assert sorted(runs.runs["tau"]) == [0, 0, 0.1, 0.1, 1.0]
    assert not runs.metrics.duplicated(["run_id", "step"]).any()

    for run_dir, run_id in zip([*sweep, single], runs.runs["run_id"], strict=True):
        records = raw_records(run_dir)
        frame = runs.metrics[runs.metrics["run_id"] == run_id]
        assert frame["tau"].nunique() == 1 and frame["seed"].nunique() == 1
        for key in {k for r in records for k in r} - {"step"}:
            logged = sorted((r["step"], r[key]) for r in records if key in r)
            loaded = sorted(frame.loc[frame[key].notna(), ["step", key]].itertuples(index=False))
            assert [(s, pytest.approx(v)) for s, v in logged] == loaded, key
        row = runs.runs[runs.runs["run_id"] == run_id].iloc[0]
        assert row["last_step"] == max(r["step"] for r in records)
        last_eval = [r["eval/return_mean"] for r in records if "eval/return_mean" in r][-1]
        assert row["eval/return_mean"] == pytest.approx(last_eval)


def test_killed_run_with_a_cut_last_line_loads_what_it_logged_and_is_flagged(
    tmp_path: Path,
) -> None:
    run_dir = write_run(tmp_path / "killed", status=None, truncate=True, tau=0.1)
    full = make_records(make_config(tau=0.1))
    with pytest.warns(AnalysisWarning, match="half-written last line"):
        runs = load_runs([run_dir])
    row = runs.runs.iloc[0]
    assert (row["status"], bool(row["partial"]), row["skipped_lines"]) == ("killed", True, 1)
    kept = full[:-1]
    n_values = sum(len(r) - 1 for r in kept)
    assert (
        int(
            runs.metrics.drop(columns=runs.config_columns, errors="ignore")
            .drop(columns=["run_id", "step"])
            .notna()
            .sum()
            .sum()
        )
        == n_values
    )


def test_killed_run_without_status_but_complete_lines_is_killed_without_warning(
    tmp_path: Path, recwarn: pytest.WarningsRecorder
) -> None:
    runs = load_runs([write_run(tmp_path / "r", status=None)])
    assert runs.runs.iloc[0]["status"] == "killed"
    assert not [w for w in recwarn if issubclass(w.category, AnalysisWarning)]


@pytest.mark.parametrize("status", ["killed", "preempted", "diverged"])
def test_a_run_that_stopped_early_with_a_known_status_is_partial_without_warnings(
    tmp_path: Path, recwarn: pytest.WarningsRecorder, status: str
) -> None:
    runs = load_runs([write_run(tmp_path / "r", status=status, stop_at=500)])
    row = runs.runs.iloc[0]
    assert (row["status"], bool(row["partial"]), row["last_step"]) == (status, True, 500)
    assert not [w for w in recwarn if issubclass(w.category, AnalysisWarning)]


def test_an_unknown_status_is_kept_partial_and_reported(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "r")
    (run_dir / "status.json").write_text(json.dumps({"status": "exploded", "step": 3}))
    with pytest.warns(AnalysisWarning, match="unknown status 'exploded'"):
        row = load_runs([run_dir]).runs.iloc[0]
    assert (row["status"], bool(row["partial"])) == ("exploded", True)


def test_failed_run_is_flagged_with_its_error(tmp_path: Path) -> None:
    runs = load_runs([write_run(tmp_path / "f", status="failed")])
    row = runs.runs.iloc[0]
    assert row["status"] == "failed" and row["partial"]
    assert row["error"] == "FloatingPointError: loss is nan"
    assert len(runs.metrics) > 0


def test_corrupt_line_in_the_middle_is_skipped_with_a_warning_naming_its_line(
    tmp_path: Path,
) -> None:
    run_dir = write_run(tmp_path / "r")
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    lines.insert(3, '{"step": 12, "train/episode_ret')
    (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.warns(AnalysisWarning, match=r"metrics.jsonl:4: skipped a corrupt line"):
        runs = load_runs([run_dir])
    assert runs.runs.iloc[0]["skipped_lines"] == 1
    assert runs.runs.iloc[0]["n_rows"] == len(
        {json.loads(ln)["step"] for ln in lines[:3] + lines[4:]}
    )


def test_records_at_one_step_merge_and_a_key_repeated_at_one_step_is_kept(tmp_path: Path) -> None:
    records = [
        {"step": 10, "train/episode_return": 1.0, "train/episode": 0},
        {"step": 10, "train/episode_return": 2.0, "train/episode": 1},
        {"step": 10, "eval/return_mean": 5.0},
        {"step": 20, "eval/return_mean": 6.0},
        {"step": 20, "overestimation/bias_hard": 0.5},
    ]
    runs = load_runs([write_run(tmp_path / "r", records=records)], cache=False)
    m = runs.metrics
    assert list(m["step"]) == [10, 10, 20]
    assert sorted(m.loc[m["step"] == 10, "train/episode_return"]) == [1.0, 2.0]
    assert m["eval/return_mean"].notna().sum() == 2
    assert m.loc[
        m["step"] == 20, ["eval/return_mean", "overestimation/bias_hard"]
    ].values.tolist() == [[6.0, 0.5]]


def test_non_numeric_values_become_nan_and_nan_tokens_parse(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "r", records=[{"step": 1, "learner/loss": 1.0}])
    (run_dir / "metrics.jsonl").write_text(
        '{"step": 1, "learner/loss": NaN, "a/b": "text"}\n{"step": 2, "learner/loss": 2.5}\n'
    )
    runs = load_runs([run_dir], cache=False)
    assert runs.metrics["learner/loss"].tolist()[1] == 2.5
    assert np.isnan(runs.metrics["learner/loss"].tolist()[0])
    assert runs.metrics["a/b"].isna().all()


NONFINITE_RECORDS = [
    {"step": 10, "eval/return_mean": 1.0, "overestimation/bias_hard": 0.5},
    {"step": 20, "eval/return_mean": math.inf, "overestimation/bias_hard": math.nan},
    {"step": 20, "learner/loss": -math.inf},
    {"step": 30, "eval/return_mean": 3.0},
]


@pytest.mark.parametrize("corrupt_line", [False, True], ids=["pyarrow", "line by line"])
def test_logged_nan_and_inf_are_kept_apart_from_the_finite_metrics(
    tmp_path: Path, corrupt_line: bool
) -> None:
    run_dir = write_run(tmp_path / "r", records=NONFINITE_RECORDS)
    if corrupt_line:  # forces the line-by-line parser
        with (run_dir / "metrics.jsonl").open("a") as f:
            f.write('{"step": 40, "eval/ret\n')
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AnalysisWarning)
        runs = load_runs([run_dir], cache=False)
    bad = runs.nonfinite
    assert bad.columns.tolist() == ["run_id", "step", "key", "value"]
    got = sorted((s, k, str(v)) for s, k, v in bad[["step", "key", "value"]].itertuples(index=False))
    assert got == [
        (20, "eval/return_mean", "inf"),
        (20, "learner/loss", "-inf"),
        (20, "overestimation/bias_hard", "nan"),
    ]
    assert set(bad["run_id"]) == set(runs.runs["run_id"])
    values = runs.metrics.drop(columns=["run_id", "step", *runs.config_columns], errors="ignore")
    assert np.isfinite(values.to_numpy(float)[values.notna().to_numpy()]).all()
    row = runs.runs.iloc[0]
    assert row["n_nonfinite"] == 3 and row["eval/return_mean"] == 3.0


def test_nonfinite_values_are_cached_with_the_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = write_run(tmp_path / "r", records=NONFINITE_RECORDS)
    first = load_runs([run_dir])
    monkeypatch.setattr(load, "parse_jsonl", lambda path: pytest.fail("parsed although cached"))
    again = load_runs([run_dir])
    pd.testing.assert_frame_equal(first.nonfinite, again.nonfinite)
    assert len(again.nonfinite) == 3


def test_wandb_nonfinite_values_are_kept_apart_and_combine_keeps_both(tmp_path: Path) -> None:
    history = [{"_step": 1, "eval/return_mean": math.nan}, {"_step": 2, "eval/return_mean": 2.0}]
    remote = frame_from_wandb_runs([FakeWandbRun("x", "finished", {"tau": 0.0}, history)], "e/p")
    assert remote.nonfinite[["step", "key"]].values.tolist() == [[1, "eval/return_mean"]]
    assert remote.runs.iloc[0]["n_nonfinite"] == 1
    local = load_runs([write_run(tmp_path / "r", records=NONFINITE_RECORDS)], cache=False)
    both = combine(local, remote)
    assert len(both.nonfinite) == 4 and set(both.nonfinite["run_id"]) == set(both.runs["run_id"])


def test_cache_is_read_instead_of_json_and_refreshed_when_the_file_changes(
    tmp_path: Path, _cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = write_run(tmp_path / "r")
    first = load_runs([run_dir])
    assert list(_cache.glob("*.parquet"))

    def no_parsing(path: Path) -> None:
        raise AssertionError("parsed although cached")

    with monkeypatch.context() as m:
        m.setattr(load, "parse_jsonl", no_parsing)
        again = load_runs([run_dir])
    pd.testing.assert_frame_equal(first.metrics, again.metrics)
    pd.testing.assert_frame_equal(first.runs, again.runs)

    with (run_dir / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"step": 99999, "eval/return_mean": 123.0}) + "\n")
    changed = load_runs([run_dir])
    assert changed.metrics["step"].max() == 99999
    assert changed.runs.iloc[0]["eval/return_mean"] == 123.0


def test_cached_killed_run_still_warns_about_its_skipped_line(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "k", status=None, truncate=True)
    with pytest.warns(AnalysisWarning):
        load_runs([run_dir])
    with pytest.warns(AnalysisWarning, match="half-written"):
        runs = load_runs([run_dir])
    assert runs.runs.iloc[0]["skipped_lines"] == 1


def _missing(root: Path) -> Path:
    return root / "missing"


def _empty(root: Path) -> Path:
    (root / "empty").mkdir()
    return root / "empty"


def _no_runs(root: Path) -> Path:
    (root / "x" / "sub").mkdir(parents=True)
    (root / "x" / "notes.txt").write_text("hi")
    return root / "x"


@pytest.mark.parametrize(
    "make, message",
    [
        (_missing, "no such file or directory"),
        (_empty, "empty directory"),
        (_no_runs, "no runs found"),
    ],
)
def test_a_path_without_runs_is_a_one_line_error_naming_it(tmp_path: Path, make, message) -> None:
    path = make(tmp_path)
    with pytest.raises(AnalysisError, match=message) as info:
        load_runs([path])
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_a_job_whose_config_was_rejected_is_reported_in_one_line_and_is_not_a_run(
    tmp_path: Path,
) -> None:
    write_run(tmp_path / "sweep" / "0")
    write_rejected_job(tmp_path / "sweep" / "1", error="ValueError: bad tau\n  more detail")
    with pytest.warns(AnalysisWarning) as caught:
        runs = load_runs([tmp_path / "sweep"])
    messages = [str(w.message) for w in caught if issubclass(w.category, AnalysisWarning)]
    assert messages == [
        f"{tmp_path / 'sweep' / '1'}: not a run (status failed, no config.yaml or metrics.jsonl): "
        "ValueError: bad tau more detail"
    ]
    assert runs.runs["run_path"].tolist() == [str((tmp_path / "sweep" / "0").resolve())]


def test_a_sweep_of_rejected_jobs_only_is_a_one_line_error_after_one_warning_per_job(
    tmp_path: Path,
) -> None:
    for i in range(3):
        write_rejected_job(tmp_path / "sweep" / str(i))
    with (
        pytest.warns(AnalysisWarning, match="not a run") as caught,
        pytest.raises(AnalysisError, match=r"no runs found, only 3 job dir\(s\)") as info,
    ):
        load_runs([tmp_path / "sweep"])
    assert "(3 failed; see the warnings)" in str(info.value) and "\n" not in str(info.value)
    assert len([w for w in caught if issubclass(w.category, AnalysisWarning)]) == 3


def test_config_flattening_renames_names_and_keeps_dotted_leaves() -> None:
    flat = flatten_config(
        {
            "env": {"name": "cartpole", "id": "CartPole-v1"},
            "network": {"name": "type2", "hidden": [64, 64]},
            "tau": 0.1,
            "eval": {"every": 100, "greedy": {"eps": 0.0}},
            "_wandb": {"x": 1},
        }
    )
    assert flat == {
        "env": "cartpole",
        "env.id": "CartPole-v1",
        "network": "type2",
        "network.hidden": "[64, 64]",
        "tau": 0.1,
        "eval.every": 100,
        "eval.greedy.eps": 0.0,
    }


def test_tidy_frame_carries_key_and_varying_config_columns_only(tmp_path: Path) -> None:
    write_sweep(tmp_path / "s", tau_grid([0, 0.1], [0, 1]))
    runs = load_runs([tmp_path / "s"])
    assert {"env", "tau", "seed", "wandb.group"} <= set(runs.metrics.columns)  # group varies
    assert "out_dir" not in runs.metrics.columns and "out_dir" in runs.runs.columns


class FakeWandbRun:
    def __init__(self, run_id: str, state: str, config: dict, history: list[dict]):
        self.id, self.state, self.config, self._history = run_id, state, config, history

    def scan_history(self) -> list[dict]:
        return self._history


def test_wandb_runs_build_the_same_frame_as_local_runs(tmp_path: Path) -> None:
    cfg = make_config(tau=0.1, seed=2)
    records = make_records(cfg)
    local = load_runs([write_run(tmp_path / "r", records=records, tau=0.1, seed=2)], cache=False)
    history = [{"_step": i, "_runtime": 1.0, "perf/sps": 5.0, **r} for i, r in enumerate(records)]
    remote = frame_from_wandb_runs(
        [FakeWandbRun("abc", "crashed", {**cfg, "_wandb": {"v": 1}}, history)], "ent/proj"
    )

    row = remote.runs.iloc[0]
    assert (row["run_id"], row["source"], row["status"]) == (
        "wandb:ent/proj/abc",
        "wandb",
        "failed",
    )
    assert remote.config_columns == local.config_columns
    columns = [c for c in local.metrics.columns if c != "run_id"]
    pd.testing.assert_frame_equal(remote.metrics[columns], local.metrics[columns])

    both = combine(local, remote)
    assert len(both.runs) == 2 and set(both.runs["source"]) == {"local", "wandb"}


def test_wandb_history_without_a_step_key_uses_wandb_step() -> None:
    run = FakeWandbRun(
        "x",
        "finished",
        {"tau": 0.0},
        [{"_step": 5, "eval/return_mean": 1.0}, {"_step": 9, "eval/return_mean": 2.0}],
    )
    frame = frame_from_wandb_runs([run], "e/p")
    assert frame.metrics["step"].tolist() == [5, 9]
    assert frame.runs.iloc[0]["status"] == "finished"


def test_wandb_unreachable_is_a_one_line_error() -> None:
    class OfflineApi:
        def runs(self, path: str) -> None:
            raise ConnectionError("HTTPSConnectionPool(host='api.wandb.ai'): Max retries\nexceeded")

    with pytest.raises(AnalysisError, match=r"^cannot load wandb project ent/proj: ") as info:
        load_wandb("ent/proj", api=OfflineApi())
    assert "\n" not in str(info.value)
    with pytest.raises(AnalysisError, match="ENTITY/PROJECT"):
        load_wandb("just-a-project")
