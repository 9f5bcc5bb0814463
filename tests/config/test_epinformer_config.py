"""experiments/epinformer.py: `paper` is the original's baselines.sh run, and the smoke
config trains for real on the tiny data set's candidate elements on 8 simulated devices,
then evaluates, predicts and exports (the artifact takes the element fields as inputs)."""

from __future__ import annotations

import ast
import json
import re

import numpy as np
import pytest

from conftest import REPO
from conftest_data import export_and_reload, tiny_synthetic
from data_pipeline.batch import ELEMENT_SLOTS, ELEMENT_WIDTH, Batch
from seq2exp_jax import cli
from seq2exp_jax.config import loader as configs
from seq2exp_jax.train.optim import learning_rate
from seq2exp_jax.train.task import build_task
from seq2exp_jax.train.trainer import train_and_evaluate

PATH = REPO / "experiments" / "epinformer.py"


def test_paper_variant_is_the_originals_run():
  """CAGE_pred_promo_enhan_inter.yaml (baselines.sh 101-111): its values and lines."""
  c = configs.load_config(str(PATH))
  m = c.model
  assert (m.get("out_dim", 64), m.get("n_encoder", 3), m.get("heads", 4)) == (64, 3, 4)
  assert build_task(c).model.tower_widths == (128, 64, 64, 128)  # defaults: the original's
  assert (c.optim.lr, c.optim.b1, c.optim.b2, c.optim.weight_decay, c.optim.grad_clip) == (
      5e-4, 0.9, 0.95, 1e-6, 1.0)
  schedule = learning_rate(c.optim, c.train.steps)
  assert [float(schedule(s)) for s in (0, 1, 10_000, 19_999)] == pytest.approx([5e-4] * 4)
  assert (c.train.batch_size, c.train.eval_batch_size, c.train.steps, c.train.eval_every,
          c.train.dtype) == (16, 16, 20_000, 1_000, "bfloat16")
  doc = ast.get_docstring(ast.parse(PATH.read_text()))
  assert "baselines.sh lines 101-111" in doc and "0.2140" in doc and "0.8473" in doc
  assert "Published" in doc and re.search(r"not\s+been\s+run\s+on\s+the\s+real\s+data", doc)
  assert "reproduces" not in doc.lower()
  matched = configs.load_config(f"{PATH}:matched")
  soft = configs.load_config(str(REPO / "experiments" / "seq2exp_soft.py:matched"))
  assert matched.model.to_dict() == c.model.to_dict()
  assert (matched.optim.to_dict(), matched.train.to_dict()) == (soft.optim.to_dict(),
                                                                soft.train.to_dict())


@pytest.fixture(scope="module")
def data(tmp_path_factory):
  return str(tiny_synthetic(tmp_path_factory.getbasetemp())[1])


def test_smoke_trains_evaluates_predicts_and_exports(data, tmp_path):
  c = configs.load_config(f"{PATH}:smoke")
  c.data.dir = data
  c.train.update(steps=2, log_every=1, eval_every=2, checkpoint_every=2)
  workdir = tmp_path / "run"
  result = train_and_evaluate(c, workdir)
  assert result["step"] == 2 and np.isfinite(result["valid"]["mse"])
  assert np.isfinite(result["train"]["loss"]) and result["train"]["grad_norm"] > 0
  assert "mask_ratio" not in result["train"]

  assert cli.main(["eval", "--workdir", str(workdir), "--split", "test"]) == 0
  assert np.isfinite(json.loads((workdir / "eval_test.json").read_text())["mse"])
  out = tmp_path / "pred"
  assert cli.main(["predict", "--workdir", str(workdir), "--data", data, "--split", "train",
                   "--out", str(out)]) == 0
  rows = (out / "predictions.csv").read_text().splitlines()
  assert rows[0] == "ensid,chrom,tss,target,prediction" and len(rows) > 1
  assert all(np.isfinite(float(r.split(",")[-1])) for r in rows[1:])

  served, task, params = export_and_reload(workdir, tmp_path / "epinformer.s2x")
  rng = np.random.default_rng(0)
  window = c.data.window
  inputs = Batch.zeros(2, window, elements=True).arrays()
  inputs.pop("element_pos")
  inputs["element_dna"] = np.eye(4, dtype=np.float32)[
      rng.integers(0, 4, (2, ELEMENT_SLOTS, ELEMENT_WIDTH))]
  inputs["element_feat"] = rng.normal(size=(2, ELEMENT_SLOTS, 3)).astype(np.float32)
  inputs["element_valid"][:, :7] = True
  inputs["rna_feat"] = rng.normal(size=(2, 9)).astype(np.float32)
  got = served(inputs)["prediction"]
  want = np.asarray(task.apply(params, Batch(**inputs)).prediction)
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
