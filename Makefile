# The two commands of the quickstart: `make demo` and `make test`. Each creates .venv if missing.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
DATA_DIR ?= data/tfrecords
MODEL_DIR ?= runs/demo
export TF_CPP_MIN_LOG_LEVEL ?= 2

PORT ?= 8000
CHROMIUM ?= /usr/bin/chromium

.PHONY: demo test lint bench clean serve browser

$(INSTALLED): setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	@# cairocffi (test extra: the numpy_bitmap recipe test) needs the cairo runtime, no compiler
	@ldconfig -p | grep -q 'libcairo\.so\.2' || { command -v sudo >/dev/null && sudo apt-get install -y -q libcairo2 \
		|| apt-get install -y -q libcairo2; }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	@touch $(INSTALLED)

# convert the embedded sample -> train configs/rnn_small.flags -> evaluate on the test split
demo: $(INSTALLED)
	$(PY) -m beam_jobs.make_tfrecords --runner=DirectRunner --output_dir=$(DATA_DIR)
	rm -rf $(MODEL_DIR)
	$(PY) -m quickdraw_tf.train --flagfile=configs/rnn_small.flags --data_dir=$(DATA_DIR) --model_dir=$(MODEL_DIR)
	$(PY) -m quickdraw_tf.evaluate --model_dir=$(MODEL_DIR) --data_dir=$(DATA_DIR) --split=test
	@echo "TensorBoard: $(VENV)/bin/tensorboard --logdir $(MODEL_DIR)"

# Debian's Chromium for the browser tests (Playwright's own browser download is not used). On a machine
# where it cannot be installed (not root, no apt), the browser tests fail with a one-line reason.
browser:
	@test -x $(CHROMIUM) || { apt-get update && apt-get install -y chromium; } \
		|| echo "could not install chromium: the browser tests will fail (apt-get install -y chromium as root)"

# serve the model `make demo` trained: open http://127.0.0.1:$(PORT)/ and draw
serve: $(INSTALLED)
	@test -f $(MODEL_DIR)/model.keras || { echo "no trained model in $(MODEL_DIR): run make demo first"; exit 2; }
	$(PY) -m quickdraw_tf.serve --model_dir=$(MODEL_DIR) --port=$(PORT)

test: $(INSTALLED) browser
	$(PY) -m ruff check .
	$(PY) -m pytest -q tests

lint: $(INSTALLED)
	$(PY) -m ruff check .

clean:
	rm -rf $(DATA_DIR) runs
