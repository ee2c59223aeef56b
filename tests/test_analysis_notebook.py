"""docs/analysis.md's Python example runs as written and gives what it says."""

import re
from pathlib import Path

import pandas as pd

from fake_runs import tau_grid, write_sweep

DOC = Path(__file__).resolve().parents[1] / "docs" / "analysis.md"


def notebook_example() -> str:
    section = DOC.read_text(encoding="utf-8").split("## From Python", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_documented_notebook_example_runs_on_a_sweep(tmp_path):
    write_sweep(tmp_path / "sweep", tau_grid([0, 0.1, 1], range(5)))
    code = re.sub(r'SWEEP = ".*"', f"SWEEP = {str(tmp_path / 'sweep')!r}", notebook_example())
    scope: dict = {}
    exec(code, scope)

    assert len(scope["runs"].runs) == 15
    curve = scope["curve"]
    assert list(curve.columns) == [0, 0.1, 1] and curve.notna().all().all()
    table = scope["table"]
    assert set(table["tau"]) == {0, 0.1, 1} and (table["n"] == 5).all()
    assert set(scope["versus"]["tau"]) == {0.1, 1}  # every τ > 0 against the hard max
    assert isinstance(scope["final_bias"], pd.Series) and len(scope["final_bias"]) == 3
