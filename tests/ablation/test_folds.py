"""The fold protocol of `ablate --folds` without training: pooled out-of-fold metrics
against a direct numpy computation, overlapping folds refused, per-fold data sets and
workdirs of the driver (with a stubbed run function), and what results.md reports."""

from __future__ import annotations

import csv
import json
import pathlib

import numpy as np
import pytest

from data_pipeline.errors import ConfigError, MissingInputError
from seq2exp_jax.ablation import folds as folds_lib
from seq2exp_jax.ablation.driver import PREDICTION_COLUMNS, predictions_file

FOLDS = (2, 5, 11)
SEEDS = 2


def _tables(seed: int = 0) -> dict[int, dict[int, folds_lib.Predictions]]:
  """[seed][fold] -> {ensid: (target, prediction)}: disjoint genes per fold (7, 9, 11 of
  them), the same targets for every seed, predictions target + noise per seed."""
  rng = np.random.default_rng(seed)
  out: dict[int, dict[int, folds_lib.Predictions]] = {s: {} for s in range(SEEDS)}
  for i, fold in enumerate(FOLDS):
    n = 7 + 2 * i
    target = rng.normal(size=n) + i
    for s in range(SEEDS):
      prediction = target * 0.5 + rng.normal(size=n)
      out[s][fold] = {f"G{fold}_{g}": (float(target[g]), float(prediction[g]))
                      for g in range(n)}
  return out


def _ranks(x: np.ndarray) -> np.ndarray:
  r = np.empty(len(x))
  r[np.argsort(x)] = np.arange(len(x))
  return r


def _direct(per_fold: dict[int, folds_lib.Predictions]) -> dict[str, float]:
  pairs = np.array([pair for f in sorted(per_fold) for pair in per_fold[f].values()])
  t, p = pairs[:, 0], pairs[:, 1]
  return {"n": len(t), "mse": np.mean((p - t) ** 2), "mae": np.mean(np.abs(p - t)),
          "pearson": np.corrcoef(t, p)[0, 1],
          "spearman": np.corrcoef(_ranks(t), _ranks(p))[0, 1]}


def _eval_result(genes: folds_lib.Predictions) -> dict[str, float]:
  """What a run's eval_<split>.json holds, computed directly."""
  return {k: float(v) for k, v in _direct({0: genes}).items()}


def test_pooled_out_of_fold_metrics_match_numpy():
  tables = _tables()
  per_fold = {f: [_eval_result(tables[s][f]) for s in range(SEEDS)] for f in FOLDS}
  got = folds_lib.summarise([tables[s] for s in range(SEEDS)], per_fold)
  assert got["genes"] == 7 + 9 + 11
  for s in range(SEEDS):
    want = _direct(tables[s])
    for key, value in want.items():
      assert got["seeds"][s][key] == pytest.approx(value, rel=1e-12), (s, key)
  # The seed-mean prediction's pooled Pearson (genes in the same order for both seeds).
  genes = [g for f in FOLDS for g in tables[0][f]]
  target = np.array([tables[0][f][g][0] for f in FOLDS for g in tables[0][f]])
  mean_p = np.array([np.mean([tables[s][f][g][1] for s in range(SEEDS)])
                     for f in FOLDS for g in tables[0][f]])
  assert len(genes) == len(set(genes))
  r = got["seed_mean"]
  assert r["pearson"] == pytest.approx(np.corrcoef(target, mean_p)[0, 1], rel=1e-12)
  assert r["low"] < r["pearson"] < r["high"]
  # Pooling is not the mean of the folds: each fold's own Pearson averages differently.
  fold_r = [np.mean([per_fold[f][s]["pearson"] for s in range(SEEDS)]) for f in FOLDS]
  assert got["folds"]["5"]["pearson"] == pytest.approx(fold_r[1])
  assert abs(np.mean(fold_r) - np.mean([x["pearson"] for x in got["seeds"]])) > 1e-3


def test_a_gene_in_two_folds_is_not_pooled():
  tables = _tables()[0]
  tables[5]["G2_0"] = tables[2]["G2_0"]
  with pytest.raises(folds_lib.OverlappingFolds, match="gene G2_0 is in the split of folds "
                                                       "2 and 5"):
    folds_lib.pool(tables)


def _write(path: pathlib.Path, genes: folds_lib.Predictions) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  with path.open("w", newline="") as f:
    w = csv.writer(f)
    w.writerow(PREDICTION_COLUMNS)
    w.writerows((g, "chr1", 0, repr(t), repr(p)) for g, (t, p) in genes.items())


def test_driver_runs_every_config_fold_and_seed(tmp_path, capsys):
  """The driver with a stubbed run: data.dir per fold, workdirs, results.md/json."""
  tables = _tables()
  for fold in FOLDS:
    (tmp_path / "data" / f"fold{fold}").mkdir(parents=True)
  pattern = str(tmp_path / "data" / "fold{fold}")
  calls = []

  def fake_run(config, workdir, split):
    fold = int(pathlib.Path(config.data.dir).name.removeprefix("fold"))
    seed = config.train.seed
    calls.append((config.experiment, fold, seed, workdir, config.mask.generator_workdir))
    genes = tables[seed][fold]
    _write(predictions_file(workdir, split), genes)
    return _eval_result(genes)

  root = tmp_path / "runs"
  results, text = folds_lib.ablate_folds(
      ["seq2exp_soft", "seq2exp_retrain_top10"], SEEDS, FOLDS, root, "smoke",
      [f"data.dir={pattern}"], run=fake_run)
  assert len(calls) == 2 * len(FOLDS) * SEEDS
  for name, fold, seed, workdir, generator in calls:
    assert workdir == root / name / f"fold_{fold}" / f"seed_{seed}"
    if name == "seq2exp_retrain_top10":  # the same fold and seed's soft run
      assert generator == str(root / "seq2exp_soft" / f"fold_{fold}" / f"seed_{seed}")
  saved = json.loads((root / "results.json").read_text())
  assert saved["folds"] == list(FOLDS) and set(saved["per_fold"]["seq2exp_soft"]) == {
      "2", "5", "11"}
  for s in range(SEEDS):
    assert saved["pooled"]["seq2exp_soft"]["seeds"][s]["pearson"] == pytest.approx(
        _direct(tables[s])["pearson"], rel=1e-9)
  md = (root / "results.md").read_text()
  assert md == text
  for fold in FOLDS:
    assert f"| seq2exp_soft, fold {fold} | 2 |" in md
  assert "## Pooled out of fold" in md and "| seq2exp_retrain_top10 | 27 |" in md
  assert "| Method | folds |" in md and "| seq2exp_soft | 3 |" in md


def test_driver_checks_every_fold_data_set_first(tmp_path):
  (tmp_path / "fold2").mkdir()

  def never(*_):
    raise AssertionError("nothing may run before every data set is there")

  with pytest.raises(MissingInputError, match=r"no data set for fold\(s\) 5, 11 \(fold 5: "
                                              r".*/fold5\)"):
    folds_lib.ablate_folds(["macs3_mask"], 1, FOLDS, tmp_path / "runs", "smoke",
                           [f"data.dir={tmp_path}/fold{{fold}}"], run=never)
  with pytest.raises(ConfigError, match=r"with --folds every fold trains on its own data "
                                        r"set; put \{fold\} in it"):
    folds_lib.ablate_folds(["macs3_mask"], 1, FOLDS, tmp_path / "runs", "smoke",
                           [f"data.dir={tmp_path}/fold2"], run=never)
  with pytest.raises(ConfigError, match="cannot build"):
    folds_lib.build_fold(tmp_path / "fold5", 5, tmp_path)
  with pytest.raises(ConfigError, match="is fold 5's data set but its name says fold 3"):
    folds_lib.build_fold(tmp_path / "geneexp" / "k562_8192_fold3" / "1.0.0", 5, tmp_path)
  assert not (tmp_path / "runs").exists()
