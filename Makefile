PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

RUN ?= runs/lenet5-mnist
EPOCHS ?= 15
# The main job: LeNet-5 on the embedded real MNIST digits (see README).
TRAIN_ARGS = --model lenet5 --model-arg activation=relu --model-arg pooling=max --dataset mnist-embedded \
	--batch-size 64 --optimizer sgd --lr 0.05 --momentum 0.9 --weight-decay 5e-4 --scheduler cosine \
	--augment crop --device auto --seed 0

.PHONY: test train bench bench-report gpu-check install clean

# Create the virtual environment when missing, install the project with its test extra, run the suite:
# the reference and compile tiers, then the Numba CUDA kernels in the simulator (its own process: the
# variable must be set before numba is imported). GPU tests (-m gpu) skip without a GPU.
test: install
	$(BIN)/python -m pytest
	NUMBA_ENABLE_CUDASIM=1 $(BIN)/python -m pytest -m cudasim

# Train LeNet-5 on real handwritten digits, then draw what it learned into $(RUN)/*.png.
train: install
	$(BIN)/tensorlib train $(TRAIN_ARGS) --epochs $(EPOCHS) --out $(RUN)
	$(BIN)/tensorlib viz $(RUN)

install: $(VENV)/.installed

$(VENV)/.installed: setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# Benchmarks (pytest-benchmark); OpenBLAS tuning variables some machines set are cleared for the run only.
bench: install
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python -m pytest bench --benchmark-only --benchmark-columns=median,iqr,ops

# The CPU results committed under bench/results/ (HOST names the file) and the README blocks filled from them.
HOST ?= $(shell hostname -s)
bench-report: install
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/tensorlib bench --device cpu --op all --shapes cnn \
		--json bench/results/cpu-$(HOST).json --markdown bench/results/cpu-$(HOST).md --plot bench/results/cpu-$(HOST)
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/tensorlib bench --device cpu --op matmul --shapes large \
		--json bench/results/cpu-$(HOST)-matmul-large.json --markdown bench/results/cpu-$(HOST)-matmul-large.md
	$(BIN)/python -m bench.update_readmes bench/results/cpu-$(HOST).json bench/results/cpu-$(HOST)-matmul-large.json

# Every GPU check in one command, on a machine with a GPU and its Python packages preinstalled: the gpu test
# tier, then the benchmarks of every registered CUDA variant into bench/results/<gpu>.json (and $$OUT).
GPU_PYTHON ?= python3
GPU_NAME ?= $(shell nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n1 | tr -cs 'A-Za-z0-9\n' '-' | sed 's/-$$//')
gpu-check:
	$(GPU_PYTHON) -m pip install --quiet --no-deps --no-build-isolation -e .
	-$(GPU_PYTHON) -m pytest -m gpu -q -rs 2>&1 | tee bench/results/$(GPU_NAME)-gpu-tests.txt
	$(GPU_PYTHON) -m nn.cli bench --device cuda --op all --shapes cnn --json bench/results/$(GPU_NAME).json \
		--markdown bench/results/$(GPU_NAME).md
	$(GPU_PYTHON) -m nn.cli bench --device cuda --op matmul --shapes large --json bench/results/$(GPU_NAME)-gemm.json
	if [ -n "$$OUT" ]; then cp bench/results/$(GPU_NAME)* "$$OUT"/; fi

clean:
	rm -rf $(VENV) build *.egg-info
