"""experiments/enformer.py: the paper variant's run as baselines.sh lines 10-29 sets it
(batch 4, 200,000 steps, timm's warm-up from 0 to 7e-6 over 50,000 steps, then a cosine
from 7e-6 to 7e-6). One real step of its smoke variant on 8 simulated devices is
tests/train/test_trainer.py::test_one_step_of_every_smoke_config[enformer]."""

from __future__ import annotations

import numpy as np

from conftest import REPO
from seq2exp_jax.config import loader as configs
from seq2exp_jax.train.optim import learning_rate

CONFIG = str(REPO / "experiments" / "enformer.py")


def test_paper_variant_is_the_scripts_run():
  c = configs.load_config(CONFIG)
  assert (c.model.name, c.model.dim, c.model.depth, c.model.heads, c.model.crop,
          c.model.target_length) == ("enformer", 1536, 11, 8, 196_608, 896)
  assert (c.train.batch_size, c.train.steps, c.train.dtype, c.data.window) == (
      4, 200_000, "bfloat16", None)
  schedule = learning_rate(c.optim, c.train.steps)

  def timm(t):  # CosineLRScheduler, warmup_prefix: t_initial = 200,000 - 50,000
    if t < 50_000:
      return 7e-6 * t / 50_000
    return 7e-6 + 0.5 * (7e-6 - 7e-6) * (1 + np.cos(np.pi * (t - 50_000) / 150_000))

  for t in (0, 1, 25_000, 49_999, 50_000, 120_000, 199_999):
    np.testing.assert_allclose(float(schedule(t)), timm(t), rtol=1e-5, atol=1e-12)
