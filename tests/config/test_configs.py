"""Every experiment config builds, in every variant, at its real window (eval_shape, no
compute); outside `paper` (the original's runs, tests/config/test_paper_variants.py) the
rows share one recipe and one size; overrides are typed and checked."""

import json
import math
import pathlib

import jax
import pytest

import original_counts
from conftest import REPO
from data_pipeline.batch import Batch
from data_pipeline.errors import ConfigError
from seq2exp_jax.config import loader as configs
from seq2exp_jax.train.task import build_model, build_task

EXPERIMENTS = sorted(p for p in (REPO / "experiments").glob("*.py")
                     if p.stem not in ("__init__", "common"))
NAMES = ["caduceus", "caduceus_signals", "enformer", "epinformer", "hyena", "macs3_mask",
         "mamba", "prism", "seq2exp_hard", "seq2exp_retrain_top10", "seq2exp_soft"]
# Named options, each a row that changes one model field of a paper row (docs/benchmark.md).
OPTION_ROWS = {"seq2exp_soft_contact": ("seq2exp_soft", {"pool": "centre+contact"}),
               "caduceus_signals_contact": ("caduceus_signals", {"pool": "centre+contact"})}
PAPER_WINDOW = 200_000


def test_one_config_per_row_of_the_paper_and_per_option_row():
  assert [p.stem for p in EXPERIMENTS] == sorted(NAMES + list(OPTION_ROWS))


@pytest.mark.parametrize("name", sorted(OPTION_ROWS))
@pytest.mark.parametrize("variant", ["", ":matched", ":smoke", ":synthetic"])
def test_an_option_row_changes_only_its_option(name, variant):
  base_name, change = OPTION_ROWS[name]
  row = configs.load_config(str(REPO / "experiments" / f"{name}.py{variant}")).to_dict()
  base = configs.load_config(str(REPO / "experiments" / f"{base_name}.py{variant}")).to_dict()
  assert row.pop("experiment") == name and base.pop("experiment") == base_name
  for field, value in change.items():
    assert base["model"].get(field) != value and row["model"][field] == value
    base["model"][field] = value
  assert row == base


def _shapes(config, length: int):
  """eval_shape of init and of one training forward at window `length`, batch 1."""
  model = build_model(config.model, dtype=config.train.dtype, remat=config.train.remat)
  batch = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype),
                       Batch.zeros(1, length, elements=True))
  mask = None if config.mask.source == "learned" else jax.ShapeDtypeStruct((1, length),
                                                                           "float32")

  def init_and_apply(key, batch, mask):
    kw = dict(dna=batch.dna, signals=batch.signals, rna_feat=batch.rna_feat,
              blacklist=batch.blacklist, mask=mask,
              **{name: getattr(batch, name) for name in model.extra_inputs})
    params = model.init({"params": key, "mask": key}, **kw)["params"]
    return params, model.apply({"params": params}, **kw, train=True, rngs={"mask": key})

  return jax.eval_shape(init_and_apply, jax.random.PRNGKey(0), batch, mask)


def _count(tree) -> int:
  return sum(math.prod(x.shape) for x in jax.tree.leaves(tree))


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
@pytest.mark.parametrize("variant", ["", ":matched", ":smoke", ":synthetic"])
def test_every_config_builds_its_model_at_its_window(path, variant):
  config = configs.load_config(f"{path}{variant}")
  assert config.experiment == path.stem
  assert config.variant == (variant[1:] or "paper")
  paper_size = config.variant in ("paper", "matched")
  length = config.data.window or (PAPER_WINDOW if paper_size else 16_384)
  params, out = _shapes(config, length)
  assert out.prediction.shape == (1,)
  assert (out.mask is None) == (config.model.name != "seq2exp")
  if config.model.get("pos_enc"):  # the position embedding spans the window read
    assert params["pos_emb"].shape == (length, config.model.backbone.d_model)
  assert _count(params) > 0


# The originals' counts at paper size (D=128; 4 + 4 layers; the baseline as baselines.sh
# ran it, 4 layers).
ORIGINAL_PAPER_COUNTS = {"seq2exp_soft": original_counts.seq2exp(128, 4, 4),
                         "caduceus_signals": original_counts.geneexp(128, 4)}


@pytest.mark.parametrize("name", sorted(ORIGINAL_PAPER_COUNTS))
def test_paper_size_parameter_counts_equal_the_originals(name):
  params, _ = _shapes(configs.load_config(str(REPO / "experiments" / f"{name}.py")), 4096)
  assert _count(params) == ORIGINAL_PAPER_COUNTS[name]


def test_rows_share_one_recipe_and_one_size():
  """No row wins by a different recipe or by being deeper or wider: per variant, every row
  has the same optimizer and training sections, width, and total number of blocks (not in
  `paper`, where each row is its original run: batch 16 for some, 4-block baselines)."""
  for variant in ("matched", "smoke", "synthetic"):
    rows = {p.stem: configs.load_config(f"{p}:{variant}") for p in EXPERIMENTS}
    recipes = {json.dumps([c.optim.to_dict(), c.train.to_dict(),
                           {k: v for k, v in c.data.to_dict().items() if k != "window"}],
                          sort_keys=True) for c in rows.values()}
    assert len(recipes) == 1, variant
    # Every row reads the recipe's window, but Prism, whose design is a short one (2 kb).
    shared = rows["seq2exp_soft"].data.window
    windows = {n: c.data.window for n, c in rows.items() if c.data.window != shared}
    assert windows == ({} if variant == "smoke" else {"prism": 2000}), (variant, windows)
    # Width and depth compare the rows on Seq2Exp's backbones; the other architectures of
    # Table 1 (EPInformer ...) are sized in their own config tests.
    rows = {n: c for n, c in rows.items() if c.model.name in ("seq2exp", "baseline")}
    widths = {c.model.backbone.d_model for c in rows.values()}
    depths = {name: (c.model.n_layer if c.model.name == "baseline" else
                     c.model.n_gen_layer * (1 if c.model.get("share_generator") else 2))
              for name, c in rows.items()}
    assert len(widths) == 1, (variant, widths)
    # Seq2Exp-hard shares one backbone between generator and predictor (as published).
    assert len({d for n, d in depths.items() if n != "seq2exp_hard"}) == 1, depths


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_every_config_shows_its_command(path):
  """(Its paper values: tests/config/test_paper_variants.py.)"""
  assert path.read_text().count("seq2exp train --config experiments/") == 1


def test_published_variants():
  soft = configs.load_config(str(REPO / "experiments/seq2exp_soft.py"))
  b = soft.model.bottleneck
  assert (soft.loss.kl_weight, b.prior_scale_factor, b.beta_min, b.marginal_mean,
          b.marginal_scale, b.hard) == (0.01, 10.0, 1.0, 0.1, 10.0, False)
  assert soft.model.backbone.init_n_layer == 64  # the original's default, never set
  hard = configs.load_config(str(REPO / "experiments/seq2exp_hard.py"))
  b, m = hard.model.bottleneck, hard.model
  assert (b.prior_scale_factor, b.beta_min, b.marginal_mean, b.marginal_scale, b.threshold,
          b.hard, m.share_generator, m.pos_enc, m.pack_selected) == (
              1.0, 0.0, 0.45, 0.1, 0.5, True, True, True, True)
  macs3 = configs.load_config(str(REPO / "experiments/macs3_mask.py"))
  assert macs3.mask.source == "peaks" and macs3.model.bottleneck is None
  top = configs.load_config(str(REPO / "experiments/seq2exp_retrain_top10.py"))
  assert (top.mask.source, top.mask.top_fraction) == ("generator_top", 0.1)


def test_position_embedding_follows_a_window_override():
  """The hard run's position embedding is derived from the window the model reads after
  the command line is applied (it was fixed before the overrides, and went stale)."""
  c = configs.load_config(str(REPO / "experiments/seq2exp_hard.py:smoke"))
  configs.apply_overrides(c, ["data.window=512"])
  params, _ = _shapes(c, c.data.window)
  assert params["pos_emb"].shape == (512, c.model.backbone.d_model)


def test_overrides_are_typed_and_checked():
  c = configs.load_config(str(REPO / "experiments/seq2exp_soft.py:smoke"))
  configs.apply_overrides(c, ["train.steps=7", "optim.lr=0.01", "train.progress=false",
                              "model.backbone.d_model=8", "data.window=512",
                              "model.backbone.dt_max=0.05"])
  assert (c.train.steps, c.optim.lr, c.train.progress, c.model.backbone.d_model,
          c.data.window, c.model.backbone.dt_max) == (7, 0.01, False, 8, 512, 0.05)
  assert build_model(c.model).backbone.dt_max == 0.05  # reaches the SSM
  with pytest.raises(ConfigError, match="train.stepz"):
    configs.apply_overrides(c, ["train.stepz=3"])
  with pytest.raises(ValueError, match="train.steps"):
    configs.apply_overrides(c, ["train.steps=many"])
  with pytest.raises(ValueError, match="variant"):
    configs.load_config(str(REPO / "experiments/seq2exp_soft.py:huge"))
  with pytest.raises(FileNotFoundError, match="nope.py"):
    configs.load_config("experiments/nope.py")
  assert configs.split_overrides(["--workdir", "w", "--config.train.steps=3"]) == (
      ["--workdir", "w"], ["train.steps=3"])


@pytest.mark.parametrize("change,message", [
    (lambda c: c.model.update(n_layers=3), "n_layers"),
    (lambda c: c.model.backbone.update(d_states=3), "d_states"),
    (lambda c: c.model.backbone.update(dtype="bfloat16"), "set train.dtype"),
    (lambda c: c.model.update(name="transformer"), "model.name 'transformer'"),
])
def test_unknown_model_arguments_are_named(change, message):
  c = configs.load_config(str(REPO / "experiments/caduceus.py:smoke"))
  change(c)
  with pytest.raises(ValueError, match=message):
    build_model(c.model)


def test_mask_source_must_fit_the_model():
  c = configs.load_config(str(REPO / "experiments/seq2exp_soft.py:smoke"))
  c.mask.source = "peaks"
  with pytest.raises(ValueError, match="needs model.name='seq2exp' with model.bottleneck=None"):
    build_task(c)
  c = configs.load_config(str(REPO / "experiments/macs3_mask.py:smoke"))
  c.mask.source = "learned"
  with pytest.raises(ValueError, match="needs model.bottleneck"):
    build_task(c)
