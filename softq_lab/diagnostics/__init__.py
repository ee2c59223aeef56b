"""Over-estimation diagnostics: evaluation episodes, Monte-Carlo returns, exact tabular truth."""
