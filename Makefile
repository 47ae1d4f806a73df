# Two commands on a fresh machine: `make train` and `make test`. Both create the venv if needed.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
# The main job is our fast recipe's network with its defaults (fast_cnn: Adam, beta1 0.7,
# beta2 0.9, batch 256, one-cycle to 0.015 over 215 steps): about 98% on the sample's 1,000
# test images in about 15 s of command (bf16 CPU). STEPS=N changes its length. Override, e.g.
# make train MODEL=cnn MODEL_DIR=/tmp/cnn-full TRAIN_ARGS="--dataset=mnist --data_dir=../shared/data/mnist --steps=20000"
# (the tutorial's settings on the full MNIST).
MODEL ?= fast_cnn
STEPS ?=
MODEL_DIR ?= /tmp/mnist_estimator/$(MODEL)-mnist_sample
TRAIN_ARGS ?=
ARGS ?=
# The full data sets beside the checkout (never committed); the benchmarks take them from here.
SHARED_DATA ?= ../shared/data

.PHONY: install lock train test lint tensorboard sample serve clean
# benchmarks/ (bench*, loadtest*, reproduce) runs from the checkout: `python -m benchmarks.X`.
.PHONY: reproduce bench bench-tta bench-tta-995 torch bench-portable bench-cluster loadtest

# Every package `make install` puts in the venv, with its version and hashes, for Python 3.9-3.11:
# requirements/lock.txt, made by `make lock` from pyproject.toml's ranges (main and [dev]) and
# requirements/tools.in (pip, setuptools, uv). pip refuses any file whose hash is not in it.
LOCK := requirements/lock.txt
PIP := $(PY) -m pip --disable-pip-version-check
# The venv is remade (in place) whenever the lock or pyproject.toml changes.
$(VENV)/.installed: $(LOCK) pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; TensorFlow 2.15 needs Python 3.9-3.11: make PYTHON=python3.10 ..." >&2; exit 1; }
	@echo "installing mnist_estimator and the locked versions of its dependencies ($(LOCK)) into $(VENV)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# Exactly the lock's entries for this Python (--no-deps: an old bundled pip resolves no
	@# extras of its own; the lock already holds every dependency), then pip's own check of them.
	@$(PIP) install --quiet --require-hashes --no-deps --only-binary=:all: -r $(LOCK)
	@$(PIP) check >/dev/null || { $(PIP) check >&2; exit 1; }
	@# The package itself, editable; its build backend is the locked setuptools, not a download.
	@# compat: the checkout on sys.path by a .pth. setuptools' default finder comes after the
	@# path's, so a folder named mnist_estimator in the working directory (the default
	@# model_dirs' /tmp/mnist_estimator, a clone in ~) shadowed the package as a namespace.
	@$(PIP) install --quiet --no-deps --no-build-isolation -e . --config-settings editable_mode=compat \
	  2>$(VENV)/.install.log || { cat $(VENV)/.install.log >&2; exit 1; }
	@touch $@

# Re-resolves the lock after pyproject.toml or requirements/tools.in changed, keeping every other
# pin; LOCK_ARGS=--upgrade takes the newest releases pyproject.toml allows, or
# LOCK_ARGS="--upgrade-package ray" one package. Then checks it installs on each Python.
LOCK_ARGS ?=
UV_INDEX := --index-url https://pypi.org/simple
lock: $(VENV)/.installed
	$(VENV)/bin/uv pip compile pyproject.toml requirements/tools.in --extra dev --universal \
	  --python-version 3.9 --generate-hashes --only-binary :all: $(UV_INDEX) \
	  --custom-compile-command "make lock" --quiet -o $(LOCK) $(LOCK_ARGS)
	@for v in 3.9 3.10 3.11; do \
	  $(VENV)/bin/uv pip install --dry-run --quiet --target $(VENV)/.lock-check --python-version $$v \
	    --python-platform x86_64-manylinux_2_28 --only-binary :all: --require-hashes \
	    $(UV_INDEX) -r $(LOCK) || exit 1; echo "$(LOCK): installs on Python $$v (Linux x86-64)"; \
	done

# The page's "in this browser" mode: onnxruntime-web from the npm registry (pinned with its
# hashes in web/package-lock.json), its WASM build copied into the package's static files at
# install time; never fetched by the page at run time, and not committed (11 MB of WASM).
ORT_DIR := mnist_estimator/serve/static/ort
ORT_FILES := ort.wasm.min.js ort-wasm-simd-threaded.mjs ort-wasm-simd-threaded.wasm
$(ORT_DIR)/.built: web/package.json web/package-lock.json
	@command -v npm >/dev/null || { echo "warning: npm not found (apt-get install -y npm): the draw-a-digit page's 'in this browser' mode stays off" >&2; exit 0; }
	@echo "bundling onnxruntime-web into $(ORT_DIR) (once, or when web/package-lock.json changes)"
	@cd web && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null
	@mkdir -p $(ORT_DIR) && cp $(addprefix web/node_modules/onnxruntime-web/dist/,$(ORT_FILES)) $(ORT_DIR)/
	@touch $@

install: $(VENV)/.installed $(ORT_DIR)/.built

# The main job: the default model on the bundled real-MNIST sample (offline), then its eval metrics.
train: install
	$(PY) -m mnist_estimator.main --model=$(MODEL) --dataset=mnist_sample \
	  $(if $(STEPS),--steps=$(STEPS)) --model_dir=$(MODEL_DIR) $(TRAIN_ARGS) $(ARGS)

# The main job (as `make train` runs it, into a new temporary model_dir: nothing an earlier run
# left decides the outcome), then the suite on every core: graph building is single-threaded
# Python, so two workers halve it on 2 cores; a module runs on one worker (--dist loadscope), so
# its module fixtures are built once. The order is random (pytest-randomly; its seed is printed,
# TEST_ARGS="--randomly-seed=N" repeats it). TEST_ARGS="tests/run -k bf16" runs a part (without
# the main job); "-m bf16" the forced-bf16 group alone. Bytecode is written (into the checkout's
# ignored __pycache__) even where PYTHONDONTWRITEBYTECODE is set: the suite starts over fifty
# Python processes, and without it each compiled the package from source again and each worker
# re-did pytest's rewrite of every test module (4 s of each worker's collection here).
TEST_ARGS ?=
test: install
	@if [ -z "$(TEST_ARGS)" ]; then dir=$$(mktemp -d) && trap 'rm -rf "$$dir"' EXIT && \
	  $(MAKE) --no-print-directory train MODEL_DIR="$$dir/$(MODEL)-mnist_sample"; fi
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest -q -p no:cacheprovider -n auto --dist loadscope \
	  $(TEST_ARGS)

# ruff, then mypy's type check of the package (its settings: pyproject.toml's [tool.mypy]).
lint: install
	$(VENV)/bin/ruff check mnist_estimator tests scripts benchmarks
	$(VENV)/bin/mypy

tensorboard: install
	$(VENV)/bin/tensorboard --logdir $(MODEL_DIR) --host 127.0.0.1

# Every seed's flagfile on the real data; writes reproduction.md and accuracy_curves.png.
# REPRODUCE_ARGS="--quick" for a smoke check, "--models=cnn,mlp" for a subset.
REPRODUCE_ARGS ?=
reproduce: install
	$(PY) -m benchmarks.reproduce --mnist_dir=$(SHARED_DATA)/mnist \
	  --fashion_dir=$(SHARED_DATA)/fashion_mnist $(REPRODUCE_ARGS)

# Speed: compute bound, our tf.data path, numpy_input_fn and Keras fit side by side, plus
# startup and SavedModel serving; BENCH_ARGS="--model=keras_cnn" or "--time_to_accuracy".
BENCH_ARGS ?=
bench: install
	$(PY) -m benchmarks.bench --data_dir=$(SHARED_DATA)/mnist $(BENCH_ARGS)

# Seconds to 99.0% test accuracy (TTA_ARGS="--seeds=4,5,6" for others): the fast recipe
# (flags/fast.flags) against the same recipe in Keras fit and in PyTorch (`make torch`'s venv,
# else Debian's python3-torch; left out without either), interleaved, medians of 3 seeds.
# bench-tta-995: the same for 99.5% and its recipe (flags/fast_995.flags), about 20 minutes.
TTA_ARGS ?=
bench-tta: install
	$(PY) -m benchmarks.time_to_accuracy --data_dir=$(SHARED_DATA)/mnist $(TTA_ARGS)

bench-tta-995: install
	$(PY) -m benchmarks.time_to_accuracy --data_dir=$(SHARED_DATA)/mnist \
	  --flagfile=flags/fast_995.flags --target=0.995 $(TTA_ARGS)

# PyTorch's CPU build in a venv of its own (.venv-torch) for the benchmarks' PyTorch columns.
torch:
	@test -x .venv-torch/bin/python || $(PYTHON) -m venv .venv-torch
	.venv-torch/bin/pip install -q torch==2.13.0 numpy

# Every --export_format of cnn and mlp against the SavedModel, in one interleaved run (the
# README's table); PORTABLE_ARGS="--quick" for a smoke run, "--model_dirs=cnn=DIR,mlp=DIR" to reuse.
PORTABLE_ARGS ?=
bench-portable: install
	$(PY) -m benchmarks.bench_portable --data_dir=$(SHARED_DATA)/mnist $(PORTABLE_ARGS)

# The cluster's two engines, interleaved: the local launcher against Ray (a private Ray per job):
# wall time, peak memory, the chief's steps/s, medians of rounds, as a Markdown table.
BENCH_CLUSTER_ARGS ?= --rounds=3 --workers=1 --evaluator --steps=2000
bench-cluster: install
	$(PY) -m benchmarks.bench_cluster $(BENCH_CLUSTER_ARGS)

# Re-cut the bundled sample from the full MNIST IDX files.
sample: install
	$(PY) scripts/make_sample.py --data_dir $(SHARED_DATA)/mnist --out mnist_estimator/data/mnist_sample.npz

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache web/node_modules $(ORT_DIR)
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# Serving (mnist_estimator.serve): TF Serving's gRPC API on 127.0.0.1:8500 (--port), its REST
# API and the draw-a-digit page on http://127.0.0.1:8501/ (--rest_api_port) for MODEL_DIR's best
# (else newest) export, exporting its latest checkpoint first if it has none; or
# SERVE_ARGS="--saved_model=BASE --port=8500 --rest_api_port=8501".
SERVE_ARGS ?=
serve: install
	@test -n "$(SERVE_ARGS)" || test -d $(MODEL_DIR)/export || $(PY) -m mnist_estimator.main \
	  --model=$(MODEL) --dataset=mnist_sample --model_dir=$(MODEL_DIR) --mode=export \
	  --export_dir=$(MODEL_DIR)/export/latest $(TRAIN_ARGS)
	$(PY) -m mnist_estimator.serve $(if $(SERVE_ARGS),$(SERVE_ARGS),--model_dir=$(MODEL_DIR))

# Single-image predicts from 1, 8 and 32 clients, REST (Debian's wrk) and gRPC (an asyncio
# client), batching on and off, mlp and cnn, on 127.0.0.1 only; bounded
# (LOADTEST_ARGS="--seconds=4 --requests=100000 --rounds=3 --models=mlp,cnn --apis=rest,grpc").
LOADTEST_ARGS ?=
loadtest: install
	@command -v wrk >/dev/null || { echo "error: wrk not found: apt-get install -y wrk" >&2; exit 1; }
	$(PY) -m benchmarks.loadtest $(LOADTEST_ARGS)
