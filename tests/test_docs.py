"""The API reference builds offline with pdoc, with the docstrings' equations."""

import subprocess
import sys

import pytest

pytest.importorskip("pdoc")


def test_pdoc_builds_every_module_with_math(tmp_path):
    subprocess.run([sys.executable, "-m", "pdoc", "--math", "-o", str(tmp_path), "minigen"], check=True, capture_output=True)
    pages = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.html")}
    for page in (
        "minigen/engine/tensor.html",
        "minigen/engine/ops.html",
        "minigen/kernels/conv.html",
        "minigen/models/vae.html",
        "minigen/models/gan.html",
        "minigen/metrics.html",
        "minigen/functional/losses.html",
        "minigen/optim.html",
    ):
        assert page in pages, f"pdoc did not document {page}"
    vae = (tmp_path / "minigen/models/vae.html").read_text()
    assert "mathjax" in vae.lower() and r"\mathcal L" in vae  # the ELBO's equations, rendered by MathJax
