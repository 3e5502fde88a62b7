"""Diffusion: the forward process, its posterior and the samplers against their definitions."""

import math

import numpy as np
import pytest

import minigen as mg
from minigen.experiments import diffusion as runs
from minigen.experiments.settings import SettingError
from minigen.models.diffusion import NoiseSchedule, UNetDenoiser, ddim_step, ddpm_step, posterior, q_sample, sample, timestep_embedding
from minigen.train import train

SCHEDULES = {"linear": NoiseSchedule.linear(1000), "cosine": NoiseSchedule.cosine(1000)}


@pytest.mark.parametrize("name", SCHEDULES)
def test_the_schedules_end_in_noise_and_match_their_papers(name):
    schedule = SCHEDULES[name]
    assert schedule.steps == 1000 and schedule.alpha_bar[0] == 1.0
    assert np.all(np.diff(schedule.alpha_bar) < 0)  # every step adds noise
    assert schedule.alpha_bar[-1] < 1e-4  # x_T is (almost) pure noise
    if name == "linear":
        assert schedule.beta[1] == pytest.approx(1e-4) and schedule.beta[1000] == pytest.approx(0.02)
    else:  # alpha_bar follows the squared cosine; the cap on beta only bites at the very end
        t = np.arange(0, 990, 90)
        f = np.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2
        np.testing.assert_allclose(schedule.alpha_bar[t], f / f[0], rtol=1e-10)


@pytest.mark.parametrize("name", SCHEDULES)
@pytest.mark.parametrize("t", [1, 10, 500, 1000])
def test_the_closed_form_equals_iterating_the_one_step_process(name, t):
    """q(x_t | x_0) in one jump, against t steps of x <- sqrt(1 - beta) x + sqrt(beta) eps (Monte Carlo)."""
    schedule, rng = SCHEDULES[name], np.random.default_rng(t)
    x0 = np.array([1.5, -0.5])  # two starting points, 100,000 chains each
    x = np.repeat(x0[:, None], 100_000, axis=1)
    for s in range(1, t + 1):
        x = math.sqrt(1.0 - schedule.beta[s]) * x + math.sqrt(schedule.beta[s]) * rng.standard_normal(x.shape)
    jumped = q_sample(schedule, np.repeat(x0[:, None], 100_000, axis=1), t, rng.standard_normal(x.shape))
    for chains in (x, jumped):
        np.testing.assert_allclose(chains.mean(axis=1), math.sqrt(schedule.alpha_bar[t]) * x0, atol=0.01)
        np.testing.assert_allclose(chains.var(axis=1), 1.0 - schedule.alpha_bar[t], rtol=0.02, atol=1e-5)


@pytest.mark.parametrize("name", SCHEDULES)
def test_the_posterior_is_bayes_rule_on_the_two_gaussians(name):
    """q(x_{t-1} | x_t, x_0) from the prior q(x_{t-1} | x_0) and the likelihood q(x_t | x_{t-1}):
    precisions add, and the mean is the precision-weighted average."""
    schedule, rng = SCHEDULES[name], np.random.default_rng(0)
    t = np.array([2, 3, 50, 400, 999, 1000])
    x0, x_t = rng.standard_normal(len(t)), rng.standard_normal(len(t))
    prior_mean, prior_var = np.sqrt(schedule.alpha_bar[t - 1]) * x0, 1.0 - schedule.alpha_bar[t - 1]
    slope, noise_var = np.sqrt(schedule.alpha[t]), schedule.beta[t]  # x_t = slope x_{t-1} + N(0, noise_var)
    precision = 1.0 / prior_var + slope**2 / noise_var
    expected_mean = (prior_mean / prior_var + slope * x_t / noise_var) / precision
    mean, var = posterior(schedule, x0, x_t, t)
    np.testing.assert_allclose(mean, expected_mean, rtol=1e-9)
    np.testing.assert_allclose(var, 1.0 / precision, rtol=1e-9)


def test_ddim_with_eta_one_and_every_step_is_the_ddpm_step_with_the_posterior_variance():
    schedule, rng = SCHEDULES["linear"], np.random.default_rng(0)
    x_t, noise, z = rng.standard_normal((3, 5))
    for t in (1, 2, 500, 1000):
        ddpm = ddpm_step(schedule, x_t, t, noise, z, variance="posterior")
        np.testing.assert_allclose(ddim_step(schedule, x_t, t, t - 1, noise, eta=1.0, z=z), ddpm, rtol=1e-10, atol=1e-12)
    # eta = 0: no noise at all, whatever z is
    assert np.array_equal(ddim_step(schedule, x_t, 500, 400, noise, 0.0, z), ddim_step(schedule, x_t, 500, 400, noise, 0.0, -z))


def _mixture_noise_oracle(schedule, weights, means, stds):
    r"""The exact noise prediction for data from a 1-D Gaussian mixture: at step t the data are
    the mixture with means sqrt(abar) mu_k and variances abar s_k^2 + 1 - abar, and the best
    eps_theta is -sqrt(1 - abar) times the score d/dx log p_t(x)."""

    def predict(x, t):
        abar = schedule.alpha_bar[t]
        m, v = math.sqrt(abar) * means, abar * stds**2 + 1.0 - abar
        log_p = np.log(weights) - 0.5 * np.log(2 * math.pi * v) - 0.5 * (x[:, None] - m) ** 2 / v
        responsibility = np.exp(log_p - log_p.max(axis=1, keepdims=True))
        responsibility /= responsibility.sum(axis=1, keepdims=True)
        score = (responsibility * (m - x[:, None]) / v).sum(axis=1)
        return -math.sqrt(1.0 - abar) * score

    return predict


MIXTURE = dict(weights=np.array([0.3, 0.7]), means=np.array([-2.0, 1.5]), stds=np.array([0.3, 0.5]))


@pytest.mark.parametrize("steps", [None, 200], ids=["ddpm, 1000 steps", "ddim, 200 steps"])
def test_the_true_noise_makes_sampling_reproduce_the_data(steps):
    """With the exact noise prediction of a two-component mixture, both samplers give back its
    weights, means and spreads."""
    schedule, (weights, means, stds) = SCHEDULES["linear"], MIXTURE.values()
    x = sample(
        _mixture_noise_oracle(schedule, weights, means, stds), schedule, (20_000,), np.random.default_rng(0), steps=steps, dtype=np.float64
    )
    left, right = x[x < 0], x[x >= 0]
    assert len(left) / len(x) == pytest.approx(0.3, abs=0.015)
    assert left.mean() == pytest.approx(-2.0, abs=0.03) and right.mean() == pytest.approx(1.5, abs=0.03)
    assert left.std() == pytest.approx(0.3, rel=0.08) and right.std() == pytest.approx(0.5, rel=0.08)


def test_ddim_approaches_the_data_as_its_steps_grow():
    """Deterministic DDIM (eta = 0) integrates an ODE in k steps: its error shrinks as k grows
    (measured: the left mode's mean is off by 0.08 with 20 steps, 0.04 with 50, 0.02 with 200)."""
    schedule = SCHEDULES["linear"]
    oracle = _mixture_noise_oracle(schedule, *MIXTURE.values())
    errors = []
    for steps in (20, 50, 200):
        x = sample(oracle, schedule, (20_000,), np.random.default_rng(0), steps=steps, dtype=np.float64)
        errors.append(abs(x[x < 0].mean() + 2.0) + abs(x[x >= 0].mean() - 1.5))
    assert errors[0] > errors[1] > errors[2]


@pytest.mark.parametrize("name", SCHEDULES)
def test_ddim_with_every_step_is_the_deterministic_map_of_the_probability_flow(name):
    """For Gaussian data N(mu, s^2) every q(x_t) is Gaussian, and the deterministic flow between
    them keeps each point's standardised position: x_0 = mu + s (x_T - sqrt(abar_T) mu) / sd_T.
    DDIM (eta = 0) with the exact noise prediction is a first-order solver of that flow: with
    all T steps it lands within 0.006 of the map (measured: linear 0.0059, cosine 0.0032), and
    its error shrinks in proportion to the step (200 steps: 0.028, 0.015)."""
    schedule, mu, s = SCHEDULES[name], 1.5, 0.5
    oracle = _mixture_noise_oracle(schedule, np.array([1.0]), np.array([mu]), np.array([s]))
    errors = []
    for steps in (200, 1000):
        trajectory = []
        x0 = sample(oracle, schedule, (1000,), np.random.default_rng(0), steps=steps, dtype=np.float64, trajectory=trajectory)
        x_T, abar_T = trajectory[0][1], schedule.alpha_bar[-1]
        exact = mu + s * (x_T - math.sqrt(abar_T) * mu) / math.sqrt(abar_T * s**2 + 1 - abar_T)
        errors.append(np.abs(x0 - exact).max())
    assert errors[1] < 0.0065 and 4 < errors[0] / errors[1] < 6


def test_timestep_embedding_is_sines_and_cosines_of_geometric_frequencies():
    e = timestep_embedding(np.array([0, 1, 999]), 8)
    assert e.shape == (3, 8) and e.dtype == np.float32
    np.testing.assert_allclose(e[0], [0, 1] * 4, atol=1e-7)  # t = 0: sin 0, cos 0
    np.testing.assert_allclose(e[1, 0::2], np.sin(10_000 ** (-np.arange(4) / 4)), rtol=1e-6)
    with pytest.raises(ValueError, match="dim must be a positive even number, got 7"):
        timestep_embedding([1], 7)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match=r"NoiseSchedule.linear: steps must be a positive int, got 0"):
        NoiseSchedule.linear(0)
    with pytest.raises(
        ValueError, match=r"sample: steps must be an int from 1 to T = 1000 \(or None for all T ancestral steps\), got 2000"
    ):
        sample(lambda x, t: x, SCHEDULES["linear"], (2,), np.random.default_rng(0), steps=2000)


def test_the_noise_prediction_loss_is_zero_for_the_true_noise_and_one_for_none():
    """Data x_0 = 0 make x_t = sqrt(1 - abar_t) eps, so eps = x_t / sqrt(1 - abar_t) is the perfect
    prediction (loss 0); predicting 0 leaves E[eps^2] = 1."""
    from minigen.models.diffusion import noise_prediction_loss

    schedule, x0 = SCHEDULES["cosine"], np.zeros((500, 2, 4, 4), np.float32)
    perfect = lambda x_t, t: x_t / np.sqrt(1.0 - schedule.alpha_bar[t]).reshape(-1, 1, 1, 1).astype(np.float32)  # noqa: E731
    assert noise_prediction_loss(perfect, schedule, x0, np.random.default_rng(0)).item() < 1e-8
    nothing = lambda x_t, t: x_t * 0.0  # noqa: E731
    assert noise_prediction_loss(nothing, schedule, x0, np.random.default_rng(0)).item() == pytest.approx(1.0, abs=0.02)


def test_the_mlp_denoiser_learns_to_predict_the_noise_of_a_toy():
    """A few hundred steps of L_simple on ring8 take the loss from about 1 (no idea of the noise)
    to well below it; the model sees the step through its embedding."""
    import minigen as mg
    from minigen import optim
    from minigen.data import toys
    from minigen.models.diffusion import MLPDenoiser, noise_prediction_loss

    mg.manual_seed(0)
    model, data, rng = MLPDenoiser(hidden=(64, 64)), toys.ring8(), np.random.default_rng(0)
    schedule = NoiseSchedule.linear(1000)
    optimizer = optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(300):
        loss = noise_prediction_loss(model, schedule, data.sample(256, generator=mg.Generator(len(losses)))[0], rng)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[:10]) > 0.8 and np.mean(losses[-50:]) < 0.5, (np.mean(losses[:10]), np.mean(losses[-50:]))
    x = mg.Tensor(np.zeros((3, 2), np.float32))
    assert model(x, 1).shape == (3, 2) and not np.allclose(model(x, 1).data, model(x, 900).data)


def test_clipping_x0_keeps_ddim_finite_where_the_cosine_schedule_ends_in_pure_noise():
    """At t = T of the cosine schedule sqrt(abar_T) is about 5e-5: an error of 0.01 in the predicted
    noise becomes an error of 200 in x0_hat, unless x0_hat is limited to the data's range."""
    schedule = SCHEDULES["cosine"]
    assert math.sqrt(schedule.alpha_bar[1000]) == pytest.approx(4.9e-5, rel=0.01)
    x_t = np.array([0.3, -0.2])
    noise = x_t + 0.01  # the true noise of x0 = 0 is (almost exactly) x_t; this prediction is 0.01 off
    unclipped = ddim_step(schedule, x_t, 1000, 900, noise)
    clipped = ddim_step(schedule, x_t, 1000, 900, noise, clip=1.0)
    assert np.abs(unclipped).max() > 20 and np.abs(clipped).max() < 1.5
    # with a prediction that needs no clipping, clipping changes nothing
    np.testing.assert_allclose(ddim_step(schedule, x_t, 10, 5, noise, clip=1e9), ddim_step(schedule, x_t, 10, 5, noise))


# --- the U-Net and its parts ------------------------------------------------------------------


def test_group_norm_normalises_each_example_and_group_on_its_own():
    x = np.random.default_rng(0).normal(3.0, 2.0, (4, 6, 5, 5)).astype(np.float32)
    x[0] *= 100.0  # one example far from the others changes nothing for them (unlike batch norm)
    layer = mg.nn.GroupNorm(3, 6)
    y = layer(mg.Tensor(x)).data.reshape(4, 3, -1)
    np.testing.assert_allclose(y.mean(axis=2), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=2), 1.0, rtol=1e-3)
    np.testing.assert_allclose(layer(mg.Tensor(x[1:])).data, layer(mg.Tensor(x)).data[1:], rtol=1e-6)
    with pytest.raises(ValueError, match=r"group_norm: num_groups must be a positive whole number that divides the 6 channels, got 4"):
        mg.functional.group_norm(mg.Tensor(x), 4)
    with pytest.raises(ValueError, match=r"GroupNorm\(3, 6\): expected input \(N, 6, \.\.\.\), got shape \(4, 5\)"):
        layer(mg.Tensor(np.zeros((4, 5), np.float32)))


@pytest.mark.parametrize("shape, channels", [((1, 8, 8), (8, 16)), ((1, 28, 28), (8, 16, 16))])
def test_the_unet_predicts_noise_of_the_images_shape_and_starts_at_zero(shape, channels):
    mg.manual_seed(0)
    net = UNetDenoiser(shape, channels, groups=4)
    x = np.random.default_rng(0).standard_normal((3, *shape)).astype(np.float32)
    assert net(mg.Tensor(x), np.array([1, 500, 1000])).shape == (3, *shape)
    np.testing.assert_array_equal(net(mg.Tensor(x), 7).data, 0.0)  # the last convolution starts at zero
    for p in net.parameters():  # once trained a little, every weight gets a gradient: the skips are wired
        p.data += 0.01 * np.random.default_rng(1).standard_normal(p.shape).astype(np.float32)
    loss = (net(mg.Tensor(x), np.array([3, 30, 300])) ** 2).mean()
    loss.backward()
    assert all(p.grad is not None and np.abs(p.grad.data).max() > 0 for p in net.parameters())


def test_the_unet_refuses_sides_it_cannot_halve():
    with pytest.raises(ValueError, match=r"UNetDenoiser: 3 levels halve the image 2 times, so its sides must be divisible by 4; got 10x10"):
        UNetDenoiser((1, 10, 10), (8, 16, 16))


def test_the_moving_average_follows_its_formula_and_decay_zero_is_the_model_itself():
    model = mg.nn.Linear(3, 2)
    average = mg.optim.ExponentialMovingAverage(model, 0.9)
    expected = model.weight.data.astype(np.float64)
    for n in range(30):
        model.weight.data += 1.0
        average.update(model)
        decay = min(0.9, (1 + n) / (10 + n))  # 0.1 at the first update: the initial weights fade fast
        expected = decay * expected + (1 - decay) * model.weight.data
    np.testing.assert_allclose(average.model.weight.data, expected, rtol=1e-5)
    assert mg.optim.ExponentialMovingAverage(model, 0.0).model is model
    with pytest.raises(ValueError, match=r"decay must be in \[0, 1\), got 1.0"):
        mg.optim.ExponentialMovingAverage(model, 1.0)


# --- runs: minigen train diffusion ------------------------------------------------------------


def _toy_run(out, epochs=2, **settings):
    config = runs.make_config(data="ring8", hidden=[32, 32], epochs=epochs, sample_steps=10, out=str(out), **settings)
    return runs.DiffusionExperiment(config)


def test_resume_equals_an_uninterrupted_run(tmp_path):
    straight = _toy_run(tmp_path / "a")
    train(straight, 2, tmp_path / "a", progress=False)
    train(_toy_run(tmp_path / "b"), 1, tmp_path / "b", progress=False)
    resumed = _toy_run(tmp_path / "b")
    history = train(resumed, 2, tmp_path / "b", resume=True, progress=False)
    for key, value in straight.model.state_dict().items():
        np.testing.assert_array_equal(resumed.model.state_dict()[key], value, err_msg=key)
    assert [row["epoch"] for row in history] == [1, 2] and history[-1]["modes_covered"] == straight.evaluate()["modes_covered"]


def test_a_toy_run_draws_the_samples_the_trajectory_and_the_loss_by_step(tmp_path):
    from PIL import Image

    experiment = _toy_run(tmp_path)
    history = train(experiment, 2, tmp_path, progress=False)
    assert "modes_covered" not in history[0] and "high_quality" in history[1]  # sample metrics after the last epoch
    for picture in ("samples.png", "trajectory.png", "loss_by_step.png", "losses.png"):
        assert (tmp_path / picture).stat().st_size > 5000, picture
    gif = Image.open(tmp_path / "trajectory.gif")
    assert gif.n_frames == 11  # x_T and every step of 10-step DDIM
    gif.seek(10)
    assert gif.info["duration"] == 1500  # the samples stay on screen
    losses, edges = experiment.loss_by_step()
    assert list(edges) == list(range(0, 1001, 100)) and np.all(np.isfinite(losses))
    assert history[-1]["test_loss"] == pytest.approx(losses.mean())


def test_the_toys_take_the_mlp_and_images_the_unet():
    with pytest.raises(SettingError, match="--model unet is for images; --data ring8 takes --model mlp"):
        runs.make_config(model="unet", data="ring8")
    with pytest.raises(SettingError, match="--model mlp is for the 2-D toys; --data digits takes --model unet"):
        runs.make_config(model="mlp", data="digits")
    assert runs.make_config(data="digits")["channels"] == [32, 64] and runs.make_config(data="mnist")["channels"] == [16, 32, 32]


def test_a_short_seeded_run_finds_every_mode_of_the_ring(tmp_path):
    """A quarter of the default run (15 epochs, 20 DDIM steps): 8/8 modes, 81% high quality;
    the default 60 epochs reach 96% (README)."""
    config = runs.make_config(data="ring8", epochs=15, sample_steps=20, out=str(tmp_path))
    history = train(runs.DiffusionExperiment(config), 15, tmp_path, progress=False)
    assert history[-1]["modes_covered"] == 8 and history[-1]["high_quality"] > 0.75
    assert history[-1]["test_loss"] < 0.8 * history[0]["test_loss"]


def test_a_diverging_run_stops_in_one_line_saying_what_to_try(tmp_path, capsys):
    from minigen.cli import main

    assert main(["train", "diffusion", "--lr", "1e9", "--epochs", "2", "--hidden", "16", "--out", str(tmp_path), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("minigen: error: diffusion-mlp-ring8: loss became ") and err.endswith("Try a lower learning rate (--lr).\n")


def test_the_28x28_path_end_to_end_on_a_tiny_mnist(tmp_path):
    """The MNIST path (three levels, 28 -> 14 -> 7) on a tiny IDX set written for the test."""
    from PIL import Image
    from test_data import write_set

    write_set(tmp_path / "data" / "mnist", n=40)
    config = runs.make_config(data="mnist", data_dir=str(tmp_path / "data"), channels=[4, 8, 8], batch_size=8, epochs=1, sample_steps=2,
                              out=str(tmp_path / "run"))  # fmt: skip
    experiment = runs.DiffusionExperiment(config)
    history = train(experiment, 1, tmp_path / "run", progress=False)
    assert np.isfinite(history[-1]["test_loss"]) and np.isfinite(history[-1]["fid"])
    assert Image.open(tmp_path / "run" / "samples.png").size[0] > 300
    assert experiment.generate(3).shape == (3, 1, 28, 28)
