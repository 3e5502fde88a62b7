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
# # 1. Autograd from scratch
#
# Every model in minigen learns by gradient descent, and every gradient comes from one idea:
# the **chain rule, applied backwards over the graph of the computation**. This notebook builds
# that idea up from a single expression to minigen's `Tensor`.
#
# Run the cells in order; each takes well under a second. The exercises are marked
# **Exercise**; the cell after each one checks your answer.

# %%
import numpy as np

import minigen as mg
from minigen.exercises import check
from minigen.viz import draw_graph

# %% [markdown]
# ## The chain rule as a graph
#
# Take $L = (a b + c)^2$ with $a = 2, b = -3, c = 10$. Name the intermediate values:
# $d = a b$, $e = d + c$, $L = e^2$. Each step knows its own *local* derivative:
#
# $$\frac{\partial L}{\partial e} = 2e, \qquad \frac{\partial e}{\partial d} = 1, \quad \frac{\partial e}{\partial c} = 1,
# \qquad \frac{\partial d}{\partial a} = b, \quad \frac{\partial d}{\partial b} = a.$$
#
# The chain rule multiplies them along the paths from $L$ back to each input. Writing
# $\bar x = \partial L / \partial x$ (the "adjoint" of $x$):
#
# $$\bar L = 1, \quad \bar e = 2e\,\bar L, \quad \bar d = \bar e, \quad \bar c = \bar e,
#   \quad \bar a = b\,\bar d, \quad \bar b = a\,\bar d.$$
#
# Going backwards, each value needs the adjoint of everything computed *from* it first. That
# order is what makes reverse mode cheap: one backward sweep gives the derivative with respect
# to every input at once.

# %%
a, b, c = 2.0, -3.0, 10.0
d = a * b
e = d + c
L = e**2
L_bar = 1.0
e_bar = 2 * e * L_bar
d_bar, c_bar = e_bar, e_bar
a_bar, b_bar = b * d_bar, a * d_bar
print(f"L = {L}, dL/da = {a_bar}, dL/db = {b_bar}, dL/dc = {c_bar}")

# %% [markdown]
# A finite difference agrees: nudge $a$ a little and watch $L$.

# %%
eps = 1e-6
print("numerical dL/da:", (((a + eps) * b + c) ** 2 - ((a - eps) * b + c) ** 2) / (2 * eps))

# %% [markdown]
# ## A tiny engine for scalars
#
# Let every value remember the values it was computed from (its *parents*) and the local
# derivative with respect to each. That record is the computation graph.


# %%
class Value:
    def __init__(self, data, parents=(), local_grads=(), op=""):
        self.data, self.grad = data, 0.0
        self.parents, self.local_grads, self.op = parents, local_grads, op

    def __add__(self, other):
        return Value(self.data + other.data, (self, other), (1.0, 1.0), "+")

    def __mul__(self, other):
        return Value(self.data * other.data, (self, other), (other.data, self.data), "*")

    def __pow__(self, k):
        return Value(self.data**k, (self,), (k * self.data ** (k - 1),), f"**{k}")

    def __repr__(self):
        return f"Value({self.data}, grad={self.grad})"


# %% [markdown]
# To run the chain rule backwards we need the nodes in an order where every node comes
# **after all of its parents** (a *topological order*); then we walk it in reverse.
#
# **Exercise 1.1 (topological sort).** `graph` maps each node to the list of its parents;
# return all nodes reachable from `root`, each after its parents. Use an explicit stack, not
# recursion: real graphs are deep (a training step can chain thousands of operations), and
# Python's recursion limit is about 1,000.


# %%
def topological_sort(graph, root):
    ### BEGIN SOLUTION
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, parents_done = stack.pop()
        if parents_done:
            order.append(node)  # all its parents are already in `order`
            continue
        if node in visited:
            continue
        visited.add(node)
        stack.append((node, True))
        stack.extend((parent, False) for parent in graph[node] if parent not in visited)
    return order
    ### END SOLUTION


# %%
check("ex01_topological_sort", topological_sort)

# %% [markdown]
# With an order, backpropagation is four lines: seed $\bar L = 1$, then for each node in
# reverse order, pass its adjoint to its parents times the local derivatives, *adding up*
# when a value is used more than once. (Here a short recursive sort stands in for yours, so
# the rest of the notebook runs before you solve the exercise: recursion is fine for this
# graph of six nodes, not for the deep graphs the exercise is about. minigen's own sort is
# `_topological_order` in `minigen/engine/tensor.py`, written with a stack.)


# %%
def graph_of(root):
    graph, stack = {}, [root]
    while stack:
        node = stack.pop()
        if node not in graph:
            graph[node] = list(node.parents)
            stack.extend(node.parents)
    return graph


def reference_sort(graph, root):
    order, seen = [], set()

    def visit(node):  # recursive is fine for this tiny graph
        if node not in seen:
            seen.add(node)
            for parent in graph[node]:
                visit(parent)
            order.append(node)

    visit(root)
    return order


def backward(root):
    root.grad = 1.0
    for node in reversed(reference_sort(graph_of(root), root)):
        for parent, local in zip(node.parents, node.local_grads):
            parent.grad += local * node.grad  # += : a value used twice gets both contributions


a, b, c = Value(2.0), Value(-3.0), Value(10.0)
L = (a * b + c) ** 2
backward(L)
print(a, b, c)

# %% [markdown]
# ## The same with minigen's Tensor
#
# minigen does exactly this for arrays. Each operation is a `Function` with a `forward` and a
# `backward` (open `minigen/engine/ops.py`: `Mul.backward` returns $\bar y\, b$ and $\bar y\, a$),
# and `Tensor.backward()` runs the sweep in `minigen/engine/tensor.py` (`_topological_order`,
# then `_backpropagate`).

# %%
a = mg.tensor(2.0, requires_grad=True, name="a")
b = mg.tensor(-3.0, requires_grad=True, name="b")
c = mg.tensor(10.0, requires_grad=True, name="c")
L = (a * b + c) ** 2
L.backward()
print(a.grad, b.grad, c.grad)
draw_graph(L)

# %% [markdown]
# ## Broadcasting and its gradient
#
# Adding a bias of shape (3,) to a batch of shape (4, 3) uses each bias element four times,
# once per row. So its gradient is the **sum** of the four rows' gradients. minigen does this
# in one place, `unbroadcast` in `minigen/engine/tensor.py`, for every operation.

# %%
x = mg.Tensor(np.arange(12.0).reshape(4, 3))
bias = mg.Tensor(np.zeros(3), requires_grad=True)
y = (x + bias) * 2.0
y.sum().backward()
print("bias.grad =", bias.grad.numpy(), "(each element was used in 4 rows, with weight 2)")

# %% [markdown]
# **Exercise 1.2 (a backward rule).** The sigmoid $y = \sigma(a) = 1 / (1 + e^{-a})$ has the
# derivative $\sigma'(a) = \sigma(a)(1 - \sigma(a))$. Given the forward result `y` and
# `grad` $= \partial L / \partial y$ (arrays of the same shape), return $\partial L / \partial a$.


# %%
def sigmoid_backward(y, grad):
    ### BEGIN SOLUTION
    return grad * y * (1 - y)
    ### END SOLUTION


# %%
check("ex01_sigmoid_backward", sigmoid_backward)

# %% [markdown]
# minigen's own rule is `Sigmoid.backward` in `minigen/functional/activations.py`, written
# with tensor operations (`grad * y * (1.0 - y)`) rather than NumPy arrays, so that the
# gradient is itself a graph that can be differentiated again: notebook 7 needs that.
#
# To train longer or explore further: change the expression above, draw its graph, and
# compare `x.grad` with a finite difference, which is what the next notebook automates.
