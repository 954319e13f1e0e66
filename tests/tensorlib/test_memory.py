"""tensorlib.memory: after ``import tensorlib`` a training-step-like pattern of large allocations stops
faulting pages in on every round; ``TENSORLIB_HOST_ALLOCATOR=system`` leaves malloc alone. Each case runs in
a fresh interpreter, since the setting is process-wide and cannot be undone."""

import os
import subprocess
import sys

import pytest

import tensorlib as tl
from tensorlib import memory

ROUNDS = """
import resource, sys
import numpy as np
import tensorlib as tl

def round_():
    # a step's worth of live arrays (20 x 1.2 MB, LeNet's largest activation), all freed at its end
    arrays = [np.ones(300_000, np.float32) for _ in range(20)]
    del arrays

for _ in range(3):
    round_()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    round_()
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5
print(tl.host_allocator_tuned(), faults)
"""

linux_glibc = pytest.mark.skipif(not tl.host_allocator_tuned(), reason="needs glibc's mallopt (Linux)")


def faults_per_round(setting):
    env = dict(os.environ, TENSORLIB_HOST_ALLOCATOR=setting)
    out = subprocess.run([sys.executable, "-c", ROUNDS], env=env, capture_output=True, text=True, check=True)
    tuned, faults = out.stdout.split()
    return tuned, float(faults)


@linux_glibc
def test_freed_arrays_are_reused_without_page_faults():
    tuned, faults = faults_per_round("tuned")
    system, system_faults = faults_per_round("system")
    assert (tuned, system) == ("True", "None")
    # 24 MB per round is about 5,900 pages: malloc's own behaviour faults most of them in again every round
    assert system_faults > 2000, system_faults
    assert faults < 200, faults


def test_bad_environment_setting_is_rejected():
    env = dict(os.environ, TENSORLIB_HOST_ALLOCATOR="jemalloc")
    out = subprocess.run([sys.executable, "-c", "import tensorlib"], env=env, capture_output=True, text=True)
    assert out.returncode != 0
    assert "TENSORLIB_HOST_ALLOCATOR must be 'tuned' or 'system', got 'jemalloc'" in out.stderr


@pytest.mark.parametrize("kwargs", [{"mmap_threshold": -1}, {"trim_threshold": 1.5}, {"mmap_threshold": True}])
def test_bad_thresholds_are_rejected(kwargs):
    with pytest.raises(ValueError, match="must be a non-negative int of bytes"):
        memory.tune_host_allocator(**kwargs)
