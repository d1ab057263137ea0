# The two commands of the README: `make quickstart` and `make test`. Both set up .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup quickstart test test-transformers4 lint clean

$(BIN)/imgdiff: pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,models,segment,eval,export,ray]'
	touch $(BIN)/imgdiff

setup: $(BIN)/imgdiff

quickstart: setup
	$(BIN)/imgdiff demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest -q

# The model backends' tests again on transformers 4.x (a second venv; CI runs it after `make test`).
TF4 := .venv-transformers4
MODEL_TESTS := tests/test_models_clip.py tests/test_models_blip.py tests/test_models_fastsam.py \
	tests/test_models_loading.py tests/test_models_text.py tests/test_models_vision_text.py tests/test_models_openai.py

$(TF4)/bin/imgdiff: pyproject.toml constraints.txt constraints-transformers4.txt
	$(PY) -m venv $(TF4)
	$(TF4)/bin/pip install --quiet --upgrade pip
	grep -vE '^(transformers|tokenizers|huggingface_hub|diffusers)==' constraints.txt \
		| cat - constraints-transformers4.txt > $(TF4)/constraints.txt
	$(TF4)/bin/pip install --quiet -c $(TF4)/constraints.txt -e '.[dev,models,segment]'
	touch $(TF4)/bin/imgdiff

test-transformers4: $(TF4)/bin/imgdiff
	$(TF4)/bin/python -m pytest -q -p no:cacheprovider $(MODEL_TESTS)

clean:
	rm -rf $(VENV) $(TF4) runs imgdiff-demo
