"""The `seq2exp` command line: one sub-command per job (`seq2exp_jax/cli.py` is its entry).

Each sub-command lives in its own module that exposes `add_arguments(parser)` and
`run(args) -> int`; modules are imported only when their command runs, so `seq2exp --help`
stays fast and a command's heavy dependencies load only when needed.

Errors (data_pipeline/errors.py): a `Seq2ExpError` (bad input, config, data set, checkpoint,
a failed run) is printed as one line, `seq2exp <command>: <message>`, and the command exits
with its `exit_code` (2 for bad input or usage, 1 for a failure); any other exception is a
bug and keeps its traceback. `--debug` (anywhere on the line) shows the traceback always.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from data_pipeline.errors import Seq2ExpError
from seq2exp_jax.commands import runtime
from seq2exp_jax.config.loader import split_overrides

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "convert-torch": ("seq2exp_jax.commands.convert_torch",
                      "convert a checkpoint of the original PyTorch code into our params"),
    "verify-reference": ("seq2exp_jax.commands.verify_reference",
                         "run our model on a golden .npz and compare every output"),
    "demo": ("seq2exp_jax.commands.demo",
             "the pipeline end to end on the synthetic genome (what `make demo` runs)"),
    "train": ("seq2exp_jax.commands.train",
              "train an experiment config (experiments/<name>.py[:variant]) in a workdir"),
    "eval": ("seq2exp_jax.commands.eval",
             "metrics of a workdir or --params on a split (MSE, MAE, Pearson, Spearman)"),
    "predict": ("seq2exp_jax.commands.predict",
                "predictions.csv, the mask as bigWig, discovered elements as BED, plots"),
    "attribute": ("seq2exp_jax.commands.attribute",
                  "gradient x input tracks (bigWig) and saturation mutagenesis of an interval"),
    "score-variants": ("seq2exp_jax.commands.score_variants",
                       "predicted effect of each VCF variant on the genes whose window holds it"),
    "export": ("seq2exp_jax.commands.export",
               "a jax.export artifact of a trained predictor (workdir or --params)"),
    "motifs": ("seq2exp_jax.commands.motifs",
               "TF motifs enriched in discovered elements vs matched background (JASPAR/MEME)"),
    "links": ("seq2exp_jax.commands.links",
              "enhancer-gene links: mask score, signals, ABC score, in-silico deletion"),
    "evaluate-links": ("seq2exp_jax.commands.evaluate_links",
                       "AUPRC of links against a CRISPRi benchmark (EPCrisprBenchmark)"),
    "diagnose": ("seq2exp_jax.commands.diagnose",
                 "does a trained model use its distal window? gradients, saliency, occlusion"),
    "benchmark": ("seq2exp_jax.commands.benchmark",
                  "synthetic genome -> every model x seeds -> simple baselines -> one table"),
    "ablate": ("seq2exp_jax.commands.ablate",
               "train several configs x seeds (resumable) and write the comparison table"),
    "synth": ("data_pipeline.commands.synth",
              "write a synthetic genome with known causal elements in the GeneExp layout"),
    "build-data": ("data_pipeline.commands.build_data",
                   "build the prepared TFDS data set from a GeneExp-layout data root"),
}


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="seq2exp", description=__doc__.splitlines()[0])
  sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
  for name, (module, help_text) in COMMANDS.items():
    p = sub.add_parser(name, help=help_text, description=help_text)
    p.set_defaults(_module=module)
    # Arguments are added lazily below, only for the chosen command.
  return parser


def main(argv: list[str] | None = None) -> int:
  runtime.prefer_memory_saving_cpu_schedule()
  # Orbax reports every read-only CheckpointManager it opens through absl at WARNING.
  logging.getLogger("absl").setLevel(logging.ERROR)
  argv = list(sys.argv[1:] if argv is None else argv)
  debug = "--debug" in argv
  argv = [a for a in argv if a != "--debug"]
  try:
    return _run(argv)
  except Seq2ExpError as e:
    if debug:
      raise
    name = argv[0] if argv and argv[0] in COMMANDS else ""
    message = " ".join(str(e).split())  # one line, whatever the message holds
    print(f"seq2exp {name}: {message}" if name else f"seq2exp: {message}", file=sys.stderr,
          flush=True)
    return e.exit_code


def _run(argv: list[str]) -> int:
  parser = build_parser()
  # Find the command first, then let its module declare its own arguments.
  if argv and argv[0] in COMMANDS:
    module = importlib.import_module(COMMANDS[argv[0]][0])
    cmd_parser = argparse.ArgumentParser(prog=f"seq2exp {argv[0]}",
                                         description=COMMANDS[argv[0]][1])
    module.add_arguments(cmd_parser)
    rest, overrides = split_overrides(argv[1:])
    if overrides and not getattr(module, "ACCEPTS_CONFIG_OVERRIDES", False):
      cmd_parser.error(f"{argv[0]} takes no --config.<field>=<value> overrides")
    args = cmd_parser.parse_args(rest)
    args.config_overrides = overrides
    return int(module.run(args) or 0)
  parser.parse_args(argv)  # prints help / usage errors
  return 2
