import numpy as np
import pytest

import minigen as mg


def test_manual_seed_repeats_the_stream():
    mg.manual_seed(3)
    a = mg.randn(4, 5).data
    mg.manual_seed(3)
    np.testing.assert_array_equal(a, mg.randn(4, 5).data)
    assert a.dtype == np.float32


def test_generator_state_round_trip_continues_the_stream():
    g = mg.Generator(11)
    g.numpy.random(7)
    saved = g.state_dict()
    expected = g.numpy.random(5)
    restored = mg.Generator(0)
    restored.load_state_dict(saved)
    np.testing.assert_array_equal(restored.numpy.random(5), expected)


def test_separate_generators_are_independent_of_the_default():
    g = mg.Generator(1)
    first = mg.rand(3, generator=g).data
    mg.randn(100)  # draws from the default generator only
    g2 = mg.Generator(1)
    np.testing.assert_array_equal(mg.rand(3, generator=g2).data, first)


def test_bad_seed():
    with pytest.raises(ValueError, match="non-negative integer"):
        mg.manual_seed(-1)
