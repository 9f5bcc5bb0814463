"""Orbax checkpoints of a run: the train state (params, optimizer state, step, RNG), the
loader position and the model config, saved together and atomically (Orbax writes to a
temporary directory and renames it when complete), so a run killed at any point resumes
from its last complete checkpoint.

Layout of a workdir:
  config.json            the full config of the run
  checkpoints/<step>/    state, loader, model   (the latest `keep` steps, for resuming)
  best/<step>/           state, loader, model   (the best step on validation MSE)
  best.json              that step's validation metrics
  init.json              where the step-0 params came from, for a run started from given
                         params (`seq2exp train --init-from`, seq2exp_jax/train/init_params.py)
  unreadable_checkpoints/  checkpoints that could not be restored, moved aside (never
                         deleted); training resumes from the newest one that restores

A checkpoint written by a different model config is refused with the differing fields
named, never loaded into the wrong shapes: every checkpoint keeps the config's
`model_signature` (seq2exp_jax/config/signature.py) and is compared with it on restore.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
from typing import Any

import jax
import ml_collections
import orbax.checkpoint as ocp

from data_pipeline.errors import CheckpointError, InputError, MissingInputError
from seq2exp_jax.config.signature import differences, model_signature

ITEMS = ("state", "loader", "model")
UNREADABLE = "unreadable_checkpoints"
log = logging.getLogger(__name__)


class CheckpointMismatch(CheckpointError):
  """A checkpoint that does not belong to this model config."""


def manager(directory: str | os.PathLike, keep: int | None = 2,
            read_only: bool = False) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=not read_only,
                                         read_only=read_only, cleanup_tmp_directories=True)
  return ocp.CheckpointManager(pathlib.Path(directory).absolute(), options=options,
                               item_names=ITEMS)


def save(mngr: ocp.CheckpointManager, step: int, state: Any, loader_state: dict,
         signature: dict[str, Any]) -> None:
  """Saves the train state, the loader position and the model signature as `step`."""
  mngr.save(step, args=ocp.args.Composite(
      state=ocp.args.StandardSave(state), loader=ocp.args.JsonSave(loader_state),
      model=ocp.args.JsonSave(signature)), force=True)


def _saved_signature(mngr: ocp.CheckpointManager, step: int) -> dict[str, Any]:
  return mngr.restore(step, args=ocp.args.Composite(model=ocp.args.JsonRestore())).model


def check_model(mngr: ocp.CheckpointManager, step: int, signature: dict[str, Any]) -> None:
  """Raises CheckpointMismatch if checkpoint `step` was written by another model config
  (CheckpointError if its model record cannot be read)."""
  try:
    saved = _saved_signature(mngr, step)
  except Exception as e:  # noqa: BLE001  (a damaged file raises whatever its reader raises)
    raise CheckpointError(f"{mngr.directory}/{step}: cannot be read ({_why(e)})") from e
  diff = differences(saved, signature)
  if diff:
    raise CheckpointMismatch(
        f"{mngr.directory}/{step} was written by a different model config, refusing to load "
        "it: " + "; ".join(diff) + ". Use a new --workdir for a different model.")


def _why(e: BaseException) -> str:
  return f"{type(e).__name__}: {' '.join(str(e).split())[:160]}"


def aside_dir(workdir: str | os.PathLike) -> pathlib.Path:
  """Where checkpoints that cannot be restored are moved (never deleted)."""
  return pathlib.Path(workdir) / UNREADABLE


def _move_aside(mngr: ocp.CheckpointManager, step: int, error: BaseException) -> str:
  source = pathlib.Path(mngr.directory) / str(step)
  target_dir = aside_dir(source.parents[1])
  target_dir.mkdir(exist_ok=True)
  target = target_dir / f"{source.parent.name}_{step}"
  n = 1
  while target.exists():
    target, n = target_dir / f"{source.parent.name}_{step}.{n}", n + 1
  os.replace(source, target)
  log.warning("checkpoint %s cannot be restored (%s): moved to %s", source, _why(error),
              target)
  return f"step {step}: {_why(error)}, moved to {target}"


def restore_newest(mngr: ocp.CheckpointManager, abstract_state: Any,
                   signature: dict[str, Any], *, restart: bool = False
                   ) -> tuple[Any, dict, int] | None:
  """(state, loader state, step) of the newest checkpoint that restores, placed like
  `abstract_state` (a pytree of jax.ShapeDtypeStruct with shardings); None for a new run.

  A checkpoint that cannot be restored (a truncated array file, damaged metadata) is moved
  to `<workdir>/unreadable_checkpoints/` with a warning and the next older one is tried. A
  checkpoint of another model config is refused (CheckpointMismatch), never moved. When
  checkpoints existed but none restores, training from step 0 over them is refused
  (CheckpointError) unless `restart`.
  """
  moved = []
  for step in sorted(mngr.all_steps(), reverse=True):
    try:
      saved = _saved_signature(mngr, step)
    except Exception as e:  # noqa: BLE001  (any reader error of a damaged checkpoint)
      moved.append(_move_aside(mngr, step, e))
      continue
    diff = differences(saved, signature)
    if diff:
      raise CheckpointMismatch(
          f"{mngr.directory}/{step} was written by a different model config, refusing to "
          "load it: " + "; ".join(diff) + ". Use a new --workdir for a different model.")
    try:
      restored = mngr.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract_state), loader=ocp.args.JsonRestore()))
    except Exception as e:  # noqa: BLE001
      moved.append(_move_aside(mngr, step, e))
      continue
    if moved:
      mngr.reload()
      log.warning("resuming from step %d, the newest checkpoint that restores", step)
    return restored.state, restored.loader, step
  mngr.reload()
  aside = aside_dir(pathlib.Path(mngr.directory).parent)
  if (moved or (aside.is_dir() and any(aside.iterdir()))) and not restart:
    raise CheckpointError(
        f"{mngr.directory}: no checkpoint can be restored ("
        + ("; ".join(moved) if moved else f"unreadable ones are in {aside}")
        + "); refusing to train from step 0 over them: pass --restart to do so")
  return None


def has_checkpoint(workdir: str | os.PathLike) -> bool:
  """Whether `workdir` holds a training checkpoint (a run that re-running resumes)."""
  directory = pathlib.Path(workdir) / "checkpoints"
  return directory.is_dir() and any(p.name.isdigit() for p in directory.iterdir())


def abstract(tree: Any) -> Any:
  """Shapes, dtypes and shardings of a pytree of arrays (the restore target)."""
  return jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, tree)


def _on_this_host(mngr: ocp.CheckpointManager, step: int) -> Any:
  """Restore target for checkpoint `step` on this process's first device, whatever mesh
  saved it (a run trained on 2 or 8 devices is read for predict/eval/export on 1)."""
  meta = ocp.StandardCheckpointHandler().metadata(
      pathlib.Path(mngr.directory) / str(step) / "state")
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  return jax.tree_util.tree_map(
      lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), meta)


def load_run(workdir: str | os.PathLike, which: str = "best"
             ) -> tuple[ml_collections.ConfigDict, Any, int]:
  """(config, params, step) of a finished or running workdir, from its best checkpoint
  (`which="best"`, falling back to the latest when validation never ran) or the latest."""
  workdir = pathlib.Path(workdir)
  config_file = workdir / "config.json"
  if not config_file.is_file():
    raise MissingInputError(f"{workdir}: no config.json; not a `seq2exp train` workdir")
  try:
    config = ml_collections.ConfigDict(json.loads(config_file.read_text()))
  except (json.JSONDecodeError, TypeError, ValueError) as e:
    raise CheckpointError(f"{config_file}: not a readable run config ({_why(e)})") from e
  order = {"best": ("best", "checkpoints"), "latest": ("checkpoints",)}
  if which not in order:
    raise InputError(f"which={which!r}: expected 'best' or 'latest'")
  for sub in order[which]:
    if not (workdir / sub).is_dir():
      continue
    mngr = manager(workdir / sub, keep=None, read_only=True)
    step = mngr.latest_step()
    if step is None:
      continue
    check_model(mngr, step, model_signature(config))
    try:
      state = mngr.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(_on_this_host(mngr, step)))).state
    except Exception as e:  # noqa: BLE001  (a damaged file raises whatever its reader raises)
      hint = " (try --which latest)" if sub == "best" else ""
      raise CheckpointError(f"{mngr.directory}/{step}: cannot be restored ({_why(e)})"
                            f"{hint}") from e
    return config, jax.device_get(state["params"]), step
  raise CheckpointError(f"{workdir}: no checkpoint under {' or '.join(order[which])}/")
