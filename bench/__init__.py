"""Benchmarks: pytest-benchmark files (``bench_*.py``, run by ``make bench``), side-by-side scripts against
PyTorch (``compare_torch_*.py``) and the ``tensorlib bench`` runner (``runner.py``), with committed results
under ``bench/results/``."""
