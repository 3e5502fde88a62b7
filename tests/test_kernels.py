"""The compute kernels: each fast kernel equals its NumPy twin, adjoints are adjoints, and the
Numba set-up (no JIT, cache folder) behaves as promised."""

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import minigen as mg
from minigen import functional as F
from minigen.kernels import conv as K
from minigen.kernels import dense as D
from minigen.kernels import pool as P


@st.composite
def conv_cases(draw):
    """A convolution geometry with an output of at least 1x1, and random x, w, y for it."""
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    hw = tuple(max(1, dilation[a] * (kernel[a] - 1) + 1 - 2 * padding[a]) + draw(st.integers(0, 6)) for a in (0, 1))
    out_hw = tuple(K.conv_output_size(hw[a], kernel[a], stride[a], padding[a], dilation[a]) for a in (0, 1))
    batch, c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((batch, c_in, *hw)).astype(dtype)
    w = rng.standard_normal((c_out, c_in, *kernel)).astype(dtype)
    y = rng.standard_normal((batch, c_out, *out_hw)).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype)
    return x, w, y, b, (stride, padding, dilation), out_hw


def _close(dtype):
    return dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)


@given(conv_cases())
def test_im2col_and_col2im_kernels_equal_their_loop_twins(case):
    x, w, _, _, geometry, out_hw = case
    kernel = w.shape[2:]
    cols = K.im2col(x, kernel, *geometry, out_hw)
    np.testing.assert_array_equal(cols, K.im2col_reference(x, kernel, *geometry, out_hw))  # copies: exactly equal
    spread = np.random.default_rng(0).standard_normal(cols.shape).astype(x.dtype)
    np.testing.assert_allclose(
        K.col2im(spread, x.shape, kernel, *geometry, out_hw),
        K.col2im_reference(spread, x.shape, kernel, *geometry, out_hw),
        **_close(x.dtype),
    )


@given(conv_cases())
def test_conv2d_kernel_equals_its_twin(case):
    x, w, _, b, geometry, out_hw = case
    np.testing.assert_allclose(K.conv2d(x, w, b, *geometry, out_hw), K.conv2d_reference(x, w, b, *geometry, out_hw), **_close(x.dtype))


@given(conv_cases())
def test_conv_transpose2d_kernel_equals_its_twin(case):
    x, w, y, b, geometry, _ = case
    # y has w.shape[0] channels, so as a transposed-convolution weight w is (in, out, kh, kw).
    bias = np.resize(b, w.shape[1])
    out = K.conv_transpose2d(y, w, bias, *geometry, x.shape[2:])
    np.testing.assert_allclose(out, K.conv_transpose2d_reference(y, w, bias, *geometry, x.shape[2:]), **_close(x.dtype))


@given(conv_cases())
def test_conv2d_weight_grad_kernel_equals_its_twin(case):
    x, w, y, _, geometry, _ = case
    fast = K.conv2d_weight_grad(x, y, w.shape[2:], *geometry)
    np.testing.assert_allclose(fast, K.conv2d_weight_grad_reference(x, y, w.shape[2:], *geometry), **_close(x.dtype))


@given(conv_cases())
def test_adjoint_identity_conv2d_and_its_transpose(case):
    """<conv2d(x, w), y> = <x, conv_transpose2d(y, w)>: the transpose is the true adjoint."""
    x, w, y, _, geometry, out_hw = case
    x, w, y = (a.astype(np.float64) for a in (x, w, y))
    left = np.vdot(K.conv2d(x, w, None, *geometry, out_hw), y)
    right = np.vdot(x, K.conv_transpose2d(y, w, None, *geometry, x.shape[2:]))
    assert left == pytest.approx(right, rel=1e-10, abs=1e-10)


@given(conv_cases())
def test_weight_grad_is_the_adjoint_in_the_weight(case):
    """<conv2d(x, w), y> = <w, weight_grad(x, y)>: the weight gradient is right by construction."""
    x, w, y, _, geometry, out_hw = case
    x, w, y = (a.astype(np.float64) for a in (x, w, y))
    left = np.vdot(K.conv2d(x, w, None, *geometry, out_hw), y)
    right = np.vdot(w, K.conv2d_weight_grad(x, y, w.shape[2:], *geometry))
    assert left == pytest.approx(right, rel=1e-10, abs=1e-10)


def test_chunking_through_the_batch_changes_nothing(monkeypatch):
    from minigen.kernels import threads

    monkeypatch.setattr(threads, "MIN_CHUNKS", 1)  # first the whole batch as one chunk
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((5, 3, 9, 9)), rng.standard_normal((4, 3, 3, 3))
    geometry, out_hw = ((2, 1), (1, 0), (1, 2)), (4, 5)
    y = rng.standard_normal((5, 4, *out_hw))
    whole = [
        K.conv2d(x, w, None, *geometry, out_hw),
        K.conv_transpose2d(y, w, None, *geometry, (9, 9)),
        K.conv2d_weight_grad(x, y, (3, 3), *geometry),
    ]
    (whole_columns,) = K.columns(x, (3, 3), *geometry, out_hw)  # the whole batch is one chunk
    monkeypatch.setattr(K, "CHUNK_BYTES", 1)  # one image per chunk
    kept = K.columns(x, (3, 3), *geometry, out_hw)
    assert len(kept) == 5
    chunked = [
        K.conv2d(x, w, None, *geometry, out_hw),
        K.conv_transpose2d(y, w, None, *geometry, (9, 9)),
        K.conv2d_weight_grad(x, y, (3, 3), *geometry),
    ]
    from_kept = [K.conv2d(x, w, None, *geometry, out_hw, kept), K.conv2d_weight_grad(x, y, (3, 3), *geometry, kept)]
    for a, b in zip(whole, chunked):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    for a, b in zip([whole[0], whole[2]], from_kept):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(np.concatenate(kept), whole_columns)  # a chunk is a block of rows
    y_keeping, kept_too = K.conv2d_keeping_columns(x, w, None, *geometry, out_hw)  # the forward's way: both at once
    np.testing.assert_array_equal(y_keeping, chunked[0])
    assert len(kept_too) == 5 and all(np.array_equal(a, b) for a, b in zip(kept_too, kept))


def test_a_convolution_keeps_its_columns_for_the_weight_gradient_until_the_backward():
    """One im2col per layer fewer: the forward keeps the column matrices when W requires grad and
    they fit KEEP_COLUMNS_BYTES, the weight gradient reads them, and the backward drops them."""
    rng = np.random.default_rng(1)
    x = mg.Tensor(rng.standard_normal((4, 3, 8, 8)), requires_grad=True)
    w = mg.Tensor(rng.standard_normal((5, 3, 3, 3)), requires_grad=True)
    y = F.conv2d(x, w, padding=1)
    assert y._ctx.kept is not None and sum(c.nbytes for c in y._ctx.kept) == 4 * 27 * 64 * 8
    (y * y).sum().backward()
    assert y._ctx.kept is None  # released with the graph
    np.testing.assert_allclose(w.grad.data, K.conv2d_weight_grad_reference(x.data, 2 * y.data, (3, 3), (1, 1), (1, 1), (1, 1)), rtol=1e-10)
    with mg.no_grad():
        assert F.conv2d(x, w, padding=1)._ctx is None
    w.requires_grad = False
    assert F.conv2d(x, w, padding=1)._ctx.kept is None  # no weight gradient to keep them for


@st.composite
def pool_cases(draw):
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    hw = tuple(max(1, kernel[a] - 2 * padding[a]) + draw(st.integers(0, 6)) for a in (0, 1))
    out_hw = tuple(K.conv_output_size(hw[a], kernel[a], stride[a], padding[a], 1) for a in (0, 1))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    x = rng.standard_normal((draw(st.integers(1, 3)), draw(st.integers(1, 3)), *hw)).astype(dtype)
    y = rng.standard_normal((*x.shape[:2], *out_hw)).astype(dtype)
    return x, y, kernel, stride, padding, out_hw


@given(pool_cases())
def test_avg_pool2d_and_its_adjoint_equal_their_twins_and_are_adjoint(case):
    x, y, kernel, stride, padding, out_hw = case
    pooled = P.avg_pool2d(x, kernel, stride, padding, out_hw)
    spread = P.avg_pool2d_adjoint(y, x.shape[2:], kernel, stride, padding)
    np.testing.assert_allclose(pooled, P.avg_pool2d_reference(x, kernel, stride, padding, out_hw), **_close(x.dtype))
    np.testing.assert_allclose(spread, P.avg_pool2d_adjoint_reference(y, x.shape[2:], kernel, stride, padding), **_close(x.dtype))
    assert np.vdot(pooled.astype(np.float64), y) == pytest.approx(np.vdot(x, spread.astype(np.float64)), rel=1e-4, abs=1e-4)


@given(st.integers(1, 3), st.integers(1, 3), st.integers(0, 2**32 - 1), st.booleans())
def test_upsample_and_its_adjoint_equal_their_twins_and_are_adjoint(fh, fw, seed, channels_last):
    """In NCHW memory (the kernels) and in channels-last memory (NumPy), which the results keep."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 3, 4, 5))
    y = rng.standard_normal((2, 3, 4 * fh, 5 * fw))
    if channels_last:
        x, y = (K.channels_last(a).transpose(0, 3, 1, 2) for a in (x, y))
    up, summed = P.upsample_nearest2d(x, (fh, fw)), P.upsample_nearest2d_adjoint(y, (fh, fw))
    np.testing.assert_array_equal(up, P.upsample_nearest2d_reference(x, (fh, fw)))
    np.testing.assert_allclose(summed, P.upsample_nearest2d_adjoint_reference(y, (fh, fw)), rtol=1e-12)
    assert np.vdot(up, y) == pytest.approx(np.vdot(x, summed), rel=1e-10)
    for result in (up, summed):
        assert result.transpose(0, 2, 3, 1).flags.c_contiguous == channels_last and (channels_last or result.flags.c_contiguous)


def test_dense_kernel_equals_its_twin():
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((2, 5, 7)), rng.standard_normal((3, 7)), rng.standard_normal(3)
    np.testing.assert_allclose(D.linear(x, w, b), D.linear_reference(x, w, b), rtol=1e-12)


def test_non_contiguous_inputs_give_the_same_result():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 3, 2, 9)).transpose(2, 1, 3, 0)  # (2, 3, 9, 6), not contiguous
    w = rng.standard_normal((3, 4, 2, 2)).transpose(1, 0, 2, 3)  # (4, 3, 2, 2)
    geometry, out_hw = ((1, 2), (0, 1), (1, 1)), (8, 4)
    expected = K.conv2d(np.ascontiguousarray(x), np.ascontiguousarray(w), None, *geometry, out_hw)
    np.testing.assert_allclose(K.conv2d(x, w, None, *geometry, out_hw), expected, rtol=1e-12)


# --- the Numba set-up ---------------------------------------------------------------------------

_RUN_ALL_KERNELS = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from minigen.kernels import activation as A, conv as K, norm as N, pool as P, winograd as WG
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 2))
    geometry = ((2, 1), (1, 1), (1, 2))
    y = K.conv2d(x, w, None, *geometry, (4, 4))
    results = {
        "conv2d": y,
        "conv_transpose2d": K.conv_transpose2d(y, w, None, *geometry, (7, 6)),
        "weight_grad": K.conv2d_weight_grad(x, y, (3, 2), *geometry),
        "avg_pool2d": P.avg_pool2d(x, (3, 2), (2, 1), (1, 1), (4, 7)),
        "avg_pool2d_adjoint": P.avg_pool2d_adjoint(y, (7, 6), (3, 3), (2, 2), (1, 1)),
        "upsample": P.upsample_nearest2d(x, (2, 3)),
        "upsample_adjoint": P.upsample_nearest2d_adjoint(x[:, :, :6, :6], (2, 3)),
    }
    results["winograd"] = WG.conv3x3(x, w[:, :, :, :1].repeat(3, axis=3), None, (1, 2), (7, 8))
    mean, var = N.batch_statistics(x)
    results["batch_norm"] = N.batch_norm(x, mean, var, w[:3, 0, 0, 0], w[:3, 0, 1, 0], 1e-5, 0.2)
    results["batch_norm_grad_x"] = N.batch_norm_backward(x, x, results["batch_norm"], mean, var, w[:3, 0, 0, 0], 1e-5, 0.2)[0]
    gamma, beta = w[:2, 0, 0, 0], w[:2, 0, 1, 0]
    results["group_norm"], group_mean, inv_std = N.group_norm(x[:, :2], 2, gamma, beta, 1e-5)
    results["group_norm_grad_x"] = N.group_norm_backward(x[:, :2], x[:, :2], group_mean, inv_std, gamma, 2)[0]
    A.KERNEL_FROM = 0  # the kernels, not the twins, for these small arrays
    results["leaky_relu"] = A.leaky_relu(y, 0.2)
    results["leaky_relu_backward"] = A.leaky_relu_backward(np.cos(y), y, 0.2)
    results["silu_backward"] = A.silu_backward(np.cos(y), y)
    json.dump({k: v.tolist() for k, v in results.items()}, sys.stdout)
    """
)


def _run_kernels(env_changes: dict, said: list | None = None) -> dict:
    """Run every kernel in a fresh process; the lines it printed before its results go to `said`."""
    env = {**os.environ, **env_changes}
    out = subprocess.run([sys.executable, "-c", _RUN_ALL_KERNELS], env=env, capture_output=True, text=True, check=True)
    *lines, results = out.stdout.strip().splitlines()
    if said is not None:
        said += lines
    return {k: np.array(v) for k, v in json.loads(results).items()}


def test_numba_disable_jit_gives_the_same_results(tmp_path):
    jitted = _run_kernels({"NUMBA_CACHE_DIR": str(tmp_path)})
    plain_python = _run_kernels({"NUMBA_DISABLE_JIT": "1"})
    assert jitted.keys() == plain_python.keys()
    for name in jitted:
        np.testing.assert_allclose(plain_python[name], jitted[name], rtol=1e-12, atol=1e-12, err_msg=name)


def test_numba_cache_dir_is_respected_and_compiling_is_announced_once(tmp_path):
    cache = tmp_path / "numba-cache"
    first, second = [], []
    _run_kernels({"NUMBA_CACHE_DIR": str(cache)}, said=first)
    written = [p.name for p in cache.rglob("*") if p.suffix in (".nbi", ".nbc")]
    assert any(name.startswith("conv._im2col") for name in written), written
    assert len(first) == 1 and first[0].startswith("minigen: compiling the Numba kernels"), first
    _run_kernels({"NUMBA_CACHE_DIR": str(cache)}, said=second)
    assert second == []  # everything came from the cache: nothing to announce


_NEVER_COMPILED = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys
    import numba
    import minigen.kernels
    exec(sys.argv[1])  # the benchmark's first calls
    never = []
    for module in pkgutil.iter_modules(minigen.kernels.__path__):
        module = importlib.import_module(f"minigen.kernels.{module.name}")
        for name, f in vars(module).items():
            if isinstance(f, numba.core.registry.CPUDispatcher) and f.__module__ == module.__name__ and not f.signatures:
                never.append(f"{module.__name__}.{name}")
    print(json.dumps(never))
    """
)


def test_the_compile_benchmark_reaches_every_kernel(tmp_path):
    """benchmarks/jit.py times "compiling every kernel" by its first calls: in a fresh cache they
    must compile every jitted function of minigen.kernels (a layer rule that changes which
    kernel a shape takes can leave one out; a helper that only kernels call is compiled with them)."""
    source = (Path(__file__).parent.parent / "benchmarks" / "jit.py").read_text()
    first_calls = source.split('FIRST_CALLS = """', 1)[1].split('"""', 1)[0]
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", _NEVER_COMPILED, first_calls], env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize("weight_decay, decoupled", [(0.0, False), (0.01, False), (0.01, True)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_kernel_equals_its_twin_on_one_core_and_on_every_core(weight_decay, decoupled, dtype, monkeypatch):
    from minigen.kernels import optim as O

    rng = np.random.default_rng(0)
    n = 1000 + 5 * O.BLOCKS  # blocks of unequal sizes on the threads
    start = [rng.standard_normal(n).astype(dtype) for _ in range(2)] + [np.zeros(n, dtype), np.zeros(n, dtype)]
    one_core, every_core, twin = ([a.copy() for a in start] for _ in range(3))
    settings = dict(lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=weight_decay, decoupled=decoupled)
    for step in (1, 2, 3):
        O.adam_update(*one_core, step=step, **settings)
        with monkeypatch.context() as patch:
            patch.setattr(O, "THREADED_FROM", 0)
            O.adam_update(*every_core, step=step, **settings)
        O.adam_update_reference(*twin, step=step, **settings)
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    for a, b, c in zip(one_core, every_core, twin):
        np.testing.assert_array_equal(a, b)  # each element's arithmetic is the same on any thread
        np.testing.assert_allclose(a, c, rtol=tolerance, atol=tolerance)


def test_adam_kernel_refuses_arrays_it_cannot_update_in_place():
    from minigen.kernels import optim as O

    theta, m, v = np.zeros((4, 6), np.float32).T, np.zeros((6, 4), np.float32), np.zeros((6, 4), np.float32)
    with pytest.raises(ValueError, match="contiguous"):
        O.adam_update(
            theta, np.ones((6, 4), np.float32), m, v, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0, decoupled=False, step=1
        )


def test_numpys_blas_runs_one_thread_and_minigens_threads_do_not_change_the_convolutions_numbers():
    from threadpoolctl import threadpool_info

    from minigen.kernels import threads
    from minigen.kernels import winograd as WG

    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((9, 3, 10, 10)).astype(np.float32), rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    y = rng.standard_normal((9, 4, 10, 10)).astype(np.float32)
    a, b = rng.standard_normal((300, 200)).astype(np.float32), rng.standard_normal((200, 100)).astype(np.float32)
    assert 300 * 200 * 100 >= threads.SPLIT_FROM

    def results():
        return [
            K.conv2d(x, w, None, (1, 1), (1, 1), (1, 1), (10, 10)),
            K.conv_transpose2d(y, w, None, (1, 1), (1, 1), (1, 1), (10, 10)),
            K.conv2d_weight_grad(x, y, (3, 3), (1, 1), (1, 1), (1, 1)),
            WG.conv3x3(x, w, None, (1, 1), (10, 10)),
            WG.conv3x3_weight_grad(x, y, (1, 1)),
            threads.matmul(a, b),
            threads.matmul(a.T.copy().T, b),  # a transposed view, as the weight gradient multiplies
        ]

    before = mg.get_num_threads()
    try:
        mg.set_num_threads(1)
        assert mg.get_num_threads() == 1
        one = results()
        mg.set_num_threads(2)
        two = results()
        again = results()
        ran_on = set(threads.map_chunks(lambda _: (time.sleep(0.01), threading.current_thread().name)[1], range(4)))
    finally:
        mg.set_num_threads(before)
    numpys = [lib for lib in threadpool_info() if lib["user_api"] == "blas" and "numpy" in lib["filepath"]]
    assert numpys and {lib["num_threads"] for lib in numpys} == {1}  # since the first convolution
    for a_one, a_two in zip(one[:5], two[:5]):  # the convolutions: the same chunks on any number of threads
        np.testing.assert_array_equal(a_one, a_two)
    for a_one, a_two, a_again in zip(one[5:], two[5:], again[5:]):  # a product cut for two threads: its last bits may move
        np.testing.assert_allclose(a_one, a_two, rtol=1e-5, atol=1e-4)
        np.testing.assert_array_equal(a_two, a_again)  # the same number of threads, the same numbers
    np.testing.assert_allclose(one[0], K.conv2d_reference(x, w, None, (1, 1), (1, 1), (1, 1), (10, 10)), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(one[5], a @ b, rtol=1e-5, atol=1e-4)
    assert len(ran_on) == 2 and threading.current_thread().name in ran_on  # the caller and one helper
    with pytest.raises(ValueError, match=r"set_num_threads: n must be a positive int, got 0"):
        mg.set_num_threads(0)


def test_numpys_blas_keeps_its_threads_until_the_first_convolution():
    script = textwrap.dedent(
        """
        import numpy as np
        from threadpoolctl import threadpool_info
        import minigen as mg
        from minigen import functional as F

        def numpys():
            return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas" and "numpy" in lib["filepath"]}

        mg.set_num_threads(2)
        x = mg.Tensor(np.ones((64, 784), np.float32))
        F.linear(x, mg.Tensor(np.ones((256, 784), np.float32), requires_grad=True)).sum().backward()
        dense_only = numpys()
        F.conv2d(mg.Tensor(np.ones((2, 3, 8, 8), np.float32)), mg.Tensor(np.ones((4, 3, 3, 3), np.float32)))
        print(dense_only, numpys())
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split("\n")[-2]
    assert out == "{2} {1}", out  # two BLAS threads for the dense layer, one from the convolution on


@pytest.mark.parametrize("size", [8, 16])  # im2col and col2im; Winograd (float32, 3x3, 16 channels from 14x14)
def test_an_empty_batch_gives_empty_outputs_and_zero_gradients(size):
    x = mg.Tensor(np.ones((0, 16, size, size), np.float32), requires_grad=True)
    w = mg.Tensor(np.ones((16, 16, 3, 3), np.float32), requires_grad=True)
    y = F.conv2d(x, w, padding=1) + F.conv_transpose2d(x, w, padding=1)
    y.sum().backward()
    assert y.shape == (0, 16, size, size) and x.grad.shape == x.shape
    np.testing.assert_array_equal(w.grad.data, np.zeros((16, 16, 3, 3), np.float32))


def test_a_chunk_that_raises_raises_in_the_caller_after_the_other_chunks_are_done():
    from minigen.kernels import threads

    done = []

    def work(k):
        if k == 1:
            raise ValueError("chunk 1")
        time.sleep(0.01)
        done.append(k)

    before = mg.get_num_threads()
    try:
        mg.set_num_threads(2)
        with pytest.raises(ValueError, match="chunk 1"):
            threads.map_chunks(work, range(6))
    finally:
        mg.set_num_threads(before)
    assert sorted(done) == [0, 2, 3, 4, 5]
    assert threads.map_chunks(lambda k: threads.map_chunks(lambda j: 10 * k + j, range(3)), range(3)) == [
        [0, 1, 2],
        [10, 11, 12],
        [20, 21, 22],
    ]


@pytest.mark.parametrize("slope", [0.0, 0.2, 1.0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(5, 3), (4, 2, 3, 5), (2, 4, 6, 6)])
def test_fused_batch_norm_kernels_equal_their_twins(shape, dtype, slope):
    from minigen.kernels import norm as N

    rng = np.random.default_rng(len(shape))
    x, grad_y = (3 * rng.standard_normal(shape) + 1).astype(dtype), rng.standard_normal(shape).astype(dtype)
    gamma, beta = rng.uniform(0.5, 2, shape[1]).astype(dtype), rng.standard_normal(shape[1]).astype(dtype)
    mean, var = N.batch_statistics(x)
    np.testing.assert_allclose(mean, x.mean(axis=(0, *range(2, x.ndim))), rtol=1e-5, atol=1e-6)
    y = N.batch_norm(x, mean, var, gamma, beta, 1e-5, slope)
    tolerance = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y, N.batch_norm_reference(x, gamma, beta, 1e-5, slope), **tolerance)
    assert y.dtype == dtype
    for ours, twin in zip(
        N.batch_norm_backward(grad_y, x, y, mean, var, gamma, 1e-5, slope),
        N.batch_norm_backward_reference(grad_y, x, gamma, beta, 1e-5, slope),
    ):
        np.testing.assert_allclose(ours, twin, **tolerance)


def test_norm_kernels_give_the_same_numbers_on_one_core_and_on_every_core(monkeypatch):
    """Small arrays run on the calling thread, large ones on Numba's threads: the same blocks
    and the same sums either way, so the same numbers, bit for bit."""
    from minigen.kernels import norm as N

    rng = np.random.default_rng(11)
    x, grad_y = (K.channels_last(rng.standard_normal((6, 8, 5, 7)).astype(np.float32)).transpose(0, 3, 1, 2) for _ in range(2))
    gamma, beta = rng.uniform(0.5, 2, 8).astype(np.float32), rng.standard_normal(8).astype(np.float32)

    def results():
        mean, var = N.batch_statistics(x)
        y = N.batch_norm(x, mean, var, gamma, beta, 1e-5, 0.2)
        y_group, group_mean, inv_std = N.group_norm(x, 4, gamma, beta, 1e-5)
        backward = N.batch_norm_backward(grad_y, x, y, mean, var, gamma, 1e-5, 0.2)
        group_backward = N.group_norm_backward(grad_y, x, group_mean, inv_std, gamma, 4)
        return [mean, var, y, *backward, y_group, group_mean, inv_std, *group_backward]

    assert x.size < N.THREADED_FROM
    one_core = results()
    monkeypatch.setattr(N, "THREADED_FROM", 0)
    for a, b in zip(one_core, results(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, groups", [((5, 6), 3), ((4, 6, 3, 5), 2), ((2, 8, 6, 6), 8), ((3, 4, 5, 5), 1)])
def test_group_norm_kernels_equal_their_twins(shape, groups, dtype):
    from minigen.kernels import norm as N

    rng = np.random.default_rng(len(shape) + groups)
    x = (3 * rng.standard_normal(shape) + rng.uniform(-5, 5, (1, shape[1]) + (1,) * (len(shape) - 2))).astype(dtype)
    grad_y = rng.standard_normal(shape).astype(dtype)
    gamma, beta = rng.uniform(0.5, 2, shape[1]).astype(dtype), rng.standard_normal(shape[1]).astype(dtype)
    y, mean, inv_std = N.group_norm(x, groups, gamma, beta, 1e-5)
    assert y.dtype == dtype and mean.shape == inv_std.shape == (shape[0], groups)
    np.testing.assert_allclose(mean, x.reshape(shape[0], groups, -1).mean(axis=2), rtol=1e-5, atol=1e-5)
    tolerance = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y, N.group_norm_reference(x, groups, gamma, beta, 1e-5), **tolerance)
    ours = N.group_norm_backward(grad_y, x, mean, inv_std, gamma, groups)
    for a, twin in zip(ours, N.group_norm_backward_reference(grad_y, x, groups, gamma, 1e-5)):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, twin, **tolerance)
    if x.ndim == 4:  # channels last in, channels last out, and the same numbers
        x_cl = K.channels_last(x).transpose(0, 3, 1, 2)
        y_cl = N.group_norm(x_cl, groups, gamma, beta, 1e-5)[0]
        assert np.shares_memory(K.channels_last(y), y) and np.array_equal(y_cl, y)


def test_batch_and_group_norm_keep_the_digits_of_a_channel_whose_mean_dwarfs_its_spread():
    """float32 values 1000 + 0.01 noise: folded into x * scale + (beta - mean * scale), the
    normalisation cancels two terms of 1e5 and keeps two digits; subtracting the mean first
    (in float64) keeps float32's."""
    from minigen.kernels import norm as N

    rng = np.random.default_rng(5)
    x = (1000 + 0.01 * rng.standard_normal((8, 3, 5, 5))).astype(np.float32)
    gamma, beta = np.ones(3, np.float32), np.zeros(3, np.float32)
    mean, var = N.batch_statistics(x)
    y = N.batch_norm(x, mean, var, gamma, beta, 1e-5, 1.0)
    exact = N.batch_norm_reference(x.astype(np.float64), gamma, beta, 1e-5, 1.0)
    np.testing.assert_allclose(y, exact, rtol=1e-5, atol=1e-5)
    y = N.group_norm(x, 3, gamma, beta, 1e-5)[0]  # group norm's sums are shifted alike
    np.testing.assert_allclose(y, N.group_norm_reference(x.astype(np.float64), 3, gamma, beta, 1e-5), rtol=1e-5, atol=1e-5)


def _laid_out(layout: str, a, grad_y):
    """Two (N, H, W, C) arrays as NCHW arrays laid out one way: NCHW memory, channels-last
    memory, with gaps (every other channel), or one of each."""
    return {
        "nchw": (a, grad_y),
        "channels last": (a.transpose(0, 3, 1, 2), grad_y.transpose(0, 3, 1, 2)),
        "strided": (a[:, ::2], grad_y[:, ::2]),
        "mixed": (a.transpose(0, 3, 1, 2), np.ascontiguousarray(grad_y.transpose(0, 3, 1, 2))),
    }[layout]


@pytest.mark.parametrize("slope", [0.0, 0.2, 1.5])
@pytest.mark.parametrize("layout", ["nchw", "channels last", "strided", "mixed"])
def test_leaky_relu_kernels_equal_their_twins_in_any_layout(layout, slope, monkeypatch):
    """The kernels run through memory as it is laid out and return that layout; where the arrays
    have gaps, or input and gradient are laid out differently, the twins do the work."""
    from minigen.kernels import activation as A

    rng = np.random.default_rng(3)
    a, grad_y = (rng.standard_normal((64, 16, 16, 8)).astype(np.float32) for _ in range(2))
    a[0, 0, 0] = 0.0  # the kink: y = 0, gradient s
    a, grad_y = _laid_out(layout, a, grad_y)
    expected_y, expected_grad = A.leaky_relu_reference(a, slope), A.leaky_relu_backward_reference(grad_y, a, slope)
    assert a.size >= A.KERNEL_FROM
    if layout in ("nchw", "channels last"):  # the kernels', not the twins' numbers
        monkeypatch.setattr(A, "leaky_relu_reference", None)
        monkeypatch.setattr(A, "leaky_relu_backward_reference", None)
    y, grad_a = A.leaky_relu(a, slope), A.leaky_relu_backward(grad_y, a, slope)
    np.testing.assert_array_equal(y, expected_y)
    np.testing.assert_array_equal(grad_a, expected_grad)
    if layout in ("nchw", "channels last"):
        assert y.strides == a.strides and grad_a.strides == grad_y.strides


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["nchw", "channels last", "strided", "mixed"])
def test_silu_backward_kernel_equals_its_twin_in_any_layout(layout, dtype, monkeypatch):
    """As the leaky ReLU's: the kernel's gradient is the twin's to the last bit, in the gradient's
    layout; where the twin does the work instead, it still matches SiLU's derivative in float64,
    out to where e^-a overflows (a = -100: the gradient is 0, not NaN)."""
    from minigen.kernels import activation as A

    rng = np.random.default_rng(4)
    a, grad_y = (rng.standard_normal((64, 16, 16, 8)).astype(dtype) * 4 for _ in range(2))
    a[0, 0, 0, :3] = 0.0, -100.0, 100.0
    a, grad_y = _laid_out(layout, a, grad_y)
    expected = A.silu_backward_reference(grad_y, a)
    s = 1 / (1 + np.exp(-a.astype(np.float64)))
    exact = grad_y * s * (1 + a * (1 - s))
    tolerance = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)  # atol: near the
    np.testing.assert_allclose(expected, exact, **tolerance)  # derivative's zero, 1 + a (1 - s) cancels (a near -1.28)
    assert a.size >= A.KERNEL_FROM
    if layout in ("nchw", "channels last"):  # the kernel's, not the twin's numbers
        monkeypatch.setattr(A, "silu_backward_reference", None)
    grad_a = A.silu_backward(grad_y, a)
    np.testing.assert_array_equal(grad_a, expected)
    assert grad_a.dtype == dtype
    if layout in ("nchw", "channels last"):
        assert grad_a.strides == grad_y.strides


@st.composite
def winograd_cases(draw):
    batch, channels, out_channels = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    height, width = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    assume(all(n + 2 * p >= 3 for n, p in zip((height, width), padding)))  # room for the kernel
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((batch, channels, height, width))
    w, b = rng.standard_normal((out_channels, channels, 3, 3)), rng.standard_normal(out_channels)
    return x, w, b, padding


@given(winograd_cases(), st.sampled_from([np.float32, np.float64]))
def test_winograd_equals_the_direct_convolution(case, dtype):
    """F(2x2, 3x3) against the float64 direct convolution (the twin), its transpose and its weight
    gradient too, at any size."""
    from minigen.kernels import winograd as WG

    x, w, b, padding = case
    out_hw = tuple(K.conv_output_size(x.shape[2 + a], 3, 1, padding[a], 1) for a in (0, 1))
    direct = K.conv2d_reference(x, w, b, (1, 1), padding, (1, 1), out_hw)
    tolerance = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    ours = WG.conv3x3(x.astype(dtype), w.astype(dtype), b.astype(dtype), padding, out_hw)
    assert ours.dtype == dtype
    np.testing.assert_allclose(ours, direct, **tolerance)
    y = np.random.default_rng(0).standard_normal(direct.shape)
    expected = K.conv_transpose2d_reference(y, w, None, (1, 1), padding, (1, 1), x.shape[2:])  # y's channels back to x's
    np.testing.assert_allclose(WG.conv_transpose3x3(y.astype(dtype), w.astype(dtype), None, padding, x.shape[2:]), expected, **tolerance)
    expected = K.conv2d_weight_grad_reference(x, y, (3, 3), (1, 1), padding, (1, 1))
    ours = WG.conv3x3_weight_grad(x.astype(dtype), y.astype(dtype), padding)
    assert ours.dtype == dtype
    np.testing.assert_allclose(ours, expected, **tolerance)


def test_winograd_is_exact_where_its_scratch_matrices_get_a_row_more():
    """16x16 outputs with 16 channels: each of the 16 matrices of an image would be 4 KB, so the
    scratch has a row more per matrix (`_sixteen_matrices`), which the GEMMs must skip."""
    from minigen.kernels import winograd as WG

    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((3, 16, 16, 16)), rng.standard_normal((16, 16, 3, 3)), rng.standard_normal(16)
    assert WG._sixteen_matrices("test", 64, 16, np.float32).shape == (16, 65, 16)
    direct = K.conv2d_reference(x, w, b, (1, 1), (1, 1), (1, 1), (16, 16))
    np.testing.assert_allclose(
        WG.conv3x3(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32), (1, 1), (16, 16)), direct, rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize("layout", ["nchw", "channels last", "every other column", "channels last with room"])
def test_the_kernels_read_images_in_any_layout_with_the_same_numbers(layout):
    """The kernels copy each chunk of images channels last (unless it is already): the same
    numbers bit for bit whatever the memory of x and of the output gradient, Winograd's and
    im2col's and col2im's."""
    from minigen.kernels import winograd as WG

    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 6, 15, 14)).astype(np.float32)
    grad_y = rng.standard_normal((5, 4, 15, 14)).astype(np.float32)
    w, b = rng.standard_normal((4, 6, 3, 3)).astype(np.float32), rng.standard_normal(4).astype(np.float32)

    def laid_out(a):
        if layout == "nchw":
            return a
        if layout == "channels last":
            return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
        if layout == "every other column":
            wider = np.zeros((*a.shape[:3], 2 * a.shape[3]), a.dtype)
            wider[..., ::2] = a
            return wider[..., ::2]
        roomy = np.zeros((a.shape[0], *a.shape[2:], a.shape[1] + 3), a.dtype)  # channels last, 3 more per pixel
        roomy[..., : a.shape[1]] = a.transpose(0, 2, 3, 1)
        return roomy[..., : a.shape[1]].transpose(0, 3, 1, 2)

    x_, grad_y_ = laid_out(x), laid_out(grad_y)
    np.testing.assert_array_equal(x_, x)
    np.testing.assert_array_equal(WG.conv3x3(x_, w, b, (1, 1), (15, 14)), WG.conv3x3(x, w, b, (1, 1), (15, 14)))
    np.testing.assert_array_equal(WG.conv3x3_weight_grad(x_, grad_y_, (1, 1)), WG.conv3x3_weight_grad(x, grad_y, (1, 1)))
    geometry = ((1, 1), (1, 1), (1, 1))
    for ours, expected in [
        (K.conv2d(x_, w, b, *geometry, (15, 14)), K.conv2d(x, w, b, *geometry, (15, 14))),
        (K.conv2d_keeping_columns(x_, w, b, *geometry, (15, 14))[0], K.conv2d(x, w, b, *geometry, (15, 14))),
        (K.conv_transpose2d(grad_y_, w, None, *geometry, (15, 14)), K.conv_transpose2d(grad_y, w, None, *geometry, (15, 14))),
        (K.conv2d_weight_grad(x_, grad_y_, (3, 3), *geometry), K.conv2d_weight_grad(x, grad_y, (3, 3), *geometry)),
        (np.concatenate(K.columns(x_, (3, 3), *geometry, (15, 14))), np.concatenate(K.columns(x, (3, 3), *geometry, (15, 14)))),
    ]:
        np.testing.assert_array_equal(ours, expected)


def test_the_transforms_tables_are_b_t_and_a_t():
    """The input transform adds two rows of a tile per row of B^T d (d_p + s d_q), the output
    transform three per row of A^T M (M_a + s (M_(a+1) + M_(a+2))): those tables are B_T and A_T."""
    from minigen.kernels import winograd as WG

    rebuilt = np.zeros((4, 4))
    for i, ((p, q), sign) in enumerate(zip(WG.B_T_TERMS, WG.B_T_SIGNS)):
        rebuilt[i, p], rebuilt[i, q] = 1.0, sign
    np.testing.assert_array_equal(rebuilt, WG.B_T)
    rebuilt = np.zeros((2, 4))
    for a, sign in enumerate(WG.A_T_SIGNS):
        rebuilt[a, a], rebuilt[a, a + 1 : a + 3] = 1.0, sign
    np.testing.assert_array_equal(rebuilt, WG.A_T)


def test_the_filter_transform_is_g_g_g_t_and_filter_gradient_its_adjoint():
    """G_KRON_G on a flattened 3x3 kernel is G g G^T; `filter_gradient` is the adjoint:
    <filter_transform(w), U-bar> = <w, filter_gradient(U-bar)>."""
    from minigen.kernels import winograd as WG

    rng = np.random.default_rng(0)
    w, u_bar = rng.standard_normal((3, 2, 3, 3)), rng.standard_normal((16, 2, 3))
    u = WG.filter_transform(w)
    assert u.shape == (16, 2, 3)
    for o, c in np.ndindex(3, 2):
        np.testing.assert_allclose(u[:, c, o].reshape(4, 4), WG.G @ w[o, c] @ WG.G.T, rtol=0, atol=1e-14)
    np.testing.assert_allclose(np.sum(u * u_bar), np.sum(w * WG.filter_gradient(u_bar, np.float64)), rtol=1e-13)


def test_the_layers_use_winograd_in_float32_where_it_is_faster_and_their_gradients_stay_exact(monkeypatch):
    """Winograd for the forward and both gradients in float32 where `SMALLEST` says (16 channels
    from 14x14 on, 32 from 6x6 on), the same gradients as float64's im2col + GEMM to float32's
    tolerance; float64 never takes it."""
    from minigen.kernels import winograd as WG

    calls = []
    for name in ("conv3x3", "conv_transpose3x3", "conv3x3_weight_grad"):
        original = getattr(WG, name)
        monkeypatch.setattr(WG, name, lambda *args, _f=original, _n=name: calls.append(_n) or _f(*args))
    rng = np.random.default_rng(0)
    x64, w64 = rng.standard_normal((2, 16, 14, 15)), rng.standard_normal((17, 16, 3, 3)) / 12
    y_bar = rng.standard_normal((2, 17, 14, 15))
    grads = {}
    for dtype in (np.float64, np.float32):
        x, w = mg.Tensor(x64.astype(dtype), requires_grad=True), mg.Tensor(w64.astype(dtype), requires_grad=True)
        y = F.conv2d(x, w, padding=1)
        assert (y._ctx.kept is None) == (dtype == np.float32)  # Winograd's forward has no columns to keep
        y.backward(y_bar.astype(dtype))
        grads[dtype] = y.data, x.grad.data, w.grad.data
        assert (set(calls) == {"conv3x3", "conv_transpose3x3", "conv3x3_weight_grad"}) == (dtype == np.float32), (dtype, calls)
        calls.clear()
    for ours, exact in zip(grads[np.float32], grads[np.float64]):
        assert ours.dtype == np.float32
        np.testing.assert_allclose(ours, exact, rtol=1e-4, atol=1e-4)

    def takes_winograd(channels, side):
        x = mg.Tensor(rng.standard_normal((1, channels, side, side)).astype(np.float32), requires_grad=True)
        w = mg.Tensor(rng.standard_normal((channels, channels, 3, 3)).astype(np.float32), requires_grad=True)
        F.conv2d(x, w, padding=1).sum().backward()
        taken = set(calls)
        calls.clear()
        assert taken in (set(), {"conv3x3", "conv_transpose3x3", "conv3x3_weight_grad"}), taken  # all three or none
        return bool(taken)

    assert takes_winograd(16, 14) and not takes_winograd(16, 13) and not takes_winograd(15, 28)
    assert takes_winograd(32, 6) and not takes_winograd(32, 5) and not takes_winograd(8, 28)


@pytest.mark.parametrize(
    "c_in, c_out, kernel, padding, dilation, out_hw, swapped",
    [
        (4, 1, (3, 3), (1, 1), (1, 1), None, True),  # fewer output channels: the gradient's columns
        (3, 2, (3, 2), (0, 1), (2, 1), None, True),
        (4, 1, (3, 3), (1, 1), (1, 1), (5, 4), True),  # a cropped output (F.conv2d never makes one)
        (2, 2, (3, 3), (1, 1), (1, 1), None, False),  # as many: x's, which the forward may have kept
        (1, 4, (3, 3), (1, 1), (1, 1), None, False),
        (4, 1, (2, 2), (2, 2), (1, 1), None, False),  # padding beyond the kernel: no turned geometry
    ],
)
def test_stride_one_weight_gradient_copies_the_columns_of_the_fewer_channels(
    c_in, c_out, kernel, padding, dilation, out_hw, swapped, monkeypatch
):
    """conv2d_weight_grad at stride 1 with fewer output than input channels: the columns of the
    gradient, the turned geometry, the twin's numbers."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, c_in, 7, 6))
    natural = tuple(K.conv_output_size(x.shape[2 + a], kernel[a], 1, padding[a], dilation[a]) for a in (0, 1))
    grad_y = rng.standard_normal((2, c_out, *(out_hw or natural)))
    copied, original = [], K._im2col_rows
    monkeypatch.setattr(K, "_im2col_rows", lambda source, *args, **kw: copied.append(source.shape[3]) or original(source, *args, **kw))
    ours = K.conv2d_weight_grad(x, grad_y, kernel, (1, 1), padding, dilation)
    assert set(copied) == {c_out if swapped else c_in}  # whose columns were copied, by their channels
    expected = K.conv2d_weight_grad_reference(x, grad_y, kernel, (1, 1), padding, dilation)
    assert ours.shape == expected.shape == (c_out, c_in, *kernel)
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["channels last", "nchw", "strided", "broadcast", "empty batch"])
def test_bias_grad_sums_every_pixel_of_each_channel_in_any_layout(layout, dtype):
    """The matrix-vector form of the bias gradient against the float64 sum over (0, 2, 3)."""
    rng = np.random.default_rng(6)
    values = lambda *shape: rng.standard_normal(shape).astype(dtype)  # noqa: E731
    grad_y = {
        "channels last": lambda: values(16, 28, 28, 5).transpose(0, 3, 1, 2),
        "nchw": lambda: values(16, 5, 28, 28),
        "strided": lambda: values(16, 10, 28, 28)[:, ::2, ::3],
        "broadcast": lambda: np.broadcast_to(values(1, 5, 1, 1), (16, 5, 28, 28)),  # what .sum()'s backward hands on
        "empty batch": lambda: values(0, 5, 3, 3),
    }[layout]()
    assert (grad_y.strides == (0, grad_y.itemsize, 0, 0)) == (layout == "broadcast")
    exact = grad_y.astype(np.float64).sum(axis=(0, 2, 3))
    ours = K.bias_grad(grad_y)
    assert ours.shape == (5,) and ours.dtype == dtype
    np.testing.assert_allclose(ours, exact, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-3 if dtype == np.float32 else 1e-10)


@pytest.mark.parametrize("transposed", [False, True], ids=["conv", "convT"])
@pytest.mark.parametrize(
    "c_in, c_out, kernel, padding, dilation, expected",
    [
        (1, 4, 3, 1, 1, "im2col"),  # many more outputs: the column matrix is the smaller stream
        (4, 1, 3, 1, 1, "col2im"),  # many more inputs: the GEMM's product is
        (1, 4, 2, 0, 2, "im2col"),
        (4, 1, 3, 2, 1, "col2im"),
        (2, 4, 3, 1, 1, None),  # within CHANNEL_RATIO: each operation's own kernel
        (4, 1, 2, 2, 1, None),  # padding 2 > k - 1: no turned operation
    ],
)
def test_stride_one_layers_run_the_kernel_of_the_smaller_channel_count_with_exact_gradients(
    transposed, c_in, c_out, kernel, padding, dilation, expected, monkeypatch
):
    """At stride 1 a convolution is the transposed convolution of its turned kernel: the layers
    pick the kernel by the channel counts (`layers._route`), and the values, both gradients and
    the second derivatives stay the twins' and finite differences'."""
    from minigen.functional import layers as L

    calls = []
    for name in ("conv2d", "conv_transpose2d"):
        original = getattr(K, name)
        monkeypatch.setattr(K, name, lambda *args, _f=original, _n=name: calls.append(_n) or _f(*args))
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, c_in, 6, 5))
    w = rng.standard_normal((c_in, c_out, kernel, kernel) if transposed else (c_out, c_in, kernel, kernel))
    b = rng.standard_normal(c_out)
    op, reference = (F.conv_transpose2d, K.conv_transpose2d_reference) if transposed else (F.conv2d, K.conv2d_reference)
    y = op(mg.Tensor(x), mg.Tensor(w), mg.Tensor(b), padding=padding, dilation=dilation)
    own = "conv_transpose2d" if transposed else "conv2d"
    ran = {None: own, "im2col": "conv2d", "col2im": "conv_transpose2d"}[expected]
    assert calls == [ran], calls
    assert L._route(w.shape, w.dtype, transposed, (1, 1), (padding,) * 2, (dilation,) * 2, y.shape[2:]) == (
        expected or ("col2im" if transposed else "im2col")
    )
    np.testing.assert_allclose(y.data, reference(x, w, b, (1, 1), (padding,) * 2, (dilation,) * 2, y.shape[2:]), rtol=1e-12, atol=1e-12)
    layer = lambda x_, w_, b_: op(x_, w_, b_, padding=padding, dilation=dilation)  # noqa: E731
    assert mg.gradcheck(layer, [x, w, b])
    assert mg.gradgradcheck(layer, [x, w, b])


def test_kernels_hand_channels_last_memory_from_layer_to_layer_without_copies():
    """A convolution's output is an NCHW view of channels-last memory, batch norm keeps that
    layout, and the next convolution reads it as it is: no layout copy between the layers."""
    from minigen.kernels import norm as N

    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 8, 8)), rng.standard_normal((5, 3, 3, 3))
    y = K.conv2d(x, w, None, (1, 1), (1, 1), (1, 1), (8, 8))
    assert y.shape == (2, 5, 8, 8) and np.shares_memory(K.channels_last(y), y)
    mean, var = N.batch_statistics(y)
    z = N.batch_norm(y, mean, var, np.ones(5), np.zeros(5), 1e-5, 0.2)
    assert np.shares_memory(K.channels_last(z), z)
    t = K.conv_transpose2d(z, rng.standard_normal((5, 4, 4, 4)), None, (2, 2), (1, 1), (1, 1), (16, 16))
    assert t.shape == (2, 4, 16, 16) and np.shares_memory(K.channels_last(t), t)
    grad_x, _, _ = N.batch_norm_backward(np.ones_like(z), y, z, mean, var, np.ones(5), 1e-5, 0.2)
    assert np.shares_memory(K.channels_last(grad_x), grad_x)
