"""`seq2exp benchmark` end to end on the tiny genome (one model, one seed, two steps), the
results.json schema it documents, and `seq2exp diagnose` on the run it trained."""

import json
import math

import pytest

from seq2exp_jax import cli


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("bench")
  assert cli.main(["benchmark", "--preset", "tiny", "--genes", "20", "--seed", "0",
                   "--workdir", str(workdir), "--seeds", "1", "--models", "seq2exp_soft",
                   "--variant", "smoke", "--steps", "2"]) == 0
  return workdir


def test_results_follow_the_documented_schema(bench):
  results = json.loads((bench / "results.json").read_text())
  assert set(results) == {"preset", "seed", "n_test_genes", "noise_ceiling", "prior_mask",
                          "methods", "genes", "differences"}
  assert results["preset"] == "tiny" and results["seed"] == 0
  assert results["n_test_genes"] >= 1 and 0 < results["noise_ceiling"] < 1
  methods = results["methods"]
  assert set(methods) == {"seq2exp_soft", "promoter_mrna", "abc_signals", "motif_aware",
                          "truth_formula"}
  for name, m in methods.items():
    assert set(m) == {"pearson", "mse", "mask_auprc", "mask_ratio", "mask_mass_by_class",
                      "runs"}, name
    assert len(m["mse"]) == len(m["pearson"]) >= 1 and all(math.isfinite(v) for v in m["mse"])
  soft = methods["seq2exp_soft"]
  assert len(soft["runs"]) == 1 and (bench / "runs/seq2exp_soft/seed_0").is_dir()
  mass = soft["mask_mass_by_class"]
  assert set(mass) == {"causal", "insulated", "dead", "split", "outside"}
  shares = [mass[k] for k in ("causal", "insulated", "dead", "split")]
  if all(math.isfinite(s) for s in shares):  # NaN when the test gene has no element
    assert sum(shares) == pytest.approx(1)
  assert 0 <= mass["outside"] <= 1
  assert methods["abc_signals"]["mask_auprc"] is None
  predict = bench / "runs/seq2exp_soft/seed_0/predict"
  assert (predict / "predictions.csv").is_file() and (predict / "mask.bw").is_file()
  text = (bench / "results.md").read_text()
  assert "| seq2exp_soft | 1 |" in text and "seq2exp_soft: test Pearson" in text
  if all(math.isfinite(s) for s in shares):
    assert (bench / "mask_mass.png").stat().st_size > 0
  # Resumable: a second run trains nothing and writes the same table.
  before = (bench / "results.md").read_text()
  assert cli.main(["benchmark", "--preset", "tiny", "--genes", "20", "--seed", "0",
                   "--workdir", str(bench), "--seeds", "1", "--models", "seq2exp_soft",
                   "--variant", "smoke", "--steps", "2"]) == 0
  assert (bench / "results.md").read_text() == before


def test_diagnose_reports_every_measurement(bench):
  run = bench / "runs/seq2exp_soft/seed_0"
  assert cli.main(["diagnose", "--workdir", str(run), "--split", "train", "--batches",
                   "1"]) == 0
  report = json.loads((run / "diagnose_train.json").read_text())
  assert report["receptive_field"]["0-500"] == 1.0
  shares = report["saliency_shares"]
  assert sum(shares.values()) == pytest.approx(1.0)
  norms = report["gradient_norms"]
  assert norms["generator"]["kl"] > 0 and norms["encoder"]["kl"] == 0  # KL skips the encoder
  assert report["mask"]["generator_sd_over_positions"] >= 0
  assert math.isfinite(report["occlusion"]["mean_abs_change"])
