"""The recipe every experiment shares, and what each variant changes in it.

Each `experiments/<row>.py` starts from `recipe(arg)` and then spells out its model and
anything else it changes, so the file shows its whole experiment:

* `paper` (the default): each row as the original's run script ran it (baselines.sh,
  Seq2Exp.sh; every row's docstring names its script and lines). The shared part is
  configs/experiment/hg38/gene_express.yaml: AdamW lr 5e-4, betas (0.9, 0.95), weight
  decay 1e-6 (lines 76-78), clipping at 1.0 (35), linear warm-up over the first 10% of
  50,000 steps from 1e-5, then cosine to 1e-4 (33, 66-72), batch 8 (53), bf16 (34); remat;
  model selected on validation MSE (87). A row whose script sets another batch or depth
  sets it (Mamba and the Caduceus rows: batch 16; every baseline: 4 blocks). Not carried:
  the seed 2222 (line 82: torch's random stream, and `ablate` gives seeds 0..K-1) and the
  validation cadence (`val_check_interval: 0.5`, line 39: every half epoch, about 1,000
  steps at batch 8 and 500 at batch 16 on fold 11's 15,985 genes; here every 2,000).
* `matched`: paper size and this recipe (batch 8 for every row), but every baseline as deep
  as Seq2Exp's generator + predictor (8 blocks) and reading what it reads in `synthetic`:
  the depth-matched comparison the synthetic benchmark makes, at paper size (what
  `paper` was before it followed the scripts).
* `smoke` (CI): 4 steps of batch 8 on the tests' tiny synthetic data set, a 1,024 bp crop,
  float32, logging/validating/checkpointing every 2-4 steps; `data.dir` is set by the test.
* `synthetic` (the CPU demo and `seq2exp benchmark`): 200 steps of batch 8 on a synthetic
  genome with 16 kb windows (`--config.data.dir`), float32 without remat, lr 2e-3 from 1e-4
  (sized so `make demo` trains three models in its 20 minutes on 2 CPU cores, with two
  simulated devices). A KL weight of 0 and a prior scale of 1 were tried on the development
  genome and did not change the valid Pearson (docs/benchmark.md, "Diagnosis").

The loss weights start at 0 (no KL, no continuity term); a row with a learned mask sets its
own. `train.grad_accum_steps` is 1 in every variant: `--config.train.grad_accum_steps=K`
keeps the optimizer batch `train.batch_size` and computes it as K micro-batches one after
another (Lightning's `accumulate_grad_batches`), for long windows on one accelerator.
"""

from __future__ import annotations

import ml_collections

from data_pipeline.errors import ConfigError

VARIANTS = ("paper", "matched", "smoke", "synthetic")


def recipe(arg: str | None) -> ml_collections.ConfigDict:
  """The shared sections for variant `arg` (None: paper); `model` is left to the row."""
  variant = arg or "paper"
  if variant not in VARIANTS:
    raise ConfigError(f"unknown config variant {variant!r}: expected one of {VARIANTS}")
  c = ml_collections.ConfigDict()
  c.experiment = ""
  c.variant = variant
  c.model = ml_collections.ConfigDict()
  c.mask = ml_collections.ConfigDict({
      "source": "learned", "generator_workdir": "", "top_fraction": 0.1})
  c.data = ml_collections.ConfigDict({
      "dir": "tfds_data/geneexp/k562_200000/1.0.0",
      "window": ml_collections.FieldReference(None, field_type=int),
      "train_split": "train", "eval_split": "valid", "num_threads": 2, "prefetch": 2})
  c.loss = ml_collections.ConfigDict({"kl_weight": 0.0, "continuity_weight": 0.0})
  c.optim = ml_collections.ConfigDict({
      "lr": 5e-4, "b1": 0.9, "b2": 0.95, "weight_decay": 1e-6, "grad_clip": 1.0,
      "warmup_fraction": 0.1, "init_lr": 1e-5, "end_lr": 1e-4})
  c.train = ml_collections.ConfigDict({
      "seed": 0, "steps": 50_000, "batch_size": 8, "eval_batch_size": 8,
      "dtype": "bfloat16", "remat": True, "shard_params": False,
      "log_every": 50, "eval_every": 2_000, "checkpoint_every": 1_000,
      "keep_checkpoints": 2, "sync_every": 8, "progress": True, "grad_accum_steps": 1})
  if variant == "smoke":
    c.data.dir = ""  # the tests point it at their tiny data set
    c.data.window = 1024
    c.train.update(steps=4, batch_size=8, eval_batch_size=8, dtype="float32", remat=False,
                   log_every=2, eval_every=4, checkpoint_every=2, progress=False)
  elif variant == "synthetic":
    c.data.dir = ""  # --config.data.dir: e.g. the `small` set `make demo` builds
    c.train.update(steps=200, batch_size=8, eval_batch_size=16, dtype="float32",
                   remat=False, log_every=20, eval_every=50, checkpoint_every=100)
    c.optim.update(lr=2e-3, init_lr=1e-4, end_lr=1e-4)
  return c


def model(**fields) -> ml_collections.ConfigDict:
  """The `model` section from a row's constructor arguments (nested dicts included)."""
  return ml_collections.ConfigDict(fields)
