# The two commands of the quickstart: `make demo` and `make test`. Each creates .venv if missing.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
DATA_DIR ?= data/tfrecords
MODEL_DIR ?= runs/demo
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: demo test lint bench clean

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
	$(PY) -m beam_jobs.make_tfrecords --runner=DirectRunner --output_dir=$(DATA_DIR) --overwrite
	rm -rf $(MODEL_DIR)
	$(PY) -m quickdraw_tf.train --flagfile=configs/rnn_small.flags --data_dir=$(DATA_DIR) --model_dir=$(MODEL_DIR)
	$(PY) -m quickdraw_tf.evaluate --model_dir=$(MODEL_DIR) --data_dir=$(DATA_DIR) --split=test
	@echo "TensorBoard: $(VENV)/bin/tensorboard --logdir $(MODEL_DIR)"

test: $(INSTALLED)
	$(PY) -m ruff check .
	$(PY) -m pytest -q tests

lint: $(INSTALLED)
	$(PY) -m ruff check .

clean:
	rm -rf $(DATA_DIR) $(dir $(DATA_DIR)).$(notdir $(DATA_DIR)).* runs
