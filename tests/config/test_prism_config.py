"""experiments/prism.py: `paper` is the original's train_example.sh run, and the smoke
config's training loss is Prism's objective (its real step on 8 simulated devices is
tests/train/test_trainer.py::test_one_step_of_every_smoke_config[prism])."""

from __future__ import annotations

import ast
import dataclasses
import re

import jax
import jax.numpy as jnp
import numpy as np

from conftest import REPO
from data_pipeline.batch import Batch
from seq2exp_jax.config import loader as configs
from seq2exp_jax.model.losses import smooth_l1
from seq2exp_jax.train.task import build_task

PATH = REPO / "experiments" / "prism.py"


def test_paper_variant_is_the_originals_run():
  """train_example.sh and configs/model/prism.yaml: their values and lines."""
  c = configs.load_config(str(PATH))
  m = c.model
  assert (c.data.window, m.center_len, m.n_layer, m.backbone.d_model, m.backbone.d_state) == (
      2000, 2000, 4, 128, 16)
  assert (m.n_context, m.cnn_dim, m.weight_act, m.gaussian_kernel_t) == (2, 8, "sigmoid", 2.0)
  assert (m.intervention_loss_weight, m.uniform_loss_weight, m.use_rna_feat) == (1.0, 1.0, True)
  assert m.backbone.get("init_n_layer") is None  # prism.yaml sets n_layer: 4
  assert (c.optim.lr, c.optim.b1, c.optim.b2, c.optim.weight_decay, c.optim.grad_clip) == (
      5e-4, 0.9, 0.95, 1e-6, 1.0)
  assert (c.train.batch_size, c.train.steps, c.train.dtype) == (8, 50_000, "bfloat16")
  doc = ast.get_docstring(ast.parse(PATH.read_text()))
  assert "train_example.sh" in doc and "0.1789" in doc and "0.8751" in doc
  assert "0.1759" in doc and "0.9016" in doc
  assert "Published" in doc and re.search(r"not\s+been\s+run\s+on\s+the\s+real\s+data", doc)
  matched = configs.load_config(f"{PATH}:matched")
  assert matched.model.n_layer == 8  # Seq2Exp's generator + predictor
  matched.model.n_layer = 4
  assert matched.to_dict() == {**c.to_dict(), "variant": "matched"}
  for variant in ("smoke", "synthetic"):  # the window is pooled whole, as in the paper
    v = configs.load_config(f"{PATH}:{variant}")
    assert v.model.center_len == v.data.window <= 2000


def test_the_training_loss_is_prisms_objective():
  """Task.loss = smooth_l1(prediction) + intervention_loss_weight x smooth_l1(intervention)
  + uniform_loss_weight x uniform loss (metrics.py lines 340-359), with both terms logged."""
  c = configs.load_config(f"{PATH}:smoke")
  task = build_task(c)
  rng = np.random.default_rng(0)
  batch = dataclasses.replace(
      Batch.zeros(4, c.data.window, target=rng.normal(size=4).astype(np.float32)),
      dna=np.eye(4, dtype=np.float32)[rng.integers(0, 4, (4, c.data.window))],
      signals=rng.gamma(0.5, 10.0, (4, c.data.window, 3)).astype(np.float32))
  key = jax.random.PRNGKey(0)
  params = task.init(key, batch)
  total, terms = jax.jit(task.loss)(params, batch, key)
  out = jax.jit(lambda p, b: task.apply(p, b, train=True, rng=key))(params, batch)
  target = jnp.asarray(batch.target)
  expected = (smooth_l1(out.prediction, target) + smooth_l1(out.intervention, target)
              + out.uniform)
  np.testing.assert_allclose(total, expected, rtol=1e-6)
  assert {"intervention", "uniform"} <= set(terms)
