"""safetensors checkpoints: exact round trips, PyTorch layout, atomic writes, corrupt files rejected."""

import json
import os

import numpy as np
import pytest

import nn
import tensorlib as tl


def small_model():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))


def test_model_round_trip_is_exact(tmp_path):
    model = small_model()
    model(tl.randn(2, 1, 8, 8))  # moves the BatchNorm running statistics away from their initial values
    path = tmp_path / "model.safetensors"
    nn.save(model.state_dict(), path)
    other = small_model()
    nn.load(path, model=other)
    for (key, a), (_, b) in zip(model.state_dict().items(), other.state_dict().items()):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=key)


def test_load_gives_tensors_that_load_state_dict_takes(tmp_path):
    model = small_model()
    model(tl.randn(2, 1, 8, 8))
    nn.save(model.state_dict(), tmp_path / "m.safetensors")
    loaded = nn.load(tmp_path / "m.safetensors")
    assert list(loaded) == list(model.state_dict())
    for key, value in loaded.items():
        assert type(value) is tl.Tensor and value.device == "cpu" and not value.requires_grad, key
        assert value.dtype == model.state_dict()[key].dtype, key
    other = small_model()
    assert repr(other.load_state_dict(loaded)) == "<All keys matched successfully>"
    for key, value in other.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), model.state_dict()[key].numpy(), err_msg=key)
    loaded["0.weight"][...] = 0  # the loaded tensors are the caller's own: writable, and not the model's memory
    assert np.any(other[0].weight.detach().numpy() != 0)


def test_file_is_plain_safetensors_with_pytorch_keys(tmp_path):
    from safetensors.numpy import load_file

    model = small_model()
    nn.save(model.state_dict(), tmp_path / "m.safetensors")
    arrays = load_file(str(tmp_path / "m.safetensors"))
    assert set(arrays) == set(model.state_dict())
    assert arrays["0.weight"].shape == (4, 1, 3, 3) and arrays["4.weight"].shape == (3, 144)
    assert arrays["1.num_batches_tracked"].dtype == np.int64


def test_nested_state_round_trip(tmp_path):
    state = {"model": {"w": np.arange(6.0).reshape(2, 3)},
             "optimizer": {"state": {0: {"momentum_buffer": np.ones(3, np.float32), "step": 4}},
                           "param_groups": [{"lr": 0.1, "momentum": 0.9, "nesterov": False, "params": [0, 1]}]},
             "epoch": 3, "note": "ok", "rng": (1, 2.5, None)}
    nn.save(state, tmp_path / "c.safetensors")
    loaded = nn.load(tmp_path / "c.safetensors")
    np.testing.assert_array_equal(loaded["model"]["w"], state["model"]["w"])
    assert loaded["optimizer"]["state"][0]["step"] == 4
    np.testing.assert_array_equal(loaded["optimizer"]["state"][0]["momentum_buffer"], np.ones(3))
    assert loaded["optimizer"]["param_groups"] == state["optimizer"]["param_groups"]
    assert loaded["epoch"] == 3 and loaded["note"] == "ok" and loaded["rng"] == (1, 2.5, None)


def test_truncated_and_tampered_files_are_rejected(tmp_path):
    model = small_model()
    path = tmp_path / "m.safetensors"
    nn.save(model.state_dict(), path)
    payload = path.read_bytes()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    (tmp_path / "short.safetensors").write_bytes(payload[: len(payload) // 2])
    with pytest.raises(nn.CheckpointError, match="short.safetensors.*truncated or corrupt"):
        nn.load(tmp_path / "short.safetensors", model=model)
    tampered = bytearray(payload)
    tampered[-3] ^= 0xFF
    (tmp_path / "bad.safetensors").write_bytes(bytes(tampered))
    with pytest.raises(nn.CheckpointError, match="bad.safetensors.*checksum"):
        nn.load(tmp_path / "bad.safetensors", model=model)
    with pytest.raises(nn.CheckpointError, match="no such checkpoint"):
        nn.load(tmp_path / "missing.safetensors")
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), before[key].numpy())


def test_wrong_architecture_names_file_and_key(tmp_path):
    nn.save(small_model().state_dict(), tmp_path / "m.safetensors")
    other = nn.Sequential(nn.Conv2d(1, 5, 3))
    with pytest.raises(nn.CheckpointError, match=r"m.safetensors: key '0.weight' has shape \(4, 1, 3, 3\)"):
        nn.load(tmp_path / "m.safetensors", model=other)
    with pytest.raises(nn.CheckpointError, match="m.safetensors: unexpected key '1.weight'"):
        nn.load(tmp_path / "m.safetensors", model=nn.Sequential(nn.Conv2d(1, 4, 3)))


def test_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    nn.save({"a": np.ones(3)}, path)
    original = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        nn.save({"a": np.zeros(3)}, path)
    assert path.read_bytes() == original
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temporary left behind


def test_refuses_non_mappings(tmp_path):
    with pytest.raises(TypeError, match="mapping"):
        nn.save(tl.ones(2), tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match=r"got the module Sequential itself: save model\.state_dict\(\)"):
        nn.save(small_model(), tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match="cannot save"):
        nn.save({"f": object()}, tmp_path / "x.safetensors")
    header = json.dumps({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    (tmp_path / "plain.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + b"\0\0\0\0")
    assert list(nn.load(tmp_path / "plain.safetensors")) == ["a"]  # files from other tools load too


def _rewrite_metadata(path, change):
    """Rewrite the safetensors header of ``path`` with ``change(metadata)`` applied, arrays untouched."""
    payload = path.read_bytes()
    size = int.from_bytes(payload[:8], "little")
    header = json.loads(payload[8:8 + size])
    change(header["__metadata__"])
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + payload[8 + size:])


def test_edited_metadata_is_rejected(tmp_path):
    path = tmp_path / "c.safetensors"
    nn.save({"model": {"w": np.ones(3)}, "progress": {"epoch": 2}}, path)

    def later_epoch(metadata):
        assert '"epoch", 2' in metadata["tensorlib.layout"]
        metadata["tensorlib.layout"] = metadata["tensorlib.layout"].replace('"epoch", 2', '"epoch", 7')

    _rewrite_metadata(path, later_epoch)
    with pytest.raises(nn.CheckpointError, match="c.safetensors.*checksum"):
        nn.load(path)


def test_unversioned_files_load_with_their_array_checksum(tmp_path):
    from nn.serialization import CHECKSUM_KEY, FORMAT_KEY, _checksum

    path = tmp_path / "old.safetensors"
    nn.save({"progress": {"epoch": 2}, "w": np.arange(3.0)}, path)

    def as_written_before_versions(metadata):
        del metadata[FORMAT_KEY]
        metadata[CHECKSUM_KEY] = _checksum({"w": np.arange(3.0)}, None)

    _rewrite_metadata(path, as_written_before_versions)
    loaded = nn.load(path)
    assert loaded["progress"]["epoch"] == 2
    assert type(loaded["w"]) is tl.Tensor and loaded["w"].tolist() == [0.0, 1.0, 2.0]
    _rewrite_metadata(path, lambda metadata: metadata.update({FORMAT_KEY: "99"}))
    with pytest.raises(nn.CheckpointError, match="format version '99'"):
        nn.load(path)


@pytest.mark.parametrize("layout", ["5", '"w"', '{"w": 1}', '{"__dict__": 5}', '{"__dict__": [[1]]}',
                                    '{"__list__": 3}', '{"__dict__": [["w", {"x": 1}]]}',
                                    '{"__dict__": [["w", [1, 2]]]}', '{"__dict__": [["w", {"__array__": "v"}]]}'])
def test_malformed_layout_is_a_checkpoint_error(tmp_path, layout):
    """save writes a mapping whose mappings, lists and arrays are marked objects: any other layout, even one
    that is valid JSON under a matching checksum, is refused, never returned as if it had been saved."""
    from nn.serialization import CHECKSUM_KEY, LAYOUT_KEY, _checksum

    path = tmp_path / "m.safetensors"
    nn.save({"w": np.ones(2)}, path)

    def replace_layout(metadata):
        metadata[LAYOUT_KEY] = layout
        metadata[CHECKSUM_KEY] = _checksum({"w": np.ones(2)}, layout)

    _rewrite_metadata(path, replace_layout)
    with pytest.raises(nn.CheckpointError, match="m.safetensors: corrupt layout metadata"):
        nn.load(path)


def test_file_mode_follows_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        nn.save({"w": np.ones(2)}, tmp_path / "m.safetensors")
    finally:
        os.umask(previous)
    assert (tmp_path / "m.safetensors").stat().st_mode & 0o777 == 0o644


def test_map_location_and_weights_only(tmp_path):
    path = tmp_path / "m.safetensors"
    nn.save({"model": {"w": tl.arange(3.0)}, "epoch": 1}, path)
    for location in ("cpu", {"cuda:0": "cpu"}, {"cpu": "cpu"}):  # the file holds host arrays: "cpu" is mapped
        assert nn.load(path, map_location=location)["model"]["w"].device == "cpu"
    seen = []
    doubled = nn.load(path, lambda tensor, location: seen.append(location) or tensor.double())  # positional
    assert doubled["model"]["w"].dtype == tl.float64 and seen == ["cpu"] and doubled["epoch"] == 1
    assert nn.load(path, map_location=lambda tensor, location: None)["model"]["w"].dtype == tl.float32
    with pytest.raises(TypeError, match="map_location returned a list; expected a Tensor or None"):
        nn.load(path, map_location=lambda tensor, location: [1])
    with pytest.raises(TypeError, match="map_location must be a device, a mapping of devices or a callable, got int"):
        nn.load(path, map_location=3)
    with pytest.raises(ValueError, match="map_location: device must be 'cpu', 'cuda' or 'cuda:N', got 'tpu'"):
        nn.load(path, map_location="tpu")
    assert nn.load(path, weights_only=True)["epoch"] == 1
    with pytest.warns(UserWarning, match=r"weights_only=False\): safetensors checkpoints never use pickle"):
        assert nn.load(path, weights_only=False)["epoch"] == 1
    with pytest.raises(TypeError, match="weights_only must be True, False or None, got 'yes'"):
        nn.load(path, weights_only="yes")


def test_map_location_moves_the_loaded_tensors_to_the_device(tmp_path, tier):
    model = small_model().to("cuda")
    nn.save(model.state_dict(), tmp_path / "m.safetensors")  # device tensors are saved from the host
    for location in ("cuda", "cuda:0", {"cpu": "cuda"}, lambda tensor, saved_at: tensor.to("cuda")):
        loaded = nn.load(tmp_path / "m.safetensors", map_location=location)
        assert all(value.device == "cuda" for value in loaded.values())
    other = small_model()
    other.load_state_dict(loaded)
    np.testing.assert_array_equal(other[0].weight.detach().numpy(), model[0].weight.detach().cpu().numpy())


def test_a_model_passed_as_map_location_is_refused_by_name(tmp_path):
    model = small_model()
    nn.save(model.state_dict(), tmp_path / "m.safetensors")
    with pytest.raises(TypeError, match="map_location got a Sequential module: pass the model to load into as "
                                        "model="):
        nn.load(tmp_path / "m.safetensors", model)
