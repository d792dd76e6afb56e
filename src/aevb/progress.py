"""Progress of long loops on stderr, readable on a terminal and in a log file.

On a terminal, a tqdm bar redrawn in place. When the stream is not a terminal (stderr
redirected to a file, a pipe, a batch system's log), one plain line at most every
``INTERVAL`` seconds instead, never ``\\r`` frames. Quiet: no progress at all.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from typing import TextIO

INTERVAL = 30.0
"""Seconds between plain progress lines when the stream is not a terminal."""

# tqdm's default layout without its own rate: callers put the speed they mean in the
# status (e.g. training examples/s, which excludes evaluation), so only one speed is shown
BAR_FORMAT = "{l_bar}{bar}| {n_fmt}/{total_fmt} {unit} [{elapsed}<{remaining}{postfix}]"


def is_terminal(stream: TextIO) -> bool:
    """True when ``stream`` is an interactive terminal (False for files, pipes, closed, and
    for a pseudo-terminal of width 0, where a bar would draw nothing)."""
    try:
        if not stream.isatty():
            return False
    except (AttributeError, ValueError):  # no isatty, or a closed file
        return False
    try:
        return os.get_terminal_size(stream.fileno()).columns > 0
    except (AttributeError, OSError, ValueError):  # a terminal-like object without a size
        return True


def duration(seconds: float) -> str:
    """``seconds`` as a short human duration: "42s", "5m03s", "2h07m"."""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class Progress:
    """Work done out of ``total`` units (e.g. examples), shown on ``file`` (default: stderr).

    ``update(n)`` counts work, ``set_status(text)`` sets what follows the count (a bound,
    a speed), ``write(line)`` prints a whole line (a log line, a warning) without breaking
    a bar. In plain-line mode a line is printed on ``update`` once ``interval`` seconds
    have passed since the last line this object printed.
    """

    def __init__(
        self,
        total: int,
        *,
        desc: str,
        unit: str = "examples",
        initial: int = 0,
        quiet: bool = False,
        file: TextIO | None = None,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.file = file if file is not None else sys.stderr
        self.total, self.n, self.desc, self.unit = total, initial, desc, unit
        self.mode = "off" if quiet else "bar" if is_terminal(self.file) else "lines"
        self.interval = INTERVAL if interval is None else interval
        self.status = ""
        self._clock = clock
        self._start = self._last = clock()
        self._start_n = initial
        self._bar = None
        if self.mode == "bar":
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=total,
                initial=initial,
                unit=unit,
                unit_scale=True,
                dynamic_ncols=True,
                desc=desc,
                file=self.file,
                bar_format=BAR_FORMAT,
            )

    def update(self, n: int) -> None:
        """Count ``n`` more units of work."""
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.due():
            self.write(self.line())

    def due(self) -> bool:
        """True when the next ``update`` prints a plain line (so a status set now is fresh)."""
        return self.mode == "lines" and self._clock() - self._last >= self.interval

    def set_status(self, text: str) -> None:
        """What the bar or line shows after the count, e.g. "bound -97.12"."""
        self.status = text
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)

    def line(self) -> str:
        """The plain progress line, e.g. ``train: 12,300/90,000 examples (14%), 1m05s elapsed,
        about 6m42s left; bound -120.31, 2,410 training examples/s``."""
        now = self._clock()
        text = f"{self.desc}: {self.n:,}/{self.total:,} {self.unit}"
        if self.total > 0:
            text += f" ({100 * self.n / self.total:.0f}%)"
        elapsed = now - self._start
        text += f", {duration(elapsed)} elapsed"
        done = self.n - self._start_n
        if 0 < done and self.n < self.total and elapsed > 0:
            left = (self.total - self.n) * elapsed / done
            if math.isfinite(left):
                text += f", about {duration(left)} left"
        return text + (f"; {self.status}" if self.status else "")

    def write(self, line: str) -> None:
        """Print ``line`` on a line of its own (above the bar, if one is drawn)."""
        if self._bar is not None:
            self._bar.write(line, file=self.file)
        else:
            print(line, file=self.file, flush=True)
        self._last = self._clock()

    def close(self) -> None:
        """End the bar (a terminal keeps its last frame); nothing in the other modes."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
