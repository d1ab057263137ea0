# The two commands of the README: `make quickstart` and `make test`. Both set up .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup quickstart test lint clean

$(BIN)/imgdiff: pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,models,segment]'
	touch $(BIN)/imgdiff

setup: $(BIN)/imgdiff

quickstart: setup
	$(BIN)/imgdiff demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs imgdiff-demo
