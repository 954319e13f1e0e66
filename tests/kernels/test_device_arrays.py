"""The simulator's stand-in for device memory refuses what CuPy refuses, so code that would only fail on a
GPU fails in the simulator tier too: host arrays (and lists) as assigned values or as ufunc operands.
Numbers and 0-d arrays pass, as CuPy takes them as scalars; results stay device arrays."""

import numpy as np
import pytest

from kernels.device_arrays import SimulatedDeviceArray


def device(values):
    return np.asarray(values, dtype=np.float64).view(SimulatedDeviceArray)


def test_assigning_host_arrays_is_refused():
    a = device(np.zeros((2, 3)))
    for value in (np.ones(3), [1.0, 2.0, 3.0], (1.0, 2.0, 3.0)):
        with pytest.raises(ValueError, match="assigning a host .* into a device array"):
            a[0] = value
    a[0] = device([1.0, 2.0, 3.0])
    a[1, np.array([0, 2])] = 5.0  # host index arrays are fine (CuPy takes them), scalars too
    a[1, 1] = np.float32(4.0)
    a[...] += np.asarray(1.0)  # a 0-d host array is a scalar to CuPy
    np.testing.assert_array_equal(a.view(np.ndarray), [[2, 3, 4], [6, 5, 6]])


def test_ufuncs_refuse_host_operands_and_keep_results_on_the_device():
    a = device([1.0, -2.0, 3.0])
    with pytest.raises(TypeError, match="add.__call__ of a device array with a host ndarray"):
        a + np.ones(3)
    with pytest.raises(TypeError, match="maximum.__call__"):
        np.maximum(np.zeros(3), a)
    with pytest.raises(TypeError, match="with a host list"):
        np.multiply(a, [1.0, 2.0, 3.0])
    total = (a * 2.0).sum()
    assert type(total) is SimulatedDeviceArray and total.ndim == 0 and float(total) == 4.0
    out = device(np.empty(3))
    assert np.add(a, 1.0, out=out) is out
    np.add.at(a, (np.array([0, 0]),), 1.0)  # at's index is not an operand
    np.testing.assert_array_equal(a.view(np.ndarray), [3.0, -2.0, 3.0])
