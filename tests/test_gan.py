"""GANs: the optimal discriminator, which step moves what, the gradient penalty's second
derivatives, and a short run that must find the modes of the ring."""

import warnings

import numpy as np
import pytest

import minigen as mg
from minigen import functional as F
from minigen import metrics, optim
from minigen.experiments.gan import GANExperiment, make_config
from minigen.models.gan import (
    DCGANDiscriminator,
    MLPDiscriminator,
    critic_step,
    discriminator_loss,
    discriminator_step,
    generator_loss,
    generator_step,
    gradient_penalty,
    wgan_generator_step,
)
from minigen.train import train


def test_the_trained_discriminator_approaches_the_optimal_one():
    """On 1-D data with a fixed generator, D(x) -> p_data(x) / (p_data(x) + p_g(x))."""
    mg.manual_seed(0)
    rng = np.random.default_rng(0)
    D = MLPDiscriminator((1,), hidden=(32, 32))
    opt = optim.Adam(D.parameters(), lr=3e-3)
    for _ in range(1500):
        real = rng.normal(0.0, 1.0, (256, 1)).astype(np.float32)  # p_data = N(0, 1)
        fake = rng.normal(1.5, 0.5, (256, 1)).astype(np.float32)  # p_g = N(1.5, 0.5^2), held fixed
        loss = discriminator_loss(D(mg.Tensor(real)), D(mg.Tensor(fake)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    x = np.linspace(-1.5, 2.5, 41, dtype=np.float32)[:, None]
    p = np.exp(-0.5 * x[:, 0] ** 2) / np.sqrt(2 * np.pi)
    q = np.exp(-0.5 * ((x[:, 0] - 1.5) / 0.5) ** 2) / (0.5 * np.sqrt(2 * np.pi))
    with mg.no_grad():
        d = F.sigmoid(D(mg.Tensor(x))).data
    assert np.abs(d - p / (p + q)).max() < 0.08


def test_the_minimax_loss_saturates_where_the_non_saturating_one_does_not():
    """When D confidently rejects the samples (logit -6), the minimax loss barely moves G."""
    logits = mg.Tensor(np.full(4, -6.0), requires_grad=True)
    (minimax,) = mg.grad(generator_loss(logits, "minimax"), logits)
    (non_saturating,) = mg.grad(generator_loss(logits, "non-saturating"), logits)
    assert np.abs(minimax.data).max() < 0.001 < 0.2 < np.abs(non_saturating.data).min()


def _toy(tmp_path, **changes):
    settings = dict(model="mlp", data="ring8", out=str(tmp_path), epochs=1, hidden=[16, 16])
    return GANExperiment(make_config(**{**settings, **changes}))


def _parameters(module):
    return {name: p.data.copy() for name, p in module.named_parameters()}


def _same(before, module):
    return all(np.array_equal(before[name], p.data) for name, p in module.named_parameters())


@pytest.mark.parametrize("steps", [(discriminator_step, generator_step), (critic_step, wgan_generator_step)])
def test_the_d_step_moves_only_d_and_the_g_step_only_g(tmp_path, steps):
    d_step, g_step = steps
    experiment = _toy(tmp_path, model="wgan-gp" if d_step is critic_step else "mlp")
    G, D, rng = experiment.G, experiment.D, mg.Generator(0)
    real, z = mg.Tensor(experiment.distribution.sample(32, rng)[0]), mg.randn(32, 2, generator=rng)
    g_before, d_before = _parameters(G), _parameters(D)
    reported = d_step(G, D, experiment.d_opt, real, z)
    assert _same(g_before, G) and not _same(d_before, D)
    assert sorted(reported) == ["d_fake", "d_loss", "d_real"] and all(np.isfinite(v) for v in reported.values())
    g_before, d_before = _parameters(G), _parameters(D)
    assert sorted(g_step(G, D, experiment.g_opt, z)) == ["g_loss"]
    assert _same(d_before, D) and not _same(g_before, G)


def test_wgan_gp_penalty_gradgradchecks_through_a_conv_critic():
    mg.manual_seed(1)
    critic = DCGANDiscriminator((1, 4, 4), channels=2, batch_norm=False)
    rng = np.random.default_rng(2)
    real, fake = rng.standard_normal((2, 1, 4, 4)), rng.standard_normal((2, 1, 4, 4))
    before = {name: p.data.copy() for name, p in critic.named_parameters()}
    penalty = lambda fake: gradient_penalty(critic, real, fake, generator=mg.Generator(3))  # noqa: E731
    assert mg.gradcheck(penalty, [fake], module=critic, name="gradient penalty")  # fake and every weight
    for name, p in critic.named_parameters():  # the critic is as it was: float32, same values
        assert p.dtype == np.float32 and np.array_equal(p.data, before[name]), name


def test_a_short_seeded_mlp_gan_finds_the_modes_of_the_ring(tmp_path):
    experiment = GANExperiment(make_config(model="mlp", data="ring8", epochs=20, out=str(tmp_path)))
    history = train(experiment, 20, tmp_path, progress=False)
    assert history[-1]["modes_covered"] >= 7
    assert (tmp_path / "training.gif").exists() and (tmp_path / "samples.png").exists()


def test_a_winning_discriminator_gets_a_warning_with_advice(tmp_path):
    experiment = _toy(tmp_path)
    with pytest.warns(RuntimeWarning, match="label smoothing"):
        experiment.after_epoch(0, [{"epoch": 1, "train_d_loss": 0.001}])


def test_resume_equals_an_uninterrupted_run(tmp_path):
    straight = _toy(tmp_path / "a", epochs=2)
    train(straight, 2, tmp_path / "a", progress=False)
    first = _toy(tmp_path / "b", epochs=2)
    train(first, 1, tmp_path / "b", progress=False)
    resumed = _toy(tmp_path / "b", epochs=2)
    train(resumed, 2, tmp_path / "b", resume=True, progress=False)
    for key, value in straight.G.state_dict().items():
        np.testing.assert_array_equal(resumed.G.state_dict()[key], value, err_msg=key)


@pytest.mark.parametrize("model", ["dcgan", "cgan", "wgan-gp", "mlp"])
def test_image_models_train_and_evaluate_on_the_digits(tmp_path, monkeypatch, model):
    monkeypatch.setenv("MINIGEN_DATA", str(tmp_path / "data"))  # the cached classifier goes here
    experiment = GANExperiment(
        make_config(
            model=model,
            data="digits",
            epochs=1,
            **({"channels": 8} if model in ("dcgan", "wgan-gp") else {"hidden": [32, 32]}),
            out=str(tmp_path / "run"),
        )
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        history = train(experiment, 1, tmp_path / "run", progress=False)
    # the reported numbers are those of the model's own samples: scoring them again gives the same
    labels = np.arange(metrics.EVAL_SAMPLES) % 10 if experiment.conditional else None
    again = metrics.image_metrics(
        experiment.classifier, experiment.generate(metrics.EVAL_SAMPLES, labels), experiment.train_unit, experiment.test_unit
    )
    assert history[-1]["fid"] == again["fid"] and history[-1]["classes_above_5pct"] == again["classes_above_5pct"]
    assert history[-1]["fid"] > 2 * again["fid_real_vs_real"]  # one epoch of a tiny model is far from the data
    assert (tmp_path / "run" / "frames" / "epoch_001.png").exists() and (tmp_path / "run" / "training.gif").exists()
    assert (tmp_path / "data" / "classifiers").exists()


def test_the_real_images_side_of_the_metrics_is_computed_once_per_run(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIGEN_DATA", str(tmp_path / "data"))
    calls = []
    real = metrics.reference_features
    monkeypatch.setattr(metrics, "reference_features", lambda *args, **kwargs: calls.append(1) or real(*args, **kwargs))
    experiment = GANExperiment(make_config(model="mlp", data="digits", hidden=[16, 16], epochs=3, out=str(tmp_path / "run")))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        history = train(experiment, 3, tmp_path / "run", progress=False)
    assert len(calls) == 1
    assert all(row["train_seconds"] > 0 and row["eval_seconds"] > 0 for row in history)


def test_the_fid_floor_is_what_real_images_score_with_as_many_images(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIGEN_DATA", str(tmp_path / "data"))
    experiment = GANExperiment(make_config(model="mlp", data="digits", hidden=[16, 16], out=str(tmp_path / "run")))
    real = experiment.train_unit[np.random.default_rng(5).choice(len(experiment.train_unit), metrics.EVAL_SAMPLES, replace=False)]
    found = metrics.image_metrics(experiment.classifier, real, experiment.train_unit, experiment.test_unit)
    assert found["floor_images"] == metrics.EVAL_SAMPLES
    # real training images "generated": FID at the floor (two draws of the same size), far below noise
    assert abs(found["fid"] - found["fid_real_vs_real"]) < 0.25 * found["fid_real_vs_real"]
    assert found["fid"] < 0.02 * found["fid_noise"] and found["classes_above_5pct"] == 10


def test_a_resumed_run_rebuilds_every_gif_frame_from_its_checkpoint(tmp_path):
    from PIL import Image

    straight = _toy(tmp_path / "a", epochs=3)
    train(straight, 3, tmp_path / "a", progress=False)
    train(_toy(tmp_path / "b", epochs=3), 2, tmp_path / "b", progress=False)
    for frame in (tmp_path / "b" / "frames").iterdir():  # as if killed before the frames were written
        frame.unlink()
    resumed = _toy(tmp_path / "b", epochs=3)
    train(resumed, 3, tmp_path / "b", resume=True, progress=False)
    assert sorted(p.name for p in (tmp_path / "b" / "frames").iterdir()) == ["epoch_001.png", "epoch_002.png", "epoch_003.png"]
    assert len(resumed.frames) == 3
    for a, b in zip(straight.frames, resumed.frames):
        np.testing.assert_array_equal(a, b)
    assert Image.open(tmp_path / "b" / "training.gif").n_frames == 3


def test_toys_refuse_image_models():
    with pytest.raises(ValueError, match="--model dcgan needs images"):
        make_config(model="dcgan", data="ring8")
