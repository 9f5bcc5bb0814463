"""Evaluation over a whole split: every gene exactly once (padding rows masked by `valid`),
streaming MSE, MAE, Pearson and Spearman, and for synthetic data sets the mask's AUPRC
against the planted causal bases and the mask ratio (promoter excluded: the model forces it
to 1)."""

from __future__ import annotations

from typing import Any, Callable, Iterator

import jax
import numpy as np
from jax.experimental import multihost_utils

from data_pipeline.loader import ShardedLoader
from seq2exp_jax.evaluation.streaming import MaskMetrics, RegressionMetrics
from seq2exp_jax.train.task import Task, crop, numeric
from seq2exp_jax.outputs.genome_tracks import central_positions


def to_host(x: jax.Array) -> np.ndarray:
  """A global array as numpy on every process (gathered across hosts when needed)."""
  if jax.process_count() > 1:
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
  return np.asarray(jax.device_get(x))


def eval_loader(config, split: str, mesh=None, data_dir: str | None = None) -> ShardedLoader:
  """Every example of `split` once, in data set order, in batches of eval_batch_size."""
  return ShardedLoader(data_dir or config.data.dir, split,
                       global_batch_size=config.train.eval_batch_size, mesh=mesh,
                       shuffle=False, num_epochs=1, drop_remainder=False,
                       num_threads=config.data.num_threads, prefetch=config.data.prefetch)


def batches(task: Task, params: Any, loader: ShardedLoader,
            eval_step: Callable[[Any, dict], dict], *, keep: tuple[str, ...] = ()
            ) -> Iterator[dict[str, Any]]:
  """Per batch, on the host: prediction (B,), target (B,), valid (B,), mask (B, L) when the
  eval step returns one, the cropped per-base fields named in `keep` (e.g. truth, signals),
  and ensid/chrom/tss (this process's rows)."""
  window = task.config.data.window
  loader.rewind()
  for batch in loader:
    out = eval_step(params, numeric(batch))
    host = {k: to_host(v) for k, v in out.items()}
    host["target"], host["valid"] = to_host(batch["target"]), to_host(batch["valid"])
    cropped = crop({k: batch[k] for k in keep if k in batch}, window)
    host.update({k: to_host(v) for k, v in cropped.items()})
    for k in ("ensid", "chrom", "tss"):
      host[k] = batch[k]
    yield host


def promoter(task: Task, length: int) -> np.ndarray:
  """bool (L,): the centre the model forces to 1 (its center_len, at most the window)."""
  center = int(task.config.model.args.get("center_len", 2000))
  return central_positions(length, min(center, length))


class SplitMetrics:
  """Regression metrics of a split, plus mask metrics when batches carry a mask and the
  planted truth; fed the host batches of `batches`."""

  def __init__(self, task: Task):
    self.task = task
    self.regression = RegressionMetrics()
    self.mask: MaskMetrics | None = None

  def update(self, host: dict[str, Any]) -> None:
    self.regression.update(host["target"], host["prediction"], host["valid"])
    if "mask" in host and "truth" in host:
      self.mask = self.mask or MaskMetrics()
      self.mask.update(host["mask"], host["truth"] == 1, host["valid"],
                       ignore=promoter(self.task, host["mask"].shape[1]))

  def compute(self) -> dict[str, float]:
    metrics = self.regression.compute()
    if self.mask is not None:
      metrics.update(self.mask.compute())
    return metrics


def evaluate(task: Task, params: Any, loader: ShardedLoader,
             eval_step: Callable[[Any, dict], dict]) -> dict[str, float]:
  """Metrics of `params` on every example of `loader` (an `eval_loader`)."""
  metrics = SplitMetrics(task)
  with_truth = "truth" in loader.source[0]
  for host in batches(task, params, loader, eval_step, keep=("truth",) if with_truth else ()):
    metrics.update(host)
  return metrics.compute()
