"""How well a mask finds the planted causal elements, against what needs no training.

* `prior_mask_metrics`: AUPRC and ratio of the mask a Seq2Exp produces from the signals
  alone (its generator's logits at 0): the bar a learned mask has to clear.
* `mask_mass_by_class`: the share of a predicted mask's mass (a `predict` bigWig) on the
  causal elements and on each kind of decoy (insulated, dead, split), and outside every
  candidate element.
"""

from __future__ import annotations

import csv
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pyBigWig

from seq2exp_jax.evaluation.evaluate import gather_to_host
from seq2exp_jax.evaluation.streaming import MaskMetrics
from seq2exp_jax.model.beta_mask import BetaMask
from seq2exp_jax.model.promoter import apply_region_rules, promoter_positions

CLASSES = ("causal", "insulated", "dead", "split")


def prior_mask_metrics(loader, bottleneck: BetaMask, center_len: int) -> dict[str, float]:
  """Mask AUPRC / ratio (promoter excluded) of BetaMask with zero generator logits, over
  every batch of `loader` (an evaluation loader of a synthetic data set)."""
  @jax.jit
  def prior_mask(signals, blacklist):
    logits = jnp.zeros(signals.shape[:2] + (2,), jnp.float32)
    mask, _, _ = bottleneck.apply({}, logits, signals)
    return apply_region_rules(mask, blacklist, center_len)

  metrics = MaskMetrics()
  loader.rewind()
  for batch in loader:
    mask = gather_to_host(prior_mask(batch.signals, batch.blacklist))
    metrics.update(mask, gather_to_host(batch.truth) == 1, gather_to_host(batch.valid),
                   ignore=promoter_positions(mask.shape[1], center_len))
  return metrics.compute()


def mask_mass_by_class(mask_bigwig: str | pathlib.Path, root: str | pathlib.Path,
                       genes: set[str]) -> dict[str, float]:
  """{class: share of the mask's sum over the candidate elements of `genes`} for the causal
  elements and each decoy kind; "outside" is the share of the whole mask (elements and the
  rest of the windows, promoters included) that lies outside every element."""
  sums = dict.fromkeys(CLASSES, 0.0)
  bw = pyBigWig.open(str(mask_bigwig))
  try:
    with (pathlib.Path(root) / "truth" / "elements.tsv").open() as f:
      for row in csv.DictReader(f, delimiter="\t"):
        if row["ensid"] in genes and row["chrom"] in bw.chroms():
          values = np.nan_to_num(np.asarray(bw.values(row["chrom"], int(row["start"]),
                                                       int(row["end"])), np.float64))
          sums[row["class"]] += float(values.sum())
    header = bw.header()
    total = float(header["sumData"])
  finally:
    bw.close()
  on_elements = sum(sums.values())
  out = {k: (v / on_elements if on_elements > 0 else float("nan")) for k, v in sums.items()}
  out["outside"] = 1.0 - on_elements / total if total > 0 else float("nan")
  return out
