"""Optional: values and gradients agree with PyTorch's (skipped when torch is not installed)."""

import numpy as np
import pytest

import minigen as mg
from minigen import functional as F
from minigen import nn

torch = pytest.importorskip("torch")

# name: (minigen function, torch function, input shapes, low, high)
CASES = {
    "add": (lambda a, b: a + b, lambda a, b: a + b, [(3, 4), (4,)], -2, 2),
    "sub": (lambda a, b: a - b, lambda a, b: a - b, [(3, 1), (1, 4)], -2, 2),
    "mul": (lambda a, b: a * b, lambda a, b: a * b, [(2, 3, 4), (3, 1)], -2, 2),
    "div": (lambda a, b: a / b, lambda a, b: a / b, [(3, 4), (3, 4)], 0.5, 2),
    "pow": (lambda a, b: a**b, lambda a, b: a**b, [(3, 4), (3, 4)], 0.5, 2),
    "pow_scalar": (lambda a: a**1.5, lambda a: a**1.5, [(5,)], 0.5, 2),
    "exp": (lambda a: a.exp(), torch.exp, [(3, 4)], -2, 2),
    "log": (lambda a: a.log(), torch.log, [(3, 4)], 0.5, 2),
    "sqrt": (lambda a: a.sqrt(), torch.sqrt, [(3, 4)], 0.5, 2),
    "abs": (lambda a: a.abs(), torch.abs, [(3, 4)], -2, 2),
    "maximum": (mg.maximum, torch.maximum, [(3, 4), (4,)], -2, 2),
    "minimum": (mg.minimum, torch.minimum, [(3, 4), (3, 1)], -2, 2),
    "clip": (lambda a: a.clip(-0.5, 0.7), lambda a: a.clamp(-0.5, 0.7), [(4, 5)], -2, 2),
    "matmul": (lambda a, b: a @ b, torch.matmul, [(2, 3, 4), (4, 5)], -2, 2),
    "sum": (lambda a: a.sum(axis=(0, 2)), lambda a: a.sum(dim=(0, 2)), [(2, 3, 4)], -2, 2),
    "mean": (lambda a: a.mean(axis=1, keepdims=True), lambda a: a.mean(dim=1, keepdim=True), [(2, 3, 4)], -2, 2),
    "max": (lambda a: a.max(axis=1), lambda a: a.amax(dim=1), [(3, 5)], -2, 2),
    "var": (lambda a: a.var(axis=0, ddof=1), lambda a: a.var(dim=0, unbiased=True), [(5, 3)], -2, 2),
    "transpose": (lambda a: a.permute(2, 0, 1), lambda a: a.permute(2, 0, 1), [(2, 3, 4)], -2, 2),
    "getitem": (lambda a: a[np.array([0, 2, 0]), 1:], lambda a: a[torch.tensor([0, 2, 0]), 1:], [(3, 4)], -2, 2),
    "concatenate": (lambda a, b: mg.concatenate([a, b], axis=1), lambda a, b: torch.cat([a, b], dim=1), [(2, 3), (2, 1)], -2, 2),
    "stack": (lambda a, b: mg.stack([a, b], axis=1), lambda a, b: torch.stack([a, b], dim=1), [(2, 3), (2, 3)], -2, 2),
    "pad": (lambda a: mg.pad(a, ((0, 0), (1, 2))), lambda a: torch.nn.functional.pad(a, (1, 2)), [(2, 3)], -2, 2),
    "relu": (F.relu, torch.relu, [(3, 4)], -2, 2),
    "leaky_relu": (lambda a: F.leaky_relu(a, 0.2), lambda a: torch.nn.functional.leaky_relu(a, 0.2), [(3, 4)], -2, 2),
    "sigmoid": (F.sigmoid, torch.sigmoid, [(3, 4)], -5, 5),
    "tanh": (F.tanh, torch.tanh, [(3, 4)], -3, 3),
    "softplus": (F.softplus, torch.nn.functional.softplus, [(3, 4)], -5, 5),
    "log_sigmoid": (F.log_sigmoid, torch.nn.functional.logsigmoid, [(3, 4)], -5, 5),
    "logsumexp": (lambda a: F.logsumexp(a, axis=1), lambda a: torch.logsumexp(a, dim=1), [(3, 4)], -3, 3),
    "softmax": (lambda a: F.softmax(a, axis=0), lambda a: torch.softmax(a, dim=0), [(3, 4)], -3, 3),
    "log_softmax": (F.log_softmax, lambda a: torch.log_softmax(a, dim=-1), [(3, 4)], -3, 3),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(CASES))
def test_values_and_gradients_match_pytorch(name, dtype):
    ours, theirs, shapes, low, high = CASES[name]
    rng = np.random.default_rng(0)
    arrays = [rng.uniform(low, high, size=shape).astype(dtype) for shape in shapes]
    xs = [mg.Tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, expected = ours(*xs), theirs(*ts)
    upstream = rng.standard_normal(out.shape).astype(dtype)
    out.backward(upstream)
    expected.backward(torch.tensor(upstream))
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=tolerance, atol=tolerance)
    for x, t in zip(xs, ts):
        np.testing.assert_allclose(x.grad.data, t.grad.numpy(), rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("name", ["mul", "div", "matmul", "sigmoid", "softplus", "log_softmax", "var"])
def test_second_derivatives_match_pytorch(name):
    ours, theirs, shapes, low, high = CASES[name]
    rng = np.random.default_rng(1)
    arrays = [rng.uniform(low, high, size=shape) for shape in shapes]
    xs = [mg.Tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    ours_grads = mg.grad(ours(*xs).sum(), xs, create_graph=True)
    theirs_grads = torch.autograd.grad(theirs(*ts).sum(), ts, create_graph=True)
    sum(((g * g).sum() for g in ours_grads), mg.tensor(0.0, dtype=np.float64)).backward()
    sum((g * g).sum() for g in theirs_grads).backward()
    for x, t in zip(xs, ts):
        np.testing.assert_allclose(x.grad.data, t.grad.numpy(), rtol=1e-10, atol=1e-12)


TF = torch.nn.functional
LAYER_CASES = {
    "linear": (lambda x, w, b: F.linear(x, w, b), lambda x, w, b: TF.linear(x, w, b), [(4, 3, 5), (6, 5), (6,)]),
    "conv2d": (
        lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=(1, 2), dilation=(1, 2)),
        lambda x, w, b: TF.conv2d(x, w, b, stride=(2, 1), padding=(1, 2), dilation=(1, 2)),
        [(2, 3, 9, 8), (4, 3, 3, 2), (4,)],
    ),
    "conv2d_dcgan": (
        lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
        lambda x, w, b: TF.conv2d(x, w, b, stride=2, padding=1),
        [(3, 2, 14, 14), (5, 2, 4, 4), (5,)],
    ),
    "conv_transpose2d": (
        lambda x, w, b: F.conv_transpose2d(x, w, b, stride=(2, 3), padding=(1, 0), output_padding=(1, 2), dilation=(1, 2)),
        lambda x, w, b: TF.conv_transpose2d(x, w, b, stride=(2, 3), padding=(1, 0), output_padding=(1, 2), dilation=(1, 2)),
        [(2, 3, 4, 5), (3, 2, 3, 2), (2,)],
    ),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, 3, stride=2, padding=1), lambda x: TF.avg_pool2d(x, 3, stride=2, padding=1), [(2, 3, 7, 8)]),
    "upsample_nearest2d": (
        lambda x: F.upsample_nearest2d(x, 2),
        lambda x: TF.interpolate(x, scale_factor=2, mode="nearest"),
        [(2, 3, 4, 5)],
    ),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(LAYER_CASES))
def test_layers_match_pytorch(name, dtype):
    ours, theirs, shapes = LAYER_CASES[name]
    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal(shape).astype(dtype) for shape in shapes]
    xs = [mg.Tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, expected = ours(*xs), theirs(*ts)
    assert out.shape == tuple(expected.shape)
    upstream = rng.standard_normal(out.shape).astype(dtype)
    out.backward(upstream)
    expected.backward(torch.tensor(upstream))
    tolerance = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=tolerance, atol=tolerance)
    for x, t in zip(xs, ts):
        np.testing.assert_allclose(x.grad.data, t.grad.numpy(), rtol=tolerance, atol=tolerance)


def test_gradient_penalty_through_a_conv_critic_matches_pytorch():
    rng = np.random.default_rng(3)
    x, w1, w2 = rng.standard_normal((3, 1, 8, 8)), rng.standard_normal((4, 1, 4, 4)), rng.standard_normal((1, 4 * 4 * 4))

    def penalty(lib, conv, act, lin, x, w1, w2, grad):
        h = act(conv(x, w1, None, stride=2, padding=1))
        score = lin(h.reshape(x.shape[0], -1), w2).sum()
        (grad_x,) = grad(score, x)
        return ((grad_x * grad_x).sum(axis=(1, 2, 3)) if lib == "mg" else (grad_x * grad_x).sum(dim=(1, 2, 3))).sqrt().mean()

    ours = [mg.Tensor(a, requires_grad=True) for a in (x, w1, w2)]
    penalty("mg", F.conv2d, lambda h: F.leaky_relu(h, 0.2), F.linear, *ours, lambda s, x: mg.grad(s, x, create_graph=True)).backward()
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w1, w2)]
    penalty(
        "torch", TF.conv2d, lambda h: TF.leaky_relu(h, 0.2), TF.linear, *theirs, lambda s, x: torch.autograd.grad(s, x, create_graph=True)
    ).backward()
    # The penalty depends on x only through LeakyReLU's (constant) slope pattern: PyTorch gives
    # x a zero gradient, minigen none at all.
    assert ours[0].grad is None and not theirs[0].grad.numpy().any()
    for a, b in zip(ours[1:], theirs[1:]):
        np.testing.assert_allclose(a.grad.data, b.grad.numpy(), rtol=1e-10, atol=1e-12)


def _twin_models():
    def build(lib):
        return lib.Sequential(
            lib.Conv2d(1, 4, 3, padding=1),
            lib.BatchNorm2d(4),
            lib.LeakyReLU(0.2),
            lib.ConvTranspose2d(4, 2, 4, stride=2, padding=1),
            lib.Flatten(),
            lib.Linear(2 * 16 * 16, 10),
            lib.BatchNorm1d(10),
            lib.Tanh(),
        )

    theirs = build(torch.nn)
    ours = build(nn)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


def test_a_pytorch_state_dict_loads_unchanged_and_gives_the_same_outputs():
    ours, theirs = _twin_models()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    x = np.random.default_rng(0).standard_normal((5, 1, 8, 8)).astype(np.float32)
    for _ in range(2):  # training mode: batch statistics, and the running estimates move
        np.testing.assert_allclose(ours(mg.Tensor(x)).data, theirs(torch.tensor(x)).detach().numpy(), rtol=1e-4, atol=1e-5)
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[key], value.numpy(), rtol=1e-5, atol=1e-6, err_msg=key)
    ours.eval(), theirs.eval()
    np.testing.assert_allclose(ours(mg.Tensor(x)).data, theirs(torch.tensor(x)).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_default_initialisation_has_pytorchs_ranges():
    """Both libraries draw every default weight and bias uniformly within 1/sqrt(fan_in), with
    fan_in as PyTorch counts it (for a transposed convolution: out_channels x kernel)."""
    fresh = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ConvTranspose2d(16, 8, 4), nn.Linear(512, 64))
    reference = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ConvTranspose2d(16, 8, 4), torch.nn.Linear(512, 64))
    fan_ins = {"0": 3 * 9, "1": 8 * 16, "2": 512}
    for (name, p), (_, q) in zip(fresh.named_parameters(), reference.named_parameters()):
        bound = 1 / np.sqrt(fan_ins[name.split(".")[0]])
        for values in (p.data, q.detach().numpy()):
            assert values.shape == p.shape and np.abs(values).max() <= bound, name
            if values.size >= 64:
                assert np.abs(values).max() > 0.8 * bound, name  # the whole range is used


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (
            lambda ps: mg.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
            lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
        ),
        (
            lambda ps: mg.optim.Adam(ps, lr=2e-4, betas=(0.5, 0.999), weight_decay=0.01),
            lambda ps: torch.optim.Adam(ps, lr=2e-4, betas=(0.5, 0.999), weight_decay=0.01),
        ),
        (lambda ps: mg.optim.AdamW(ps, lr=1e-3), lambda ps: torch.optim.AdamW(ps, lr=1e-3)),
        (
            lambda ps: mg.optim.RMSprop(ps, lr=1e-3, momentum=0.5, centered=True),
            lambda ps: torch.optim.RMSprop(ps, lr=1e-3, momentum=0.5, centered=True),
        ),
    ],
)
def test_optimizers_match_torch_optim(ours, theirs):
    rng = np.random.default_rng(4)
    start = rng.standard_normal(6)
    p, q = nn.Parameter(start.copy()), torch.tensor(start.copy(), requires_grad=True)
    opt_ours, opt_theirs = ours([p]), theirs([q])
    for _ in range(5):
        g = rng.standard_normal(6)
        p.grad, q.grad = mg.Tensor(g), torch.tensor(g)
        opt_ours.step()
        opt_theirs.step()
    np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-10, atol=1e-12)
