# The README's two commands. Each sets up .venv itself (re-installing only when pyproject.toml changed).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PROFILE ?= quick

SEEDS ?= 20

.PHONY: test book fuzz setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[all]"
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -n 2 -q

# The randomised Hypothesis profile with SEEDS different seeds (every property test; minutes per seed).
fuzz: $(STAMP)
	@for seed in $$(seq 1 $(SEEDS)); do \
		echo "== make fuzz: seed $$seed of $(SEEDS)"; \
		HYPOTHESIS_PROFILE=dev $(BIN)/python -m pytest -m "hypothesis and not slow" -n 2 -q -p no:cacheprovider \
			--hypothesis-seed=$$seed || { echo "make fuzz: failed with --hypothesis-seed=$$seed"; exit 1; }; \
	done

book: $(STAMP)
	$(BIN)/kd2m-ref verify exact --profile quick
	$(BIN)/kd2m-ref verify synthetic --profile quick
	$(BIN)/kd2m-ref verify resnet --profile quick --no-progress
	$(BIN)/python -m verification.run_distributed_bias --profile quick
	$(BIN)/jupyter-book build book --warningiserror --nitpick --keep-going
	@echo "book built: book/_build/html/index.html"

clean:
	rm -rf $(VENV) book/_build
