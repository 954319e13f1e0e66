"""kernels.cache: generated kernel sources go to files named by their hash (and by the sources they depend
on), are imported once, and a second process loads their machine code from Numba's cache instead of compiling;
``TENSORLIB_CACHE_DIR=off`` or an unwritable folder compiles in memory."""

import os
import subprocess
import sys

from kernels import cache
from kernels.conv2d import numba_blocked

TEXT = "from numba import njit\n\n@njit(cache=True)\ndef twice(x):\n    return 2 * x\n"


def test_kernel_file_is_written_once_and_named_by_its_text(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.ENV, str(tmp_path))
    path = cache.kernel_file("demo", TEXT)
    assert path.parent == tmp_path / "kernels" and path.read_text() == TEXT
    assert cache.kernel_file("demo", TEXT) == path
    assert cache.kernel_file("demo", TEXT + "\n") != path
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    assert cache.import_file(path).twice(21) == 42
    assert cache.import_file(path) is cache.import_file(path)


def test_off_and_unwritable_folders_mean_no_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.ENV, "off")
    assert cache.directory() is None and cache.kernel_file("demo", TEXT) is None
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(cache.ENV, str(blocker))
    assert cache.directory() is None


def test_without_a_cache_the_kernels_compile_in_memory(monkeypatch):
    monkeypatch.setenv(cache.ENV, "off")
    kernel, run = numba_blocked._compile(numba_blocked._source(8, 16, 16), "forward", "in memory")
    assert kernel.py_func.__code__.co_filename == "<conv2d v2_direct_blocked in memory>"
    assert run.py_func.__code__.co_filename == "<conv2d v2_direct_blocked in memory>"


def test_load_module_imports_the_kernel_file_or_compiles_in_memory(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.ENV, str(tmp_path))
    text = TEXT + "\n# a text of its own, so no earlier test has imported its module\n"
    cached = cache.load_module("demo", text, "demo in memory")
    assert cached.twice(21) == 42
    assert cached.twice.py_func.__code__.co_filename.startswith(str(tmp_path / "kernels"))
    assert type(cached.twice._cache).__name__ != "NullCache"
    monkeypatch.setenv(cache.ENV, "off")
    in_memory = cache.load_module("demo", text, "demo in memory")
    assert in_memory.twice(21) == 42 and in_memory.twice.py_func.__code__.co_filename == "<demo in memory>"
    assert type(in_memory.twice._cache).__name__ == "NullCache"


def test_kernels_built_on_the_intrinsics_are_keyed_by_their_source():
    """The modules that import kernels/simd.py reach Numba through kernel files, whose names hash it."""
    assert "kernels/simd.py" in cache.DEPENDENCIES
    from kernels.softmax_xent import numba_cpu

    rows = numba_cpu._vector_rows()
    assert rows.forward_serial.py_func.__code__.co_filename != numba_cpu.__file__.replace("numba_cpu", "vector_rows")


SECOND_PROCESS = """
import numpy as np
from kernels import conv2d
from kernels.conv2d import numba_blocked
x, w = np.ones((2, 6, 9, 9), np.float32), np.ones((16, 6, 3, 3), np.float32)
g = conv2d.conv2d_geometry(x.shape, w.shape)
y = numba_blocked.forward_blocked(x, w, None, g)
assert np.allclose(y, 54.0)
kernel, _ = numba_blocked._kernel(8, 16, 16)
print(sum(kernel.stats.cache_hits.values()), sum(kernel.stats.cache_misses.values()),
      int(kernel.py_func.__code__.co_filename.endswith(".py")))
"""


def second_process(setting):
    env = dict(os.environ, **{cache.ENV: setting})
    env.pop("NUMBA_CACHE_DIR", None)
    run = subprocess.run([sys.executable, "-c", SECOND_PROCESS], env=env, capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert run.returncode == 0, run.stderr
    return tuple(map(int, run.stdout.split()))


def test_a_second_process_loads_the_compiled_kernel(tmp_path):
    assert second_process(str(tmp_path)) == (0, 1, 1)  # (cache hits, misses, from a file): compiled and stored
    assert second_process(str(tmp_path)) == (1, 0, 1)  # loaded
    assert second_process("off") == (0, 1, 0)  # compiled in memory
