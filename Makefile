# make demo: train the quick-start model; make test: run the test suite.
# Both create .venv (if missing) and install the package from this checkout.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test benchmark clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# TF Serving's gRPC protos (for serve --grpc-port) come without their dependencies: the package
# requires "tensorflow", which would install a second TensorFlow beside tensorflow-cpu.
$(STAMP): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[test]"
	$(BIN)/python -m pip install --quiet --no-deps "tensorflow-serving-api~=$$(TF_CPP_MIN_LOG_LEVEL=3 \
	  $(BIN)/python -c 'import tensorflow as tf; print(tf.__version__.rsplit(".", 1)[0] + ".0")')"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/seqclf fit --arch bigru datasets/movie_reviews_sample.csv --verbose 2 | tee $(VENV)/demo.log
	@run=$$(sed -n 's/^Run directory: //p' $(VENV)/demo.log); \
	$(BIN)/seqclf info $$run && \
	$(BIN)/seqclf predict $$run --text "a gripping, funny and moving film" --text "dull, predictable and far too long" && \
	echo "The run went to $$run"

test: $(STAMP)
	$(BIN)/python -m pytest -n 2  # two worker processes: the suite takes about 10 minutes on 2 cores

benchmark: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[test,benchmark]"
	$(BIN)/python benchmarks/text_accuracy.py
	$(BIN)/python benchmarks/timeseries_accuracy.py
	$(BIN)/python benchmarks/warmup.py
	$(BIN)/python benchmarks/timeseries_many_to_many.py
	$(BIN)/python benchmarks/serve_load.py
	$(BIN)/python benchmarks/stock_windows.py
	$(BIN)/python benchmarks/architectures.py
	$(BIN)/python benchmarks/odyssey.py
	$(BIN)/python benchmarks/vanishing_gradients.py
	$(BIN)/python benchmarks/tagging_accuracy.py --heads softmax,crf --seeds 3
	$(BIN)/python benchmarks/tagging_accuracy.py --data conll2000 --seeds 3
	$(BIN)/python benchmarks/char_lm.py --epochs 10 --batch-size 32
	$(BIN)/python benchmarks/g2p.py
	$(BIN)/python benchmarks/epoch_phases.py
	$(BIN)/python benchmarks/server_soak.py --seconds 60
	$(BIN)/python benchmarks/scale.py

clean:
	rm -rf $(VENV) runs build *.egg-info
