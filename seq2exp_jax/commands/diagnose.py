"""`seq2exp diagnose --workdir DIR [--data DS] [--split valid] [--batches N]`: does a trained
model use the distal part of its window? Prints and writes DIR/diagnose_<split>.json:

  receptive_field   mean |d prediction / d input| by distance from the TSS (relative to
                    0-500 bp)
  saliency_shares   |gradient x input| on the promoter, causal elements, decoys, the rest
  gradient_norms    |d Huber| and |d (kl_weight x KL)| per top-level module
  mask              the generator Beta mean's sd over positions; mask vs signal-prior r
  occlusion         prediction change when distal DNase/H3K27ac are removed

See docs/benchmark.md, "Diagnosis" for what the numbers showed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import pathlib

from seq2exp_jax.commands import arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--workdir", required=True, type=arguments.existing_dir)
  parser.add_argument("--data", help="prepared data set dir (default: the run's data.dir)")
  parser.add_argument("--split", default="valid", choices=["train", "valid", "test"])
  parser.add_argument("--which", default="best", choices=["best", "latest"])
  parser.add_argument("--batches", type=arguments.positive_int, default=4,
                      help="batches of 8 genes to use")
  parser.add_argument("--keep", type=arguments.positive_int, default=4000,
                      help="central bp whose signals occlusion keeps")


def run(args) -> int:
  import jax  # noqa: PLC0415

  from data_pipeline import io  # noqa: PLC0415
  from seq2exp_jax.evaluation import diagnostics as diag  # noqa: PLC0415
  from seq2exp_jax.evaluation.evaluate import eval_loader  # noqa: PLC0415
  from seq2exp_jax.train import checkpoint  # noqa: PLC0415
  from seq2exp_jax.train.task import build_task  # noqa: PLC0415
  from seq2exp_jax.train.trainer import load_generator  # noqa: PLC0415

  config, params, step = checkpoint.load_run(args.workdir, args.which)
  task = build_task(config, load_generator)
  dc = config.data
  loader = eval_loader(args.data or dc.dir, args.split, 8, window=dc.window,
                       num_threads=dc.num_threads, prefetch=dc.prefetch)
  batches = list(itertools.islice(iter(loader), args.batches))
  apply_fn = jax.jit(lambda p, b: task.apply(p, b))
  result = {
      "workdir": str(args.workdir), "step": step, "split": args.split,
      "genes": int(sum(int(jax.device_get(b.valid).sum()) for b in batches)),
      "receptive_field": diag.receptive_field(apply_fn, params, batches),
      "saliency_shares": diag.saliency_shares(apply_fn, params, batches, task.center_len),
      "gradient_norms": diag.gradient_norms(task.loss, params, batches, task.kl_weight,
                                            jax.random.PRNGKey(0)),
      "mask": diag.mask_statistics(apply_fn, params, batches, task.center_len),
      "occlusion": diag.occlusion(apply_fn, params, batches, args.keep)}
  io.write_json(args.workdir / f"diagnose_{args.split}.json", result)
  print(json.dumps(result, indent=1))
  return 0
