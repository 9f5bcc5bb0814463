"""examples/s between log steps, validation time left out."""

import pytest

from seq2exp_jax.train.throughput import Throughput


class Clock:
  def __init__(self):
    self.now = 0.0

  def __call__(self):
    return self.now


def test_validation_between_log_steps_is_not_training_time():
  """log every 10 steps, validate at step 15 (not a log step) for 5 s, 1 s per step: the
  second interval trained 10 steps in 10 s. Resetting the clock after validation without
  the step (the old loop) reported 10 steps in 5 s, 2x too fast."""
  clock = Clock()
  meter = Throughput(step=0, batch_size=8, clock=clock)
  clock.now = 10.0
  assert meter.rate(10) == pytest.approx(8.0)
  clock.now = 15.0
  with meter.excluded():
    clock.now = 20.0
  clock.now = 25.0
  assert meter.rate(20) == pytest.approx(8.0)


def test_an_interval_of_only_excluded_time_has_no_rate():
  clock = Clock()
  meter = Throughput(step=0, batch_size=8, clock=clock)
  with meter.excluded():
    clock.now = 3.0
  assert meter.rate(0) != meter.rate(0)  # NaN
