"""minigen.nn: modules, layers and initialisation."""

import math

import numpy as np
import pytest

import minigen as mg
from minigen import nn
from minigen.nn import init


def small_model():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 10))


# --- Module ---


def test_parameters_and_state_dict_names_follow_pytorch():
    model = small_model()
    assert [name for name, _ in model.named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias", "4.weight", "4.bias"]
    assert list(model.state_dict()) == [
        "0.weight",
        "0.bias",
        "1.weight",
        "1.bias",
        "1.running_mean",
        "1.running_var",
        "1.num_batches_tracked",
        "4.weight",
        "4.bias",
    ]
    assert model.num_parameters() == 4 * 9 + 4 + 4 + 4 + 256 * 10 + 10


def test_a_shared_parameter_is_listed_once():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(3, 3)
            self.b = nn.Linear(3, 3)
            self.b.weight = self.a.weight

    assert len(list(Tied().parameters())) == 3


def test_state_dict_round_trip_and_copies():
    model, other = small_model(), small_model()
    other.load_state_dict(model.state_dict())
    x = mg.Tensor(np.random.default_rng(0).random((2, 1, 8, 8), dtype=np.float32))
    np.testing.assert_array_equal(model(x).data, other(x).data)
    state = model.state_dict()
    state["0.weight"][...] = 0  # a copy: the model is untouched
    assert np.any(model[0].weight.data != 0)


def test_load_state_dict_names_every_mismatch():
    model = small_model()
    state = model.state_dict()
    del state["4.bias"]
    state["extra.weight"] = np.zeros(3)
    state["0.weight"] = np.zeros((4, 1, 5, 5))
    with pytest.raises(ValueError) as info:
        model.load_state_dict(state)
    message = str(info.value)
    assert "missing key '4.bias'" in message
    assert "unexpected key 'extra.weight'" in message
    assert "shape mismatch for '0.weight': the checkpoint has (4, 1, 5, 5), the model (4, 1, 3, 3)" in message


def test_load_state_dict_not_strict_allows_missing_keys_but_not_wrong_shapes():
    model = small_model()
    model.load_state_dict({"4.bias": np.ones(10)}, strict=False)
    np.testing.assert_array_equal(model[4].bias.data, np.ones(10))
    with pytest.raises(ValueError, match="shape mismatch"):
        model.load_state_dict({"4.bias": np.ones(11)}, strict=False)


def test_loading_keeps_parameter_identity_for_optimizers():
    model = small_model()
    weight = model[0].weight
    model.load_state_dict(small_model().state_dict())
    assert model[0].weight is weight


def test_repr_shows_layers_and_parameter_counts():
    text = repr(small_model())
    assert text.startswith("Sequential(\n  (0): Conv2d(1, 4, kernel_size=(3, 3)")
    assert "# 40 parameters" in text and "in all" in text


def test_train_and_eval_reach_every_module():
    model = small_model().eval()
    assert not any(m.training for m in model.modules())
    assert all(m.training for m in model.train().modules())


def test_assigning_before_super_init_is_explained():
    class Forgot(nn.Module):
        def __init__(self):
            self.layer = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match=r"call super\(\).__init__\(\)"):
        Forgot()


# --- layers ---


def test_batchnorm_train_normalises_and_updates_running_stats():
    bn = nn.BatchNorm1d(3, momentum=0.1)
    x = np.random.default_rng(0).normal(5.0, 2.0, size=(50, 3)).astype(np.float32)
    y = bn(mg.Tensor(x)).data
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=0), 1, atol=1e-3)
    np.testing.assert_allclose(bn.running_mean, 0.1 * x.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(bn.running_var, 0.9 + 0.1 * x.var(axis=0, ddof=1), rtol=1e-5)
    assert int(bn.num_batches_tracked) == 1


def test_batchnorm_eval_uses_running_stats():
    bn = nn.BatchNorm2d(2).eval()
    bn.running_mean = np.array([1.0, -1.0], np.float32)
    bn.running_var = np.array([4.0, 0.25], np.float32)
    x = np.ones((1, 2, 2, 2), np.float32)
    y = bn(mg.Tensor(x)).data
    np.testing.assert_allclose(y[0, 0], (1 - 1) / math.sqrt(4 + 1e-5), atol=1e-6)
    np.testing.assert_allclose(y[0, 1], (1 + 1) / math.sqrt(0.25 + 1e-5), rtol=1e-5)


def test_batchnorm_momentum_none_is_a_cumulative_average():
    bn = nn.BatchNorm1d(1, momentum=None)
    for value in (1.0, 3.0):
        bn(mg.Tensor(np.array([[value - 1], [value + 1]], np.float32)))
    np.testing.assert_allclose(bn.running_mean, [2.0])


def test_batchnorm_errors():
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3\): expected input of 4 dimensions with 3 channels"):
        nn.BatchNorm2d(3)(mg.zeros(2, 4, 5, 5))
    with pytest.raises(ValueError, match="more than one value per channel"):
        nn.BatchNorm1d(3)(mg.zeros(1, 3))


def test_dropout_scales_in_training_and_is_identity_in_eval():
    drop = nn.Dropout(0.25, generator=mg.Generator(0))
    x = mg.ones(200, 100)
    y = drop(x).data
    assert abs((y == 0).mean() - 0.25) < 0.01
    np.testing.assert_allclose(y[y != 0], 1 / 0.75)
    assert drop.eval()(x) is x


def test_embedding_looks_up_rows_and_checks_indices():
    emb = nn.Embedding(5, 3)
    out = emb(np.array([[0, 4], [4, 4]]))
    assert out.shape == (2, 2, 3)
    np.testing.assert_array_equal(out.data[1, 0], emb.weight.data[4])
    out.sum().backward()
    np.testing.assert_array_equal(emb.weight.grad.data[4], np.full(3, 3.0))  # used three times
    with pytest.raises(IndexError, match="index 5 is out of range for 5 embeddings"):
        emb(np.array([5]))


def test_flatten_unflatten_sequential():
    model = nn.Sequential(nn.Flatten(), nn.Unflatten(1, (2, 3, 4)))
    assert model(mg.zeros(5, 2, 3, 4)).shape == (5, 2, 3, 4)
    assert len(model) == 2 and isinstance(model[1], nn.Unflatten)
    with pytest.raises(ValueError, match=r"Unflatten: axis 1 of shape \(5, 7\) has 7 elements"):
        nn.Unflatten(1, (2, 3))(mg.zeros(5, 7))


def test_layer_shapes_match_pytorch_layouts():
    assert nn.Linear(3, 5).weight.shape == (5, 3)
    assert nn.Conv2d(3, 8, 4).weight.shape == (8, 3, 4, 4)
    assert nn.ConvTranspose2d(8, 3, 4).weight.shape == (8, 3, 4, 4)
    assert nn.Conv2d(3, 8, 4, bias=False).bias is None
    assert nn.ConvTranspose2d(1, 1, 4, stride=2, padding=1)(mg.zeros(2, 1, 7, 7)).shape == (2, 1, 14, 14)


# --- initialisation ---


def test_default_init_bounds_follow_pytorch():
    layer = nn.Linear(400, 20)
    bound = 1 / math.sqrt(400)
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.weight.data).max() > 0.9 * bound
    conv_t = nn.ConvTranspose2d(64, 1, 4)  # fan_in is the *output* channels times the kernel, as in PyTorch
    assert np.abs(conv_t.weight.data).max() <= 1 / math.sqrt(1 * 16)


@pytest.mark.parametrize(
    "fill, expected_std",
    [
        (lambda t: init.xavier_uniform_(t), math.sqrt(2 / (300 + 200))),
        (lambda t: init.xavier_normal_(t, gain=2.0), 2 * math.sqrt(2 / (300 + 200))),
        (lambda t: init.kaiming_normal_(t, nonlinearity="relu"), math.sqrt(2 / 300)),
        (lambda t: init.kaiming_uniform_(t, a=0.2, mode="fan_out"), math.sqrt(2 / (1 + 0.04)) / math.sqrt(200)),
        (lambda t: init.normal_(t, 0.0, 0.02), 0.02),
    ],
)
def test_init_variances(fill, expected_std):
    t = nn.Parameter(np.zeros((200, 300), np.float32))
    fill(t)
    assert t.dtype == np.float32
    assert abs(t.data.std() - expected_std) < 0.02 * expected_std
    assert abs(t.data.mean()) < 0.02 * expected_std


def test_dcgan_init():
    model = nn.Sequential(nn.ConvTranspose2d(16, 8, 4, bias=False), nn.BatchNorm2d(8), nn.Conv2d(8, 1, 3))
    init.dcgan_init_(model, generator=mg.Generator(1))
    assert abs(model[0].weight.data.std() - 0.02) < 0.002
    assert abs(model[1].weight.data.mean() - 1.0) < 0.02 and model[1].weight.data.std() < 0.05
    assert not model[1].bias.data.any() and not model[2].bias.data.any()


def test_init_is_reproducible_from_the_seed():
    mg.manual_seed(7)
    a = small_model().state_dict()
    mg.manual_seed(7)
    b = small_model().state_dict()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_module_to_float_and_double_convert_parameters_and_buffers_in_place():
    model = mg.nn.Sequential(mg.nn.Linear(2, 3), mg.nn.BatchNorm1d(3))
    weight = model[0].weight
    assert model.double() is model and weight.dtype == np.float64 and model[1].running_mean.dtype == np.float64
    assert model[0].weight is weight  # the same Parameter: an optimizer made before would still hold it
    assert model(np.ones((4, 2))).dtype == np.float64
    assert model.float() is model and weight.dtype == np.float32 and model.to("cpu") is model
    with pytest.raises(TypeError, match="Sequential.to: dtype int64 is not supported"):
        model.to(np.int64)


def test_gradcheck_of_a_module_names_a_wrong_parameter_and_leaves_the_module_as_it_was():
    class Scaled(mg.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = mg.nn.Linear(2, 1)

        def forward(self, x):  # a forward that breaks the chain rule for the bias on purpose
            return self.linear(x) + mg.Tensor(self.linear.bias.data)

    model = Scaled()
    x = np.array([[0.5, -1.0]])
    assert mg.gradcheck(lambda x: model.linear(x).sum(), [x], module=model.linear)
    with pytest.raises(mg.GradcheckError, match=r"gradient wrong for parameter linear.bias \(shape \(1,\)\)"):
        mg.gradcheck(lambda: model(x).sum(), module=model)  # analytical 1, numerical 2: "off by a factor 0.5"
    assert all(p.dtype == np.float32 for p in model.parameters())


@pytest.mark.parametrize("activation", [nn.ReLU(), nn.LeakyReLU(0.2)], ids=["ReLU", "LeakyReLU"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_sequential_fuses_batch_norm_and_activation_with_the_same_numbers(activation, training):
    """A batch norm followed by a ReLU or LeakyReLU runs as one operation in a Sequential: the
    outputs, the gradients and the running statistics are those of the two layers one by one."""
    rng = np.random.default_rng(0)
    x = mg.Tensor(rng.standard_normal((4, 3, 5, 5)))
    fused = nn.Sequential(nn.Conv2d(3, 6, 3), nn.BatchNorm2d(6), activation, nn.Flatten()).double()
    fused.train(training)
    for p in fused.parameters():
        p.data[...] = rng.uniform(0.5, 1.5, p.shape)
    layers = list(fused._modules.values())
    y_fused = fused(x)
    before_flatten = y_fused._ctx.inputs[0]
    assert before_flatten.op == ("batch_norm" if training else "relu" if type(activation) is nn.ReLU else "leaky_relu")
    by_hand = layers[3](layers[2](layers[1](layers[0](x))))
    np.testing.assert_allclose(y_fused.data, by_hand.data, rtol=1e-12, atol=1e-12)
    grads = [mg.grad((y * y).sum(), list(fused.parameters())) for y in (y_fused, by_hand)]
    for a, b in zip(*grads):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-10, atol=1e-12)
    if training:  # the running statistics moved twice, the same way each time
        np.testing.assert_allclose(layers[1].running_mean, 0.19 * layers[0](x).data.mean(axis=(0, 2, 3)), rtol=1e-10)
