"""Export a trained predictor to one self-contained artifact for serving.

`export_predictor` lowers `jax.jit(apply_fn)` with `jax.export`, the leading (batch)
dimension of every input replaced by one shared symbolic dimension "b", and writes a zip
archive (written atomically) holding:

* `exported.bin`: the serialized `jax.export.Exported` (StableHLO; the params are
  arguments, not baked-in constants);
* `params.npz`: the params pytree (nested dicts), keyed by '/'-joined paths;
* `manifest.json`: format name and version, the inputs (name, shape with None for the
  batch, dtype) in call order, the output names, the params' shapes and dtypes, the jax
  version, the platforms lowered for, and a JSON-able metadata dict (model config,
  training step, ...).

`serving.py` loads it with nothing but the standard library, numpy and jax.
"""

from __future__ import annotations

import io
import json
import os
import pathlib
import zipfile
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np

from data_pipeline.errors import InputError, MissingInputError
from data_pipeline.io import atomic_output
from seq2exp_jax.outputs.serving import (EXPORTED, FORMAT_NAME, FORMAT_VERSION, MANIFEST, PARAMS,
                                 unflatten_params)

PLATFORMS = ("cpu", "cuda", "rocm", "tpu")
BATCH_DIM = "b"


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, np.ndarray]:
  """Nested dicts of arrays -> {'a/b/c': np.ndarray}. Keys must be str without '/'."""
  if not isinstance(params, Mapping):
    raise TypeError(f"export.py: params{' at ' + repr(prefix) if prefix else ''} must be a "
                    f"nested dict of arrays, got {type(params).__name__}")
  flat: dict[str, np.ndarray] = {}
  for key, value in params.items():
    if not isinstance(key, str) or not key or "/" in key:
      raise ValueError(f"export.py: params key {key!r} under {prefix or '<root>'!r}: expected "
                       "a non-empty str without '/'")
    path = f"{prefix}/{key}" if prefix else key
    if isinstance(value, Mapping):
      flat.update(flatten_params(value, path))
    elif hasattr(value, "shape") and hasattr(value, "dtype"):
      flat[path] = np.asarray(value)
    else:
      raise TypeError(f"export.py: params leaf {path!r} is a {type(value).__name__}, "
                      "expected an array")
  return flat


def _check_json(metadata: dict | None) -> dict:
  if metadata is None:
    return {}
  if not isinstance(metadata, dict):
    raise TypeError(f"export.py: metadata must be a dict, got {type(metadata).__name__}")
  try:
    json.dumps(metadata, allow_nan=False)
  except (TypeError, ValueError) as e:
    raise ValueError(f"export.py: metadata must be JSON-serializable (str keys; str, int, "
                     f"float (finite), bool, None, lists and dicts of them): {e}") from e
  return metadata


def check_out_path(out_path: str | os.PathLike) -> pathlib.Path:
  """The artifact's path, if its directory exists (MissingInputError otherwise)."""
  out_path = pathlib.Path(out_path)
  if not out_path.parent.is_dir():
    raise MissingInputError(f"{out_path}: directory {out_path.parent} does not exist")
  return out_path


def check_platforms(platforms: tuple[str, ...] | None) -> tuple[str, ...]:
  """The platforms to lower for (this machine's when None); InputError for unknown ones."""
  if platforms is None:
    return (jax.export.default_export_platform(),)
  platforms = tuple(platforms)
  if not platforms or len(set(platforms)) != len(platforms) or \
      any(p not in PLATFORMS for p in platforms):
    raise InputError(f"platforms {platforms!r}: expected distinct names among "
                     f"{PLATFORMS}")
  return platforms


def _input_specs(example_inputs: Mapping[str, Any]) -> dict[str, jax.ShapeDtypeStruct]:
  if not isinstance(example_inputs, Mapping) or not example_inputs:
    raise ValueError("export.py: example_inputs must be a non-empty dict name -> array")
  (batch,) = jax.export.symbolic_shape(BATCH_DIM)
  specs = {}
  for name, x in example_inputs.items():
    if not isinstance(name, str) or not name:
      raise ValueError(f"export.py: example_inputs key {name!r}: expected a non-empty str")
    shape, dtype = tuple(np.shape(x)), getattr(x, "dtype", None)
    if dtype is None:
      x = np.asarray(x)
      dtype = x.dtype
    if len(shape) < 1:
      raise ValueError(f"export.py: example_inputs[{name!r}] has shape {shape}: expected "
                       "the batch as a leading dimension")
    specs[name] = jax.ShapeDtypeStruct((batch,) + shape[1:], dtype)
  return specs


def _dim(d) -> int | str | None:
  """A manifest dimension: int if static, None for the batch, else its expression."""
  if not jax.export.is_symbolic_dim(d):
    return int(d)
  return None if str(d) == BATCH_DIM else str(d)


def _write_atomic(out_path: pathlib.Path, members: dict[str, bytes]) -> None:
  """Writes a zip of `members` to a temp file beside `out_path`, then renames it over."""
  with atomic_output(out_path) as tmp, open(tmp, "wb") as f:
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as zf:
      for name, data in members.items():
        zf.writestr(name, data)
    f.flush()
    os.fsync(f.fileno())


def export_predictor(apply_fn: Callable[[Any, dict[str, jax.Array]], dict[str, jax.Array]],
                     params: Mapping[str, Any], example_inputs: dict[str, np.ndarray],
                     out_path: str | os.PathLike, *, outputs: tuple[str, ...],
                     metadata: dict | None = None,
                     platforms: tuple[str, ...] | None = None) -> pathlib.Path:
  """Lowers `apply_fn` for any batch size and writes the artifact to `out_path`.

  Args:
    apply_fn: pure `(params, inputs) -> outputs`; inputs and outputs are dicts of arrays
      with the batch leading, e.g. inputs dna (B, L, 4), signals (B, L, S), blacklist
      (B, L) bool, rna_feat (B, F) and outputs prediction (B,), mask (B, L).
    params: nested dicts of arrays (flax `variables["params"]`); str keys without '/'.
    example_inputs: name -> array (or anything with .shape and .dtype), in call order;
      only the shape past the batch and the dtype are used, the batch size is irrelevant.
    out_path: the artifact to write (conventionally `*.s2x`); replaced atomically, and left
      untouched if anything fails.
    outputs: the keys of `apply_fn`'s result to export, in this order.
    metadata: JSON-able dict stored in the manifest (model config, training step, ...).
    platforms: platforms to lower for, among ("cpu", "cuda", "rocm", "tpu"); default the
      current backend only. ("cpu", "cuda") lowers both into one artifact, from any machine.
  Returns:
    The artifact's path.
  """
  metadata = _check_json(metadata)
  platforms = check_platforms(platforms)
  out_path = check_out_path(out_path)
  outputs = tuple(outputs)
  if not outputs or len(set(outputs)) != len(outputs) or \
      not all(isinstance(o, str) and o for o in outputs):
    raise ValueError(f"export.py: outputs {outputs!r}: expected distinct non-empty names")
  flat = flatten_params(params)
  specs = _input_specs(example_inputs)

  def predict(p, inputs):
    result = apply_fn(p, inputs)
    if not isinstance(result, Mapping):
      raise TypeError(f"export.py: apply_fn returned a {type(result).__name__}, expected "
                      "a dict name -> array")
    missing = [o for o in outputs if o not in result]
    if missing:
      raise KeyError(f"export.py: outputs {missing} are not in apply_fn's result (keys "
                     f"{sorted(result)})")
    return {o: result[o] for o in outputs}

  param_specs = {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in flat.items()}
  exported = jax.export.export(jax.jit(predict), platforms=platforms)(
      unflatten_params(param_specs), specs)

  out_avals = jax.tree.unflatten(exported.out_tree, exported.out_avals)
  buf = io.BytesIO()
  np.savez(buf, **flat)
  manifest = {
      "format": FORMAT_NAME,
      "format_version": FORMAT_VERSION,
      "inputs": [{"name": n, "shape": [None] + [int(d) for d in s.shape[1:]],
                  "dtype": np.dtype(s.dtype).name} for n, s in specs.items()],
      "outputs": [{"name": o, "shape": [_dim(d) for d in out_avals[o].shape],
                   "dtype": np.dtype(out_avals[o].dtype).name} for o in outputs],
      "params": {k: {"shape": list(v.shape), "dtype": v.dtype.name} for k, v in flat.items()},
      "batch_dim": BATCH_DIM,
      "jax_version": jax.__version__,
      "platforms": list(exported.platforms),
      "calling_convention_version": exported.calling_convention_version,
      "metadata": metadata,
  }
  _write_atomic(out_path, {
      MANIFEST: json.dumps(manifest, indent=2, allow_nan=False).encode(),
      EXPORTED: bytes(exported.serialize()),
      PARAMS: buf.getvalue(),
  })
  return out_path
