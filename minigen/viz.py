"""Pictures of the computation graph, drawn with matplotlib alone (no Graphviz needed).

`draw_graph(loss)` lays the graph out left to right: leaves (inputs and parameters) in the
first column, each operation (a circle) one step right of its latest input, and each result
(a box) right of its operation. After `backward()` the boxes also show the gradients.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from .engine.tensor import Tensor


def _all_tensors(root: Tensor) -> list[Tensor]:
    """Every tensor `root` was computed from, constants included, inputs before results."""
    order, seen, stack = [], set(), [(root, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
        elif id(node) not in seen:
            seen.add(id(node))
            stack.append((node, True))
            if node._ctx is not None:
                stack.extend((p, False) for p in node._ctx.inputs if id(p) not in seen)
    return order


def _summary(values: np.ndarray) -> str:
    if values.size == 1:
        return f"{values.item():.4g}"
    return f"|max| {np.abs(values).max():.3g}" if values.size else "empty"


def _label(t: Tensor) -> str:
    lines = [t.name] if t.name else []
    lines.append(f"{t.shape} {t.dtype}")
    lines.append(f"data {_summary(t.data)}")
    if t.grad is not None:
        lines.append(f"grad {_summary(t.grad.data)}")
    return "\n".join(lines)


def draw_graph(root: Tensor, max_nodes: int = 40, figsize=None) -> Figure:
    """Draw the graph that computed `root`; returns a matplotlib Figure (`fig.savefig("g.png")`).

    Blue boxes require grad, grey ones are constants; circles are operations.
    """
    tensors = _all_tensors(root)
    if len(tensors) > max_nodes:
        raise ValueError(
            f"draw_graph: the graph has {len(tensors)} tensors, more than max_nodes={max_nodes} can show "
            f"readably; draw a smaller part of it, or raise max_nodes"
        )
    depth: dict[int, int] = {}
    for t in tensors:
        depth[id(t)] = 0 if t._ctx is None else 1 + max(depth[id(p)] for p in t._ctx.inputs)
    columns: dict[int, list[Tensor]] = {}
    for t in tensors:
        columns.setdefault(depth[id(t)], []).append(t)
    position = {}
    for d, column in columns.items():
        for row, t in enumerate(column):
            position[id(t)] = (2.0 * d, (len(column) - 1) / 2 - row)

    width = 2 * max(columns) + 1
    height = max(len(c) for c in columns.values())
    fig = Figure(figsize=figsize or (1.3 * width + 1, 1.2 * height + 1))
    ax = fig.add_subplot()
    arrow = dict(arrowstyle="->", color="0.35", shrinkA=18, shrinkB=18)
    for t in tensors:
        x, y = position[id(t)]
        color = "#cfe3f7" if t.requires_grad else "#e6e6e6"
        ax.text(
            x,
            y,
            _label(t),
            ha="center",
            va="center",
            fontsize=8,
            family="monospace",
            bbox=dict(boxstyle="round,pad=0.4", facecolor=color, edgecolor="0.4"),
        )
        if t._ctx is None:
            continue
        op_xy = (x - 1.0, y)
        ax.text(
            *op_xy,
            t._ctx.name,
            ha="center",
            va="center",
            fontsize=8,
            bbox=dict(boxstyle="circle,pad=0.3", facecolor="#fff2cc", edgecolor="0.4"),
        )
        ax.annotate("", xy=(x, y), xytext=op_xy, arrowprops=arrow)
        for p in t._ctx.inputs:
            ax.annotate("", xy=op_xy, xytext=position[id(p)], arrowprops=arrow)
    ax.set_xlim(-1.2, 2 * max(columns) + 1.2)
    ax.set_ylim(-height / 2 - 0.3, height / 2 + 0.3)
    ax.axis("off")
    fig.tight_layout()
    return fig
