PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: test bench install clean

# Create the virtual environment when missing, install the project with its test extra, run the suite.
test: install
	$(BIN)/python -m pytest

install: $(VENV)/.installed

$(VENV)/.installed: setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# Benchmarks (pytest-benchmark); OpenBLAS tuning variables some machines set are cleared for the run only.
bench: install
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python -m pytest bench --benchmark-only --benchmark-columns=median,iqr,ops

clean:
	rm -rf $(VENV) build *.egg-info
