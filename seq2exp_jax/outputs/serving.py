"""Serve a predictor exported by `seq2exp_jax.export.export_predictor`.

Self-contained on purpose: it imports only the standard library, numpy and jax (no
seq2exp_jax, no flax), so it can be copied next to an artifact and used without the model
code, either as a module

    predictor = ExportedPredictor.load("model.s2x")
    out = predictor({"dna": dna, "signals": signals, "rna_feat": rna_feat})

or as a script: `python serving.py ARTIFACT INPUTS.npz OUT.npz` (the npz files keyed by
input / output name).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pathlib
import sys
import tempfile
import zipfile
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

FORMAT_NAME = "seq2exp-jax-exported-predictor"
FORMAT_VERSION = 1
MANIFEST, EXPORTED, PARAMS = "manifest.json", "exported.bin", "params.npz"
_FIELDS = ("format", "format_version", "inputs", "outputs", "params", "platforms")


def unflatten_params(flat: dict[str, Any]) -> dict[str, Any]:
  """{'a/b/c': array} -> nested dicts."""
  tree: dict[str, Any] = {}
  for path, value in flat.items():
    *parents, leaf = path.split("/")
    node = tree
    for part in parents:
      node = node.setdefault(part, {})
    node[leaf] = value
  return tree


class ExportedPredictor:
  """A deserialized `jax.export.Exported` predictor with its params and manifest.

  Inputs and outputs are dicts of arrays with any batch size B leading, e.g. dna (B, L, 4),
  signals (B, L, S), blacklist (B, L) bool, rna_feat (B, F) -> prediction (B,) and, for
  Seq2Exp, mask (B, L); `input_specs` lists the exact names, shapes and dtypes.
  """

  def __init__(self, path: pathlib.Path, manifest: dict, exported: jax.export.Exported,
               params: dict[str, Any]):
    self.path, self.manifest, self.exported, self.params = path, manifest, exported, params
    self._call = jax.jit(exported.call)

  @property
  def metadata(self) -> dict:
    """The metadata dict given at export (model config, training step, ...)."""
    return self.manifest.get("metadata", {})

  @property
  def input_specs(self) -> dict[str, tuple[tuple[int | None, ...], np.dtype]]:
    """name -> (shape with None for the batch, dtype), in call order."""
    return {s["name"]: (tuple(s["shape"]), jnp.dtype(s["dtype"]))
            for s in self.manifest["inputs"]}

  @property
  def output_names(self) -> tuple[str, ...]:
    return tuple(o["name"] for o in self.manifest["outputs"])

  @classmethod
  def load(cls, path: str | os.PathLike) -> ExportedPredictor:
    """Reads and validates an artifact written by `export_predictor`."""
    path = pathlib.Path(path)
    where = f"serving.py: {str(path)!r}"
    try:
      zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as e:
      raise ValueError(f"{where}: not a readable export artifact (a zip archive): {e}") from e
    with zf:
      missing = [m for m in (MANIFEST, EXPORTED, PARAMS) if m not in zf.namelist()]
      if missing:
        raise ValueError(f"{where}: missing member(s) {missing}; expected {MANIFEST}, "
                         f"{EXPORTED} and {PARAMS}")
      try:
        manifest = json.loads(zf.read(MANIFEST).decode("utf-8"))
      except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{where}: {MANIFEST} is not valid JSON: {e}") from e
      cls._check_manifest(manifest, where)
      blob, npz = zf.read(EXPORTED), zf.read(PARAMS)
    try:
      exported = jax.export.deserialize(bytearray(blob))
    except Exception as e:  # noqa: BLE001  (any decoding failure means a bad member)
      raise ValueError(f"{where}: {EXPORTED} could not be deserialized: {e}") from e
    here = jax.export.default_export_platform()
    if here not in exported.platforms:
      raise ValueError(f"{where}: lowered for platforms {list(exported.platforms)} but this "
                       f"machine's default platform is {here!r} (e.g. set JAX_PLATFORMS=cpu "
                       "or re-export with platforms including it)")
    with np.load(io.BytesIO(npz), allow_pickle=False) as z:
      flat = dict(z.items())
    for key, spec in manifest["params"].items():
      if key not in flat:
        raise ValueError(f"{where}: {PARAMS} lacks param {key!r} listed in {MANIFEST}")
      dtype = jnp.dtype(spec["dtype"])
      if flat[key].dtype != dtype:  # e.g. bfloat16, which .npy stores as raw bytes
        flat[key] = flat[key].view(dtype)
      if list(flat[key].shape) != list(spec["shape"]):
        raise ValueError(f"{where}: param {key!r} has shape {flat[key].shape}, {MANIFEST} "
                         f"says {tuple(spec['shape'])}")
    params = unflatten_params({k: flat[k] for k in manifest["params"]})
    names = {s["name"]: 0 for s in manifest["inputs"]}
    if jax.tree.structure(((params, names), {})) != exported.in_tree:
      raise ValueError(f"{where}: the params and inputs {sorted(names)} in {MANIFEST} do not "
                       f"match the exported function's arguments {exported.in_tree}")
    return cls(path, manifest, exported, params)

  @staticmethod
  def _check_manifest(manifest: Any, where: str) -> None:
    if not isinstance(manifest, dict):
      raise ValueError(f"{where}: {MANIFEST} must be a JSON object")
    missing = [f for f in _FIELDS if f not in manifest]
    if missing:
      raise ValueError(f"{where}: {MANIFEST} lacks field(s) {missing}")
    if manifest["format"] != FORMAT_NAME:
      raise ValueError(f"{where}: {MANIFEST} field 'format' is {manifest['format']!r}, "
                       f"expected {FORMAT_NAME!r}")
    if manifest["format_version"] != FORMAT_VERSION:
      raise ValueError(f"{where}: {MANIFEST} field 'format_version' is "
                       f"{manifest['format_version']!r}; this loader reads version "
                       f"{FORMAT_VERSION}")
    for field in ("inputs", "outputs"):
      specs = manifest[field]
      if not isinstance(specs, list) or not specs or not all(
          isinstance(s, dict) and isinstance(s.get("name"), str) and
          isinstance(s.get("shape"), list) and isinstance(s.get("dtype"), str) for s in specs):
        raise ValueError(f"{where}: {MANIFEST} field {field!r} must be a non-empty list of "
                         "{name: str, shape: list, dtype: str}")
    for s in manifest["inputs"]:
      if not s["shape"] or s["shape"][0] is not None or \
          not all(isinstance(d, int) for d in s["shape"][1:]):
        raise ValueError(f"{where}: {MANIFEST} input {s['name']!r} has shape {s['shape']}, "
                         "expected [null, int, ...] (the batch first)")
      try:
        jnp.dtype(s["dtype"])
      except TypeError as e:
        raise ValueError(f"{where}: {MANIFEST} input {s['name']!r} has unknown dtype "
                         f"{s['dtype']!r}") from e
    if not isinstance(manifest["params"], dict):
      raise ValueError(f"{where}: {MANIFEST} field 'params' must be an object path -> spec")

  def _prepare(self, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
    """Checks names and shapes, casts dtypes; returns the inputs to call with."""
    specs = self.input_specs
    if not isinstance(inputs, dict):
      raise TypeError(f"serving.py: inputs must be a dict name -> array, got "
                      f"{type(inputs).__name__}")
    unknown = sorted(set(inputs) - set(specs))
    missing = [n for n in specs if n not in inputs]
    if unknown or missing:
      raise ValueError(f"serving.py: inputs: missing {missing}, unknown {unknown}; expected "
                       f"exactly {list(specs)}")
    out, batch = {}, None
    for name, (shape, dtype) in specs.items():
      x = np.asarray(inputs[name])
      if x.ndim != len(shape) or x.shape[1:] != shape[1:] or x.shape[0] < 1:
        want = "(" + ", ".join(["B"] + [str(d) for d in shape[1:]]) + ")"
        raise ValueError(f"serving.py: input {name!r} has shape {x.shape}, expected {want} "
                         "with any batch size B >= 1")
      if batch is not None and x.shape[0] != batch[1]:
        raise ValueError(f"serving.py: input {name!r} has batch size {x.shape[0]} but "
                         f"{batch[0]!r} has {batch[1]}: all inputs must share the batch")
      batch = batch or (name, x.shape[0])
      out[name] = x.astype(dtype, copy=False)
    return out

  def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """inputs: name -> (B, ...) array as in `input_specs` -> name -> (B, ...) np.ndarray."""
    result = self._call(self.params, self._prepare(inputs))
    return {name: np.asarray(result[name]) for name in self.output_names}


def _save_npz_atomic(path: pathlib.Path, arrays: dict[str, np.ndarray]) -> None:
  fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
  try:
    with os.fdopen(fd, "wb") as f:
      np.savez(f, **arrays)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
    raise


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description="Run an exported Seq2Exp-JAX predictor.")
  parser.add_argument("artifact", type=pathlib.Path, help="the exported artifact (.s2x)")
  parser.add_argument("inputs", type=pathlib.Path, help=".npz keyed by input name")
  parser.add_argument("out", type=pathlib.Path, help=".npz to write, keyed by output name")
  args = parser.parse_args(argv)
  predictor = ExportedPredictor.load(args.artifact)
  with np.load(args.inputs, allow_pickle=False) as z:
    inputs = dict(z.items())
  outputs = predictor(inputs)
  _save_npz_atomic(args.out, outputs)
  print(json.dumps({k: list(v.shape) for k, v in outputs.items()}))
  return 0


if __name__ == "__main__":
  sys.exit(main())
