"""Why a model does or does not use the distal part of its window, measured (docs/benchmark.md).

Given the forward and loss functions of a trained model, on batches of a split:

* `receptive_field`: |d prediction / d input| (DNA and signals) per position, averaged over
  genes, by distance from the TSS, relative to the first bin: how far the model looks.
* `saliency_shares`: the share of |gradient x input| on the promoter, the planted causal
  elements, the decoys and the rest of the window (synthetic data sets).
* `gradient_norms`: the norm of the prediction loss's and of the KL term's gradient on each
  top-level module (generator vs predictor): which term trains what.
* `mask_statistics`: how much the generator's Beta mean varies over positions, and how
  closely the mask follows the signal prior alone.
* `occlusion`: how far predictions move when the DNase and H3K27ac signals outside the
  central `keep` bp are removed, relative to the spread of the predictions.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from data_pipeline.batch import Batch
from seq2exp_jax.model.outputs import ModelOutput
from seq2exp_jax.model.promoter import promoter_positions

DISTANCE_BINS = (0, 500, 1_000, 2_000, 4_000, 8_000, 1 << 40)
# (params, batch) -> ModelOutput, evaluation mode
ApplyFn = Callable[[Any, Batch], ModelOutput]
# (params, batch, rng) -> (total, terms), training mode
LossFn = Callable[[Any, Batch, jax.Array], tuple[jax.Array, dict[str, jax.Array]]]


def _input_gradients(apply_fn: ApplyFn, params: Any, batch: Batch
                     ) -> tuple[np.ndarray, np.ndarray]:
  """d sum(prediction) / d (dna, signals): (B, L, 4), (B, L, S) numpy (rows independent)."""
  def total(dna, signals):
    return jnp.sum(apply_fn(params, batch.replace(dna=dna, signals=signals)).prediction)
  g_dna, g_sig = jax.jit(jax.grad(total, argnums=(0, 1)))(batch.dna, batch.signals)
  return np.asarray(g_dna), np.asarray(g_sig)


def _valid(batch: Batch) -> np.ndarray:
  return np.ones(batch.dna.shape[0], bool) if batch.valid is None else np.asarray(batch.valid)


def receptive_field(apply_fn: ApplyFn, params: Any, batches: list[Batch]) -> dict[str, float]:
  """Mean |input gradient| per position in each distance bin from the TSS, relative to
  [0, 500) bp: {"0-500": 1.0, "500-1000": ..., ...}."""
  sums, counts = np.zeros(len(DISTANCE_BINS) - 1), np.zeros(len(DISTANCE_BINS) - 1)
  for batch in batches:
    g_dna, g_sig = _input_gradients(apply_fn, params, batch)
    per_base = (np.abs(g_dna).sum(-1) + np.abs(g_sig).sum(-1))[_valid(batch)]  # (b, L)
    length = per_base.shape[1]
    distance = np.abs(np.arange(length) - length // 2)
    which = np.digitize(distance, DISTANCE_BINS[1:])
    for k in range(len(sums)):
      sums[k] += per_base[:, which == k].sum()
      counts[k] += per_base.shape[0] * int(np.sum(which == k))
  means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
  names = [f"{a}-{b}" if b < 1 << 40 else f">={a}" for a, b in
           zip(DISTANCE_BINS[:-1], DISTANCE_BINS[1:])]
  return {n: float(m / means[0]) for n, m, c in zip(names, means, counts) if c > 0}


def saliency_shares(apply_fn: ApplyFn, params: Any, batches: list[Batch], center_len: int
                    ) -> dict[str, float] | None:
  """Shares of sum |gradient x input| on promoter / causal / decoy / other positions
  (None without the planted truth)."""
  totals = {"promoter": 0.0, "causal": 0.0, "decoy": 0.0, "other": 0.0}
  for batch in batches:
    if batch.truth is None:
      return None
    g_dna, g_sig = _input_gradients(apply_fn, params, batch)
    sal = (np.abs(g_dna * np.asarray(batch.dna)).sum(-1)
           + np.abs(g_sig * np.asarray(batch.signals)).sum(-1))[_valid(batch)]
    truth = np.asarray(batch.truth)[_valid(batch)]
    promoter = promoter_positions(sal.shape[1], center_len)[None] & np.ones_like(truth, bool)
    totals["promoter"] += sal[promoter].sum()
    totals["causal"] += sal[~promoter & (truth == 1)].sum()
    totals["decoy"] += sal[~promoter & (truth == 2)].sum()
    totals["other"] += sal[~promoter & (truth == 0)].sum()
  whole = sum(totals.values()) or 1.0
  return {k: float(v / whole) for k, v in totals.items()}


def gradient_norms(loss_fn: LossFn, params: Any, batches: list[Batch], kl_weight: float,
                   key: jax.Array) -> dict[str, dict[str, float]]:
  """{module: {"prediction": |d huber|, "kl": |d (kl_weight x KL)|}} per top-level module,
  averaged over the batches."""
  def term(name, weight):
    return jax.jit(jax.grad(lambda p, b, k: weight * loss_fn(p, b, k)[1][name]))

  out: dict[str, dict[str, float]] = {m: {"prediction": 0.0, "kl": 0.0} for m in params}
  for i, batch in enumerate(batches):
    k = jax.random.fold_in(key, i)
    for name, grad in (("prediction", term("huber", 1.0)(params, batch, k)),
                       ("kl", term("kl", kl_weight)(params, batch, k))):
      for module, g in grad.items():
        out[module][name] += float(jnp.sqrt(sum(jnp.sum(x ** 2) for x in
                                                jax.tree.leaves(g)))) / len(batches)
  return out


def mask_statistics(apply_fn: ApplyFn, params: Any, batches: list[Batch], center_len: int
                    ) -> dict[str, float] | None:
  """Outside the promoter: the sd over positions of the generator's Beta mean (averaged
  over genes), and the Pearson r between the mask and the signal prior's Beta mean (None
  for models without a learned mask)."""
  sds, rs = [], []
  for batch in batches:
    out = apply_fn(params, batch)
    d = out.distribution
    if d is None:
      return None
    outside = ~promoter_positions(out.mask.shape[1], center_len)
    gen_mean = np.asarray(d.post_alpha / (d.post_alpha + d.post_beta))[:, outside]
    prior_alpha = np.asarray(jnp.einsum("bls,s->bl", d.prior_alpha, jnp.ones(
        d.prior_alpha.shape[-1]) / d.prior_alpha.shape[-1]))[:, outside]
    prior_mean = prior_alpha / (prior_alpha + float(jnp.mean(d.prior_beta)))
    mask = np.asarray(out.mask)[:, outside]
    for i in np.flatnonzero(_valid(batch)):
      sds.append(gen_mean[i].std())
      if mask[i].std() > 0 and prior_mean[i].std() > 0:
        rs.append(np.corrcoef(mask[i], prior_mean[i])[0, 1])
  return {"generator_sd_over_positions": float(np.mean(sds)),
          "mask_prior_pearson": float(np.mean(rs)) if rs else float("nan")}


def occlusion(apply_fn: ApplyFn, params: Any, batches: list[Batch], keep: int = 4_000
              ) -> dict[str, float]:
  """Mean |prediction change| when DNase and H3K27ac are zeroed outside the central `keep`
  bp, and that change divided by the sd of the predictions."""
  changes, predictions = [], []
  for batch in batches:
    length = batch.window
    outside = np.abs(np.arange(length) - length // 2) >= keep // 2
    signals = np.asarray(batch.signals).copy()
    signals[:, outside, :2] = 0.0
    base = np.asarray(apply_fn(params, batch).prediction)
    moved = np.asarray(apply_fn(params, batch.replace(signals=jnp.asarray(signals))).prediction)
    valid = _valid(batch)
    changes.append(np.abs(moved - base)[valid])
    predictions.append(base[valid])
  change, spread = float(np.mean(np.concatenate(changes))), float(np.std(
      np.concatenate(predictions)))
  return {"mean_abs_change": change, "relative_to_prediction_sd": change / spread
          if spread > 0 else float("nan")}
