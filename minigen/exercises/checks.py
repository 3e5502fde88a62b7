"""The exercises and their checks: each runs a student's function on small known cases.

An exercise is worth the points of its checks. Most checks are *shown*: `check(name, fn)` in
a notebook runs them in order and prints the first failure's verdict, or "passed". Some are
*hidden*: only the grader runs them (`minigen exercises grade`), so a solution that fits the
shown cases and nothing else does not earn every point. A check raises `ExerciseFailed` with
a message saying what is off and where.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..engine.gradcheck import describe_ratio


class ExerciseFailed(AssertionError):
    """The function ran but gave a wrong answer; the message says what and where."""


@dataclass(frozen=True)
class Check:
    run: Callable  # run(fn) raises ExerciseFailed on a wrong answer
    points: float
    hidden: bool


@dataclass
class Exercise:
    """One exercise: what to write, where, and the checks that grade it."""

    name: str  # "ex01_sigmoid_backward": the notebook's number, then what it is about
    task: str  # what to implement, as the student version's NotImplementedError says
    function: str  # the name the notebook gives the student's function
    checks: list[Check] = field(default_factory=list)

    @property
    def points(self) -> float:
        return sum(c.points for c in self.checks)

    @property
    def notebook(self) -> str:
        """The notebook's number, "01" for ex01_...: the grader looks there first."""
        return self.name[2:4]

    def check(self, points: float = 1, hidden: bool = False):
        """Decorator: add a check worth `points`; hidden checks run only when grading."""

        def register(run):
            self.checks.append(Check(run, points, hidden))
            return run

        return register

    def verify(self, fn, hidden: bool = False) -> None:
        """Run the shown checks (and the hidden ones if asked) in order; the first failure raises."""
        for c in self.checks:
            if hidden or not c.hidden:
                c.run(fn)


EXERCISES: dict[str, Exercise] = {}


def exercise(name: str, function: str, task: str) -> Exercise:
    """Register an exercise; add its checks with the `@<exercise>.check(...)` decorator."""
    EXERCISES[name] = Exercise(name, task, function)
    return EXERCISES[name]


def _exercise(name: str) -> Exercise:
    if name not in EXERCISES:
        raise KeyError(f"check: no exercise called {name!r}; the exercises are {sorted(EXERCISES)}")
    return EXERCISES[name]


def verify(name: str, fn) -> None:
    """Run exercise `name`'s shown checks on `fn`; raises ExerciseFailed, NotImplementedError or the function's error."""
    _exercise(name).verify(fn)


def verdict(name: str, error: BaseException | None) -> str:
    """The line `check` prints for the outcome of the shown checks (None: they passed)."""
    if error is None:
        return f"{name}: passed"
    if isinstance(error, NotImplementedError):
        return f"{name}: not done yet: {EXERCISES[name].task}"
    if isinstance(error, ExerciseFailed):
        return f"{name}: {error}"
    return f"{name}: your function raised {type(error).__name__}: {error}"  # the student's code crashed


def check(name: str, fn) -> None:
    """Print a one-line verdict on `fn` for exercise `name`. Never raises, so the notebook runs on.

    It returns nothing, so a check cell shows the verdict alone; `verify` raises instead."""
    try:
        exercise = _exercise(name)
    except KeyError as error:
        print(error.args[0])
        return
    try:
        exercise.verify(fn)
    except Exception as error:  # noqa: BLE001 - whatever the student's code raised becomes the verdict
        print(verdict(name, error))
        return
    print(verdict(name, None))


def _compare(what: str, got, expected, rtol: float = 1e-6, atol: float = 1e-9) -> None:
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        raise ExerciseFailed(f"{what}: returned shape {got.shape}, expected {expected.shape}")
    wrong = ~np.isclose(got, expected, rtol=rtol, atol=atol)
    if wrong.any():
        index = tuple(int(i) for i in np.argwhere(wrong)[0])
        g, e = float(got[index]), float(expected[index])
        raise ExerciseFailed(f"{what}: got {g:.6g}, expected {e:.6g} at index {index} ({describe_ratio(g, e)})")


# --- notebook 1: autograd from scratch ---------------------------------------------------------

topological_sort = exercise(
    "ex01_topological_sort", "topological_sort", "return every node reachable from root, each after all of its parents, without recursion"
)


@topological_sort.check()
def _parents_first(fn):
    diamond = {"loss": ["b", "c"], "b": ["a"], "c": ["a"], "a": []}
    order = list(fn(diamond, "loss"))
    if sorted(order) != sorted(diamond):
        raise ExerciseFailed(f"topological_sort: returned {order}; every node must appear exactly once: {sorted(diamond)}")
    position = {node: i for i, node in enumerate(order)}
    for node, parents in diamond.items():
        for parent in parents:
            if position[parent] > position[node]:
                raise ExerciseFailed(f"topological_sort: {parent!r} comes after {node!r}, but {node!r} was computed from it")


@topological_sort.check()
def _no_recursion(fn):
    chain = {i: [i - 1] for i in range(1, 5000)} | {0: []}  # deeper than Python's recursion limit
    try:
        order = list(fn(chain, 4999))
    except RecursionError:
        raise ExerciseFailed("topological_sort: a chain of 5,000 nodes hit the recursion limit; use an explicit stack") from None
    if order != list(range(5000)):
        raise ExerciseFailed("topological_sort: on a chain 0 <- 1 <- ... <- 4999 the order must be 0, 1, ..., 4999")


@topological_sort.check(hidden=True)
def _only_reachable_nodes(fn):
    graph = {"loss": ["h"], "h": ["x", "w"], "x": [], "w": [], "unused": ["w"], "other": []}
    order = list(fn(graph, "loss"))
    if sorted(order) != ["h", "loss", "w", "x"] or order[-1] != "loss":
        raise ExerciseFailed(f"topological_sort: returned {order} for a graph with nodes not reachable from the root")


sigmoid_backward = exercise(
    "ex01_sigmoid_backward",
    "sigmoid_backward",
    "return the gradient of the loss with respect to the sigmoid's input, from y = sigmoid(a) and grad = dL/dy",
)


def _sigmoid_gradient_check(fn, a, grad):
    y = 1 / (1 + np.exp(-a))
    eps = 1e-6
    numerical = grad * (1 / (1 + np.exp(-(a + eps))) - 1 / (1 + np.exp(-(a - eps)))) / (2 * eps)
    _compare("sigmoid backward (analytical vs numerical)", fn(y, grad), numerical, rtol=1e-5)


@sigmoid_backward.check()
def _sigmoid_on_a_batch(fn):
    a = np.array([[-2.0, -0.5, 0.0, 0.5], [1.0, 2.0, 3.0, -3.0]])
    _sigmoid_gradient_check(fn, a, np.linspace(0.5, 2.0, a.size).reshape(a.shape))


@sigmoid_backward.check(hidden=True)
def _sigmoid_any_shape(fn):
    rng = np.random.default_rng(11)
    a = rng.standard_normal((2, 3, 5)) * 3
    _sigmoid_gradient_check(fn, a, rng.standard_normal(a.shape))


# --- notebook 2: checking gradients ------------------------------------------------------------

central_difference = exercise(
    "ex02_central_difference",
    "numerical_gradient",
    "return the gradient of the scalar function f at x by central differences, one coordinate at a time",
)


@central_difference.check()
def _central_difference(fn):
    def f(x):
        return float(np.sum(np.sin(x) * x**2))

    x = np.array([[0.3, -1.2, 2.0], [0.0, 0.7, -0.4]])
    expected = np.cos(x) * x**2 + 2 * x * np.sin(x)
    got = np.asarray(fn(f, x.copy(), 1e-5))
    if got.shape == expected.shape:
        error = np.abs(got - expected).max()
        if 1e-7 < error < 1e-4:
            raise ExerciseFailed(
                f"central difference: largest error {error:.1e}, the size of eps: is it a one-sided difference (f(x + eps) - f(x)) / eps?"
            )
    _compare("central difference", got, expected, rtol=1e-7, atol=1e-8)


@central_difference.check(hidden=True)
def _leaves_x_as_it_was(fn):
    x = np.array([0.5, -1.5, 2.5])
    before = x.copy()
    got = np.asarray(fn(lambda v: float(np.sum(v**3)), x, 1e-5))
    _compare("central difference of sum(x^3)", got, 3 * before**2, rtol=1e-6, atol=1e-8)
    if not np.array_equal(x, before):
        raise ExerciseFailed(f"central difference: x changed from {before} to {x}; put each coordinate back after nudging it")


# --- notebook 3: convolution -------------------------------------------------------------------

im2col_exercise = exercise(
    "ex03_im2col",
    "im2col",
    "return the (C*kh*kw, N*H_out*W_out) matrix whose column (n, h, w) is the receptive field of output pixel (h, w) of image n",
)


def _im2col_cases(fn, cases, seed):
    from ..kernels.conv import conv_output_size, im2col

    rng = np.random.default_rng(seed)
    for shape, kernel, stride, padding in cases:
        x = rng.standard_normal(shape)
        out_hw = tuple(conv_output_size(shape[2 + a], kernel[a], stride, padding, 1) for a in (0, 1))
        expected = im2col(x, kernel, (stride, stride), (padding, padding), (1, 1), out_hw)
        _compare(
            f"im2col of an image {shape} with kernel {kernel}, stride {stride}, padding {padding}", fn(x, kernel, stride, padding), expected
        )


@im2col_exercise.check()
def _im2col(fn):
    _im2col_cases(fn, [((1, 1, 4, 4), (2, 2), 1, 0), ((2, 3, 5, 6), (3, 2), 2, 1), ((1, 2, 3, 3), (3, 3), 1, 1)], seed=0)


@im2col_exercise.check(hidden=True)
def _im2col_more_shapes(fn):
    _im2col_cases(fn, [((3, 2, 7, 5), (1, 3), 3, 2), ((2, 1, 6, 6), (4, 4), 2, 0)], seed=5)


# --- notebook 4: the VAE -----------------------------------------------------------------------

reparameterize = exercise(
    "ex04_reparameterize", "reparameterize", "return z = mu + sigma * eps, with sigma computed from the log-variance logvar"
)


@reparameterize.check()
def _reparameterize(fn):
    mu, logvar, eps = np.array([[0.5, -1.0]]), np.array([[0.0, -2.0]]), np.array([[1.5, -0.5]])
    got = fn(mu, logvar, eps)
    if np.allclose(got, mu + np.exp(logvar) * eps):
        raise ExerciseFailed("reparameterize: used exp(logvar), the variance; the standard deviation is exp(logvar / 2)")
    _compare("reparameterize", got, mu + np.exp(0.5 * logvar) * eps)


@reparameterize.check(hidden=True)
def _reparameterize_a_batch(fn):
    rng = np.random.default_rng(4)
    mu, logvar, eps = rng.standard_normal((5, 3)), rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    _compare("reparameterize on a batch of 5", fn(mu, logvar, eps), mu + np.exp(0.5 * logvar) * eps)


elbo = exercise(
    "ex04_elbo",
    "elbo",
    "return each image's ELBO in nats: log p(x|z) (Bernoulli, summed over pixels) minus the closed-form KL (summed over latent dimensions)",
)


def _elbo_expected(x, logits, mu, logvar):
    log_px = -(np.logaddexp(0, logits) - logits * x).sum(axis=1)
    kl = 0.5 * (mu**2 + np.exp(logvar) - 1 - logvar).sum(axis=1)
    return log_px, kl


@elbo.check()
def _elbo(fn):
    rng = np.random.default_rng(1)
    x = (rng.random((3, 6)) < 0.4).astype(np.float64)
    logits, mu, logvar = rng.standard_normal((3, 6)) * 2, rng.standard_normal((3, 2)), rng.standard_normal((3, 2)) * 0.5
    log_px, kl = _elbo_expected(x, logits, mu, logvar)
    got = np.asarray(fn(x, logits, mu, logvar), dtype=np.float64)
    if got.shape == () or got.shape == (1,):
        raise ExerciseFailed(f"elbo: returned one number; return one ELBO per image, shape {log_px.shape}")
    if np.allclose(got, log_px + kl):
        raise ExerciseFailed("elbo: the KL is added; the ELBO subtracts it (log p(x|z) - KL)")
    if np.allclose(got, log_px - kl.mean()) or np.allclose(got, log_px.mean() - kl):
        raise ExerciseFailed("elbo: averaged over the batch somewhere; every term here is per image")
    _compare("elbo", got, log_px - kl, rtol=1e-6)


@elbo.check(hidden=True)
def _elbo_confident_logits(fn):
    x = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    logits = np.array([[60.0, -80.0, -40.0], [90.0, 35.0, -70.0]])  # exp(-logits) overflows a naive log(sigmoid)
    mu, logvar = np.array([[0.1], [-0.3]]), np.array([[-0.2], [0.4]])
    log_px, kl = _elbo_expected(x, logits, mu, logvar)
    got = np.asarray(fn(x, logits, mu, logvar), dtype=np.float64)
    if got.shape == log_px.shape and not np.all(np.isfinite(got)):
        raise ExerciseFailed("elbo: not finite for logits of +-90: write log p(x|z) with logaddexp / softplus")
    _compare("elbo with confident logits", got, log_px - kl, rtol=1e-6)


# --- notebook 5: the GAN -----------------------------------------------------------------------

discriminator_loss = exercise(
    "ex05_discriminator_loss",
    "discriminator_loss",
    "return -(mean log D(x) + mean log(1 - D(G(z)))) from the discriminator's logits, stably",
)


@discriminator_loss.check()
def _discriminator_loss(fn):
    real, fake = np.array([2.0, -1.0, 40.0, 0.3]), np.array([-3.0, 0.5, -50.0, 1.0])
    expected = np.mean(np.logaddexp(0, -real)) + np.mean(np.logaddexp(0, fake))
    got = float(np.asarray(fn(real, fake)))
    if not np.isfinite(got):
        raise ExerciseFailed("discriminator loss: not finite for a logit of 40 or -50: use softplus / logaddexp, not log(sigmoid(x))")
    _compare("discriminator loss", got, expected)


@discriminator_loss.check(hidden=True)
def _discriminator_loss_unequal_batches(fn):
    real, fake = np.array([1.0, -2.0, 0.5]), np.array([0.2, -1.0, 3.0, -4.0, 0.0])
    expected = np.mean(np.logaddexp(0, -real)) + np.mean(np.logaddexp(0, fake))
    _compare("discriminator loss with 3 real and 5 generated samples", float(np.asarray(fn(real, fake))), expected)


generator_loss = exercise(
    "ex05_generator_loss",
    "generator_loss",
    "return the non-saturating generator loss -mean log D(G(z)) from the logits D gives the generated samples",
)


@generator_loss.check()
def _generator_loss(fn):
    fake = np.array([-3.0, 0.5, -50.0, 1.0])
    got = float(np.asarray(fn(fake)))
    minimax = -np.mean(np.logaddexp(0, fake))
    if np.isclose(got, minimax):
        raise ExerciseFailed(
            "generator loss: this is the minimax (saturating) loss mean log(1 - D(G(z))); the non-saturating one is -mean log D(G(z))"
        )
    _compare("generator loss", got, np.mean(np.logaddexp(0, -fake)))


@generator_loss.check(hidden=True)
def _generator_loss_confident_discriminator(fn):
    fake = np.array([-800.0, 2.0, -30.0])
    _compare("generator loss for logits down to -800", float(np.asarray(fn(fake))), np.mean(np.logaddexp(0, -fake)))


# --- notebook 7: WGAN-GP -----------------------------------------------------------------------

gradient_penalty = exercise(
    "ex07_gradient_penalty",
    "gradient_penalty",
    "return weight * mean over examples of (||d critic / d x_hat|| - 1)^2 at x_hat = eps * real + (1 - eps) * fake, "
    "keeping the graph (create_graph=True)",
)


def _penalty_case(fn, seed):
    """A small critic and batch; returns (the student's penalty, minigen's, the critic)."""
    from .. import nn
    from ..engine.tensor import Tensor
    from ..models.gan import gradient_penalty as reference
    from ..random import manual_seed

    manual_seed(seed)
    critic = nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1), nn.Flatten(0))
    rng = np.random.default_rng(seed + 2)
    real, fake = rng.standard_normal((5, 1, 2, 2)).astype(np.float32), rng.standard_normal((5, 1, 2, 2)).astype(np.float32)
    eps = rng.random((5, 1, 1, 1)).astype(np.float32)
    expected = reference(critic, real, Tensor(fake), weight=10.0, eps=eps)
    got = fn(critic, Tensor(real), Tensor(fake), eps, 10.0)
    if not isinstance(got, Tensor) or not got.requires_grad:
        raise ExerciseFailed(
            "gradient penalty: return a Tensor that is part of the graph: take the gradient with create_graph=True, "
            "so the critic's parameters get gradients from the penalty"
        )
    return got, expected, critic


@gradient_penalty.check()
def _gradient_penalty(fn):
    got, expected, _ = _penalty_case(fn, seed=0)
    _compare("gradient penalty", got.data, expected.data, rtol=1e-4, atol=1e-6)


@gradient_penalty.check(hidden=True)
def _gradient_penalty_trains_the_critic(fn):
    from ..engine.tensor import grad

    got, expected, critic = _penalty_case(fn, seed=3)
    weights = critic[1].weight
    (got_grad,) = grad(got, weights, allow_unused=True)
    (expected_grad,) = grad(expected, weights)
    if got_grad is None:
        raise ExerciseFailed("gradient penalty: the critic's weights get no gradient from it")
    _compare("gradient of the penalty with respect to the critic's first weights", got_grad.data, expected_grad.data, rtol=1e-3, atol=1e-5)


# --- notebook 8: diffusion ---------------------------------------------------------------------

q_sample_exercise = exercise(
    "ex08_q_sample",
    "q_sample",
    "return x_t = sqrt(alpha_bar[t]) * x0 + sqrt(1 - alpha_bar[t]) * noise, with one step t per example",
)


def _cosine_alpha_bar():
    from ..models.diffusion import NoiseSchedule

    return NoiseSchedule.cosine(1000).alpha_bar


def _q_sample_case(fn, shape, t, seed):
    rng = np.random.default_rng(seed)
    x0, noise, alpha_bar = rng.standard_normal(shape), rng.standard_normal(shape), _cosine_alpha_bar()
    a = alpha_bar[np.asarray(t)].reshape(-1, *[1] * (len(shape) - 1))
    got = np.asarray(fn(x0, np.asarray(t), noise, alpha_bar), dtype=np.float64)
    if got.shape == x0.shape and np.allclose(got, a * x0 + (1 - a) * noise):
        raise ExerciseFailed(
            "q_sample: the factors are sqrt(alpha_bar_t) and sqrt(1 - alpha_bar_t), the standard deviations; take square roots"
        )
    if got.shape == x0.shape and np.allclose(got, np.sqrt(a) * x0 + (1 - a) * noise):
        raise ExerciseFailed(
            "q_sample: the noise's factor is the standard deviation sqrt(1 - alpha_bar_t), not the variance 1 - alpha_bar_t"
        )
    _compare(f"q_sample on x0 of shape {shape} at steps {list(t)}", got, np.sqrt(a) * x0 + np.sqrt(1 - a) * noise)


@q_sample_exercise.check()
def _q_sample_images(fn):
    _q_sample_case(fn, (3, 1, 2, 2), [1, 500, 1000], seed=0)


@q_sample_exercise.check(hidden=True)
def _q_sample_points_and_step_zero(fn):
    _q_sample_case(fn, (4, 2), [0, 3, 999, 250], seed=1)


simple_loss = exercise(
    "ex08_simple_loss",
    "simple_loss",
    "return the mean of (model(x_t, t) - noise)^2 as a Tensor, where x_t = sqrt(alpha_bar[t]) x0 + sqrt(1 - alpha_bar[t]) noise",
)


def _simple_loss_case(fn, seed):
    """A small denoiser and batch; returns (the student's loss, the expected one, the model)."""
    from ..engine.tensor import Tensor
    from ..models.diffusion import MLPDenoiser
    from ..random import manual_seed

    manual_seed(seed)
    model = MLPDenoiser(2, (16,), embed_dim=8)
    rng = np.random.default_rng(seed)
    x0, noise, t = rng.standard_normal((6, 2)).astype(np.float32), rng.standard_normal((6, 2)).astype(np.float32), rng.integers(1, 1001, 6)
    alpha_bar = _cosine_alpha_bar()
    a = alpha_bar[t].reshape(-1, 1).astype(np.float32)
    x_t = np.sqrt(a) * x0 + np.sqrt(1 - a) * noise
    expected = ((model(Tensor(x_t), t) - Tensor(noise)) ** 2).mean()
    got = fn(model, x0, t, noise, alpha_bar)
    if not isinstance(got, Tensor) or not got.requires_grad:
        raise ExerciseFailed("simple_loss: return a Tensor computed from the model's output, so that the loss can be backpropagated")
    if got.size != 1:
        raise ExerciseFailed(f"simple_loss: returned shape {got.shape}; return the mean over the batch and the dimensions, one number")
    for wrong, verdict in [
        (((model(Tensor(x_t), t) - Tensor(x0)) ** 2).mean(), "the target is the noise that was added, not x0"),
        (((model(Tensor(x0), t) - Tensor(noise)) ** 2).mean(), "the model must see the noisy x_t, not the clean x0"),
    ]:
        if np.isclose(float(got.data), float(wrong.data), rtol=1e-5) and not np.isclose(float(got.data), float(expected.data), rtol=1e-5):
            raise ExerciseFailed(f"simple_loss: {verdict}")
    return got, expected, model


@simple_loss.check()
def _simple_loss(fn):
    got, expected, _ = _simple_loss_case(fn, seed=0)
    _compare("simple_loss", got.data, expected.data, rtol=1e-5)


@simple_loss.check(hidden=True)
def _simple_loss_trains_the_model(fn):
    from ..engine.tensor import grad

    got, expected, model = _simple_loss_case(fn, seed=4)
    weights = model.net[0].weight
    (got_grad,) = grad(got, weights, allow_unused=True)
    if got_grad is None:
        raise ExerciseFailed("simple_loss: the model's weights get no gradient from it")
    _compare(
        "gradient of simple_loss with respect to the first weights", got_grad.data, grad(expected, weights)[0].data, rtol=1e-4, atol=1e-7
    )


reverse_step = exercise(
    "ex08_reverse_step",
    "reverse_step",
    "return x_{t-1} = (x_t - beta_t / sqrt(1 - alpha_bar_t) * predicted_noise) / sqrt(alpha_t) + sqrt(beta_t) * z, "
    "with alpha_t = 1 - beta_t and no noise at t = 1",
)


def _reverse_step_case(fn, t, seed):
    from ..models.diffusion import NoiseSchedule, ddpm_step

    schedule, rng = NoiseSchedule.linear(1000), np.random.default_rng(seed)
    x_t, predicted, z = rng.standard_normal((3, 2)), rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    expected = ddpm_step(schedule, x_t, t, predicted, z)
    got = np.asarray(fn(x_t, t, predicted, z, schedule.beta, schedule.alpha_bar), dtype=np.float64)
    mean = ddpm_step(schedule, x_t, 1, predicted, z) if t == 1 else expected - np.sqrt(schedule.beta[t]) * z
    if t > 1 and got.shape == mean.shape and np.allclose(got, mean):
        raise ExerciseFailed(f"reverse_step at t = {t}: returned the mean only; add sigma_t z with sigma_t = sqrt(beta_t)")
    if t == 1 and got.shape == mean.shape and np.allclose(got, mean + np.sqrt(schedule.beta[1]) * z):
        raise ExerciseFailed("reverse_step at t = 1: the last step adds no noise (x_0 is the mean itself)")
    _compare(f"reverse_step at t = {t}", got, expected, rtol=1e-6)


@reverse_step.check()
def _reverse_step(fn):
    _reverse_step_case(fn, 500, seed=0)


@reverse_step.check(hidden=True)
def _reverse_step_at_the_ends(fn):
    _reverse_step_case(fn, 1000, seed=1)
    _reverse_step_case(fn, 1, seed=2)
