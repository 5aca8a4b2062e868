# The README's two commands. Each sets up .venv itself (re-installing only when pyproject.toml changed).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PROFILE ?= quick

SEEDS ?= 20

# `make book` runs these experiments at the quick profile (the cross-check kit's run is `make test`'s job)
BOOK_EXPERIMENTS := exact synthetic distributed_bias resnet
E ?= exact

.PHONY: test book fuzz setup clean verify results

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

# Quick results go to verification/results/quick/ (git-ignored); the book also shows the committed ones.
book: $(STAMP)
	@for e in $(BOOK_EXPERIMENTS); do \
		extra=; [ $$e = resnet ] && extra=--no-progress; \
		TQDM_DISABLE=1 $(BIN)/kd2m-ref verify $$e --profile quick $$extra || exit 1; \
	done
	$(BIN)/jupyter-book build book --warningiserror --nitpick --keep-going
	@echo "book built: book/_build/html/index.html"

# One experiment: make verify E=synthetic PROFILE=full (exits 1 when a must-hold claim is violated)
verify: $(STAMP)
	$(BIN)/kd2m-ref verify $(E) --profile $(PROFILE)

# The committed results, each from a clean tree (hours on 2 CPU cores; resnet standard is the longest)
results: $(STAMP)
	@test -z "$$(git status --porcelain)" || { echo "make results: commit first (results name a clean commit)"; exit 1; }
	$(BIN)/kd2m-ref verify exact --profile full --jobs 2
	$(BIN)/kd2m-ref verify synthetic --profile full
	$(BIN)/kd2m-ref verify distributed_bias --profile full
	$(BIN)/kd2m-ref verify crosscheck --profile full
	$(BIN)/kd2m-ref verify resnet --profile standard --no-progress

clean:
	rm -rf $(VENV) book/_build
