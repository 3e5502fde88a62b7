"""minigen.data: toys, digits, the IDX reader, the downloader (against a real local server), batches."""

import gzip
import hashlib
import http.server
import struct
import threading
from functools import partial

import numpy as np
import pytest

import minigen as mg
from minigen.data import (
    DataLoader,
    DataUnavailable,
    binarize_dynamic,
    binarize_fixed,
    download,
    grid25,
    load_digits,
    load_mnist,
    one_hot,
    read_idx,
    ring8,
    swiss_roll,
    to_symmetric,
    to_unit,
    two_moons,
)

# --- toys ---


def test_mixtures_report_their_modes_and_sample_around_them():
    for mixture, modes in ((ring8(), 8), (grid25(), 25)):
        points, mode = mixture.sample(5000, generator=mg.Generator(0))
        assert mixture.centers.shape == (modes, 2) and points.dtype == np.float32
        distance = np.linalg.norm(points - mixture.centers[mode], axis=1)
        assert np.mean(distance < 3 * mixture.std) > 0.98  # a 2-D Gaussian has 98.9% within 3 std
        assert set(np.unique(mode)) == set(range(modes))
    np.testing.assert_allclose(np.linalg.norm(ring8().centers, axis=1), 2.0)


def test_toys_are_reproducible_from_a_seed():
    a, _ = ring8().sample(10, generator=mg.Generator(5))
    b, _ = ring8().sample(10, generator=mg.Generator(5))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(swiss_roll(10, generator=mg.Generator(1)), swiss_roll(10, generator=mg.Generator(1)))
    assert two_moons(7, generator=mg.Generator(0))[0].shape == (7, 2)


# --- digits ---


def test_digits_split_is_fixed_disjoint_and_stratified():
    train_x, train_y = load_digits("train")
    test_x, test_y = load_digits("test")
    all_x, _ = load_digits("all")
    assert train_x.shape == (1442, 1, 8, 8) and test_x.shape == (355, 1, 8, 8) and len(all_x) == 1797
    assert train_x.dtype == np.float32 and 0.0 <= train_x.min() and train_x.max() <= 1.0
    counts_train, counts_test = np.bincount(train_y, minlength=10), np.bincount(test_y, minlength=10)
    np.testing.assert_allclose(counts_test / (counts_train + counts_test), 0.2, atol=0.01)
    train_rows = {row.tobytes() for row in train_x.reshape(len(train_x), -1)}
    overlap = sum(row.tobytes() in train_rows for row in test_x.reshape(len(test_x), -1))
    assert overlap < 5  # a few digits are drawn identically by different writers


# --- IDX files ---


def idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_set(folder, n=6, seed=0):
    """A tiny MNIST-shaped set: four .gz files; returns their SHA-256 sums."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    images, labels = rng.integers(0, 256, (n, 28, 28)), rng.integers(0, 10, n)
    sums = {}
    for stem, array in (
        ("train-images-idx3-ubyte", images),
        ("train-labels-idx1-ubyte", labels),
        ("t10k-images-idx3-ubyte", images[:3]),
        ("t10k-labels-idx1-ubyte", labels[:3]),
    ):
        data = gzip.compress(idx_bytes(array))
        (folder / f"{stem}.gz").write_bytes(data)
        sums[f"{stem}.gz"] = hashlib.sha256(data).hexdigest()
    return images, labels, sums


def test_read_idx_raw_and_gzip(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a").write_bytes(idx_bytes(array))
    (tmp_path / "a.gz").write_bytes(gzip.compress(idx_bytes(array)))
    np.testing.assert_array_equal(read_idx(tmp_path / "a"), array)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), array)


def test_read_idx_names_the_bad_file(tmp_path):
    (tmp_path / "wrong-magic").write_bytes(b"\x00\x00\x0d\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match=r"wrong-magic is not an IDX file of unsigned bytes: magic number 0x00000d01"):
        read_idx(tmp_path / "wrong-magic")
    (tmp_path / "short").write_bytes(idx_bytes(np.zeros((4, 5)))[:-3])
    with pytest.raises(ValueError, match=r"short: the header says 4 x 5 = 20 bytes of data, but the file has 17"):
        read_idx(tmp_path / "short")


def test_load_mnist_from_files_the_user_has(tmp_path):
    images, labels, _ = write_set(tmp_path / "mnist")
    x, y = load_mnist("train", root=tmp_path, download_missing=False)
    assert x.shape == (6, 1, 28, 28) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:, 0], (images / 255.0).astype(np.float32))  # each k / 255 correctly rounded
    np.testing.assert_array_equal(y, labels)


def test_load_mnist_without_files_or_network_says_where_to_put_them(tmp_path):
    with pytest.raises(DataUnavailable, match=f"not found in {tmp_path / 'fashion-mnist'}"):
        load_mnist("test", name="fashion-mnist", root=tmp_path, download_missing=False)


# --- the downloader, against a real HTTP server on 127.0.0.1 ---


@pytest.fixture
def server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_download_fetches_verifies_and_loads(server, tmp_path):
    served, url = server
    images, labels, sums = write_set(served)
    folder = download("mnist", root=tmp_path / "cache", mirrors=[url], sha256=sums)
    assert sorted(p.name for p in folder.iterdir()) == sorted(sums)  # no temporary files left
    x, y = load_mnist("train", root=tmp_path / "cache", download_missing=False)
    np.testing.assert_array_equal(y, labels)


def test_a_corrupted_download_leaves_nothing_behind(server, tmp_path):
    served, url = server
    _, _, sums = write_set(served)
    data = bytearray((served / "train-images-idx3-ubyte.gz").read_bytes())
    data[100] ^= 0xFF  # one flipped byte
    (served / "train-images-idx3-ubyte.gz").write_bytes(bytes(data))
    with pytest.raises(RuntimeError, match="checksum mismatch for .*train-images-idx3-ubyte.gz") as info:
        download("mnist", root=tmp_path / "cache", mirrors=[url], sha256=sums)
    assert "copy the four files" in str(info.value)
    assert not (tmp_path / "cache" / "mnist" / "train-images-idx3-ubyte.gz").exists()
    assert not list((tmp_path / "cache" / "mnist").glob(".*part"))


def test_download_falls_back_to_the_next_mirror(server, tmp_path):
    served, url = server
    _, _, sums = write_set(served)
    dead = "http://127.0.0.1:9/"  # the discard port: nothing listens
    download("mnist", root=tmp_path / "cache", mirrors=[dead, url], sha256=sums, timeout=2)
    assert len(list((tmp_path / "cache" / "mnist").iterdir())) == 4


def test_minigen_data_environment_variable_sets_the_cache(monkeypatch, tmp_path):
    write_set(tmp_path / "env-root" / "mnist")
    monkeypatch.setenv("MINIGEN_DATA", str(tmp_path / "env-root"))
    x, _ = load_mnist("test", download_missing=False)
    assert len(x) == 3


# --- batches and transforms ---


def test_dataloader_batches_shuffles_with_a_seed_and_drops_last():
    x, y = np.arange(10)[:, None].astype(np.float32), np.arange(10)
    batches = list(DataLoader(x, y, batch_size=4))
    assert [len(b[0]) for b in batches] == [4, 4, 2] and len(DataLoader(x, y, batch_size=4)) == 3
    assert len(list(DataLoader(x, y, batch_size=4, drop_last=True))) == 2
    order = lambda seed: np.concatenate([b[1] for b in DataLoader(x, y, batch_size=3, shuffle=True, generator=mg.Generator(seed))])  # noqa: E731
    np.testing.assert_array_equal(order(1), order(1))
    assert sorted(order(1)) == list(range(10)) and list(order(1)) != list(range(10))
    loader = DataLoader(x, y, batch_size=10, shuffle=True, generator=mg.Generator(2))
    first, second = next(iter(loader))[1], next(iter(loader))[1]
    assert list(first) != list(second)  # a new order each epoch
    for xb, yb in DataLoader(x, y, batch_size=3, shuffle=True):
        np.testing.assert_array_equal(xb[:, 0], yb)  # arrays stay aligned


def test_dataloader_checks_its_arrays():
    with pytest.raises(ValueError, match=r"different lengths \[3, 4\]"):
        DataLoader(np.zeros(3), np.zeros(4))


def test_transforms():
    np.testing.assert_allclose(to_unit(np.array([0, 255], np.uint8)), [0.0, 1.0])
    np.testing.assert_allclose(to_symmetric(np.array([0.0, 0.5, 1.0])), [-1.0, 0.0, 1.0])
    p = np.full((200, 200), 0.3, np.float32)
    sample = binarize_dynamic(p, mg.Generator(0))
    assert set(np.unique(sample)) == {0.0, 1.0} and abs(sample.mean() - 0.3) < 0.01
    np.testing.assert_array_equal(binarize_fixed(p, seed=4), binarize_fixed(p, seed=4))
    assert not np.array_equal(binarize_dynamic(p), binarize_dynamic(p))
    np.testing.assert_array_equal(one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(ValueError, match=r"one_hot: labels must be integers in \[0, 3\)"):
        one_hot(np.array([3]), 3)
