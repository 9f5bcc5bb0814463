"""`seq2exp ablate --folds`: fold lists parsed at parse time (one usage error line for a bad
one), and a sweep of 2 folds end to end on the tiny synthetic genome: each fold's data set
built from the data root, every run's test predictions kept, the pooled out-of-fold
metrics those predictions give, finished runs skipped."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from seq2exp_jax import cli
from seq2exp_jax.commands.arguments import fold_list


def test_fold_lists():
  assert fold_list("1-12") == list(range(1, 13))
  assert fold_list("1,3,11") == [1, 3, 11]
  assert fold_list("11, 1-3,2") == [1, 2, 3, 11]


@pytest.mark.parametrize("text, message", [
    ("0", "'0' is not a fold or an increasing range of folds in 1..12"),
    ("1-13", "'1-13' is not a fold"),
    ("5-2", "'5-2' is not a fold or an increasing range"),
    ("a", "expected folds as a range or list, e.g. 1-12 or 1,3,11"),
    ("1,,", "expected folds as a range or list"),
    ("enformer", "expected folds as a range or list"),
])
def test_a_bad_fold_list_is_one_usage_line(text, message, tmp_path, capsys):
  with pytest.raises(SystemExit) as e:
    cli.main(["ablate", "--configs", "macs3_mask", "--workdir", str(tmp_path / "w"),
              "--folds", text])
  assert e.value.code == 2
  lines = capsys.readouterr().err.splitlines()
  assert lines[-1].startswith("seq2exp ablate: error: argument --folds: "), lines
  assert message in lines[-1]
  assert not (tmp_path / "w").exists()


def test_build_from_needs_folds(tmp_path, capsys):
  assert cli.main(["ablate", "--configs", "macs3_mask", "--workdir", str(tmp_path / "w"),
                   "--build-from", str(tmp_path)]) == 2
  assert capsys.readouterr().err.splitlines() == [
      "seq2exp ablate: --build-from builds the data sets of --folds; give --folds too"]


def _two_fold_root(root):
  """The tiny genome with fold_1 / fold_2 rewritten: genes 0-4 the test split of fold 1,
  genes 5-9 that of fold 2 (the tiny genome's real folds leave most splits empty)."""
  assert cli.main(["synth", "--out", str(root), "--preset", "tiny", "--genes", "20",
                   "--seed", "0", "--quiet"]) == 0
  path = root / "promo_enhan_inter" / "leave_chrom_out_crossvalidation_split_18377genes.csv"
  rows = list(csv.reader(path.open()))
  one, two = rows[0].index("fold_1"), rows[0].index("fold_2")
  for n, row in enumerate(rows[1:]):
    row[one] = "test" if n < 5 else "valid" if n < 7 else "train"
    row[two] = "test" if 5 <= n < 10 else "valid" if n < 2 else "train"
  with path.open("w", newline="") as f:
    csv.writer(f).writerows(rows)
  return [r[0] for r in rows[1:11]]


def test_two_folds_end_to_end(tmp_path, capsys):
  root, runs, tfds_dir = tmp_path / "root", tmp_path / "runs", tmp_path / "tfds"
  test_genes = _two_fold_root(root)
  args = ["ablate", "--configs", "macs3_mask", "--seeds", "1", "--variant", "smoke",
          "--folds", "1,2", "--workdir", str(runs), "--build-from", str(root),
          f"--config.data.dir={tfds_dir}/geneexp/k562_8192_fold{{fold}}/1.0.0",
          "--config.train.steps=2"]
  assert cli.main(args) == 0
  for fold in (1, 2):
    assert (tfds_dir / "geneexp" / f"k562_8192_fold{fold}" / "1.0.0" / "metadata.json"
            ).is_file()
  tables = {}
  for fold in (1, 2):
    workdir = runs / "macs3_mask" / f"fold_{fold}" / "seed_0"
    with (workdir / "test_predictions.csv").open(newline="") as f:
      tables[fold] = list(csv.DictReader(f))
    result = json.loads((workdir / "eval_test.json").read_text())
    assert result["n"] == 5 and result["data"].endswith(f"k562_8192_fold{fold}/1.0.0")
  assert sorted(r["ensid"] for t in tables.values() for r in t) == sorted(test_genes)
  t = np.array([float(r["target"]) for f in (1, 2) for r in tables[f]])
  p = np.array([float(r["prediction"]) for f in (1, 2) for r in tables[f]])
  pooled = json.loads((runs / "results.json").read_text())["pooled"]["macs3_mask"]
  assert pooled["genes"] == 10
  assert pooled["seeds"][0]["pearson"] == pytest.approx(np.corrcoef(t, p)[0, 1], abs=1e-6)
  assert pooled["seeds"][0]["mse"] == pytest.approx(np.mean((p - t) ** 2), rel=1e-5)
  md = (runs / "results.md").read_text()
  assert "| macs3_mask, fold 1 | 1 |" in md and "| macs3_mask, fold 2 | 1 |" in md
  assert "| macs3_mask | 10 |" in md and "| macs3_mask | 2 |" in md  # pooled; over folds
  stamp = (runs / "macs3_mask" / "fold_2" / "seed_0" / "eval_test.json").stat().st_mtime_ns
  capsys.readouterr()
  assert cli.main(args) == 0  # finished runs and built data sets are reused
  assert "building" not in capsys.readouterr().out
  assert (runs / "macs3_mask" / "fold_2" / "seed_0" / "eval_test.json"
          ).stat().st_mtime_ns == stamp
