"""The `seq2exp` command line: one sub-command per job.

Each sub-command lives in its own module that exposes `add_arguments(parser)` and
`run(args) -> int`; modules are imported only when their command runs, so `seq2exp --help`
stays fast and a command's heavy dependencies load only when needed.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from seq2exp_jax import runtime

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "convert-torch": ("seq2exp_jax.commands.convert_torch",
                      "convert a checkpoint of the original PyTorch code into our params"),
    "verify-reference": ("seq2exp_jax.commands.verify_reference",
                         "run our model on a golden .npz and compare every output"),
    "demo": ("seq2exp_jax.commands.demo",
             "the pipeline end to end on the synthetic genome (what `make demo` runs)"),
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
  argv = sys.argv[1:] if argv is None else argv
  parser = build_parser()
  # Find the command first, then let its module declare its own arguments.
  if argv and argv[0] in COMMANDS:
    module = importlib.import_module(COMMANDS[argv[0]][0])
    cmd_parser = argparse.ArgumentParser(prog=f"seq2exp {argv[0]}",
                                         description=COMMANDS[argv[0]][1])
    module.add_arguments(cmd_parser)
    args = cmd_parser.parse_args(argv[1:])
    return int(module.run(args) or 0)
  parser.parse_args(argv)  # prints help / usage errors
  return 2


if __name__ == "__main__":
  sys.exit(main())
