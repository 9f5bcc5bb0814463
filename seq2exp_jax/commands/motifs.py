"""`seq2exp motifs --elements BED (--data-root ROOT | --fasta GENOME.fa) --out DIR`: which
transcription-factor motifs the discovered elements carry more often than background DNA
(seq2exp_jax/outputs/motifs.py says how sites are scored and tested, motif_background.py
how the background is drawn). Writes, into DIR, as one set (the four replace their
namesakes only once all are complete; nothing else in DIR is touched):

  motifs.tsv      one row per motif, sorted by q: elements / background with a hit, their
                  fractions, odds ratio [95% interval], one-sided Fisher p, BH q
  motifs.png      hit fractions of the top motifs, and -log10 q against log2 odds ratio
  motifs.json     the settings, the counts and the background's base composition
  background.bed  the background regions used (score = 1000 x GC; not with shuffled)

--elements is any BED3+ (predict's elements.bed, truth/causal_elements.bed); overlapping
intervals are merged first. --background bed --background-bed FILE centres the background on
the user's regions instead (those overlapping an element left out), e.g. every accessible
candidate element: then an enriched motif is preferred beyond accessibility. --motifs
takes a JASPAR or MEME file (default: the shipped JASPAR subset,
data_pipeline/resources/motifs.jaspar).
"""

from __future__ import annotations

import argparse
import pathlib

from seq2exp_jax.commands import arguments

OUTPUTS = ("motifs.tsv", "motifs.png", "motifs.json", "background.bed")


def _float(text: str, ok, what: str) -> float:
  try:
    value = float(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f"{text!r}: expected {what}") from None
  if not ok(value):
    raise argparse.ArgumentTypeError(f"{value}: expected {what}")
  return value


def _probability(text: str) -> float:
  return _float(text, lambda v: 0.0 < v < 1.0, "a p-value in (0, 1), e.g. 1e-4")


def _non_negative(text: str) -> float:
  return _float(text, lambda v: v >= 0.0, "a number >= 0")


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--elements", required=True, type=pathlib.Path,
                      help="BED of the elements to test (e.g. predict's elements.bed)")
  genome = parser.add_mutually_exclusive_group(required=True)
  genome.add_argument("--data-root", type=arguments.existing_dir,
                      help="GeneExp-layout data root (its hg38/hg38.ml.fa is read)")
  genome.add_argument("--fasta", type=pathlib.Path, help="genome FASTA")
  parser.add_argument("--out", required=True, type=pathlib.Path)
  parser.add_argument("--motifs", type=pathlib.Path,
                      help="JASPAR or MEME motif file (default: the shipped JASPAR subset)")
  parser.add_argument("--background", default="matched", choices=["matched", "shuffled", "bed"],
                      help="regions matched in length and GC near the elements, "
                           "dinucleotide shuffles of the elements, or --background-bed")
  parser.add_argument("--background-bed", type=pathlib.Path,
                      help="with --background bed: regions (e.g. all accessible candidate "
                           "elements) the background is centred on, matched in length and "
                           "GC; those overlapping an element are left out")
  parser.add_argument("--per-element", type=arguments.positive_int, default=2,
                      help="background regions per element")
  parser.add_argument("--flank", type=arguments.positive_int, default=50_000,
                      help="matched background lies within this many bp of its element")
  parser.add_argument("--p-value", type=_probability, default=1e-4,
                      help="a site is a hit when its score's p-value is at most this")
  parser.add_argument("--pseudocount", type=_non_negative, default=0.1,
                      help="background-weighted pseudocount added to the frequencies")
  parser.add_argument("--seed", type=arguments.non_negative_int, default=0)


def run(args) -> int:
  import numpy as np  # noqa: PLC0415

  from data_pipeline import io  # noqa: PLC0415
  from data_pipeline.errors import InputError, OutputExistsError  # noqa: PLC0415
  from data_pipeline.layout import GeneExpLayout  # noqa: PLC0415
  from data_pipeline.readers.genome import Genome  # noqa: PLC0415
  from data_pipeline.readers.motifs import read_motif_file  # noqa: PLC0415
  from seq2exp_jax.outputs import motif_background as bg  # noqa: PLC0415
  from seq2exp_jax.outputs import motifs as motifs_lib  # noqa: PLC0415

  if (args.background == "bed") != (args.background_bed is not None):
    raise InputError("--background-bed FILE goes with --background bed (and that needs it)")
  if args.out.exists() and not args.out.is_dir():
    raise OutputExistsError(f"--out {args.out}: exists and is not a directory")
  matrices = read_motif_file(args.motifs)
  genome = Genome(GeneExpLayout(args.data_root).fasta if args.data_root else args.fasta)
  elements = bg.read_regions(args.elements, genome.lengths)
  element_seqs = bg.sequences(genome, elements)
  regions = []
  if args.background == "matched":
    regions = bg.matched_background(genome, elements, per_element=args.per_element,
                                    flank=args.flank, seed=args.seed)
    background_seqs = bg.sequences(genome, regions)
  elif args.background == "bed":
    regions = bg.bed_background(genome, elements,
                                bg.read_regions(args.background_bed, genome.lengths),
                                per_element=args.per_element, seed=args.seed)
    background_seqs = bg.sequences(genome, regions)
  else:
    background_seqs = bg.shuffled_background(element_seqs, per_element=args.per_element,
                                             seed=args.seed)
  if not background_seqs:
    raise InputError(f"--elements {args.elements}: no background region (--background "
                     f"{args.background}): none could be drawn within --flank {args.flank} "
                     "bp of any element, or every --background-bed region overlaps one")
  rows, composition = motifs_lib.motif_enrichment(
      element_seqs, background_seqs, matrices, p_value=args.p_value,
      pseudocount=args.pseudocount)
  lengths = np.array([e.end - e.start for e in elements])
  element_gc = np.array([bg.gc_content(s) for s in element_seqs])
  background_gc = np.array([bg.gc_content(s) for s in background_seqs])
  summary = {
      "elements_file": str(args.elements), "elements": len(elements),
      "element_bp": {"total": int(lengths.sum()), "median": float(np.median(lengths))},
      "fasta": str(genome.path), "motif_file": str(args.motifs or "shipped JASPAR subset"),
      "motifs": len(matrices), "background": args.background,
      "background_regions": len(background_seqs), "per_element": args.per_element,
      "flank": args.flank if args.background == "matched" else None, "seed": args.seed,
      "background_bed": str(args.background_bed) if args.background_bed else None,
      "p_value": args.p_value, "pseudocount": args.pseudocount,
      "base_composition": dict(zip("ACGT", map(float, composition))),
      "gc_mean": {"elements": float(np.nanmean(element_gc)),
                  "background": float(np.nanmean(background_gc))},
      "significant_q05": [r.name for r in rows if r.q_value <= 0.05]}
  with io.file_set(args.out) as out:
    motifs_lib.write_table(out / "motifs.tsv", rows)
    motifs_lib.plot_enrichment(
        out / "motifs.png", rows, title=f"{args.elements.name}: {len(elements)} elements vs "
        f"{len(background_seqs)} {args.background} background regions")
    io.write_json(out / "motifs.json", summary)
    if regions:
      bg.write_bed(out / "background.bed", regions, "background")
  stale = args.out / "background.bed"
  if not regions and stale.exists():
    stale.unlink()  # a previous matched run's regions would no longer describe this table
  print(f"{len(elements)} elements ({int(lengths.sum()):,} bp) vs {len(background_seqs)} "
        f"{args.background} background regions; GC {summary['gc_mean']['elements']:.3f} vs "
        f"{summary['gc_mean']['background']:.3f}; hit = site p <= {args.p_value:g}")
  print(f"{'motif':<12} {'elements':>9} {'backgr.':>9} {'odds ratio [95%]':>24} {'q':>9}")
  for r in rows[:10]:
    print(f"{r.name:<12} {r.fraction_elements:>9.3f} {r.fraction_background:>9.3f} "
          f"{r.odds_ratio:>8.3g} [{r.ci_low:.3g}, {r.ci_high:.3g}]".ljust(57)
          + f" {r.q_value:>9.3g}")
  print(f"wrote to {args.out}: " + ", ".join(OUTPUTS[:3] + (OUTPUTS[3:] if regions else ())))
  return 0
