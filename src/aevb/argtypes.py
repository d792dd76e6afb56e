"""Argument types of the ``aevb`` command: numbers with a declared valid range.

Every numeric option of every command has a :class:`Number` as its argparse ``type``, so a
zero, negative, huge or non-numeric value is refused while the command line is parsed,
with one line naming the option and the range (``--batch-size: expected an integer >= 1,
got '0'``), before any data or model is touched.
"""

from __future__ import annotations

import argparse
import dataclasses
import math

# Upper limits: far above any sensible value, low enough that every accepted value fits
# the int64/float32 arithmetic it ends up in (and that 10**30 or 1e300 is refused).
MAX_COUNT = 10**12
"""Training examples and other counts that only cost time."""
MAX_SIZE = 10**9
"""Layer widths, latent sizes, components: the memory check refuses what cannot fit."""
MAX_SEED = 2**32 - 1
"""NumPy's seeds are 32-bit."""
MAX_SCALE = 1e6
"""Floats that scale something (step size, weights, standard deviations)."""


@dataclasses.dataclass(frozen=True)
class Number:
    """An argparse ``type``: an int (``kind=int``) or float within ``[low, high]``.

    ``low_open`` excludes ``low`` itself (``> 0``). ``words`` are other spellings accepted
    and returned unchanged (``"prior"``); a non-empty ``suffix`` also accepts
    ``<number><suffix>`` (a float in the same range, e.g. ``10ep``), returned as the text.
    NaN and infinities are never accepted. An integral float such as ``1e6`` is accepted
    where an integer is expected.
    """

    kind: type
    low: float
    high: float
    low_open: bool = False
    words: tuple[str, ...] = ()
    suffix: str = ""

    def __call__(self, text: str) -> int | float | str:
        if text in self.words:
            return text
        if self.suffix and text.endswith(self.suffix):
            self._check(_parse_float(text[: -len(self.suffix)]), text, float)
            return text
        value = _parse_int(text) if self.kind is int else _parse_float(text)
        return self._check(value, text, self.kind)

    def _check(self, value: int | float | None, text: str, kind: type) -> int | float:
        """``value`` if it is a number in range, else an ``ArgumentTypeError``."""
        too_low = value is not None and (value <= self.low if self.low_open else value < self.low)
        if value is None or too_low:
            raise argparse.ArgumentTypeError(f"expected {self.describe()}, got {text!r}")
        if value > self.high:
            noun = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(
                f"expected {noun} <= {_format(self.high, kind)}, got {text!r}"
            )
        return value

    def describe(self) -> str:
        """The accepted values in words, e.g. ``an integer >= 1`` or ``a number > 0``."""
        noun = "an integer" if self.kind is int else "a number"
        low = _format(self.low, self.kind)
        text = f"{noun} {'>' if self.low_open else '>='} {low}"
        if self.low < 0:  # a signed range: both ends matter
            text = f"{noun} in [{low}, {_format(self.high, self.kind)}]"
        if self.suffix:
            text += f" or epochs written as '<E>{self.suffix}'"
        return " or ".join([text, *(repr(w) for w in self.words)])


def _format(value: float, kind: type) -> str:
    """``1,000,000`` for integers, ``1e+06`` for floats."""
    return f"{int(value):,}" if kind is int else f"{value:g}"


def _parse_int(text: str) -> int | None:
    """``int(text)``, or an integral float such as ``1e6``; None when it is neither."""
    try:
        return int(text)
    except ValueError:
        value = _parse_float(text)
        return int(value) if value is not None and value.is_integer() else None


def _parse_float(text: str) -> float | None:
    """``float(text)`` when finite, else None."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def count(low: int = 1, high: int = MAX_COUNT) -> Number:
    """An integer in ``[low, high]``."""
    return Number(int, low, high)


def positive(high: float = MAX_SCALE) -> Number:
    """A float ``> 0`` and ``<= high``."""
    return Number(float, 0.0, high, low_open=True)


@dataclasses.dataclass(frozen=True)
class Named:
    """An argparse ``type``: ``N`` or ``NAME=N``, with ``N`` checked by ``number``.

    Returns the text with ``N`` as parsed (``1e6`` becomes ``1000000``); the command
    splits the names off.
    """

    number: Number

    def __call__(self, text: str) -> str:
        name, sep, value = text.rpartition("=")
        return f"{name}{sep}{self.number(value)}"


DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu")


def device_name(text: str) -> str:
    """An argparse ``type``: ``auto`` or a device PyTorch can name (``cpu``, ``cuda:1``)."""
    import torch

    if text == "auto":
        return text
    try:
        if torch.device(text).type in DEVICE_TYPES:
            return text
    except (RuntimeError, ValueError):
        pass
    raise argparse.ArgumentTypeError(f"expected cpu, cuda, cuda:N, mps or auto, got {text!r}")
