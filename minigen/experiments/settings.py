"""Every setting of a run checked once, here, with a message that names the option, the value
and what it may be. `None` means "not given" (the model's or data set's default is used): a
0 or a negative number is an error, never a silent default.
"""

from __future__ import annotations

import math


class SettingError(ValueError):
    """A setting out of its range; the command line prints it as one line and exits with 2."""


def default(value, fallback):
    """`value` where given (not None), else `fallback`."""
    return fallback if value is None else value


def whole(option: str, value, minimum: int = 1) -> int:
    """A whole number >= minimum (1 unless said otherwise)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < minimum:
        least = "a positive whole number" if minimum == 1 else f"a whole number >= {minimum}"
        raise SettingError(f"{option} must be {least}, got {value!r}")
    return int(value)


def sizes(option: str, values) -> list[int]:
    values = list(values)
    if not values:
        raise SettingError(f"{option} needs at least one size")
    return [whole(option, v) for v in values]


def positive(option: str, value) -> float:
    """A finite number > 0 (learning rates, weights)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise SettingError(f"{option} must be a finite number > 0, got {value!r}")
    return float(value)


def nonnegative(option: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise SettingError(f"{option} must be a finite number >= 0, got {value!r}")
    return float(value)


def fraction(option: str, value, closed_above: bool = False) -> float:
    """A number in [0, 1) (or [0, 1] with closed_above)."""
    inside = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value and (value <= 1 if closed_above else value < 1)
    if not inside:
        raise SettingError(f"{option} must be in [0, 1{']' if closed_above else ')'}, got {value!r}")
    return float(value)


def decay_factor(value) -> float:
    """The learning rate's factor per epoch, in (0, 1]: 1 keeps it constant."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise SettingError(f"lr_decay must be in (0, 1], got {value!r}")
    return float(value)


def one_of(option: str, value, choices) -> str:
    if value not in choices:
        raise SettingError(f"{option} must be one of {', '.join(map(str, choices))}; got {value!r}")
    return value


def batch_fits(batch_size: int, available: int, what: str, whole_batches_only: bool) -> None:
    """Refuse a batch larger than the data (an epoch of no steps), saying what would fit."""
    if available == 0:
        raise SettingError(f"the {what} set is empty: nothing to train on")
    if whole_batches_only and batch_size > available:
        raise SettingError(
            f"--batch-size {batch_size} is larger than the {available:,} {what} images, so an epoch would "
            f"have no step (only whole batches are used); try --batch-size {min(64, available)}"
        )
