"""Training throughput between two log steps, with time spent outside training (validation)
left out."""

from __future__ import annotations

import contextlib
import time
from typing import Callable, Iterator


class Throughput:
  """examples/s of the steps since the last `rate` call, minus `excluded()` time."""

  def __init__(self, step: int, batch_size: int,
               clock: Callable[[], float] = time.perf_counter):
    self.batch_size, self.clock = batch_size, clock
    self.last_step, self.last_time, self.excluded_seconds = step, clock(), 0.0

  @contextlib.contextmanager
  def excluded(self) -> Iterator[None]:
    """Time inside this block does not count as training time."""
    start = self.clock()
    try:
      yield
    finally:
      self.excluded_seconds += self.clock() - start

  def rate(self, step: int) -> float:
    """examples/s from the last call (or the start) to `step`; starts a new interval."""
    now = self.clock()
    seconds = now - self.last_time - self.excluded_seconds
    rate = (step - self.last_step) * self.batch_size / seconds if seconds > 0 else float("nan")
    self.last_step, self.last_time, self.excluded_seconds = step, now, 0.0
    return rate
