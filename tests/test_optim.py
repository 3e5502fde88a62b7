"""Optimizers: a few steps against the update formulas, state round trips, schedules."""

import numpy as np
import pytest

import minigen as mg
from minigen import nn, optim

GRADS = [np.array([0.5, -1.0, 2.0]), np.array([0.1, 0.3, -0.2]), np.array([-0.4, 0.0, 1.0])]
THETA0 = np.array([1.0, -2.0, 0.5])


def run(make, grads=GRADS):
    p = nn.Parameter(THETA0.copy())
    opt = make([p])
    for g in grads:
        p.grad = mg.Tensor(g)
        opt.step()
    return p.data


def test_sgd_plain_and_weight_decay():
    theta = THETA0.copy()
    for g in GRADS:
        theta = theta - 0.1 * (g + 0.01 * theta)
    np.testing.assert_allclose(run(lambda ps: optim.SGD(ps, lr=0.1, weight_decay=0.01)), theta)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum(nesterov):
    theta, b = THETA0.copy(), None
    for g in GRADS:
        b = g.copy() if b is None else 0.9 * b + g
        theta = theta - 0.1 * (g + 0.9 * b if nesterov else b)
    np.testing.assert_allclose(run(lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=nesterov)), theta)


@pytest.mark.parametrize("decoupled", [False, True])
def test_adam_and_adamw(decoupled):
    lr, b1, b2, eps, wd = 0.01, 0.5, 0.999, 1e-8, 0.1
    theta, m, v = THETA0.copy(), 0.0, 0.0
    for t, g in enumerate(GRADS, start=1):
        if decoupled:
            theta = theta * (1 - lr * wd)
        else:
            g = g + wd * theta
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        theta = theta - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    cls = optim.AdamW if decoupled else optim.Adam
    np.testing.assert_allclose(run(lambda ps: cls(ps, lr=lr, betas=(b1, b2), weight_decay=wd)), theta, rtol=1e-12)


def test_rmsprop_centered_with_momentum():
    lr, alpha, eps, mu = 0.01, 0.9, 1e-8, 0.5
    theta, v, gbar, b = THETA0.copy(), 0.0, 0.0, 0.0
    for g in GRADS:
        v = alpha * v + (1 - alpha) * g * g
        gbar = alpha * gbar + (1 - alpha) * g
        b = mu * b + g / (np.sqrt(v - gbar**2) + eps)
        theta = theta - lr * b
    got = run(lambda ps: optim.RMSprop(ps, lr=lr, alpha=alpha, momentum=mu, centered=True))
    np.testing.assert_allclose(got, theta, rtol=1e-10)


def test_float32_parameters_stay_float32():
    p = nn.Parameter(np.ones(3, np.float32))
    opt = optim.Adam([p], lr=0.1)
    p.grad = mg.tensor([1.0, 2.0, 3.0])
    opt.step()
    assert p.dtype == np.float32 and opt.state[0]["exp_avg"].dtype == np.float32


def test_state_dict_resumes_exactly():
    full = run(lambda ps: optim.Adam(ps, lr=0.1))
    p = nn.Parameter(THETA0.copy())
    opt = optim.Adam([p], lr=0.1)
    p.grad = mg.Tensor(GRADS[0])
    opt.step()
    saved_theta, saved_state = p.data.copy(), opt.state_dict()
    p2 = nn.Parameter(saved_theta)
    opt2 = optim.Adam([p2], lr=0.5)  # the saved learning rate wins
    opt2.load_state_dict(saved_state)
    for g in GRADS[1:]:
        p2.grad = mg.Tensor(g)
        opt2.step()
    np.testing.assert_array_equal(p2.data, full)


def test_load_state_dict_checks_sizes():
    opt = optim.SGD([nn.Parameter(np.zeros(3)), nn.Parameter(np.zeros(2))], lr=0.1)
    with pytest.raises(ValueError, match=r"the saved groups hold \[1\] parameters, this optimizer's \[2\]"):
        opt.load_state_dict(optim.SGD([nn.Parameter(np.zeros(3))], lr=0.1).state_dict())


def test_zero_grad_and_skipping_parameters_without_grad():
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))
    opt = optim.SGD([a, b], lr=1.0)
    a.grad = mg.Tensor(np.ones(2))
    opt.step()
    np.testing.assert_array_equal(a.data, [0.0, 0.0])
    np.testing.assert_array_equal(b.data, [1.0, 1.0])
    opt.zero_grad()
    assert a.grad is None


def test_non_finite_gradient_stops_with_advice():
    p = nn.Parameter(np.ones(2))
    opt = optim.SGD([p], lr=1.0)
    p.grad = mg.Tensor(np.array([np.nan, 1.0]))
    with pytest.raises(FloatingPointError, match="non-finite gradient.*smaller learning rate"):
        opt.step()


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
        lambda ps: optim.Adam(ps, lr=0.1),
        lambda ps: optim.AdamW(ps, lr=0.1),
        lambda ps: optim.RMSprop(ps, lr=0.1, momentum=0.5, centered=True),
    ],
)
def test_a_non_finite_gradient_changes_nothing(make):
    """Checked before any update: no weight and no moment moves, in any parameter (PyTorch's
    optimizers do not check; a NaN written into Adam's moments would poison every later step)."""
    first, second = nn.Parameter(np.ones(3)), nn.Parameter(np.full(3, 2.0))
    opt = make([first, second])
    first.grad, second.grad = mg.Tensor(np.full(3, 0.5)), mg.Tensor(np.full(3, 0.5))
    opt.step()  # a good step first, so the moments hold numbers
    weights = [first.data.copy(), second.data.copy()]
    state = {i: {k: np.array(v, copy=True) for k, v in s.items()} for i, s in opt.state.items()}
    second.grad = mg.Tensor(np.array([0.1, np.inf, 0.2]))  # the bad gradient is in the *second* parameter
    with pytest.raises(FloatingPointError, match="parameter 1 .*nothing was updated"):
        opt.step()
    np.testing.assert_array_equal(first.data, weights[0])
    np.testing.assert_array_equal(second.data, weights[1])
    for i, buffers in state.items():
        for name, value in buffers.items():
            np.testing.assert_array_equal(opt.state[i][name], value, err_msg=f"state {name} of parameter {i}")


@pytest.mark.parametrize(
    "make, named",
    [
        (lambda ps: optim.Adam(ps, lr=float("nan")), "lr"),
        (lambda ps: optim.Adam(ps, lr=-1e-3), "lr"),
        (lambda ps: optim.Adam(ps, eps=-1), "eps"),
        (lambda ps: optim.SGD(ps, lr=0.1, momentum=-0.5), "momentum"),
        (lambda ps: optim.SGD(ps, lr=0.1, weight_decay=float("inf")), "weight_decay"),
        (lambda ps: optim.RMSprop(ps, alpha=-0.1), "alpha"),
    ],
)
def test_hyperparameters_are_refused_as_torch_optim_refuses_them(make, named):
    with pytest.raises(ValueError, match=f"{named} must be a finite number >= 0"):
        make([nn.Parameter(np.ones(2))])


def test_param_groups_have_their_own_learning_rates():
    a, b = nn.Parameter(np.ones(1)), nn.Parameter(np.ones(1))
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    a.grad = b.grad = mg.Tensor(np.ones(1))
    opt.step()
    np.testing.assert_allclose([a.item(), b.item()], [0.9, 0.5])


def test_schedules():
    opt = optim.SGD([nn.Parameter(np.ones(1))], lr=1.0)
    step = optim.StepLR(opt, step_size=2, gamma=0.5)
    lrs = []
    for _ in range(5):
        step.step()
        lrs.append(step.get_last_lr()[0])
    assert lrs == [1.0, 0.5, 0.5, 0.25, 0.25]
    opt2 = optim.SGD([nn.Parameter(np.ones(1))], lr=1.0)
    exp = optim.ExponentialLR(opt2, gamma=0.9)
    exp.step(), exp.step()
    assert exp.get_last_lr()[0] == pytest.approx(0.81)
    resumed = optim.ExponentialLR(optim.SGD([nn.Parameter(np.ones(1))], lr=1.0), gamma=0.9)
    resumed.load_state_dict(exp.state_dict())
    resumed.step()
    assert resumed.get_last_lr()[0] == pytest.approx(0.729)


def test_no_parameters_is_explained():
    with pytest.raises(ValueError, match="got no parameters"):
        optim.Adam([])
