"""`seq2exp score-variants --workdir RUN --data DS --vcf FILE --out OUT.tsv [--split S]`:
the predicted effect of each variant on every gene whose window holds it (or `--params
PARAMS --config X` instead of --workdir, see seq2exp_jax/commands/params_source.py).

OUT.tsv, tab-separated, one row per (ALT allele, gene), in VCF order:
  chr pos id ref alt   the variant as in the VCF (pos 1-based)
  ensid tss            the gene (tss 0-based) and distance_to_tss = pos - 1 - tss (bp)
  ref_prediction, alt_prediction, delta = alt - ref   predicted log expression
  mask                 the reference mask, largest over the REF bases (NA without a mask)

SNVs and indels up to 1 kb; an indel keeps the TSS at L / 2 and fills the far edge of
the window with N (seq2exp_jax/outputs/variants.py says exactly how). REF is checked
against the data set's sequence; a bad record, an unknown chromosome or a REF that does
not match is one error line naming the VCF line. Default splits: all of the data set.
"""

from __future__ import annotations

import argparse
import pathlib

from seq2exp_jax.commands import arguments, params_source

ACCEPTS_CONFIG_OVERRIDES = True  # with --params
SPLITS = ("train", "valid", "test")


def add_arguments(parser: argparse.ArgumentParser) -> None:
  params_source.add_arguments(parser)
  parser.add_argument("--data", required=True, type=arguments.existing_dir,
                      help="prepared data set dir")
  parser.add_argument("--vcf", required=True, type=pathlib.Path,
                      help="variants (VCF, plain or bgzipped)")
  parser.add_argument("--out", required=True, type=pathlib.Path, help="the table (.tsv)")
  parser.add_argument("--split", action="append", choices=SPLITS,
                      help="genes of this split (repeatable; default: every split)")


def stored_splits(data: pathlib.Path) -> list[str]:
  """The splits the prepared data set holds (dataset_info.json), in SPLITS order."""
  import json  # noqa: PLC0415
  info = data / "dataset_info.json"
  try:
    names = {s["name"] for s in json.loads(info.read_text())["splits"]}
  except (OSError, ValueError, KeyError, TypeError):
    names = set(SPLITS)  # opening the split names what is wrong with the data set
  return [s for s in SPLITS if s in names]


def run(args) -> int:
  import jax  # noqa: PLC0415

  from data_pipeline import io  # noqa: PLC0415
  from data_pipeline.errors import MissingInputError, OutputExistsError  # noqa: PLC0415
  from seq2exp_jax.evaluation.evaluate import eval_loader  # noqa: PLC0415
  from seq2exp_jax.outputs import variants as var  # noqa: PLC0415
  from seq2exp_jax.train.task import build_task  # noqa: PLC0415
  from seq2exp_jax.train.trainer import load_generator  # noqa: PLC0415

  if args.out.is_dir():
    raise OutputExistsError(f"--out {args.out}: is a directory; expected the table's path")
  if not args.out.parent.is_dir():
    raise MissingInputError(f"--out {args.out}: directory {args.out.parent} does not exist")
  sizes = io.read_chrom_lengths(args.data)
  variants, skipped = var.read_vcf(args.vcf, sizes)
  model = params_source.load(args, data_dir=str(args.data))
  config = model.config
  task = build_task(config, load_generator)
  predict = jax.jit(lambda p, batch, f: task.apply(p, batch, frozen=f))
  effects = []
  for split in args.split or stored_splits(args.data):
    loader = eval_loader(args.data, split, config.train.eval_batch_size,
                         window=config.data.window, num_threads=config.data.num_threads,
                         prefetch=config.data.prefetch)
    effects += var.score_variants(
        lambda p, batch: predict(p, batch, task.frozen), model.params,
        var.host_examples(loader.host_batches()), variants, loader.to_global,
        loader.global_batch_size, args.vcf)
  var.write_effects(args.out, effects)
  placed = {(e.variant.line, e.variant.alt) for e in effects}
  outside = sum((v.line, v.alt) not in placed for v in variants)
  print(f"{len(variants)} alleles of {args.vcf} ({skipped} records without ALT skipped): "
        f"{len(effects)} (allele, gene) pairs scored with {model.label}, {outside} alleles "
        f"in no gene's window; wrote {args.out}")
  return 0
