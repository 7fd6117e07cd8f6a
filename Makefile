# Set-up, demo and tests. Every target creates the virtual environment if it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# llama.cpp's build for this machine's own CPU (GGML_NATIVE) compiles its AMX kernels where the CPU reports
# AMX, and those crash in llama_decode on the VMs we run on (Sapphire Rapids under Firecracker): build the
# portable x86-64 CPU backend (AVX2, FMA, F16C) instead.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF

.PHONY: install demo test lint readme bench bench-quick clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS) $$CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(BIN)/python -m pip install --quiet -e '.[local,pool,dev,math]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ensemble committee --config configs/committee.yaml

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check ensemble_cli tests scripts docs
	$(BIN)/mypy ensemble_cli

readme: $(STAMP)
	$(BIN)/python docs/readme_examples.py

bench: $(STAMP)
	for script in scripts/bench_*.py; do $(BIN)/python $$script || exit 1; done

bench-quick: $(STAMP)
	for script in scripts/bench_*.py; do $(BIN)/python $$script --quick || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info
