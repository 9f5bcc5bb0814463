"""`seq2exp links --workdir RUN --data DS --split S --out OUT [--elements BED ...]`: ranked
enhancer-gene links of a trained model, one row per candidate element and gene of the
split (seq2exp_jax/outputs/links.py has the columns), with each element's in-silico
deletion and keep-alone effects (seq2exp_jax/outputs/perturb.py). `--params PARAMS --config
experiments/X.py[:variant]` instead of --workdir: params made elsewhere
(seq2exp_jax/commands/params_source.py).

Candidates: the --elements BED files / ABC EnhancerList tables (e.g. a synthetic genome's
truth/causal_elements.bed and truth/decoys.bed), else the learned mask's runs (as
`seq2exp predict`'s elements.bed). Writes OUT (tab-separated, sorted) and, when pysam is
installed, OUT.gz (bgzip) with its tabix index OUT.gz.tbi; all replace old versions at once.
"""

from __future__ import annotations

import argparse
import pathlib
import re

from seq2exp_jax.commands import arguments, params_source

ACCEPTS_CONFIG_OVERRIDES = True  # with --params


def add_arguments(parser: argparse.ArgumentParser) -> None:
  params_source.add_data_arguments(parser, "the links table to write (e.g. links.tsv)")
  parser.add_argument("--elements", nargs="+", metavar="BED",
                      help="candidate elements: BED files or ABC EnhancerList-style tables "
                           "(default: the runs of the learned mask)")
  parser.add_argument("--gene-names", type=pathlib.Path, metavar="GeneList.txt",
                      help="a gene table with columns name (Ensembl id) and gene_name: "
                           "TargetGene becomes the symbol (default: the Ensembl id)")
  parser.add_argument("--score", choices=["mask_mean", "mask_max", "deletion"],
                      help="what the Score column holds (default: mask_mean, or deletion "
                           "for a model without a mask)")
  parser.add_argument("--threshold", type=arguments.unit_interval, default=0.5,
                      help="without --elements: mask value at or above which a base belongs "
                           "to an element")
  parser.add_argument("--min-length", type=arguments.positive_int, default=50,
                      help="without --elements: shortest element, bp")
  parser.add_argument("--chunk", type=arguments.positive_int, default=8,
                      help="perturbed copies per model call")
  parser.add_argument("--cell-type", help="the CellType column (default: from the data set "
                                          "name, e.g. k562_16384 -> K562)")
  parser.add_argument("--chrom-sizes", type=pathlib.Path,
                      help=".chrom.sizes or JSON (default: stored in the data set)")


def cell_type_of(data: pathlib.Path) -> str:
  """K562 for a data set at .../k562_<window>[...]/1.0.0 (the name build-data gives)."""
  from data_pipeline.layout import CELL_FILES  # noqa: PLC0415
  cells = {c.lower(): c for c in CELL_FILES}
  for name in (data.resolve().parent.name, data.resolve().name):
    m = re.match(r"([a-z0-9]+)_\d+", name)
    if m and m.group(1) in cells:
      return cells[m.group(1)]
  return "NA"


def check_out(out: pathlib.Path) -> None:
  from data_pipeline.errors import OutputExistsError  # noqa: PLC0415
  if out.is_dir():
    raise OutputExistsError(f"--out {out}: is a directory; expected the links file to write "
                            "(e.g. links.tsv)")


def run(args) -> int:
  import jax  # noqa: PLC0415
  import numpy as np  # noqa: PLC0415

  from data_pipeline import io  # noqa: PLC0415
  from data_pipeline.errors import InputError  # noqa: PLC0415
  from seq2exp_jax.evaluation.evaluate import eval_loader, gather_to_host  # noqa: PLC0415
  from seq2exp_jax.model.promoter import promoter_positions  # noqa: PLC0415
  from seq2exp_jax.outputs import genome_tracks as tracks  # noqa: PLC0415
  from seq2exp_jax.outputs import links as lib  # noqa: PLC0415
  from seq2exp_jax.outputs.crispr_benchmark import read_gene_names  # noqa: PLC0415
  from seq2exp_jax.outputs.perturb import perturbation_effects  # noqa: PLC0415
  from seq2exp_jax.train.step import make_eval_step  # noqa: PLC0415
  from seq2exp_jax.train.task import build_task  # noqa: PLC0415
  from seq2exp_jax.train.trainer import load_generator  # noqa: PLC0415

  check_out(args.out)
  model = params_source.load(args, data_dir=str(args.data))
  config, params = model.config, model.params
  task = build_task(config, load_generator)
  sizes = io.read_chrom_lengths(args.chrom_sizes or args.data)
  candidates = lib.read_candidates(args.elements, sizes) if args.elements else None
  names = read_gene_names(args.gene_names) if args.gene_names else {}
  cell_type = args.cell_type or cell_type_of(args.data)
  loader = eval_loader(args.data, args.split, config.train.eval_batch_size,
                       window=config.data.window, num_threads=config.data.num_threads,
                       prefetch=config.data.prefetch)
  eval_step = make_eval_step(task)

  def apply_fn(both, batch):  # params and the frozen generator, never baked into the jit
    return task.apply(both[0], batch, frozen=both[1])

  rows, genes, score = [], 0, args.score
  for batch in loader:
    host = jax.tree.map(gather_to_host, batch)  # one device: the perturbed copies
    out = {k: gather_to_host(v) for k, v in eval_step(params, batch).items()}
    if score is None:
      score = "mask_mean" if "mask" in out else "deletion"
    if "mask" not in out and (candidates is None or score != "deletion"):
      raise InputError(f"{model.label}: {config.experiment} has no mask, so it needs "
                       "--elements (candidates) and --score deletion")
    length = host.window
    keep = promoter_positions(length, min(task.center_len, length))
    windows, elements = [], []
    for i, valid in enumerate(host.valid):
      ensid, chrom = str(batch.genes.ensid[i]), str(batch.genes.chrom[i])
      gene = lib.GeneWindow(ensid, names.get(ensid, ensid), chrom, int(batch.genes.tss[i]),
                            length, cell_type)
      if not valid:
        windows.append(None)
        elements.append([])
        continue
      if candidates is not None:
        found = lib.in_window(candidates, chrom, *gene.span(sizes[chrom]))
      else:
        found = [lib.Candidate(chrom, e.start, e.end, f"mask_run|{chrom}:{e.start}-{e.end}")
                 for e in tracks.elements_from_mask(
                     chrom, gene.tss, out["mask"][i], ensid, threshold=args.threshold,
                     min_length=args.min_length, ignore=keep, chrom_length=sizes[chrom])]
      windows.append(gene)
      elements.append(found)
    intervals = [None if w is None else np.array([(e.start - w.start, e.end - w.start)
                                                  for e in found], np.int64).reshape(-1, 2)
                 for w, found in zip(windows, elements)]
    effects = perturbation_effects(apply_fn, (params, task.frozen), host, intervals, keep,
                                   chunk=args.chunk)
    for i, (gene, found, effect) in enumerate(zip(windows, elements, effects)):
      if gene is None:
        continue
      genes += 1
      rows += lib.gene_rows(
          gene, found, signals=host.signals[i], mask=out["mask"][i] if "mask" in out else None,
          peaks=None if host.peaks is None else host.peaks[i],
          truth=None if host.truth is None else host.truth[i], prediction=effect.prediction,
          deletion=effect.deletion, keep_alone=effect.keep_alone, score=score,
          default_class="candidate" if candidates is not None else "mask_run")
  written = lib.write_links(args.out, rows)
  print(f"{len(rows)} element-gene links of {genes} {args.split} genes ({model.label}; "
        f"Score = {score}); wrote " + ", ".join(map(str, written)))
  return 0
