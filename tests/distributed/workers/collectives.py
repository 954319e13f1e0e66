"""all_reduce (sum, mean), broadcast, barrier and broadcast_object on every rank, checked against the values
every rank can recompute (each rank's input is drawn from a generator seeded with its rank)."""

import numpy as np

import tensorlib as tl
from nn import parallel

parallel.init_process_group(device="cpu")  # host collectives, also where a GPU is present
rank, world = parallel.get_rank(), parallel.get_world_size()
assert world == 2, world


def draw(seed, shape, dtype):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "i":
        return rng.integers(-1000, 1000, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


with parallel.abort_on_error():
    for kind, dtype in enumerate(("float32", "float64", "int64")):
        for shape in ((0,), (1,), (7,), (3, 5, 4), (1000,)):
            inputs = [draw([r, kind, *shape], shape, dtype) for r in range(world)]
            for op in ("sum", "mean"):
                t = tl.tensor(inputs[rank].copy())
                assert parallel.all_reduce(t, op=op) is t
                expected = sum(inputs)
                if op == "mean":
                    expected = expected // world if dtype == "int64" else expected / world
                np.testing.assert_allclose(t.numpy(), expected, rtol=1e-6)
                assert t.dtype == np.dtype(dtype)
            for src in range(world):
                t = tl.tensor(inputs[rank].copy())
                parallel.broadcast(t, src=src)
                np.testing.assert_array_equal(t.numpy(), inputs[src])

        # Non-contiguous views: the reduction lands in the view and nowhere else.
        base = [draw([r, kind, 100], (6, 8), dtype) for r in range(world)]
        mine = tl.tensor(base[rank].copy())
        view = mine[:, ::2]
        assert not view.array.flags.c_contiguous
        parallel.all_reduce(view, op="sum")
        np.testing.assert_allclose(mine.numpy()[:, ::2], sum(b[:, ::2] for b in base), rtol=1e-6)
        np.testing.assert_array_equal(mine.numpy()[:, 1::2], base[rank][:, 1::2])
        transposed = tl.tensor(base[rank].copy()).array.T
        parallel.broadcast(transposed, src=1)
        np.testing.assert_array_equal(transposed, base[1].T)

    for _ in range(3):
        parallel.barrier()
    assert parallel.broadcast_object({"out": f"runs/{rank}", "lr": 0.1}) == {"out": "runs/0", "lr": 0.1}
    parallel.destroy_process_group()
    print(f"rank {rank}: collectives ok", flush=True)
