# Two commands do all the set-up on a fresh clone:
#   make run    the main job (softq-train on its embedded defaults), in a local .venv
#   make test   the whole test suite, slow end-to-end tests included (what CI runs)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/softq-train $(ARGS)

test: $(STAMP)
	$(BIN)/ruff check .
	JAX_PLATFORMS=cpu WANDB_MODE=offline $(BIN)/pytest -q -n 2 --durations=10 $(ARGS)

clean:
	rm -rf $(VENV) outputs multirun
