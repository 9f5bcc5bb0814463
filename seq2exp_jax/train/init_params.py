"""Params that come from outside a run: a Flax msgpack (`seq2exp convert-torch`), the best
params of another workdir, or (read by the commands layer) a checkpoint of the original
PyTorch code. They start a fine-tuning run at step 0 (`seq2exp train --init-from`) or are
evaluated, predicted with and exported under an experiment config (`--params`).

Whatever their origin, they must fit the config: `check_fits` compares their tree and
shapes with `jax.eval_shape` of the config's model init (and, for the original's weights,
what the original's model config computes with what ours does), and refuses them in one
line naming the first paths that differ.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
from typing import Any, Mapping

import flax.linen as nn
import jax
import numpy as np
import optax

from data_pipeline import io
from data_pipeline.batch import Batch
from data_pipeline.errors import DataFormatError, InputError, MissingInputError
from seq2exp_jax.torch_port.convert import param_shapes
from seq2exp_jax.train import checkpoint
from seq2exp_jax.train.task import Task

INIT_FILE = "init.json"  # in a workdir: where its step-0 params came from
SHOWN = 3  # mismatching paths named in a refusal
# Module fields that set only how params are initialised or how a model computes, never what
# trained params compute: two configs differing there run the same weights the same way.
NOT_COMPUTED = {"parent", "name", "dtype", "remat", "scan_method", "chunk_size", "capacity",
                "dt_min", "dt_max", "dt_init_floor", "init_n_layer", "seq_range"}


class ParamsMismatch(InputError):
  """Params that do not fit the config's model."""


@dataclasses.dataclass(frozen=True)
class LoadedParams:
  """params: a pytree of numpy arrays; source: JSON-able, where they came from (`path`,
  `kind` and what else names them); reference: for the original's weights, the module
  its model config builds (compared with the config's model by `check_fits`)."""

  params: Any
  source: dict[str, Any]
  reference: nn.Module | None = None

  @property
  def path(self) -> str:
    return str(self.source["path"])


def read_msgpack(path: str | pathlib.Path) -> LoadedParams:
  """Params from a Flax msgpack file (what `seq2exp convert-torch` writes)."""
  from flax import serialization  # noqa: PLC0415
  path = pathlib.Path(path)
  if not path.is_file():
    raise MissingInputError(f"{path}: no such file (expected a Flax msgpack of params, a "
                            "checkpoint of the original code or a `seq2exp train` workdir)")
  try:
    tree = serialization.msgpack_restore(path.read_bytes())
  except Exception as e:  # noqa: BLE001  (msgpack raises many kinds for bytes not its own)
    raise DataFormatError(f"{path}: not a Flax msgpack of params ({type(e).__name__}: "
                          f"{' '.join(str(e).split())[:120]}); convert a PyTorch "
                          "checkpoint with `seq2exp convert-torch`") from e
  leaves = jax.tree_util.tree_leaves(tree)
  if not isinstance(tree, Mapping) or not leaves or not all(
      isinstance(x, np.ndarray) and x.dtype.kind == "f" for x in leaves):
    raise DataFormatError(f"{path}: a msgpack file, but not a tree of float arrays (params "
                          f"as `seq2exp convert-torch` writes them); got {type(tree).__name__}")
  return LoadedParams(tree, {"path": str(path), "kind": "msgpack"})


def from_workdir(path: str | pathlib.Path) -> LoadedParams:
  """The best params of a `seq2exp train` workdir (the latest when it never validated)."""
  config, params, step = checkpoint.load_run(path, "best")
  return LoadedParams(params, {"path": str(path), "kind": "workdir", "checkpoint": "best",
                               "step": step, "experiment": config.experiment})


def expected_params(task: Task, window: int) -> Any:
  """ShapeDtypeStructs of the params `task`'s model makes for inputs of `window` bases."""
  absent = np.zeros((1, window), bool)  # the fields only some models' options read
  example = Batch.zeros(1, window, elements=True, includelist=absent, peaks=absent)
  return jax.eval_shape(lambda: task.init(jax.random.PRNGKey(0), example))


def _hint(path: str, got: tuple | None, want: tuple | None) -> str:
  if got is None or want is None:
    return "another kind of model (model.name, bottleneck, share_generator, pos_enc?)"
  if path.endswith("pos_emb"):
    return "another position range (model.seq_range or data.window?)"
  if "layers" in path.split("/") and got[1:] == want[1:]:
    return "another depth (model.n_gen_layer, n_enc_layer or n_layer?)"
  return "another width (model.backbone.d_model, d_state or expand?)"


def differences(params: Any, expected: Any) -> list[tuple[str, str]]:
  """(message, hint) for every param path where `params` and `expected` differ."""
  got, want = param_shapes(params), param_shapes(expected)
  out = []
  for key in sorted(set(got) | set(want)):
    g, w = got.get(key), want.get(key)
    if g == w:
      continue
    if g is None:
      text = f"param {key} is missing (the config's model expects shape {w})"
    elif w is None:
      text = f"param {key} (shape {g}) is not in the config's model"
    else:
      text = f"param {key} has shape {g}, the config's model expects {w}"
    out.append((text, _hint(key, g, w)))
  return out


def module_differences(ours: Any, theirs: Any, prefix: str = "") -> list[str]:
  """'field: ours X, theirs Y' where two modules (or their config dataclasses) compute
  differently; fields in NOT_COMPUTED are left out."""
  if type(ours) is not type(theirs):
    return [f"{prefix or 'model'}: ours is {type(ours).__name__}, theirs "
            f"{type(theirs).__name__}"]
  if not dataclasses.is_dataclass(ours):
    same = ours == theirs or (isinstance(ours, float) and math.isclose(ours, theirs))
    return [] if same else [f"{prefix}: ours {ours!r}, theirs {theirs!r}"]
  out = []
  for field in dataclasses.fields(ours):
    if field.name not in NOT_COMPUTED:
      out += module_differences(getattr(ours, field.name), getattr(theirs, field.name),
                                f"{prefix}{'.' if prefix else ''}{field.name}")
  return out


def check_fits(loaded: LoadedParams, task: Task, window: int) -> None:
  """Raises ParamsMismatch unless `loaded` fits `task`'s model on `window` bases."""
  if loaded.reference is not None:
    diff = module_differences(task.model, loaded.reference)
    if diff:
      raise ParamsMismatch(
          f"{loaded.path}: the original's model config and this config's model compute "
          f"differently: {'; '.join(diff[:SHOWN])}{' ...' if len(diff) > SHOWN else ''} "
          "(ours = the experiment config, theirs = --torch-config)")
  diff = differences(loaded.params, expected_params(task, window))
  if diff:
    more = f"; and {len(diff) - SHOWN} more" if len(diff) > SHOWN else ""
    raise ParamsMismatch(f"{loaded.path}: " + "; ".join(t for t, _ in diff[:SHOWN]) + more
                         + f": the params were made for {diff[0][1]}")


def start_from(loaded: LoadedParams, state: dict[str, Any],
               tx: optax.GradientTransformation, shardings: Any) -> dict[str, Any]:
  """`state` (a fresh step-0 train state) with `loaded`'s params, in the state's dtypes
  and shardings, and a fresh optimizer state for them."""
  params = jax.tree_util.tree_map(lambda x, like: np.asarray(x, like.dtype), loaded.params,
                                  state["params"])
  return jax.jit(lambda s, p: dict(s, params=p, opt_state=tx.init(p)),
                 out_shardings=shardings, donate_argnums=0)(state, params)


def record(workdir: pathlib.Path, loaded: LoadedParams) -> None:
  """Writes workdir/init.json: where the run's step-0 params came from."""
  if jax.process_index() == 0:
    io.write_json(workdir / INIT_FILE, dict(loaded.source, step=0))
