"""`seq2exp convert-torch CKPT --config CONFIG.json --out PARAMS.msgpack`.

Reads a checkpoint of the original PyTorch Seq2Exp code, either a Lightning `.ckpt`
(needs the optional `torch` extra; its state_dict keys start with `model.`) or an `.npz`
holding `param/<state_dict key>` arrays, plus the model config (a JSON as in the golden
files: `module` and `caduceus_config` or `kwargs`), and writes our params as a Flax msgpack
file (atomically: a temp file, then a rename).
"""

from __future__ import annotations

import argparse
import pathlib

from data_pipeline.errors import DataFormatError, MissingInputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("checkpoint", type=pathlib.Path, help=".ckpt (Lightning) or .npz")
  parser.add_argument("--config", type=pathlib.Path, required=True,
                      help="model config JSON (module + caduceus_config or kwargs)")
  parser.add_argument("--out", type=pathlib.Path, required=True, help="output .msgpack")
  parser.add_argument("--prefix", default=None,
                      help="state_dict key prefix to strip (default: 'model.' for .ckpt)")


def load_state_dict(path: pathlib.Path, prefix: str | None):
  """PyTorch key -> numpy array, and the prefix to strip."""
  import numpy as np  # noqa: PLC0415

  if not path.exists():
    raise MissingInputError(f"{path}: no such file")
  if path.suffix == ".npz":
    try:
      with np.load(path, allow_pickle=False) as data:
        state = {k[len("param/"):]: data[k] for k in data.files if k.startswith("param/")}
    except (OSError, ValueError, EOFError) as e:
      raise DataFormatError(f"{path}: not a readable .npz of param/<name> arrays "
                            f"({type(e).__name__}: {e})") from e
    if not state:
      raise DataFormatError(f"{path}: no param/<name> arrays")
    return state, prefix or ""
  try:
    import torch  # noqa: PLC0415
  except ImportError as e:
    raise DataFormatError(f"{path}: reading a PyTorch checkpoint needs torch "
                          "(pip install 'seq2exp-jax[torch]'), or pass an .npz of "
                          "param/<name>") from e
  try:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
  except Exception as e:  # noqa: BLE001  (torch raises many kinds for a file not its own)
    raise DataFormatError(f"{path}: not a PyTorch checkpoint torch.load can read "
                          f"({type(e).__name__}: {' '.join(str(e).split())[:200]})") from e
  if not isinstance(ckpt, dict):
    raise DataFormatError(f"{path}: expected a state_dict or a Lightning checkpoint (a dict), "
                          f"got {type(ckpt).__name__}")
  state = ckpt.get("state_dict", ckpt)
  return ({k: v.float().numpy() for k, v in state.items() if hasattr(v, "numpy")},
          "model." if prefix is None else prefix)


def convert_checkpoint(path: pathlib.Path, config_path: pathlib.Path,
                       prefix: str | None = None):
  """(the ReferenceModel of the original's model config, our params) of a checkpoint of the
  original code (also what `--init-from` / `--params` read for a .ckpt or .npz)."""
  from seq2exp_jax.torch_port import convert  # noqa: PLC0415
  from seq2exp_jax.torch_port import reference as ref  # noqa: PLC0415

  with convert.content_errors():  # the files' content, named by the message
    state, prefix = load_state_dict(path, prefix)
    state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not config_path.is_file():
      raise MissingInputError(f"{config_path}: no such file (the original's model config "
                              "JSON: module + caduceus_config or kwargs)")
    model = ref.model_from_config(ref.load_config(config_path))
    return model, ref.flax_params(model, state, str(path))


def run(args) -> int:

  import jax  # noqa: PLC0415
  from flax import serialization  # noqa: PLC0415

  from data_pipeline.io import atomic_output  # noqa: PLC0415

  model, params = convert_checkpoint(args.checkpoint, args.config, args.prefix)
  args.out.parent.mkdir(parents=True, exist_ok=True)
  with atomic_output(args.out) as tmp:
    tmp.write_bytes(serialization.msgpack_serialize(params))
  n = sum(v.size for v in jax.tree_util.tree_leaves(params))
  print(f"wrote {args.out}: {model.kind} params, {n:,} values")
  return 0
