"""In-silico perturbation of candidate elements: what the model predicts when an element is
deleted, and when it is the only thing left beside the promoter.

For a gene's window and an element [start, end) in window coordinates:

* deletion: the element's DNA set to N (all-zero one-hot), its signals (H3K27ac, DNase,
  Hi-C) and MACS3 peaks to 0; the effect is prediction(deleted) - prediction(window), in
  the model's units (log10 expression), negative when the element drives the gene;
* keep-alone: everything deleted but the element and the `keep` positions (the promoter);
  the effect is prediction(element + promoter) - prediction(promoter alone).

`perturbation_effects` builds the perturbed copies on device from one batch of genes, a
chunk of `chunk` copies (rows of any of the batch's genes) at a time, so memory stays at
one model call of batch `chunk` whatever the number of elements, and the forward pass is
compiled once per (chunk, L) and apply_fn. Every chunk starts from unmodified inputs
multiplied by an exact 0/1 keep mask, so deleting nothing changes nothing, bit for bit.

The forward pass is an argument, `apply_fn(params, batch) -> ModelOutput` (e.g.
`lambda p, b: task.apply(p, b)`, seq2exp_jax/train/task.py), so this layer never imports
the trainer.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Int

from data_pipeline.batch import Batch
from seq2exp_jax.model.outputs import ModelOutput

ApplyFn = Callable[[Any, Batch], ModelOutput]
DEFAULT_CHUNK = 8  # perturbed copies per model call
# Per-base fields a deletion zeroes beside the DNA and the signals (a deleted element has
# no DNase, so no peak either).
DELETED_FIELDS = ("dna", "signals", "peaks")


@dataclasses.dataclass(frozen=True)
class Effects:
  """One gene's perturbation results; effects in the prediction's units.

  prediction: the unperturbed window; promoter_only: everything but `keep` deleted;
  deletion (E,): prediction with element e deleted - prediction; keep_alone (E,):
  prediction with only element e and `keep` - promoter_only.
  """

  prediction: float
  promoter_only: float
  deletion: np.ndarray
  keep_alone: np.ndarray


def perturbed_copies(batch: Batch, gene: Int[Array, "K"], starts: Int[Array, "K"],
                     ends: Int[Array, "K"], alone: Bool[Array, "K"], keep: Bool[Array, "L"]
                     ) -> Batch:
  """K copies of rows `gene` of `batch` (G genes): copy k keeps every base outside
  [starts[k], ends[k]) (a deletion) or, where alone[k], only the bases inside it and the
  `keep` bases (keep-alone). Dropped bases get N DNA, zero signals and no peak."""
  positions = jnp.arange(batch.window)
  inside = (positions[None] >= starts[:, None]) & (positions[None] < ends[:, None])
  kept = jnp.where(alone[:, None], inside | keep[None], ~inside)  # (K, L)
  fields = {}
  for name, value in batch.arrays().items():
    rows = jnp.asarray(value)[gene]
    if name in DELETED_FIELDS:
      factor = kept if rows.ndim == 2 else kept[..., None]
      rows = rows * factor.astype(rows.dtype)
    fields[name] = rows
  return Batch(**fields)


@functools.lru_cache(maxsize=8)
def _predict_copies(apply_fn: ApplyFn) -> Callable:
  """The jitted (params, batch, gene, starts, ends, alone, keep) -> prediction (K,)."""

  def predict(params, batch, gene, starts, ends, alone, keep):
    copies = perturbed_copies(batch, gene, starts, ends, alone, keep)
    return apply_fn(params, copies).prediction.astype(jnp.float32)

  return jax.jit(predict)


def _check_intervals(intervals: Any, length: int, gene: int) -> np.ndarray:
  array = np.asarray(intervals, np.int64).reshape(-1, 2)
  bad = (array[:, 0] < 0) | (array[:, 1] > length) | (array[:, 0] > array[:, 1])
  if bad.any():
    raise ValueError(f"gene {gene}: interval {array[bad][0].tolist()} is not within the "
                     f"window [0, {length}) with start <= end")
  return array


def perturbation_effects(apply_fn: ApplyFn, params: Any, batch: Batch,
                         intervals: Sequence[Any | None], keep: Any = None, *,
                         chunk: int = DEFAULT_CHUNK) -> list[Effects | None]:
  """Deletion and keep-alone effects of every element of every gene of `batch`.

  batch: G genes (host or device arrays, the window a model reads). intervals: per gene,
  int (E_g, 2) window coordinates [start, end) (an empty one, start == end, deletes
  nothing), or None to skip the gene (e.g. an evaluation padding row). keep: bool (L,),
  the positions every keep-alone copy keeps (the promoter: `promoter_positions(L,
  center_len)`), None for none. Returns one `Effects` per gene (None where skipped).
  """
  if chunk < 1:
    raise ValueError(f"chunk {chunk}: expected >= 1")
  genes = len(intervals)
  if genes != batch.dna.shape[0]:
    raise ValueError(f"intervals: {genes} genes for a batch of {batch.dna.shape[0]}")
  length = batch.window
  keep = np.zeros(length, bool) if keep is None else np.asarray(keep, bool)
  if keep.shape != (length,):
    raise ValueError(f"keep: expected bool ({length},), got {keep.shape}")
  # One row per copy: (gene, start, end, alone). Per gene: the window, the promoter
  # alone, then each element deleted, then each element kept alone.
  rows, spans = [], []
  for g, gene_intervals in enumerate(intervals):
    if gene_intervals is None:
      spans.append(None)
      continue
    elements = _check_intervals(gene_intervals, length, g)
    spans.append((len(rows), len(elements)))
    rows += [(g, 0, 0, False), (g, 0, 0, True)]
    rows += [(g, int(s), int(e), False) for s, e in elements]
    rows += [(g, int(s), int(e), True) for s, e in elements]
  if not rows:
    return [None] * genes
  rows += [rows[0]] * (-len(rows) % chunk)  # pad to whole chunks (copies of a base row)
  table = np.array(rows, np.int64)
  predict = _predict_copies(apply_fn)
  device_batch = jax.tree.map(jnp.asarray, batch)
  device_keep = jnp.asarray(keep)
  out = []
  for c0 in range(0, len(table), chunk):
    part = table[c0:c0 + chunk]
    out.append(predict(params, device_batch, jnp.asarray(part[:, 0], jnp.int32),
                       jnp.asarray(part[:, 1], jnp.int32), jnp.asarray(part[:, 2], jnp.int32),
                       jnp.asarray(part[:, 3].astype(bool)), device_keep))
  predictions = np.asarray(jax.device_get(jnp.concatenate(out)), np.float64)
  effects: list[Effects | None] = []
  for span in spans:
    if span is None:
      effects.append(None)
      continue
    first, n = span
    base, promoter = predictions[first], predictions[first + 1]
    deleted = predictions[first + 2:first + 2 + n]
    alone = predictions[first + 2 + n:first + 2 + 2 * n]
    effects.append(Effects(float(base), float(promoter), deleted - base, alone - promoter))
  return effects

