PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

RUN ?= runs/lenet5-mnist
EPOCHS ?= 15
# The main job: LeNet-5 on the embedded real MNIST digits (see README).
TRAIN_ARGS = --model lenet5 --model-arg activation=relu --model-arg pooling=max --dataset mnist-embedded \
	--batch-size 64 --optimizer sgd --lr 0.05 --momentum 0.9 --weight-decay 5e-4 --scheduler cosine \
	--augment crop --device auto --seed 0

.PHONY: test train bench bench-report gpu-check gpu-install gpu-bench gpu-gemm gpu-test install clean

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

# Every GPU check in one command, on a machine with a GPU and its Python packages preinstalled, inside a
# 10-minute limit: the benchmarks of every registered CUDA variant, PyTorch's cuDNN/cuBLAS baselines and the
# training steps into bench/results/<gpu>.json/.md (about 3 minutes), the SGEMM ladder up to 4096^3 into
# <gpu>-gemm.json/.md (about 1 minute), then the gpu test tier. The benchmarks come first and each step has
# its own time limit, so a slow or failing step cannot cost the others. Inside a bench, each section (family,
# training steps) runs in its own process with a share of TENSORLIB_BENCH_SECONDS, and the JSON is rewritten
# after every row, so a section cut short keeps what it measured; `timeout` is the backstop. Logs go to
# <gpu>-*.txt; all of it is copied to $OUT (when set) after each step. The steps are targets of their own
# (gpu-install, gpu-bench, gpu-gemm, gpu-test), so a later call can redo one with the whole time limit.
GPU_PYTHON ?= python3
GPU_NAME ?= $(or $(shell nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n1 | tr -cs 'A-Za-z0-9\n' '-' | sed 's/-$$//'),cuda)
GPU_RESULTS = bench/results/$(GPU_NAME)
GPU_COPY_OUT = if [ -n "$$OUT" ]; then cp $(GPU_RESULTS)* "$$OUT"/; fi
GPU_TEST_SECONDS ?= 140
gpu-check: gpu-install gpu-bench gpu-gemm gpu-test

gpu-install:
	-$(GPU_PYTHON) -m pip install --quiet --no-deps --no-build-isolation -e .
	-mkdir -p bench/results && $(GPU_PYTHON) -m bench.gpu_env 2>&1 | tee $(GPU_RESULTS)-env.txt

gpu-bench:
	-PYTHONUNBUFFERED=1 TENSORLIB_BENCH_SECONDS=250 timeout -k 10 280 $(GPU_PYTHON) -m nn.cli bench --device cuda --op all --shapes cnn \
		--json $(GPU_RESULTS).json --markdown $(GPU_RESULTS).md 2>&1 | tee $(GPU_RESULTS)-bench.txt
	-$(GPU_COPY_OUT)

gpu-gemm:
	-PYTHONUNBUFFERED=1 TENSORLIB_BENCH_SECONDS=85 timeout -k 10 100 $(GPU_PYTHON) -m nn.cli bench --device cuda --op matmul --shapes large \
		--json $(GPU_RESULTS)-gemm.json --markdown $(GPU_RESULTS)-gemm.md 2>&1 | tee $(GPU_RESULTS)-gemm.txt
	-$(GPU_COPY_OUT)

# one line per test as it finishes, so a run cut by the time limit still shows what passed; on its own
# (make gpu-install gpu-test GPU_TEST_SECONDS=560) the tier gets a whole call
gpu-test:
	-timeout -k 10 $(GPU_TEST_SECONDS) $(GPU_PYTHON) -m pytest -m gpu -v -rs 2>&1 | tee $(GPU_RESULTS)-gpu-tests.txt
	$(GPU_COPY_OUT)

clean:
	rm -rf $(VENV) build *.egg-info
