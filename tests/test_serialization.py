"""Checkpoints: round trips, atomic writes, clear errors, and an exact resume in a new process."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import minigen as mg


def test_round_trip_of_a_nested_checkpoint(tmp_path):
    obj = {
        "model": {"fc.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "bn.num_batches_tracked": np.array(3)},
        "optimizer": {"state": {"0": {"step": 2, "exp_avg": np.ones(3)}}, "param_groups": [{"lr": 0.1, "betas": (0.5, 0.999)}]},
        "epoch": 4,
        "config": {"name": "vae", "beta": 1.0, "resume": None, "binary": True},
        "tensor": mg.tensor([1.0, 2.0]),
    }
    mg.save(tmp_path / "ck.npz", obj)
    back = mg.load(tmp_path / "ck.npz")
    np.testing.assert_array_equal(back["model"]["fc.weight"], obj["model"]["fc.weight"])
    assert back["model"]["fc.weight"].dtype == np.float32
    assert back["optimizer"]["state"]["0"]["step"] == 2
    assert back["optimizer"]["param_groups"][0]["betas"] == [0.5, 0.999]  # tuples come back as lists
    assert back["epoch"] == 4 and back["config"] == obj["config"]
    np.testing.assert_array_equal(back["tensor"], [1.0, 2.0])


def test_a_failed_write_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ck.npz"
    mg.save(path, {"epoch": 1})

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        mg.save(path, {"epoch": 2})
    monkeypatch.undo()
    assert mg.load(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ck.npz"]  # no temporary file left


def test_truncated_file_gives_a_clear_error(tmp_path):
    path = tmp_path / "ck.npz"
    mg.save(path, {"w": np.zeros(1000)})
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(ValueError, match="is not a readable minigen checkpoint"):
        mg.load(path)


def test_foreign_files_are_refused(tmp_path):
    np.savez(tmp_path / "plain.npz", a=np.zeros(2))
    with pytest.raises(ValueError, match="an .npz file but not a minigen checkpoint"):
        mg.load(tmp_path / "plain.npz")
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        mg.load(tmp_path / "missing.npz")


def _hostile_files(folder):
    """(file, what load must say) for files that are not checkpoints, some made to hurt."""
    import io
    import json
    import pickle
    import zipfile

    cases = []

    def write(name, data, expected):
        (folder / name).write_bytes(data)
        cases.append((folder / name, expected))

    write("text.npz", b"hello, I am text", r"not an .npz \(zip\) file: it starts with b'hello, I'")
    write("empty.npz", b"", "an empty file")
    write("pickle.npz", pickle.dumps({"a": 1}), "a Python pickle .minigen never opens pickles")
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(3))
    write("array.npz", buffer.getvalue(), r"a single NumPy array \(.npy\)")
    buffer = io.BytesIO()  # an .npy header claiming 7 TiB, in a valid zip
    header = {"descr": "<f8", "fortran_order": False, "shape": (1 << 40,)}
    np.lib.format.write_array_header_1_0(buffer, header)
    with zipfile.ZipFile(folder / "huge.npz", "w") as archive:
        archive.writestr("a0.npy", buffer.getvalue() + b"\0" * 64)
    cases.append(
        (folder / "huge.npz", r"entry 'a0' claims shape \(1099511627776,\) of float64 \(8,796,093,022,208 bytes\) but holds 64 bytes")
    )
    buffer = io.BytesIO()  # an array of Python objects: np.load would suggest allow_pickle
    np.lib.format.write_array_header_1_0(buffer, {"descr": "|O", "fortran_order": False, "shape": (1,)})
    with zipfile.ZipFile(folder / "objects.npz", "w") as archive:
        archive.writestr("a0.npy", buffer.getvalue() + pickle.dumps([1]))
    cases.append((folder / "objects.npz", "entry 'a0' holds Python objects, which minigen does not load"))
    deep = "[" * 100_000 + "]" * 100_000  # json.loads recurses once per bracket
    meta = '{"format": "minigen-checkpoint", "version": 1, "tree": ' + deep + "}"
    np.savez(folder / "deep.npz", __minigen__=np.array(meta))
    cases.append((folder / "deep.npz", "the checkpoint's description is damaged"))
    np.savez(folder / "list.npz", __minigen__=np.array("[1, 2]"))
    cases.append((folder / "list.npz", "the checkpoint's description is damaged: a list where a description belongs"))
    bad_tree = json.dumps({"format": "minigen-checkpoint", "version": 1, "tree": {"__dict__": [1, 2]}})
    np.savez(folder / "tree.npz", __minigen__=np.array(bad_tree))
    cases.append((folder / "tree.npz", "is damaged"))
    return cases


def test_hostile_and_foreign_files_get_one_clear_error_and_no_pickle_advice(tmp_path):
    for path, expected in _hostile_files(tmp_path):
        with pytest.raises(mg.serialization.CheckpointError, match=expected) as info:
            mg.load(path)
        assert "allow_pickle" not in str(info.value), path.name
        assert len(str(info.value)) < 400, path.name  # one line, not a dump of the file


def test_only_plain_data_is_saved(tmp_path):
    with pytest.raises(TypeError, match="holds Python objects"):
        mg.save(tmp_path / "x.npz", {"a": np.array([object()])})
    with pytest.raises(TypeError, match="cannot store a builtin_function_or_method at /fn"):
        mg.save(tmp_path / "x.npz", {"fn": print})


TRAIN = textwrap.dedent(
    """
    import sys
    import numpy as np
    import minigen as mg
    from minigen import functional as F, nn, optim
    from minigen.data import DataLoader, load_digits

    epochs, resume, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    x, y = load_digits("train")
    mg.manual_seed(0)
    g = mg.Generator(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.2, generator=g), nn.Linear(32, 10))
    opt = optim.Adam(model.parameters(), lr=1e-2)
    start = 0
    if resume != "-":
        checkpoint = mg.load(resume)
        model.load_state_dict(checkpoint["model"])
        opt.load_state_dict(checkpoint["optimizer"])
        g.load_state_dict(checkpoint["rng"])
        start = checkpoint["epoch"]
    for epoch in range(start, epochs):
        for xb, yb in DataLoader(x, y, batch_size=64, shuffle=True, generator=g):
            loss = F.cross_entropy(model(mg.Tensor(xb)), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    mg.save(out, {"model": model.state_dict(), "optimizer": opt.state_dict(), "rng": g.state_dict(), "epoch": epochs})
    """
)


def test_two_epochs_equal_one_epoch_save_load_in_a_new_process_and_one_more(tmp_path):
    def train(*args):
        subprocess.run([sys.executable, "-c", TRAIN, *map(str, args)], check=True)

    train(2, "-", tmp_path / "straight.npz")
    train(1, "-", tmp_path / "half.npz")
    train(2, tmp_path / "half.npz", tmp_path / "resumed.npz")
    straight, resumed = mg.load(tmp_path / "straight.npz"), mg.load(tmp_path / "resumed.npz")
    for key, value in straight["model"].items():
        np.testing.assert_array_equal(resumed["model"][key], value, err_msg=key)  # bit for bit
    assert straight["rng"] == resumed["rng"]
