# Two commands do all the set-up on a fresh clone:
#   make run    the main job (softq-train on its embedded defaults), in a local .venv
#   make test   the whole test suite, slow end-to-end tests included (what CI runs)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint clean

# A recent pip (26.3 here) shows the build backend's warnings, and setuptools' editable install of
# this layout (a finder that maps softq_lab.conf to conf/) always ends with an "Editable
# installation." notice, a multi-line "!!" banner; pyproject.toml offers no way to turn it off. The
# filter drops that one notice (warnings whose text starts with it), nothing else: errors and other
# warnings still show.

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/softq-train $(ARGS)

test: $(STAMP)
	$(BIN)/ruff check .
	JAX_PLATFORMS=cpu WANDB_MODE=offline $(BIN)/pytest -q -n 2 --durations=10 $(ARGS)

clean:
	rm -rf $(VENV) outputs multirun
