"""Every experiment config builds, in every variant, and overrides are typed and checked."""

import pathlib

import jax
import jax.numpy as jnp
import pytest

from seq2exp_jax.config import loader as configs
from seq2exp_jax.train.task import build_model

EXPERIMENTS = sorted(pathlib.Path(__file__).parents[1].glob("experiments/*.py"))
NAMES = ["caduceus", "caduceus_signals", "hyena", "macs3_mask", "mamba", "seq2exp_hard",
         "seq2exp_retrain_top10", "seq2exp_soft"]


def test_one_config_per_row_of_the_paper():
  assert sorted(p.stem for p in EXPERIMENTS if not p.stem.startswith("_")) == NAMES


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
@pytest.mark.parametrize("variant", ["", ":paper", ":smoke", ":synthetic"])
def test_every_config_builds_its_model(path, variant):
  config = configs.load_config(f"{path}{variant}")
  assert config.experiment == path.stem
  assert config.variant == (variant[1:] or "paper")
  model = build_model(config)
  length = 512
  one = dict(dna=jnp.zeros((1, length, 4)), signals=jnp.zeros((1, length, 3)),
             rna_feat=jnp.zeros((1, 9)))
  if config.model.name == "seq2exp":
    one["blacklist"] = jnp.zeros((1, length), bool)
    if config.mask.source != "learned":
      one["mask"] = jnp.ones((1, length))
  center = min(config.model.args.center_len, 256)
  model = model.clone(center_len=center, **(
      {"seq_range": length} if config.model.args.get("pos_enc") else {}))
  shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), **one))
  assert jax.tree_util.tree_leaves(shapes)


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_paper_defaults_follow_the_spec(path):
  c = configs.load_config(str(path))
  assert (c.optim.lr, c.optim.b1, c.optim.b2, c.optim.weight_decay, c.optim.grad_clip) == (
      5e-4, 0.9, 0.95, 1e-6, 1.0)
  assert (c.train.steps, c.train.batch_size, c.train.dtype) == (50_000, 8, "bfloat16")
  assert (c.optim.warmup_fraction, c.optim.init_lr, c.optim.end_lr) == (0.1, 1e-5, 1e-4)
  assert c.model.args.d_model == 128 and c.model.args.center_len == 2000
  assert path.read_text().count("seq2exp train --config experiments/") == 1  # the command


def test_published_variants():
  soft = configs.load_config("experiments/seq2exp_soft.py")
  assert (soft.loss.kl_weight, soft.model.args.prior_scale_factor, soft.model.args.beta_min,
          soft.model.args.marginal_mean, soft.model.args.marginal_scale) == (
              0.01, 10.0, 1.0, 0.1, 10.0)
  hard = configs.load_config("experiments/seq2exp_hard.py")
  a = hard.model.args
  assert (a.prior_scale_factor, a.beta_min, a.marginal_mean, a.marginal_scale, a.threshold,
          a.hard, a.share_generator, a.pos_enc, a.seq_range) == (
              1.0, 0.0, 0.45, 0.1, 0.5, True, True, True, 200_000)
  assert configs.load_config("experiments/macs3_mask.py").mask.source == "peaks"
  top = configs.load_config("experiments/seq2exp_retrain_top10.py")
  assert (top.mask.source, top.mask.top_fraction) == ("generator_top", 0.1)


def test_overrides_are_typed_and_checked():
  c = configs.load_config("experiments/seq2exp_soft.py:smoke")
  configs.apply_overrides(c, ["train.steps=7", "optim.lr=0.01", "train.progress=false",
                              "model.args.d_model=8", "data.window=512"])
  assert (c.train.steps, c.optim.lr, c.train.progress, c.model.args.d_model,
          c.data.window) == (7, 0.01, False, 8, 512)
  with pytest.raises(KeyError, match="train.stepz"):
    configs.apply_overrides(c, ["train.stepz=3"])
  with pytest.raises(ValueError, match="train.steps"):
    configs.apply_overrides(c, ["train.steps=many"])
  with pytest.raises(ValueError, match="variant"):
    configs.load_config("experiments/seq2exp_soft.py:huge")
  with pytest.raises(FileNotFoundError, match="nope.py"):
    configs.load_config("experiments/nope.py")
  assert configs.split_overrides(["--workdir", "w", "--config.train.steps=3"]) == (
      ["--workdir", "w"], ["train.steps=3"])


def test_unknown_model_argument_is_named():
  c = configs.load_config("experiments/caduceus.py:smoke")
  c.model.args.n_layers = 3
  with pytest.raises(ValueError, match="n_layers"):
    build_model(c)
