"""The simple and oracle baselines on the tiny synthetic genome, against independent
computations: element sums straight from the files, ridge against numpy's least squares."""

import csv
import json
import math

import numpy as np
import pytest
import tensorflow_datasets as tfds

from conftest_data import tiny_synthetic
from data_pipeline.synth.motifs import find_grammar
from seq2exp_jax.evaluation import simple_models


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  return tiny_synthetic(tmp_path_factory.getbasetemp())


def test_element_sums_match_a_direct_computation(tiny):
  """S_abc and S_motif of every train gene, recomputed element by element from the
  prepared windows and the elements table read with the standard library."""
  root, ds_dir = tiny
  features = simple_models.gene_features(ds_dir, "train",
                                         simple_models.read_elements(root))
  rows = list(csv.DictReader((root / "truth" / "elements.tsv").open(), delimiter="\t"))
  source = tfds.builder_from_directory(str(ds_dir)).as_data_source()["train"]
  nonzero = 0
  for i in range(len(source)):
    ex = source[i]
    ensid, tss = ex["ensid"].decode(), int(ex["tss"])
    signals, dna = np.asarray(ex["signals"], np.float64), np.asarray(ex["dna"])
    start0 = tss - len(dna) // 2
    abc = motif = 0.0
    for r in (r for r in rows if r["ensid"] == ensid):
      lo = max(0, int(r["start"]) - start0)
      hi = min(len(dna), int(r["end"]) - start0)
      if hi <= lo:
        continue
      activity = math.sqrt(max(signals[lo:hi, 0].mean(), 0) * max(signals[lo:hi, 1].mean(), 0))
      contact = float(np.mean(10.0 ** signals[lo:hi, 2] - 1.0))
      abc += activity * contact
      motif += len(find_grammar(dna[lo:hi])) * activity * contact
    k = list(features.ensid).index(ensid)
    np.testing.assert_allclose([features.abc[k], features.motif[k]], [abc, motif],
                               rtol=1e-4, err_msg=ensid)
    nonzero += abc > 0
  assert nonzero >= len(source) // 2


def test_ridge_without_penalty_is_least_squares():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(50, 4))
  y = x @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.3 + 0.1 * rng.normal(size=50)
  fit = simple_models.fit_ridge(x, y, alpha=0.0)
  design = np.column_stack([np.ones(50), x])
  want = design @ np.linalg.lstsq(design, y, rcond=None)[0]
  np.testing.assert_allclose(fit.predict(x), want, rtol=1e-8, atol=1e-8)
  # A larger penalty shrinks the coefficients, and CV picks from the grid.
  assert np.abs(simple_models.fit_ridge(x, y, 1e3).coef).sum() < np.abs(fit.coef).sum()
  assert simple_models.choose_alpha(x, y) in simple_models.ALPHAS


def test_baselines_are_fitted_on_train_and_scored_on_test(tiny):
  root, ds_dir = tiny
  result = simple_models.evaluate_simple_models(root, ds_dir, "train", "train")
  truth = json.loads((root / "truth" / "labels.json").read_text())
  for name in (*simple_models.MODELS, simple_models.ORACLE):
    entry = result[name]
    assert len(entry["prediction"]) == len(entry["ensid"]) == entry["n"]
    np.testing.assert_allclose(entry["mse"], np.mean(
        (np.array(entry["prediction"]) - np.array(entry["target"])) ** 2), rtol=1e-9)
  oracle = result[simple_models.ORACLE]
  np.testing.assert_allclose(oracle["prediction"],
                             [truth["genes"][e]["clean"] for e in oracle["ensid"]])
  np.testing.assert_allclose(oracle["target"],
                             [truth["genes"][e]["label"] for e in oracle["ensid"]], atol=1e-6)
  # In-sample, more features never fit worse (ridge on nested designs, same data).
  assert result["abc_signals"]["mse"] <= result["promoter_mrna"]["mse"] * 1.05
  assert result["noise_ceiling"] == truth["noise_ceiling_pearson"]
