# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 2. Checking gradients
#
# A wrong backward rule does not crash: the model just learns badly, or not at all. So every
# rule in minigen is checked against **finite differences**. This notebook shows why the checks
# use central differences in float64, has you write one, and runs minigen's `gradcheck` on a
# deliberately wrong rule. Each cell runs in about a second.

# %%
import numpy as np
from matplotlib.figure import Figure

import minigen as mg
from minigen.exercises import check

# %% [markdown]
# ## Forward or central, float32 or float64
#
# The forward difference $(f(x + \varepsilon) - f(x)) / \varepsilon$ has a truncation error of
# order $\varepsilon$; the central difference $(f(x + \varepsilon) - f(x - \varepsilon)) / 2\varepsilon$
# of order $\varepsilon^2$ (expand $f$ in a Taylor series: the $f''$ terms cancel). Both also
# suffer rounding: $f$ is known only to about $10^{-7}$ relative precision in float32 and
# $10^{-16}$ in float64, and dividing by $\varepsilon$ magnifies that. The plot shows the
# trade-off for $f(x) = \sin x$ at $x = 1$.

# %%
epsilons = np.logspace(-12, -1, 45)
exact = np.cos(1.0)
fig = Figure(figsize=(6, 4))
ax = fig.add_subplot()
for dtype in (np.float32, np.float64):
    x = dtype(1.0)
    forward = [abs((np.sin(x + dtype(e)) - np.sin(x)) / dtype(e) - exact) for e in epsilons]
    central = [abs((np.sin(x + dtype(e)) - np.sin(x - dtype(e))) / dtype(2 * e) - exact) for e in epsilons]
    ax.loglog(epsilons, np.maximum(forward, 1e-17), "--", label=f"forward, {np.dtype(dtype).name}")
    ax.loglog(epsilons, np.maximum(central, 1e-17), label=f"central, {np.dtype(dtype).name}")
ax.axvline(1e-6, color="grey", lw=0.5)
ax.set_xlabel("epsilon")
ax.set_ylabel("error of the derivative")
ax.legend()
fig

# %% [markdown]
# At $\varepsilon = 10^{-6}$ (the grey line, minigen's default) the central difference in
# float64 is accurate to about $10^{-10}$; in float32 the rounding error alone is near
# $10^{-7} / 10^{-6} = 0.1$. That is why `gradcheck` converts its inputs to float64.
#
# **Exercise 2.1 (central differences).** Return the gradient of a scalar function `f` at the
# array `x`, one coordinate at a time: perturb `x[i]` by $\pm\varepsilon$, and put it back.


# %%
def numerical_gradient(f, x, eps):
    ### BEGIN SOLUTION
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        original = x[i]
        x[i] = original + eps
        f_plus = f(x)
        x[i] = original - eps
        f_minus = f(x)
        x[i] = original
        grad[i] = (f_plus - f_minus) / (2 * eps)
    return grad
    ### END SOLUTION


# %%
check("ex02_central_difference", numerical_gradient)

# %% [markdown]
# ## gradcheck on a wrong rule
#
# Here is a sigmoid whose backward rule has a classic slip: a factor 2 too many.
# `minigen.gradcheck` builds the whole Jacobian both ways and names the first disagreement.


# %%
class SlippedSigmoid(mg.Function):
    @staticmethod
    def forward(ctx, a):
        return 1 / (1 + np.exp(-a))

    @staticmethod
    def backward(ctx, grad):
        y = ctx.output
        return grad * y * (1.0 - y) * 2.0  # the slip


x = np.random.default_rng(0).standard_normal((2, 4))
try:
    mg.gradcheck(SlippedSigmoid.apply, [x], name="slipped sigmoid")
except mg.GradcheckError as error:
    print(error)

# %% [markdown]
# The message gives the input, the worst entry, both values and their ratio. With the
# factor removed, the check passes, and `gradgradcheck` confirms that the rule, written with
# tensor operations, can itself be differentiated:


# %%
class Sigmoid(mg.Function):
    @staticmethod
    def forward(ctx, a):
        return 1 / (1 + np.exp(-a))

    @staticmethod
    def backward(ctx, grad):
        y = ctx.output
        return grad * y * (1.0 - y)


print(mg.gradcheck(Sigmoid.apply, [x]), mg.gradgradcheck(Sigmoid.apply, [x]))

# %% [markdown]
# ## Property-based tests
#
# One input can hide a bug (a rule that is wrong only for broadcast shapes, or only for
# negative numbers). minigen's tests draw the inputs with **hypothesis**: shapes, including
# empty axes and non-contiguous views, and values. The registry in `tests/op_registry.py`
# lists every operation, and `tests/test_ops.py` runs each through this kind of test:

# %%
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp


@settings(max_examples=25, deadline=None)
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3), seed=st.integers(0, 2**32 - 1))
def multiplication_gradients_are_right(shapes, seed):
    rng = np.random.default_rng(seed)
    a, b = (rng.standard_normal(shape) for shape in shapes.input_shapes)
    assert mg.gradcheck(lambda a, b: a * b, [a, b])


multiplication_gradients_are_right()
print("25 random broadcasting cases: all gradients agree")

# %% [markdown]
# To go further: run `HYPOTHESIS_PROFILE=dev pytest tests/test_ops.py`, which draws 200 cases
# per operation, or add an operation of your own to `tests/op_registry.py`.
