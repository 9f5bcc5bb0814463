"""Evaluation over a whole split: every gene exactly once (padding rows masked by `valid`),
streaming MSE, MAE, Pearson and Spearman, and for synthetic data sets the mask's AUPRC
against the planted causal bases and the mask ratio (promoter excluded: every mask forces
it to 1)."""

from __future__ import annotations

from typing import Any, Callable, Iterator

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh

from data_pipeline.batch import Batch
from data_pipeline.loader import ShardedLoader
from seq2exp_jax.evaluation.streaming import MaskMetrics, RegressionMetrics
from seq2exp_jax.model.promoter import promoter_positions

# (params, batch) -> {"prediction": (B,), "mask": (B, L) when the model has one}
EvalStep = Callable[[Any, Batch], dict[str, jax.Array]]


def gather_to_host(x: jax.Array) -> np.ndarray:
  """A global array as numpy on every process (gathered across hosts when needed)."""
  if jax.process_count() > 1:
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
  return np.asarray(jax.device_get(x))


def eval_loader(data_dir: str, split: str, batch_size: int, *, window: int | None = None,
                mesh: Mesh | None = None, num_threads: int = 2, prefetch: int = 2
                ) -> ShardedLoader:
  """Every example of `split` once, in data set order, in global batches of `batch_size`
  (the last one padded), cropped to `window`."""
  return ShardedLoader(data_dir, split, global_batch_size=batch_size, mesh=mesh,
                       shuffle=False, num_epochs=1, drop_remainder=False,
                       num_threads=num_threads, prefetch=prefetch, window=window)


def batches(eval_step: EvalStep, params: Any, loader: ShardedLoader, *,
            keep: tuple[str, ...] = ()) -> Iterator[dict[str, Any]]:
  """Per batch, on the host: prediction (B,), target (B,), valid (B,), mask (B, L) when the
  eval step returns one, the fields named in `keep` (e.g. truth, signals) and ensid, chrom,
  tss (this process's rows)."""
  loader.rewind()
  for batch in loader:
    host = {k: gather_to_host(v) for k, v in eval_step(params, batch).items()}
    host["target"], host["valid"] = gather_to_host(batch.target), gather_to_host(batch.valid)
    for k in keep:
      if getattr(batch, k) is not None:
        host[k] = gather_to_host(getattr(batch, k))
    host.update(ensid=batch.genes.ensid, chrom=batch.genes.chrom, tss=batch.genes.tss)
    yield host


class SplitMetrics:
  """Regression metrics of a split, plus mask metrics when batches carry a mask and the
  planted truth; fed the host batches of `batches`."""

  def __init__(self, center_len: int):
    self.center_len = center_len
    self.regression = RegressionMetrics()
    self.mask: MaskMetrics | None = None

  def update(self, host: dict[str, Any]) -> None:
    self.regression.update(host["target"], host["prediction"], host["valid"])
    if "mask" in host and "truth" in host:
      self.mask = self.mask or MaskMetrics()
      length = host["mask"].shape[1]
      self.mask.update(host["mask"], host["truth"] == 1, host["valid"],
                       ignore=promoter_positions(length, min(self.center_len, length)))

  def compute(self) -> dict[str, float]:
    metrics = self.regression.compute()
    if self.mask is not None:
      metrics.update(self.mask.compute())
    return metrics


def evaluate(eval_step: EvalStep, params: Any, loader: ShardedLoader, center_len: int,
             on_batch: Callable[[dict[str, Any]], None] | None = None) -> dict[str, float]:
  """Metrics of `params` on every example of `loader` (an `eval_loader`); `on_batch` sees
  each host batch of `batches` (e.g. to keep the per-gene predictions)."""
  metrics = SplitMetrics(center_len)
  keep = ("truth",) if "truth" in loader.source[0] else ()
  for host in batches(eval_step, params, loader, keep=keep):
    metrics.update(host)
    if on_batch is not None:
      on_batch(host)
  return metrics.compute()
