"""Which parts of a config fix a run's parameters: they must match on resume and restore.

The model section (minus how it computes: train.dtype / remat never enter it), where the
predictor's mask comes from, and the window the model reads.
"""

from __future__ import annotations

import json
from typing import Any

import ml_collections


def model_signature(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """A JSON-able dict; equal signatures mean a checkpoint fits the config."""
  return json.loads(json.dumps({
      "model": config.model.to_dict(), "mask_source": config.mask.source,
      "window": config.data.window}))


def differences(saved: dict, current: dict, prefix: str = "") -> list[str]:
  """'field: checkpoint X, config Y' for every field where two signatures differ."""
  out = []
  for key in sorted(set(saved) | set(current)):
    a, b = saved.get(key, "<absent>"), current.get(key, "<absent>")
    if isinstance(a, dict) and isinstance(b, dict):
      out += differences(a, b, f"{prefix}{key}.")
    elif a != b:
      out.append(f"{prefix}{key}: checkpoint {a!r}, config {b!r}")
  return out
