"""Translate parameters of the original PyTorch Seq2Exp code into our Flax params.

A PyTorch `state_dict` key such as
`generator.backbone.layers.0.mixer.mamba_fwd.conv1d.weight` names one of our params
(`generator/layers_0/mixer/mamba_fwd/conv1d/kernel`, then stacked with the other layers into
`generator/layers/...` at index 0, since our backbones scan over layers), up to a fixed
change of layout:
Linear weights are transposed (`Dense.kernel = W.T`), the depthwise conv weight (E, 1, K)
becomes (K, E), RMSNorm `weight` is `scale`. The renaming is one function, `flax_path`,
used both for weights and for gradients (whose keys are `named_parameters()` names).

Tied tensors appear under every name in a state_dict (BiMamba's reverse in/out projections,
Seq2Exp-hard's encoder = generator); they land on the same param, and the import checks
that the copies agree.
"""

from __future__ import annotations

import contextlib
import re
from typing import Mapping

import jax
import numpy as np

from data_pipeline.errors import DataFormatError, Seq2ExpError

SSM_LEAVES = {"conv1d", "x_proj", "dt_proj", "A_log", "D"}
HEAD_LAYERS = {"0": "dense_0", "2": "dense_1", "4": "dense_2"}  # pToExpr Linear positions
# State-dict entries that are constants of the model definition, not params.
NON_TRAINABLE = {"prior_weights", "signal_betas"}


@contextlib.contextmanager
def content_errors():
  """Inside: a ValueError or KeyError raised while reading a golden file, a checkpoint or
  their config (shapes, keys, values the message names) becomes DataFormatError, so the
  command prints it as the user's input error; the product's own errors pass through."""
  try:
    yield
  except (ValueError, KeyError) as e:
    if isinstance(e, Seq2ExpError):
      raise
    raise DataFormatError(str(e).strip("'\"")) from e


class ConversionError(DataFormatError):
  """A checkpoint that does not match the model it is converted for."""


def flax_path(torch_key: str, *, shared_encoder: bool = False) -> tuple[str, ...] | None:
  """Our param path for a PyTorch state_dict / named_parameters key (None: not a param)."""
  parts = torch_key.split(".")
  if parts[0] in NON_TRAINABLE:
    return None
  out: list[str] = []
  i = 0
  while i < len(parts):
    p = parts[i]
    if p == "backbone":  # generator.backbone.x -> generator/x
      pass
    elif p == "layers" and i + 1 < len(parts) and parts[i + 1].isdigit():
      out.append(f"layers_{parts[i + 1]}")
      i += 1
    elif p == "pToExpr":
      out += ["pToExpr", HEAD_LAYERS[parts[i + 1]]]
      i += 1
    elif p in ("mamba_fwd", "mamba_rev") and parts[i + 1] in ("in_proj", "out_proj"):
      pass  # weight-tied across directions: one param on the BiMamba module
    elif p in SSM_LEAVES and (not out or out[-1] not in ("mamba_fwd", "mamba_rev")):
      out += ["ssm", p]  # a unidirectional Mamba keeps its SSM params in a submodule
    else:
      out.append(p)
    i += 1
  if shared_encoder and out[0] == "encoder":
    out[0] = "generator"
  leaf = out[-1]
  if leaf == "weight":
    out[-1] = "scale" if re.search(r"norm(_f)?$", out[-2]) else "kernel"
  return tuple(out)


def to_flax_value(torch_key: str, value: np.ndarray) -> np.ndarray:
  """The PyTorch array in our layout."""
  value = np.asarray(value)
  if torch_key.endswith("conv1d.weight"):  # (E, 1, K) -> (K, E)
    return np.ascontiguousarray(value[:, 0, :].T)
  if torch_key.endswith(".weight") and value.ndim == 2:  # Linear: kernel = W.T
    return np.ascontiguousarray(value.T)
  if torch_key == "pos_emb":  # (1, L, D) -> (L, D)
    return value[0]
  return value


def from_flax_value(torch_key: str, value: np.ndarray, like_shape: tuple[int, ...]) -> np.ndarray:
  """Inverse of `to_flax_value` (used to compare our gradients with PyTorch's)."""
  value = np.asarray(value)
  if torch_key.endswith("conv1d.weight"):
    return value.T[:, None, :]
  if torch_key.endswith(".weight") and len(like_shape) == 2:
    return value.T
  if torch_key == "pos_emb":
    return value[None]
  return value


def _set(tree: dict, path: tuple[str, ...], value: np.ndarray, key: str):
  node = tree
  for p in path[:-1]:
    node = node.setdefault(p, {})
  if path[-1] in node:
    if node[path[-1]].shape != value.shape or not np.array_equal(node[path[-1]], value):
      raise ConversionError(
          f"{key}: tied copies of param {'/'.join(path)} disagree; the checkpoint does not "
          "come from a model with these weights tied")
    return
  node[path[-1]] = value


def stack_layers(tree: dict) -> dict:
  """Stack `layers_0 .. layers_{n-1}` subtrees into one `layers` subtree with a leading
  layer axis, wherever they occur (our backbones scan over layers)."""
  if not isinstance(tree, Mapping):
    return tree
  tree = {k: stack_layers(v) for k, v in tree.items()}
  indices = sorted(int(k[len("layers_"):]) for k in tree if re.fullmatch(r"layers_\d+", k))
  if not indices:
    return tree
  if indices != list(range(len(indices))):
    raise ConversionError(f"layers {indices} are not numbered 0..{len(indices) - 1}")
  layers = [tree.pop(f"layers_{i}") for i in indices]
  tree["layers"] = jax.tree_util.tree_map(lambda *xs: np.stack(xs), *layers)
  return tree


def unstack_layers(tree):
  """Inverse of `stack_layers`: `layers` with a leading axis -> `layers_{i}` subtrees."""
  if not isinstance(tree, Mapping):
    return tree
  out = {k: unstack_layers(v) for k, v in tree.items() if k != "layers"}
  if "layers" in tree:
    n = jax.tree_util.tree_leaves(tree["layers"])[0].shape[0]
    for i in range(n):
      out[f"layers_{i}"] = unstack_layers(
          jax.tree_util.tree_map(lambda x, i=i: np.asarray(x)[i], tree["layers"]))
  return out


def torch_to_flax(state_dict: Mapping[str, np.ndarray], *, shared_encoder: bool = False,
                  prefix: str = "") -> dict:
  """Nested dict of our params from a PyTorch state_dict (numpy arrays).

  Args:
    state_dict: PyTorch key -> array. Keys not starting with `prefix` are ignored and the
      prefix is stripped (e.g. "model." for Lightning checkpoints).
    shared_encoder: the model ties its encoder to its generator (Seq2Exp-hard).
  """
  params: dict = {}
  for key, value in state_dict.items():
    if not key.startswith(prefix):
      continue
    name = key[len(prefix):]
    path = flax_path(name, shared_encoder=shared_encoder)
    if path is not None:
      _set(params, path, to_flax_value(name, value).astype(np.float32), key)
  return stack_layers(params)


def param_shapes(tree) -> dict[str, tuple[int, ...]]:
  """`a/b/c` path -> shape of every leaf of a params tree (arrays or ShapeDtypeStructs)."""
  return {"/".join(str(getattr(k, "key", k)) for k in path): tuple(np.shape(x))
          for path, x in jax.tree_util.tree_leaves_with_path(tree)}


def check_same_structure(converted: dict, expected: dict, source: str):
  """Raise ConversionError naming every missing, unexpected or mis-shaped param."""
  got, want = param_shapes(converted), param_shapes(expected)
  problems = [f"missing {k} {want[k]}" for k in sorted(set(want) - set(got))]
  problems += [f"unexpected {k} {got[k]}" for k in sorted(set(got) - set(want))]
  problems += [f"{k}: shape {got[k]}, expected {want[k]}"
               for k in sorted(set(got) & set(want)) if got[k] != want[k]]
  if problems:
    raise ConversionError(f"{source}: the weights do not fit the model config:\n  "
                          + "\n  ".join(problems))
