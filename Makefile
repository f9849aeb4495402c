# Quick start: `make demo` grades the bundled examples; `make test` runs the project's tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast bench gpu-check clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[hf,reports,cluster,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m autograder grade ift6135_vit_lstm reference/ift6135_vit_lstm --results build/demo/reference/results.json
	$(PY) -m autograder grade ift6135_vit_lstm tests/fixtures/ift6135_vit_lstm/half_finished --results build/demo/half_finished/results.json
	$(PY) -m autograder grade uw_attention reference/uw_attention --results build/demo/uw_attention_reference/results.json

test: $(STAMP)
	$(PY) -m pytest -q -n auto --dist loadfile

# The lane a developer lives in (under a minute on 2 cores): unit tests of scoring and error
# translation over a fake transport, the wire, staging, the static scan, the notebook loader,
# results.json, the layout, mutation operators, similarity, the rate limit. No fork server is
# started (tests marked e2e or slow are left out); `make test` runs these and everything else.
FAST_TESTS := scoring wire static_scan staging cs224n_staging notebook_loader results_json layout \
	mutation_operators similarity rate_limit
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not e2e" $(FAST_TESTS:%=tests/test_%.py)

bench: $(STAMP)
	$(PY) bench/grading_cost.py

# On a machine with CUDA: every reference, template and fixture graded on CUDA and on the CPU,
# verdicts compared test by test (says CUDA is absent, and checks nothing else, without one).
gpu-check: $(STAMP)
	$(PY) bench/gpu_check.py --json build/gpu_check.json

clean:
	rm -rf $(VENV) build
