"""The shared trainer, exercised with the VAE experiment on the bundled digits."""

import csv
import os
import stat
import subprocess
import sys

import numpy as np
import pytest

from minigen.experiments.vae import VAEExperiment, make_config
from minigen.serialization import load
from minigen.train import RunExists, TrainingDiverged, train


def config(tmp_path, **changes):
    settings = dict(epochs=2, hidden=[32], latent=4, out=str(tmp_path))
    return make_config(**{**settings, **changes})


def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path):
    straight = VAEExperiment(config(tmp_path / "a"))
    train(straight, 2, tmp_path / "a", progress=False)
    first = VAEExperiment(config(tmp_path / "b"))
    train(first, 1, tmp_path / "b", progress=False)
    resumed = VAEExperiment(config(tmp_path / "b"))  # a fresh object, as after a restart
    history = train(resumed, 2, tmp_path / "b", resume=True, progress=False)
    assert [row["epoch"] for row in history] == [1, 2]
    for key, value in straight.model.state_dict().items():
        np.testing.assert_array_equal(resumed.model.state_dict()[key], value, err_msg=key)
    with open(tmp_path / "b" / "metrics.csv") as file:
        rows = list(csv.DictReader(file))
    assert [r["epoch"] for r in rows] == ["1", "2"] and "test_elbo" in rows[0] and "active_units" in rows[0]
    assert load(tmp_path / "b" / "checkpoint.npz")["epoch"] == 2


def test_resuming_with_other_settings_is_refused(tmp_path):
    train(VAEExperiment(config(tmp_path)), 1, tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"trained with other settings \(lr 0.001 saved, 0.1 given\)"):
        train(VAEExperiment(config(tmp_path, lr=0.1)), 2, tmp_path, resume=True, progress=False)


@pytest.mark.filterwarnings("ignore:invalid value encountered")  # NumPy's own note on the NaN we inject
def test_a_nan_stops_training_saying_where_and_what_to_try(tmp_path):
    experiment = VAEExperiment(config(tmp_path))
    step = experiment.train_step
    calls = []

    def poisoned_step(batch, epoch):
        calls.append(1)
        if len(calls) == 3:
            experiment.model.to_mu.weight.data[0, 0] = np.nan
        return step(batch, epoch)

    experiment.train_step = poisoned_step
    with pytest.raises(
        TrainingDiverged,
        match=r"vae-mlp-digits: at epoch 1, batch 3, Adam.step: parameter \d+ \(shape .*\) has a non-finite gradient, "
        r"so nothing was updated\. Try a lower learning rate",
    ):
        train(experiment, 2, tmp_path, progress=False)


def test_a_nan_loss_stops_training_too(tmp_path):
    experiment = VAEExperiment(config(tmp_path))
    experiment.train_step = lambda batch, epoch: {"loss": float("inf")}
    with pytest.raises(TrainingDiverged, match=r"loss became inf at epoch 1, batch 1\. Try a lower learning rate"):
        train(experiment, 1, tmp_path, progress=False)


def test_a_short_training_lowers_the_test_loss(tmp_path):
    experiment = VAEExperiment(config(tmp_path))
    before = experiment.evaluate()["test_elbo"]
    history = train(experiment, 3, tmp_path, progress=False)
    assert history[-1]["test_elbo"] > before + 3.0  # nats per image
    assert {p.name for p in tmp_path.glob("*.png")} >= {
        "reconstructions.png",
        "samples.png",
        "elbo.png",
        "interpolation.png",
        "latent_means.png",
    }


def test_a_two_dimensional_latent_draws_the_manifold(tmp_path):
    train(VAEExperiment(config(tmp_path, latent=2)), 1, tmp_path, progress=False)
    assert (tmp_path / "manifold.png").exists()


def test_kl_warmup_ramps_beta_linearly(tmp_path):
    experiment = VAEExperiment(config(tmp_path, beta=2.0, warmup_epochs=4))
    assert [experiment.beta(epoch) for epoch in range(6)] == [0.5, 1.0, 1.5, 2.0, 2.0, 2.0]


def test_train_on_mnist_files_from_a_data_dir(tmp_path):
    """The MNIST path end to end, on a tiny IDX set written for the test (no download)."""
    from test_data import write_set

    write_set(tmp_path / "data" / "mnist", n=40)
    experiment = VAEExperiment(config(tmp_path / "run", data="mnist", data_dir=str(tmp_path / "data"), model="conv", hidden=[4, 8]))
    assert experiment.train_x.shape == (40, 1, 28, 28) and experiment.test_x.shape == (3, 1, 28, 28)
    history = train(experiment, 1, tmp_path / "run", progress=False)
    assert np.isfinite(history[-1]["test_elbo"])


# --- one run per folder ------------------------------------------------------------------------


def snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_a_folder_with_a_run_is_never_replaced_unasked(tmp_path):
    train(VAEExperiment(config(tmp_path, epochs=1)), 1, tmp_path, progress=False)
    before = snapshot(tmp_path)
    with pytest.raises(RunExists, match=r"already holds a run \(vae-mlp-digits, 1 of 1 epochs done\); add --resume .* --overwrite"):
        train(VAEExperiment(config(tmp_path, epochs=1)), 1, tmp_path, progress=False)
    assert snapshot(tmp_path) == before  # not a byte changed
    history = train(VAEExperiment(config(tmp_path, epochs=1, seed=5)), 1, tmp_path, progress=False, overwrite=True)
    assert load(tmp_path / "checkpoint.npz")["config"]["seed"] == 5 and len(history) == 1


def test_a_live_lock_keeps_a_second_training_out_and_a_stale_one_is_cleared(tmp_path):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / ".lock").write_text(str(other.pid))
        with pytest.raises(RunExists, match=f"process {other.pid} is training there now"):
            train(VAEExperiment(config(tmp_path, epochs=1)), 1, tmp_path, progress=False)
    finally:
        other.kill()
        other.wait()
    (tmp_path / ".metrics.csv.abc123.tmp").write_text("half")  # left by a killed run
    train(VAEExperiment(config(tmp_path, epochs=1)), 1, tmp_path, progress=False)  # the lock's process is gone: stale
    assert not (tmp_path / ".lock").exists() and not list(tmp_path.glob(".*.tmp"))


def test_out_that_is_a_file_is_refused_before_training(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ValueError, match="is a file, not a folder|cannot make that folder"):
        train(VAEExperiment(config(tmp_path / "file", epochs=1)), 1, tmp_path / "file", progress=False)


def test_checkpoint_and_pictures_get_the_permissions_of_other_files(tmp_path):
    train(VAEExperiment(config(tmp_path, epochs=1)), 1, tmp_path, progress=False)
    umask = os.umask(0)
    os.umask(umask)
    for name in ("checkpoint.npz", "metrics.csv", "samples.png"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask, name


def test_two_trainings_on_one_folder_one_trains_and_the_other_is_refused(tmp_path):
    import time

    out = tmp_path / "run"
    command = [sys.executable, "-m", "minigen", "train", "vae", "--epochs", "60", "--hidden", "16", "--out", str(out)]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (out / ".lock").exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    second = subprocess.run(command, capture_output=True, text=True)
    first_err = first.communicate(timeout=300)[1]
    assert first.returncode == 0, first_err
    assert second.returncode == 2
    assert second.stderr == (
        f"minigen: error: --out {out} is in use: process {first.pid} is training there now; wait for it or choose another --out\n"
    )
    assert int(load(out / "checkpoint.npz")["epoch"]) == 60
    with open(out / "metrics.csv") as file:
        assert [int(row["epoch"]) for row in csv.DictReader(file)] == list(range(1, 61))
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []  # lock and temporary files gone


SAVE_FOREVER = """
import sys
import numpy as np
import minigen as mg

path = sys.argv[1]
for epoch in range(1, 10**6):
    mg.save(path, {"epoch": epoch, "weights": np.full(3_000_000, epoch, np.float64)})  # 24 MB
    print(epoch, flush=True)
"""


def test_a_kill_during_save_leaves_a_whole_checkpoint_and_the_next_start_cleans_up(tmp_path):
    import signal
    import time

    from minigen.train import run_folder

    path = tmp_path / "checkpoint.npz"
    for delay in (0.9, 1.3, 1.7):
        writer = subprocess.Popen([sys.executable, "-c", SAVE_FOREVER, str(path)], stdout=subprocess.PIPE, text=True)
        writer.stdout.readline()  # one checkpoint is whole on disk; now kill it at some point of another write
        time.sleep(delay)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        checkpoint = load(path)  # the old or the new one, never half of one
        assert checkpoint["weights"].shape == (3_000_000,) and np.all(checkpoint["weights"] == checkpoint["epoch"])
    with run_folder(tmp_path, resume=True, overwrite=False):
        assert not list(tmp_path.glob(".*.tmp"))  # what the killed writers left is gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz"]
