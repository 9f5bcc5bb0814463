"""`seq2exp attribute --workdir RUN --data DS --split S --out DIR [--genes ENSG,...]
[--ism CHR:START-END]`: which bases and signals a trained model's prediction of each gene
rests on, as genome tracks (or `--params PARAMS --config X` instead of --workdir, see
seq2exp_jax/commands/params_source.py). seq2exp_jax/outputs/attribution.py computes them.

  dna.bw            gradient x input of the predicted expression at the base present
  H3K27ac.bw, DNase.bw, HiC.bw
                    gradient x input of each signal track
                    (window coordinates as predict's mask.bw; where windows overlap, each
                    base holds the value for the gene with the nearest TSS)
  genes.tsv         ensid, chr, tss, window_start, prediction, and the sum of each track's
                    attributions over the window (d/dt prediction((1 + t) x) at t = 0)
  plots/<ensid>.png |attributions| next to the mask for the first --plot-genes genes
  with --ism CHR:START-END (0-based, half-open, as BED):
  ism.tsv           chr, pos (1-based, as VCF), ref, alt, ensid, delta = prediction with
                    the alternative base - reference, for every base of the interval in
                    each selected gene's window x the 3 other bases (4 at N)
  ism_max_abs.bw    max |delta| per base

Default genes: every gene of the split (the tracks hold L x 16 bytes per gene in memory
until written: pick genes with --genes at 200 kb).
"""

from __future__ import annotations

import argparse
import pathlib
import re

from seq2exp_jax.commands import arguments, params_source

ACCEPTS_CONFIG_OVERRIDES = True  # with --params
OUTPUTS = {"dna.bw", "H3K27ac.bw", "DNase.bw", "HiC.bw", "genes.tsv", "plots", "ism.tsv",
           "ism_max_abs.bw"}
GENE_COLUMNS = ("ensid", "chr", "tss", "window_start", "prediction")


def genome_interval(text: str) -> tuple[str, int, int]:
  """`chr1:1000-2000` (commas allowed) -> ('chr1', 1000, 2000), 0-based half-open."""
  m = re.fullmatch(r"(\S+):([\d,_]+)-([\d,_]+)", text.strip())
  if not m:
    raise argparse.ArgumentTypeError(f"{text!r}: expected CHR:START-END, e.g. chr1:1000-2000")
  start, end = (int(re.sub(r"[,_]", "", g)) for g in m.group(2, 3))
  if start >= end:
    raise argparse.ArgumentTypeError(f"{text!r}: expected START < END (0-based, half-open)")
  return m.group(1), start, end


def add_arguments(parser: argparse.ArgumentParser) -> None:
  params_source.add_data_arguments(parser)
  parser.add_argument("--genes", type=arguments.comma_list, metavar="ENSG,...",
                      help="genes to attribute (default: every gene of the split)")
  parser.add_argument("--ism", type=genome_interval, metavar="CHR:START-END",
                      help="saturation mutagenesis of this interval (0-based, half-open)")
  parser.add_argument("--chunk", type=arguments.positive_int,
                      help="ISM mutants per device call (default train.eval_batch_size; a "
                           "multiple of the device count)")
  parser.add_argument("--plot-genes", type=arguments.non_negative_int, default=4)


def check_out(out: pathlib.Path) -> None:
  """--out may be new, empty or a previous `attribute` output (replaced whole)."""
  from data_pipeline.errors import OutputExistsError  # noqa: PLC0415
  if out.exists() and not out.is_dir():
    raise OutputExistsError(f"--out {out}: exists and is not a directory")
  others = sorted(p.name for p in out.iterdir() if p.name not in OUTPUTS) if \
      out.exists() else []
  if others:
    raise OutputExistsError(f"--out {out}: holds files attribute did not write "
                            f"({', '.join(others[:3])}); choose a new or empty directory")


def _write_genes(path: pathlib.Path, genes) -> None:
  from data_pipeline import io  # noqa: PLC0415
  from seq2exp_jax.outputs.attribution import TRACKS  # noqa: PLC0415
  lines = ["\t".join(GENE_COLUMNS + tuple(f"{t}_sum" for t in TRACKS)) + "\n"]
  for g in genes:
    sums = [f"{float(g.track(t).sum(dtype='float64')):.6g}" for t in TRACKS]
    lines.append("\t".join([g.ensid, g.chrom, str(g.tss), str(g.start),
                            f"{g.prediction:.6g}", *sums]) + "\n")
  io.write_text(path, "".join(lines))


def _plot(path: pathlib.Path, g, truth, label: str) -> None:
  import numpy as np  # noqa: PLC0415
  from seq2exp_jax.outputs import plots  # noqa: PLC0415
  panels = {} if g.mask is None else {"mask": g.mask}
  panels.update({f"|{t} grad x input|": np.abs(g.track(t)) for t in ("dna", "DNase",
                                                                      "H3K27ac")})
  intervals = {} if truth is None else {"truth: causal": truth == 1, "truth: decoy": truth == 2}
  plots.gene_tracks(path, chrom=g.chrom, start=g.start, title=f"{g.ensid} ({label})",
                    tracks=panels, intervals=intervals, tss=g.tss)


def run(args) -> int:
  import jax  # noqa: PLC0415
  import numpy as np  # noqa: PLC0415

  from data_pipeline import io  # noqa: PLC0415
  from data_pipeline.errors import InputError  # noqa: PLC0415
  from seq2exp_jax.evaluation.evaluate import eval_loader  # noqa: PLC0415
  from seq2exp_jax.outputs import attribution as attr  # noqa: PLC0415
  from seq2exp_jax.train.task import build_task  # noqa: PLC0415
  from seq2exp_jax.train.trainer import load_generator  # noqa: PLC0415

  check_out(args.out)
  model = params_source.load(args, data_dir=str(args.data))
  config = model.config
  task = build_task(config, load_generator)
  sizes = io.read_chrom_lengths(args.data)
  if args.ism and args.ism[0] not in sizes:
    raise InputError(f"--ism {args.ism[0]}:{args.ism[1]}-{args.ism[2]}: chromosome "
                     f"{args.ism[0]!r} is not in the data set {args.data}")
  loader = eval_loader(args.data, args.split, config.train.batch_size,
                       window=config.data.window, num_threads=config.data.num_threads,
                       prefetch=config.data.prefetch)
  chunk = args.chunk or config.train.eval_batch_size
  if chunk % loader.mesh.shape["data"]:
    raise InputError(f"--chunk {chunk}: expected a multiple of the {loader.mesh.shape['data']}"
                     " devices")
  params = (model.params, task.frozen)  # both arguments: nothing compiled in as a constant

  def apply_fn(p, batch):
    return task.apply(p[0], batch, frozen=p[1])

  gradient_x_input = attr.make_gradient_x_input(apply_fn)
  mutate = attr.make_mutation_fn(apply_fn, chunk, loader.sharding) if args.ism else None
  wanted = set(args.genes or ())
  genes, ism, truths = [], [], {}
  for batch in loader:
    valid = np.asarray(jax.device_get(batch.valid))
    rows = [i for i in np.flatnonzero(valid) if not wanted or batch.genes.ensid[i] in wanted]
    if not rows:
      continue
    host = jax.device_get(gradient_x_input(params, batch))
    truth = None if batch.truth is None else np.asarray(jax.device_get(batch.truth))
    for i in rows:
      ensid, chrom = str(batch.genes.ensid[i]), str(batch.genes.chrom[i])
      g = attr.GeneAttribution(ensid, chrom, int(batch.genes.tss[i]),
                               float(host["prediction"][i]), host["dna"][i],
                               host["signals"][i], host["mask"][i] if "mask" in host else None)
      genes.append(g)
      if truth is not None and len(truths) < args.plot_genes:
        truths[ensid] = truth[i]
      if args.ism and chrom == args.ism[0]:
        window = np.arange(args.ism[1], args.ism[2]) - g.start
        window = window[(window >= 0) & (window < len(g.dna))
                        & (g.start + window < sizes[chrom])]
        if window.size:
          row = jax.tree.map(lambda x, i=i: x[i:i + 1], batch)
          ism.append(attr.saturation_mutagenesis(mutate, params, row, window, chunk,
                                                 ensid=ensid, chrom=chrom, tss=g.tss))
  missing = sorted(wanted - {g.ensid for g in genes})
  if missing:
    raise InputError(f"--genes: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}"
                     f" not in the {args.split} split of {args.data}")
  if not genes:
    raise InputError(f"{args.data}: the {args.split} split has no genes")
  if args.ism and not ism:
    raise InputError(f"--ism {args.ism[0]}:{args.ism[1]}-{args.ism[2]}: in no selected "
                     f"gene's window of the {args.split} split")

  with io.atomic_output_dir(args.out, overwrite=True) as out:
    written = attr.write_attribution_tracks(out, sizes, genes)
    _write_genes(out / "genes.tsv", genes)
    written.append(f"genes.tsv ({len(genes)} genes)")
    if args.plot_genes:
      (out / "plots").mkdir()
      for g in genes[:args.plot_genes]:
        _plot(out / "plots" / f"{g.ensid}.png", g, truths.get(g.ensid), model.label)
      written.append(f"plots/ ({min(len(genes), args.plot_genes)})")
    if ism:
      n = attr.write_ism(out / "ism.tsv", out / "ism_max_abs.bw", sizes, ism,
                         len(genes[0].dna))
      written += [f"ism.tsv ({n} mutations, {len(ism)} genes)", "ism_max_abs.bw"]
  print(f"attributions of {len(genes)} genes of {args.split} ({model.label}); wrote to "
        f"{args.out}: " + ", ".join(written))
  return 0
