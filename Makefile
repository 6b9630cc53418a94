# The two commands of the quickstart: `make demo` and `make test`. Each creates .venv if missing.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
DATA_DIR ?= data/demo
MODEL_DIR ?= runs/demo
export TF_CPP_MIN_LOG_LEVEL ?= 2
# The sample is 74% monkey (1,000 of 1,354 distinct drawings), so the demo converts a balanced subset into its
# own DATA_DIR: 30% of each class held out for test and 15% for eval, then at most 30 train / 5 eval / 10 test
# drawings a class (the lowest key_id hashes: the same subset on every run). data/sample itself is unchanged,
# and data/tfrecords stays free for the full conversion (python -m beam_jobs.make_tfrecords).
DEMO_SPLIT ?= --test_fraction=0.3 --eval_fraction=0.15 --train_per_class=30 --eval_per_class=5 --test_per_class=10

PORT ?= 8000
CHROMIUM ?= /usr/bin/chromium
# The page's browser runtime: ONNX Runtime Web's WASM build from its npm package (package.json pins it,
# package-lock.json pins the rest), copied where the server and python -m quickdraw_tf.static_page take
# it. Both copies stay out of git (.gitignore): the WASM is 15 MB.
ORT_DIST := node_modules/onnxruntime-web/dist
WEB_RUNTIME := quickdraw_tf/serve/static/ort
# The suite: the package's tests (laid out like the package) and the benchmark scripts' own tests.
TESTS := tests benchmarks/tests

.PHONY: demo test test-fast lint clean serve sysdeps web

$(INSTALLED): setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,dask,onnx]"
	@touch $(INSTALLED)

# npm ci: exactly package-lock.json's packages (their install scripts are not needed and not run)
$(WEB_RUNTIME)/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts
	mkdir -p $(WEB_RUNTIME)
	cp $(ORT_DIST)/ort.wasm.bundle.min.mjs $(WEB_RUNTIME)/ort.bundle.js
	cp $(ORT_DIST)/ort-wasm-simd-threaded.wasm $(WEB_RUNTIME)/
	@touch $@

web: $(WEB_RUNTIME)/.installed

# convert a balanced subset of the embedded sample -> train configs/rnn_small.flags -> evaluate on its test split
demo: $(INSTALLED)
	$(PY) -m beam_jobs.make_tfrecords --runner=DirectRunner --output_dir=$(DATA_DIR) --overwrite $(DEMO_SPLIT)
	rm -rf $(MODEL_DIR)
	$(PY) -m quickdraw_tf.train --flagfile=configs/rnn_small.flags --data_dir=$(DATA_DIR) --model_dir=$(MODEL_DIR)
	$(PY) -m quickdraw_tf.evaluate --model_dir=$(MODEL_DIR) --data_dir=$(DATA_DIR) --split=test
	@echo "TensorBoard: $(VENV)/bin/tensorboard --logdir $(MODEL_DIR)"

# What the tests need from Debian, installed only when missing (CI runs as root): Chromium for the browser
# tests (Playwright's own browser download is not used), the cairo runtime for cairocffi (the numpy_bitmap
# recipe test), curl (the docs' curl lines run as written) and npm (the page's runtime: make web). Where
# they cannot be installed, those tests fail with a one-line reason.
sysdeps:
	@missing=""; test -x $(CHROMIUM) || missing="chromium"; \
	ldconfig -p | grep -q 'libcairo\.so\.2' || missing="$$missing libcairo2"; \
	command -v curl >/dev/null || missing="$$missing curl"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; } \
		|| echo "could not install$$missing: the tests that need it will fail (apt-get install -y$$missing as root)"; \
	fi

# serve the model `make demo` trained: open http://127.0.0.1:$(PORT)/ and draw (the page guesses in the
# browser; http://127.0.0.1:$(PORT)/?engine=server asks the server instead)
serve: $(INSTALLED) web
	@test -f $(MODEL_DIR)/model.keras || { echo "no trained model in $(MODEL_DIR): run make demo first"; exit 2; }
	$(PY) -m quickdraw_tf.serve --model_dir=$(MODEL_DIR) --port=$(PORT)

# Both tiers (pyproject.toml's markers), two pytest workers (one per core of a CI machine); each test file runs
# whole on one worker.
test: $(INSTALLED) sysdeps web
	$(PY) -m ruff check .
	$(PY) -m pytest -q -n 2 --dist loadfile $(TESTS)

# The edit loop: the tests not marked integration (no Beam pipeline, training, subprocess, server or browser),
# on two xdist workers handed tests one at a time (--dist load): the fast tests are many and short, so this
# balances the two cores better than whole files do.
test-fast: $(INSTALLED)
	$(PY) -m pytest -q -m "not integration" -n 2 --dist load $(TESTS)

lint: $(INSTALLED)
	$(PY) -m ruff check .

clean:
	rm -rf $(DATA_DIR) $(dir $(DATA_DIR)).$(notdir $(DATA_DIR)).* data/tfrecords data/.tfrecords.* runs
