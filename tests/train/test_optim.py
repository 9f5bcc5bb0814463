"""The paper's optimizer: AdamW without decay on A_log and D, clipping, warm-up + cosine."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from seq2exp_jax.model.seq2exp import Seq2Exp
from seq2exp_jax.model.ssm_config import SSMConfig
from seq2exp_jax.train.optim import learning_rate, make_optimizer, weight_decay_mask

OPTIM = ml_collections.ConfigDict({
    "lr": 5e-4, "b1": 0.9, "b2": 0.95, "weight_decay": 1e-6, "grad_clip": 1.0,
    "warmup_fraction": 0.1, "init_lr": 1e-5, "end_lr": 1e-4})


def test_weight_decay_mask_spares_a_log_and_d_only():
  model = Seq2Exp(backbone=SSMConfig(d_model=8, d_state=2), n_gen_layer=1, n_enc_layer=1,
                  center_len=4)
  x = (jnp.zeros((1, 16, 4)), jnp.zeros((1, 16, 3)), jnp.zeros((1, 9)))
  params = jax.eval_shape(lambda: model.init(
      {"params": jax.random.PRNGKey(0), "mask": jax.random.PRNGKey(0)}, *x)["params"])
  mask = weight_decay_mask(params)
  flat = {jax.tree_util.keystr(p): m for p, m in jax.tree_util.tree_leaves_with_path(mask)}
  spared = sorted(k for k, m in flat.items() if not m)
  assert spared and all(k.endswith(("['A_log']", "['D']")) for k in spared)
  assert len(spared) == 8  # generator and encoder x fwd and rev x (A_log, D)
  assert flat["['pToExpr']['dense_0']['kernel']"] and flat["['mask_output']['bias']"]


def test_zero_gradient_step_decays_everything_but_a_log_and_d():
  rng = np.random.default_rng(0)
  params = {"layers": {"mixer": {"in_proj": {"kernel": rng.normal(size=(2, 8, 32))},
                                 "mamba_fwd": {"A_log": rng.normal(size=(2, 16, 4)),
                                               "D": rng.normal(size=(2, 16))}}},
            "pToExpr": {"dense_0": {"kernel": rng.normal(size=(17, 8)),
                                    "bias": np.zeros(8)}}}
  params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params)
  optim = OPTIM.copy_and_resolve_references()
  optim.update(weight_decay=0.5, lr=0.1, init_lr=0.1, end_lr=0.1)
  tx = make_optimizer(optim, learning_rate(optim, 10))
  zeros = jax.tree.map(jnp.zeros_like, params)
  new = jax.jit(lambda p: optax.apply_updates(p, tx.update(zeros, tx.init(p), p)[0]))(params)
  for (path, before), after in zip(jax.tree_util.tree_leaves_with_path(params),
                                   jax.tree.leaves(new)):
    name = jax.tree_util.keystr(path)
    if name.endswith(("['A_log']", "['D']")) or not np.any(before):
      np.testing.assert_array_equal(after, before, err_msg=name)
    else:  # AdamW shrinks the weights: w - lr * wd * w
      np.testing.assert_allclose(after, before * (1 - 0.1 * 0.5), rtol=1e-5, err_msg=name)


def test_schedule_warms_up_linearly_then_decays_by_cosine():
  steps = 1000
  schedule = learning_rate(OPTIM, steps)
  values = np.array([float(schedule(s)) for s in range(steps + 1)])
  assert values[0] == pytest.approx(1e-5, rel=1e-4)
  assert values[100] == pytest.approx(5e-4, rel=1e-4)  # end of the 10% warm-up
  np.testing.assert_allclose(np.diff(values[:101]), (5e-4 - 1e-5) / 100, rtol=1e-4)
  assert values[steps] == pytest.approx(1e-4, rel=1e-4)
  assert np.all(np.diff(values[100:]) <= 1e-12)  # never rises after the peak
  middle = 100 + (steps - 100) // 2
  assert values[middle] == pytest.approx((5e-4 + 1e-4) / 2, rel=1e-3)  # cosine midpoint


def test_warm_up_longer_than_the_run_is_refused():
  with pytest.raises(ValueError, match="warmup_fraction 1.0"):
    learning_rate(ml_collections.ConfigDict(dict(OPTIM, warmup_fraction=1.0)), 100)


def test_gradients_are_clipped_to_the_global_norm():
  params = {"w": jnp.ones((4,))}
  tx = make_optimizer(OPTIM, learning_rate(OPTIM, 10))
  state = tx.init(params)
  clip = optax.clip_by_global_norm(OPTIM.grad_clip)
  big = {"w": jnp.full((4,), 100.0)}
  clipped, _ = clip.update(big, clip.init(params))
  assert float(optax.global_norm(clipped)) == pytest.approx(1.0)
  updates, _ = tx.update(big, state, params)
  assert np.all(np.isfinite(updates["w"]))
