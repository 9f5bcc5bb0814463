"""`seq2exp verify-reference FILE.npz [--config FILE.json]`: run our model on a golden file.

Builds the model named by the JSON (`module` plus `kwargs` or `caduceus_config`), imports
the file's `param/*`, runs it on `input/*` and prints, for every `output/*` and `inter/*`
(the original's values inside the forward pass), the max absolute and relative error. Exits
1 if any is missing, mis-shaped or outside rtol/atol (masks exact where the reference is 0
or 1).
"""

from __future__ import annotations

import argparse
import pathlib

from data_pipeline.errors import DataFormatError


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("npz", type=pathlib.Path, help="golden file (param/, input/, output/)")
  parser.add_argument("--config", type=pathlib.Path, default=None,
                      help="model config JSON (default: the .npz's .json sidecar)")
  parser.add_argument("--rtol", type=float, default=1e-4)
  parser.add_argument("--atol", type=float, default=1e-5)


def run(args) -> int:
  import jax  # noqa: PLC0415  (heavy; only once the command runs)

  from seq2exp_jax.torch_port import convert  # noqa: PLC0415
  from seq2exp_jax.torch_port import reference as ref  # noqa: PLC0415

  with convert.content_errors():  # the files' content, named by the message
    case = ref.GoldenCase.load(args.npz, args.config)
    model = ref.model_from_config(case.config)
    params = ref.flax_params(model, case.params, str(args.npz))
  if not case.outputs:
    raise DataFormatError(f"{args.npz}: no output/* arrays to compare")
  capacity = None
  if model.kind == "seq2exp" and model.module.pack_selected:
    capacity = ref.exact_capacity(model, params, case.inputs)  # concrete, before jit
  outputs = jax.jit(lambda p, i: ref.forward(model, p, i, capacity))(params, case.inputs)
  failed = 0
  print(f"{args.npz}: {model.kind} ({type(model.module).__name__}), "
        f"rtol={args.rtol} atol={args.atol}")
  print(f"{'output':<18} {'shape':<16} {'max abs err':>12} {'max rel err':>12}  status")
  expected = case.expected()
  skipped = [k for k in expected if k.startswith("inter/") and k not in outputs]
  compared = {k: v for k, v in expected.items() if k not in skipped}
  width = max(len(k) for k in expected) + 1
  for key, want in compared.items():
    if key not in outputs:
      result = {"ok": False, "why": "missing from our outputs"}
    else:
      result = ref.compare(key, outputs[key], want, rtol=args.rtol, atol=args.atol)
    failed += not result["ok"]
    errs = (f"{result['max_abs']:>12.3e} {result['max_rel']:>12.3e}" if "max_abs" in result
            else f"{'-':>12} {'-':>12}")
    status = "ok" if result["ok"] else f"FAIL ({result['why']})"
    print(f"{key:<{width}} {str(tuple(want.shape)):<16} {errs}  {status}")
  for key in skipped:  # values inside the original that our code never forms
    print(f"{key:<{width}} {str(tuple(expected[key].shape)):<16} {'-':>12} {'-':>12}  "
          "not compared (no counterpart in the port)")
  print(f"{len(compared) - failed}/{len(compared)} outputs match")
  return 1 if failed else 0
