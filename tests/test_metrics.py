"""The evaluation metrics on inputs whose answers are known."""

import numpy as np
import pytest

import minigen as mg
from minigen import metrics
from minigen.data import ring8


def test_the_data_itself_covers_every_mode_with_high_quality():
    mixture = ring8()
    samples, _ = mixture.sample(2500, mg.Generator(0))
    found = metrics.mode_metrics(samples, mixture.centers, mixture.std)
    assert found["modes_covered"] == 8 and found["high_quality"] > 0.98  # 98.9% of a 2-D Gaussian lies within 3 std


def test_a_collapsed_generator_covers_one_mode():
    mixture = ring8()
    collapsed = mixture.centers[3] + 0.01 * np.random.default_rng(0).standard_normal((2500, 2))
    found = metrics.mode_metrics(collapsed, mixture.centers, mixture.std)
    assert found["modes_covered"] == 1 and found["high_quality"] == 1.0


def test_frechet_distance_of_gaussians():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((20000, 3))
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    shifted = a + np.array([1.0, 2.0, 0.0])
    assert metrics.frechet_distance(a, shifted) == pytest.approx(5.0, rel=1e-6)  # only the means differ
    scaled = 2 * a  # Sigma = 4 I against I: Tr(I + 4I - 2 * 2I) = 3 * 1 = 3
    assert metrics.frechet_distance(a, scaled) == pytest.approx(3.0, rel=0.05)


def test_inception_score_and_coverage():
    confident = np.eye(10)[np.arange(1000) % 10]
    assert metrics.inception_score(confident) == pytest.approx(10.0, rel=1e-6)
    assert metrics.inception_score(np.full((100, 10), 0.1)) == pytest.approx(1.0)
    coverage = metrics.class_coverage(np.eye(10)[np.r_[np.zeros(900, int), np.arange(100) % 10]])
    assert coverage["classes_above_5pct"] == 1 and coverage["kl_to_uniform"] > 1.5


def test_parzen_prefers_samples_near_the_test_data():
    rng = np.random.default_rng(0)
    data = rng.standard_normal((600, 5))
    near, _ = metrics.parzen_log_likelihood(data[:300] + 0.01, data[300:400], data[400:])
    far, _ = metrics.parzen_log_likelihood(data[:300] + 3.0, data[300:400], data[400:])
    assert near > far


def test_the_classifier_is_trained_once_and_cached(tmp_path):
    from minigen.data import load_digits

    (x, y), (xt, yt) = load_digits("train"), load_digits("test")
    model, accuracy = metrics.cached_classifier("digits", x, y, xt, yt, root=tmp_path)
    assert accuracy > 0.9 and (tmp_path / "classifiers" / "digits-mlp256-v1.npz").exists()
    again, same = metrics.cached_classifier("digits", x, y, xt, yt, root=tmp_path)
    assert same == accuracy
    np.testing.assert_array_equal(again.head.weight.data, model.head.weight.data)
    found = metrics.image_metrics(model, xt, x, xt)
    assert found["fid"] < 1e-6 < found["fid_real_vs_real"] < found["fid_noise"]
