"""Simple and oracle baselines of the synthetic genome, in the same table as the deep models.

Every model is a ridge regression fitted on the train split only (its penalty chosen by
5-fold cross-validation inside the train split) and evaluated on the test genes:

* `promoter_mrna`: the 8 mRNA features and the promoter activity (and its log), i.e. what
  the expression head sees directly.
* `abc_signals`: + log(1 + S_abc), S_abc = sum over the gene's candidate elements of
  activity x contact, from the signal tracks alone: activity = sqrt(mean DNase x mean
  H3K27ac) over the element, contact = the mean Hi-C contact over it (10^track - 1). The
  ABC model's score (Fulco 2019), decoys included: it cannot tell causal from decoy
  elements that are accessible and in contact.
* `motif_aware`: + log(1 + S_motif), the same sum with each element weighted by the number
  of GATA1-KLF1 grammar units the shipped JASPAR matrices find in its DNA
  (`data_pipeline.synth.motifs.find_grammar`): what knowing the planted grammar buys.
* `truth_formula` (the oracle): the noise-free label the genome was generated from.

The candidate elements are the data root's `truth/elements.tsv` intervals (the class
column is never read), the list ABC would nominate: every accessible element of a window.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import pathlib
from typing import Any

import numpy as np

from data_pipeline.errors import MissingInputError
from data_pipeline.loader import open_split
from data_pipeline.synth.motifs import find_grammar
from seq2exp_jax.evaluation.streaming import RegressionMetrics

ALPHAS = tuple(10.0 ** k for k in range(-3, 5))
FOLDS = 5
MODELS = ("promoter_mrna", "abc_signals", "motif_aware")
ORACLE = "truth_formula"


@dataclasses.dataclass(frozen=True)
class GeneFeatures:
  """Per gene of one split (G genes): ensid str (G,), target float (G,), rna_feat
  float (G, F), abc and motif sums float (G,)."""

  ensid: np.ndarray
  target: np.ndarray
  rna_feat: np.ndarray
  abc: np.ndarray
  motif: np.ndarray


def read_elements(root: str | pathlib.Path) -> dict[str, list[tuple[int, int]]]:
  """{ensid: [(start, end)]} of the candidate elements in `root/truth/elements.tsv`."""
  path = pathlib.Path(root) / "truth" / "elements.tsv"
  if not path.is_file():
    raise MissingInputError(f"{path}: no candidate-element table (a synthetic data root "
                            "written by `seq2exp synth` has one)")
  out: dict[str, list[tuple[int, int]]] = {}
  with path.open() as f:
    for row in csv.DictReader(f, delimiter="\t"):
      out.setdefault(row["ensid"], []).append((int(row["start"]), int(row["end"])))
  return out


def element_sums(dna: np.ndarray, signals: np.ndarray, tss: int,
                 elements: list[tuple[int, int]]) -> tuple[float, float]:
  """(S_abc, S_motif) of one gene. dna: uint8 (L,) codes; signals: float (L, 3) H3K27ac,
  DNase, log10(1 + Hi-C); elements in genome coordinates, clipped to the window."""
  length = len(dna)
  offset = tss - length // 2
  abc = motif = 0.0
  for start, end in elements:
    lo, hi = max(0, start - offset), min(length, end - offset)
    if hi <= lo:
      continue
    h3k27ac, dnase = signals[lo:hi, 0].mean(), signals[lo:hi, 1].mean()
    contact = float(np.mean(10.0 ** signals[lo:hi, 2] - 1.0))
    score = float(np.sqrt(max(h3k27ac, 0.0) * max(dnase, 0.0))) * contact
    abc += score
    motif += len(find_grammar(dna[lo:hi])) * score
  return abc, motif


def gene_features(ds_dir: str | pathlib.Path, split: str,
                  elements: dict[str, list[tuple[int, int]]]) -> GeneFeatures:
  """The features of every gene of `split` of a prepared data set."""
  source = open_split(ds_dir, split)
  rows = []
  for i in range(len(source)):
    ex = source[i]
    ensid = ex["ensid"].decode() if isinstance(ex["ensid"], bytes) else str(ex["ensid"])
    abc, motif = element_sums(np.asarray(ex["dna"]), np.asarray(ex["signals"]),
                              int(ex["tss"]), elements.get(ensid, []))
    rows.append((ensid, float(ex["target"]), np.asarray(ex["rna_feat"], np.float64), abc,
                 motif))
  return GeneFeatures(ensid=np.array([r[0] for r in rows]),
                      target=np.array([r[1] for r in rows]),
                      rna_feat=np.stack([r[2] for r in rows]),
                      abc=np.array([r[3] for r in rows]), motif=np.array([r[4] for r in rows]))


def design(features: GeneFeatures, model: str, scale: dict[str, float]) -> np.ndarray:
  """The ridge's inputs (G, K) for `model`; `scale` holds the train split's median sums."""
  promoter = features.rna_feat[:, -1:]
  columns = [features.rna_feat, np.log1p(np.maximum(promoter, 0.0))]
  if model in ("abc_signals", "motif_aware"):
    columns.append(np.log1p(features.abc / scale["abc"])[:, None])
  if model == "motif_aware":
    columns.append(np.log1p(features.motif / scale["motif"])[:, None])
  if model not in MODELS:
    raise ValueError(f"unknown simple model {model!r}: expected one of {MODELS}")
  return np.concatenate(columns, axis=1)


@dataclasses.dataclass(frozen=True)
class Ridge:
  """A fitted ridge regression on standardised inputs."""

  mean: np.ndarray
  sd: np.ndarray
  coef: np.ndarray
  intercept: float
  alpha: float

  def predict(self, x: np.ndarray) -> np.ndarray:
    return ((x - self.mean) / self.sd) @ self.coef + self.intercept


def fit_ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> Ridge:
  """min |y - b - z w|^2 + alpha |w|^2 with z the standardised x (closed form)."""
  mean, sd = x.mean(0), x.std(0)
  sd = np.where(sd > 0, sd, 1.0)
  z = (x - mean) / sd
  coef = np.linalg.solve(z.T @ z + alpha * np.eye(z.shape[1]), z.T @ (y - y.mean()))
  return Ridge(mean, sd, coef, float(y.mean()), alpha)


def choose_alpha(x: np.ndarray, y: np.ndarray, seed: int = 0) -> float:
  """The penalty with the lowest 5-fold cross-validated MSE within (x, y)."""
  folds = np.random.default_rng(seed).permutation(len(y)) % FOLDS
  errors = []
  for alpha in ALPHAS:
    se = 0.0
    for k in range(FOLDS):
      fit = fit_ridge(x[folds != k], y[folds != k], alpha)
      se += float(np.sum((fit.predict(x[folds == k]) - y[folds == k]) ** 2))
    errors.append(se)
  return ALPHAS[int(np.argmin(errors))]


def _metrics(target: np.ndarray, prediction: np.ndarray) -> dict[str, float]:
  metrics = RegressionMetrics()
  metrics.update(target, prediction)
  return metrics.compute()


def evaluate_simple_models(root: str | pathlib.Path, ds_dir: str | pathlib.Path,
                           train_split: str = "train", test_split: str = "test"
                           ) -> dict[str, Any]:
  """{model: metrics on `test_split` (+ per-gene "prediction", "ensid", "target", and the
  ridge's "alpha")} for every simple model and the oracle, fitted on `train_split` only;
  plus "noise_ceiling"."""
  elements = read_elements(root)
  train = gene_features(ds_dir, train_split, elements)
  test = gene_features(ds_dir, test_split, elements)
  scale = {k: float(np.median(v[v > 0])) if np.any(v > 0) else 1.0
           for k, v in (("abc", train.abc), ("motif", train.motif))}
  out: dict[str, Any] = {}
  for model in MODELS:
    x_train, x_test = design(train, model, scale), design(test, model, scale)
    alpha = choose_alpha(x_train, train.target)
    prediction = fit_ridge(x_train, train.target, alpha).predict(x_test)
    out[model] = dict(_metrics(test.target, prediction), alpha=alpha,
                      prediction=prediction.tolist(), ensid=test.ensid.tolist(),
                      target=test.target.tolist())
  truth = json.loads((pathlib.Path(root) / "truth" / "labels.json").read_text())
  clean = np.array([truth["genes"][e]["clean"] for e in test.ensid])
  out[ORACLE] = dict(_metrics(test.target, clean), prediction=clean.tolist(),
                     ensid=test.ensid.tolist(), target=test.target.tolist())
  out["noise_ceiling"] = float(truth["noise_ceiling_pearson"])
  return out
