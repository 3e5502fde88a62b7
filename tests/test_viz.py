import numpy as np
import pytest

import minigen as mg
from minigen import functional as F
from minigen.viz import draw_graph


def _texts(fig):
    return [t.get_text() for t in fig.axes[0].texts]


def test_draw_graph_shows_ops_shapes_and_grads(tmp_path):
    x = mg.Tensor(np.ones((2, 3), np.float32), requires_grad=True, name="x")
    w = mg.Tensor(np.ones((3, 1), np.float32), requires_grad=True, name="w")
    loss = F.sigmoid(x @ w).sum()
    loss.backward()
    fig = draw_graph(loss)
    texts = _texts(fig)
    for op in ("matmul", "sigmoid", "sum"):
        assert op in texts
    x_label = next(t for t in texts if t.startswith("x\n"))
    assert "(2, 3) float32" in x_label and "grad" in x_label
    path = tmp_path / "graph.png"
    fig.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_draw_graph_refuses_an_unreadable_graph():
    y = mg.tensor(1.0, requires_grad=True)
    for _ in range(50):
        y = y * 1.0
    with pytest.raises(ValueError, match="draw_graph: the graph has 101 tensors"):
        draw_graph(y)
