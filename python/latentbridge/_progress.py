"""Progress over a known number of steps: the one rule for every progress display of the package.

A display is a tqdm bar on stderr when tqdm is installed, else a counter ``"<desc>: done/total"``
rewritten in place on stderr (one final newline when it closes). Disabled progress is ``None``, so
callers write ``if bar: bar.update(1)``. Nothing here imports torch: :func:`latentbridge.compare_many`
and the PyTorch bridge share it.
"""

from __future__ import annotations

import sys

__all__ = ["progress_counter", "progress_bar"]


class _TextCounter:
    """The counter shown when tqdm is not installed: ``"<desc>: done/total"`` on stderr."""

    def __init__(self, total, desc):
        self.total, self.done, self.desc = total, 0, desc

    def update(self, k=1):
        self.done += k
        print(f"\r{self.desc}: {self.done}/{self.total}", end="", file=sys.stderr, flush=True)

    def set_description(self, desc):
        """Relabel the counter (tqdm's method of the same name)."""
        self.desc = desc

    def close(self):
        print(file=sys.stderr, flush=True)


def progress_counter(total, desc, enabled):
    """A progress display over ``total`` steps labelled ``desc``, or ``None`` when not ``enabled``.

    The display has ``update(k=1)``, ``set_description(desc)`` and ``close()``: a
    ``tqdm.auto.tqdm`` bar on stderr when tqdm is installed, else a text counter on stderr.
    """
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _TextCounter(total, desc)
    return tqdm(total=total, desc=desc, file=sys.stderr)


def progress_bar(iterable, enabled, total, desc):
    """Yield from ``iterable``, counting each item on a :func:`progress_counter` display when
    ``enabled``; the display closes when the iteration ends, also on error."""
    bar = progress_counter(total, desc, enabled)
    if bar is None:
        yield from iterable
        return
    try:
        for item in iterable:
            yield item
            bar.update(1)
    finally:
        bar.close()
