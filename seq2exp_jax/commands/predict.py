"""`seq2exp predict --workdir DIR --data TFDS_DIR --split test --out OUT`: what a trained
model says about every gene of a split, as files people open (or `--params PARAMS --config
experiments/X.py[:variant]` instead of --workdir: params made elsewhere, see
seq2exp_jax/commands/params_source.py):

  predictions.csv   ensid, chrom, tss, target, prediction
  metrics.json      MSE, MAE, Pearson, Spearman (and mask AUPRC / ratio when known)
  mask.bw           the learned mask in genome coordinates (the maximum where windows of
                    neighbouring genes overlap)
  elements.bed      discovered elements: runs of mask >= --threshold of at least
                    --min-length bases outside the promoter, named by gene, score = 1000 x
                    mean mask
  predicted_vs_observed.png, genes/<ensid>.png (mask vs DNase / H3K27ac / MACS3 peaks /
                    truth for the --plot-genes most expressed genes)

Models without a mask (the plain backbones) write the table, metrics and scatter only.
"""

from __future__ import annotations

import argparse
import csv
import pathlib

from seq2exp_jax.commands import arguments, distributed, params_source

ACCEPTS_CONFIG_OVERRIDES = True  # with --params


def add_arguments(parser: argparse.ArgumentParser) -> None:
  params_source.add_data_arguments(parser)
  parser.add_argument("--threshold", type=arguments.unit_interval, default=0.5,
                      help="mask value at or above which a base belongs to an element")
  parser.add_argument("--min-length", type=arguments.positive_int, default=50,
                      help="shortest element, bp")
  parser.add_argument("--plot-genes", type=arguments.non_negative_int, default=4)
  parser.add_argument("--chrom-sizes", type=pathlib.Path,
                      help=".chrom.sizes or JSON (default: stored in the data set)")
  distributed.add_arguments(parser)  # accepted so a multi-process launch gets a clear refusal


OUTPUTS = {"predictions.csv", "metrics.json", "predicted_vs_observed.png", "mask.bw",
           "elements.bed", "genes"}


def check_out(out: pathlib.Path) -> None:
  """--out may be new, empty or a previous `predict` output (which is replaced whole);
  a directory holding anything else is refused, so nothing of the user's is deleted."""
  from data_pipeline.errors import OutputExistsError  # noqa: PLC0415
  if not out.exists():
    return
  if not out.is_dir():
    raise OutputExistsError(f"--out {out}: exists and is not a directory")
  others = sorted(p.name for p in out.iterdir() if p.name not in OUTPUTS)
  if others:
    raise OutputExistsError(f"--out {out}: holds files predict did not write ({others[:3]}"
                            f"{' ...' if len(others) > 3 else ''}); choose a new or empty "
                            "directory")


def _write_csv(path: pathlib.Path, rows: list[dict]) -> None:
  from data_pipeline.io import atomic_output  # noqa: PLC0415
  with atomic_output(path) as tmp, open(tmp, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=["ensid", "chrom", "tss", "target", "prediction"])
    writer.writeheader()
    writer.writerows(rows)


def run(args) -> int:
  distributed.initialize(args)
  import jax  # noqa: PLC0415
  import numpy as np  # noqa: PLC0415

  from data_pipeline import io  # noqa: PLC0415
  from data_pipeline.errors import InputError  # noqa: PLC0415
  from seq2exp_jax.evaluation.evaluate import SplitMetrics, batches, eval_loader  # noqa
  from seq2exp_jax.model.promoter import promoter_positions  # noqa: PLC0415
  from seq2exp_jax.outputs import genome_tracks as tracks  # noqa: PLC0415
  from seq2exp_jax.outputs import plots  # noqa: PLC0415
  from seq2exp_jax.train.step import make_eval_step  # noqa: PLC0415
  from seq2exp_jax.train.task import build_task  # noqa: PLC0415
  from seq2exp_jax.train.trainer import load_generator  # noqa: PLC0415

  if jax.process_count() > 1:
    raise InputError(f"--distributed: predict runs in one process (it writes one set of "
                     f"files and reads one checkpoint on one device), this launch has "
                     f"{jax.process_count()}; run it once, without --distributed")
  check_out(args.out)
  model = params_source.load(args, data_dir=str(args.data))
  config, params = model.config, model.params
  task = build_task(config, load_generator)
  sizes = io.read_chrom_lengths(args.chrom_sizes or args.data)
  loader = eval_loader(args.data, args.split, config.train.eval_batch_size,
                       window=config.data.window, num_threads=config.data.num_threads,
                       prefetch=config.data.prefetch)
  keep = ("signals", "peaks", "truth")
  rows, windows, elements, to_plot = [], [], [], []
  split_metrics = SplitMetrics(task.center_len)
  for host in batches(make_eval_step(task), params, loader, keep=keep):
    split_metrics.update(host)
    for i in np.flatnonzero(host["valid"]):
      chrom, tss, ensid = str(host["chrom"][i]), int(host["tss"][i]), str(host["ensid"][i])
      rows.append({"ensid": ensid, "chrom": chrom, "tss": tss,
                   "target": f"{host['target'][i]:.6g}",
                   "prediction": f"{host['prediction'][i]:.6g}"})
      if "mask" not in host:
        continue
      mask = host["mask"][i]
      start = tracks.window_start(tss, mask.shape[0])
      windows.append((chrom, start, mask.astype(np.float32)))
      elements += tracks.elements_from_mask(
          chrom, tss, mask, ensid, threshold=args.threshold, min_length=args.min_length,
          ignore=promoter_positions(mask.shape[0], task.center_len),
          chrom_length=sizes.get(chrom))
      to_plot.append((float(host["target"][i]), ensid, chrom, start, mask,
                      {k: host[k][i] for k in keep if k in host}))
      to_plot = sorted(to_plot, reverse=True, key=lambda t: t[0])[:args.plot_genes]

  # Written into a temporary sibling and swapped in as a set: a failure half-way leaves
  # the old outputs (or none), never a mix of two runs.
  with io.atomic_output_dir(args.out, overwrite=True) as out:
    metrics = split_metrics.compute()
    metrics.update(**model.source, split=args.split,
                   n_elements=len(elements) if windows else 0)
    _write_csv(out / "predictions.csv", rows)
    io.write_json(out / "metrics.json", metrics)
    target = np.array([float(r["target"]) for r in rows])
    prediction = np.array([float(r["prediction"]) for r in rows])
    plots.scatter_predictions(out / "predicted_vs_observed.png", target, prediction,
                              title=f"{config.experiment}, {args.split} split",
                              metrics={k: metrics[k] for k in ("mse", "pearson", "spearman")})
    written = ["predictions.csv", "metrics.json", "predicted_vs_observed.png"]
    if windows:
      tracks.write_mask_bigwig(out / "mask.bw", sizes, windows)
      tracks.write_elements(out / "elements.bed", elements)
      (out / "genes").mkdir(exist_ok=True)
      for _, ensid, chrom, start, mask, fields in to_plot:
        intervals = {"MACS3 peaks": fields["peaks"].astype(bool)}
        if "truth" in fields:
          intervals.update({"truth: causal": fields["truth"] == 1,
                            "truth: decoy": fields["truth"] == 2})
        plots.gene_tracks(out / "genes" / f"{ensid}.png", chrom=chrom, start=start,
                          title=f"{ensid} ({config.experiment})",
                          tracks={"mask": mask, "DNase": fields["signals"][:, 1],
                                  "H3K27ac": fields["signals"][:, 0]},
                          intervals=intervals, tss=start + len(mask) // 2)
      written += ["mask.bw", f"elements.bed ({len(elements)} elements)",
                  f"genes/ ({len(to_plot)} plots)"]
  print(f"{len(rows)} genes of {args.split}: MSE {metrics['mse']:.4f}, Pearson "
        f"{metrics['pearson']:.4f}" + (f", mask AUPRC {metrics['auprc']:.4f}"
                                      if "auprc" in metrics else ""))
  print(f"wrote to {args.out}: " + ", ".join(written))
  return 0
