"""The hard variant's packing capacity, chosen from the selected counts of recent steps.

A packed Seq2Exp (`pack_selected`) runs its predictor on a static number P of positions.
`packing.capacity` sets it:

* "window" (or None): P = L, nothing is ever dropped (the whole window is computed);
* an integer: that P at every step;
* "auto": `CapacityPolicy`. A step cannot know its selection before its generator runs, so
  P comes from the steps already run: every train step reports each row's selected count
  (`selected`) and the positions its capacity dropped (`overflow`); at every sync point the
  trainer hands the counts to the policy, which sets P to the smallest bucket >= the
  `quantile` of the last `history` steps' counts x `margin`. Buckets are the fractions
  `BUCKETS` of L (rounded up to 128 positions), so there are at most len(BUCKETS) compiled
  steps; the first steps (before any count is seen) run at L.

Dropped positions are counted, never silent: the trainer logs `overflow` (positions dropped
per row), `overflow_rate` (dropped / selected) and `capacity` (the mean P of the interval).
Evaluation always packs to L (with `model.inert_padding` the numbers are those of any
capacity above the count, so nothing is lost and nothing changes).
"""

from __future__ import annotations

import collections
import math
from typing import Any

import jax
import ml_collections
import numpy as np

from data_pipeline.errors import ConfigError
from seq2exp_jax.config.checks import hard_capacity as parse_setting

BUCKETS = (1 / 4, 3 / 8, 1 / 2, 5 / 8, 3 / 4, 1.0)
ROUND = 128  # positions: the scan's chunk


def buckets(window: int) -> tuple[int, ...]:
  """The capacities "auto" may choose for a window of L positions, ascending, the last L."""
  return tuple(sorted({min(window, math.ceil(f * window / ROUND) * ROUND) for f in BUCKETS}))


class CapacityPolicy:
  """The capacity of the next train step (None: the model's own, for unpacked models).

  `record(selected)` keeps a step's per-row counts (device arrays, not fetched), `update()`
  (at a sync point, when they are computed) moves them to the history and picks the
  capacity; `interval()` returns the mean capacity since its last call.
  """

  def __init__(self, setting: str | int | None, window: int, center_len: int = 0, *,
               quantile: float = 0.99, margin: float = 1.1, history: int = 32):
    self.setting = parse_setting(setting) if setting is not None else None
    self.window = window
    self.choices = buckets(window)
    self.quantile, self.margin = quantile, margin
    if isinstance(self.setting, int) and not center_len <= self.setting <= window:
      raise ConfigError(f"packing.capacity = {self.setting}: expected a capacity between "
                        f"model.center_len ({center_len}) and the window ({window})")
    self._pending: list[Any] = []
    self._history: collections.deque[np.ndarray] = collections.deque(maxlen=history)
    self._used: list[int] = []
    self.capacity: int | None = {None: None, "window": window, "auto": window}.get(
        self.setting, self.setting)

  @property
  def adaptive(self) -> bool:
    return self.setting == "auto"

  def record(self, selected: Any) -> None:
    """A step ran at `self.capacity` and selected `selected` (B,) positions per row."""
    if self.capacity is not None:
      self._used.append(self.capacity)
    if self.adaptive and selected is not None:
      self._pending.append(selected)

  def update(self) -> int | None:
    """Fetch the recorded counts and choose the capacity; returns it."""
    if self._pending:
      self._history.extend(np.asarray(c).reshape(-1) for c in jax.device_get(self._pending))
      self._pending = []
      self.capacity = self.choose(np.concatenate(list(self._history)))
    return self.capacity

  def choose(self, counts: np.ndarray) -> int:
    """The smallest bucket >= quantile(counts) x margin (the window if none is)."""
    need = float(np.quantile(counts, self.quantile)) * self.margin
    return next((c for c in self.choices if c >= need), self.window)

  def interval(self) -> dict[str, float]:
    """{"capacity": the mean capacity of the steps since the last call} ({} if none)."""
    used, self._used = self._used, []
    return {"capacity": float(np.mean(used))} if used else {}


def overflow_rate(fetched: list[dict[str, Any]]) -> dict[str, float]:
  """{"overflow_rate": positions dropped / positions selected} over fetched step terms of a
  packed model ({} for models that report no counts)."""
  if not fetched or "selected" not in fetched[0]:
    return {}
  selected = sum(float(np.sum(f["selected"])) for f in fetched)
  dropped = sum(float(np.sum(f["overflow"])) for f in fetched)
  return {"overflow_rate": dropped / max(selected, 1.0)}


def policy_of(config: ml_collections.ConfigDict, window: int) -> CapacityPolicy:
  """The policy of a config's packing.capacity for windows of `window` positions (a
  policy that never sets a capacity for models that do not pack)."""
  if not config.model.get("pack_selected", False):
    return CapacityPolicy(None, window)
  return CapacityPolicy(config.get("packing", {}).get("capacity", "window"), window,
                        int(config.model.get("center_len", 0)))
