"""The hard variant's packing capacity (packing.capacity, train/capacity.py): the buckets,
the quantile rule, a bounded number of compiled steps, the per-row counts and overflow of
a step, the config check, and a smoke hard run with "auto" capacity on 8 devices."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from conftest import REPO
from conftest_data import tiny_synthetic
from data_pipeline.batch import Batch
from data_pipeline.errors import ConfigError
from data_pipeline.loader import default_mesh
from seq2exp_jax.config import loader as configs
from seq2exp_jax.config.checks import check_config
from seq2exp_jax.train import trainer
from seq2exp_jax.train.capacity import CapacityPolicy, buckets, overflow_rate, policy_of
from seq2exp_jax.train.metric_writer import read_metrics
from seq2exp_jax.train.optim import learning_rate, make_optimizer
from seq2exp_jax.train.step import init_state, make_train_step, state_sharding
from seq2exp_jax.train.task import build_task


def _hard(window=1024, capacity="auto", **train):
  c = configs.load_config(str(REPO / "experiments/seq2exp_hard.py:smoke"))
  c.data.window = window
  c.packing.capacity = capacity
  c.train.update(train)
  return c


def test_buckets_are_fractions_of_the_window_rounded_to_chunks():
  assert buckets(16384) == (4096, 6144, 8192, 10240, 12288, 16384)
  assert buckets(1000) == (256, 384, 512, 640, 768, 1000)  # never above the window


def test_auto_picks_the_smallest_bucket_above_the_quantile_times_the_margin():
  policy = CapacityPolicy("auto", 16384, 2000, quantile=0.9, margin=1.1, history=2)
  assert policy.capacity == 16384  # nothing seen yet: the window
  policy.record(np.full(8, 3000))
  policy.record(np.array([3000] * 7 + [9000]))
  assert policy.capacity == 16384  # recorded, not yet fetched (no sync point)
  # 0.9-quantile of the 16 counts = 3000 (15 of 16 are), x 1.1 = 3300 -> 4096
  assert policy.update() == 4096
  policy.record(np.full(8, 7000))  # 7700 -> 8192; the oldest step leaves the history
  assert policy.update() == 8192
  assert policy.interval() == {"capacity": (16384 * 2 + 4096) / 3}
  assert policy.interval() == {}
  policy.record(np.full(8, 16000))  # above the largest fraction -> the window
  assert policy.update() == 16384


def test_auto_compiles_at_most_one_step_per_bucket():
  rng = np.random.default_rng(0)
  policy = CapacityPolicy("auto", 16384, 2000, history=4)
  chosen = set()
  for _ in range(300):
    policy.record(rng.integers(2000, 16384, 8) * rng.random() ** 2 + 2000)
    chosen.add(policy.update())
  assert chosen <= set(buckets(16384)) and len(chosen) > 2


def test_fixed_settings_and_models_that_do_not_pack():
  assert CapacityPolicy("window", 1024, 128).capacity == 1024
  assert CapacityPolicy("640", 1024, 128).capacity == 640  # a command-line string
  fixed = CapacityPolicy(640, 1024, 128)
  fixed.record(np.full(8, 1000))
  assert fixed.update() == 640  # never adapts
  soft = configs.load_config(str(REPO / "experiments/seq2exp_soft.py:smoke"))
  assert policy_of(soft, 1024).capacity is None
  with pytest.raises(ConfigError, match="between model.center_len"):
    CapacityPolicy(64, 1024, 128)


@pytest.mark.parametrize("value,message", [
    ("most", "packing.capacity = 'most': expected 'auto', 'window' or a number"),
    ("0", "packing.capacity = 0: expected"),
])
def test_config_check_refuses_bad_capacities(value, message):
  with pytest.raises(ConfigError, match=message):
    check_config(_hard(capacity=value))


def test_config_check_needs_inert_padding_below_the_window():
  c = _hard()
  assert check_config(c) is c and c.packing.capacity == "auto"
  c.model.inert_padding = False
  with pytest.raises(ConfigError, match="needs model.pack_selected=True with "
                     "model.inert_padding=True"):
    check_config(c)
  c.packing.capacity = "window"
  assert check_config(c) is c


def test_a_step_reports_each_rows_count_and_what_its_capacity_dropped():
  c = _hard(window=256)
  mesh = default_mesh()
  rng = np.random.default_rng(0)
  host = Batch(dna=np.eye(4, dtype=np.float32)[rng.integers(0, 4, (8, 256))],
               signals=rng.gamma(0.5, 2.0, (8, 256, 3)).astype(np.float32),
               rna_feat=rng.normal(size=(8, 9)).astype(np.float32),
               blacklist=np.zeros((8, 256), bool),
               target=rng.normal(size=(8,)).astype(np.float32))
  batch = jax.device_put(host, NamedSharding(mesh, P("data")))
  task = build_task(c)
  schedule = learning_rate(c.optim, c.train.steps)
  tx = make_optimizer(c.optim, schedule)
  state = init_state(task, tx, batch, 0)
  shardings = state_sharding(state, mesh, False)
  # The mask is drawn from the step key: the same step at two capacities selects the same.
  _, full = make_train_step(task, tx, schedule, shardings, mesh)(
      jax.tree.map(np.copy, state), batch)
  _, small = make_train_step(task, tx, schedule, shardings, mesh, capacity=128)(state, batch)
  selected = np.asarray(full["selected"])
  assert selected.shape == (8,) and (selected >= 128).all() and (selected < 256).all()
  np.testing.assert_array_equal(full["overflow"], 0)
  np.testing.assert_array_equal(small["selected"], selected)
  np.testing.assert_array_equal(small["overflow"], selected - 128)
  rate = overflow_rate([jax.device_get(small)])["overflow_rate"]
  np.testing.assert_allclose(rate, (selected - 128).sum() / selected.sum(), rtol=1e-6)


def test_smoke_hard_run_with_auto_capacity_on_8_devices(tmp_path, monkeypatch):
  """8 steps, a sync point after every step: the first runs at the window, then the
  capacity follows the counts; each capacity compiles once; the log reports it all."""
  data = str(tiny_synthetic(tmp_path)[1])
  c = _hard(steps=8, sync_every=1, log_every=4, eval_every=8, checkpoint_every=8)
  c.data.dir = data
  c.model.bottleneck.threshold = 0.95  # a sparser fresh mask than at 0.5
  built, chosen = [], []
  choose = CapacityPolicy.choose
  monkeypatch.setattr(CapacityPolicy, "choose", lambda self, counts: chosen.append(
      (np.quantile(counts, 0.99), choose(self, counts))) or chosen[-1][1])
  make = trainer.make_train_step
  monkeypatch.setattr(trainer, "make_train_step",
                      lambda *a, **k: built.append(a[-1]) or make(*a, **k))
  result = trainer.train_and_evaluate(c, tmp_path / "run")
  assert jax.device_count() == 8 and result["step"] == 8
  assert built[0] == 1024 and len(built) == len(set(built)) and set(built) <= set(
      buckets(1024))
  logs = read_metrics(tmp_path / "run", "train")
  assert [r["step"] for r in logs] == [4, 8]
  for r in logs:
    assert {"capacity", "overflow_rate", "overflow", "selected"} <= set(r)
    assert 0 <= r["overflow_rate"] < 1 and r["selected"] >= c.model.center_len
  assert logs[1]["capacity"] < 1024 and len(built) >= 2, chosen
  for need, capacity in chosen:  # the smallest bucket above the 0.99 quantile x 1.1
    assert capacity == min(b for b in buckets(1024) + (1024,) if b >= need * 1.1)
  assert np.isfinite(result["valid"]["mse"])
