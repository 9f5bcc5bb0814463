"""`seq2exp demo --workdir DIR`: the pipeline end to end on the embedded synthetic genome.

From nothing: `synth --preset small`, `build-data`, one global batch through the sharded
loader on every local device, a Seq2Exp-soft forward pass on it (data-parallel, params
replicated), the MACS3 peak mask scored against the planted causal elements, and the port
checked against the original PyTorch code on the bundled golden file. Training, evaluation
and export join this command with the trainer.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

from seq2exp_jax import cli

GOLDEN = pathlib.Path(__file__).resolve().parents[2] / "tests" / "data" / "d_seq2exp_soft.npz"


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--workdir", type=pathlib.Path, default=pathlib.Path("runs/demo"))
  parser.add_argument("--preset", default="small", choices=["tiny", "small", "medium"])
  parser.add_argument("--seed", type=int, default=0)


def _step(title: str):
  print(f"\n== {title}", flush=True)
  return time.perf_counter()


def run(args) -> int:
  import jax  # noqa: PLC0415
  import numpy as np  # noqa: PLC0415

  from data_pipeline.layout import GeneExpLayout  # noqa: PLC0415
  from data_pipeline.loader import ShardedLoader  # noqa: PLC0415
  from seq2exp_jax.seq2exp import Seq2Exp  # noqa: PLC0415

  root, tfds_dir = args.workdir / "data", args.workdir / "tfds"
  t = _step(f"synthetic genome ({args.preset}) -> {root}")
  if not GeneExpLayout(root).chr_length_json.exists():
    if cli.main(["synth", "--out", str(root), "--preset", args.preset,
                 "--seed", str(args.seed)]):
      return 1
  else:
    print("already there")
  truth = json.loads((root / "truth" / "labels.json").read_text())
  window = int(truth["window"])
  print(f"{len(truth['genes'])} genes, window {window:,} bp, noise-ceiling Pearson "
        f"{truth['noise_ceiling_pearson']:.3f} ({time.perf_counter() - t:.1f} s)")

  t = _step(f"prepared data set -> {tfds_dir}")
  built = sorted(tfds_dir.glob("geneexp/*/1.0.0/dataset_info.json"))
  if not built:
    if cli.main(["build-data", "--data-root", str(root), "--window", str(window),
                 "--out", str(tfds_dir)]):
      return 1
    built = sorted(tfds_dir.glob("geneexp/*/1.0.0/dataset_info.json"))
  ds_dir = built[0].parent
  print(f"{ds_dir} ({time.perf_counter() - t:.1f} s)")

  t = _step(f"one global batch on {jax.device_count()} device(s), Seq2Exp-soft forward")
  loader = ShardedLoader(ds_dir, "train", global_batch_size=jax.device_count(),
                         seed=args.seed)
  batch = next(iter(loader))
  length = batch["dna"].shape[1]
  model = Seq2Exp(d_model=32, n_gen_layer=2, n_enc_layer=2, center_len=min(2000, length // 4))
  params = model.init(jax.random.PRNGKey(args.seed), batch["dna"][:1], batch["signals"][:1],
                      batch["blacklist"][:1], batch["rna_feat"][:1])
  forward = jax.jit(lambda p, *inputs: model.apply(p, *inputs))
  out = forward(params, batch["dna"], batch["signals"], batch["blacklist"], batch["rna_feat"])
  mask = np.asarray(out.mask)
  print(f"dna {batch['dna'].shape} sharded as {batch['dna'].sharding.spec}; "
        f"prediction {out.prediction.shape}; untrained mask mean {mask.mean():.3f}; "
        f"kl {float(out.kl):.3f} ({time.perf_counter() - t:.1f} s)")

  t = _step("MACS3 DNase peaks vs the planted elements (the paper's MACS3 mask)")
  truth, peaks, hits = 0, 0, 0
  for b in ShardedLoader(ds_dir, "test", global_batch_size=jax.device_count(),
                         shuffle=False, drop_remainder=False, num_epochs=1):
    valid = np.asarray(b["valid"])[:, None]
    causal = (np.asarray(b["truth"]) == 1) & valid
    called = np.asarray(b["peaks"]) & valid
    truth, peaks, hits = truth + causal.sum(), peaks + called.sum(), hits + (causal & called).sum()
  print(f"test split: peaks cover {peaks:,} bp, causal elements {truth:,} bp; precision "
        f"{hits / max(peaks, 1):.2f}, recall {hits / max(truth, 1):.2f} "
        f"({time.perf_counter() - t:.1f} s)")

  _step("the port against the original PyTorch Seq2Exp (golden file)")
  if GOLDEN.exists():
    if cli.main(["verify-reference", str(GOLDEN)]):
      return 1
  else:
    print(f"{GOLDEN} not found (installed without the tests); skipped")
  print(f"\noutputs under {args.workdir}")
  return 0
