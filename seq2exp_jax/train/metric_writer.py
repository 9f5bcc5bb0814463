"""Where measurements go: JSON lines (`<workdir>/metrics.jsonl`, one object per log step and
split), TensorBoard when `tensorboardX` is installed, and a tqdm progress bar."""

from __future__ import annotations

import json
import math
import pathlib
from typing import Any

import tqdm

from data_pipeline import io


class MetricWriter:
  """Appends {"step", "split", **values} lines; also TensorBoard scalars `<split>/<name>`."""

  def __init__(self, workdir: str | pathlib.Path, enabled: bool = True):
    self.enabled = enabled
    self.path = pathlib.Path(workdir) / "metrics.jsonl"
    self._tb = None
    if enabled:
      try:
        from tensorboardX import SummaryWriter  # pylint: disable=import-outside-toplevel
        self._tb = SummaryWriter(str(pathlib.Path(workdir) / "tensorboard"))
      except ImportError:
        pass

  def write(self, step: int, split: str, values: dict[str, Any]) -> None:
    if not self.enabled:
      return
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
             for k, v in values.items()}
    with self.path.open("a") as f:
      f.write(json.dumps({"step": step, "split": split, **clean}) + "\n")
    if self._tb is not None:
      for k, v in values.items():
        if isinstance(v, (int, float)):
          self._tb.add_scalar(f"{split}/{k}", v, step)

  def truncate_after(self, step: int) -> None:
    """Drops lines logged after `step`: a resumed run logs those steps again."""
    if not (self.enabled and self.path.is_file()):
      return
    keep = [line for line in self.path.read_text().splitlines(keepends=True)
            if line.strip() and json.loads(line)["step"] <= step]
    io.write_text(self.path, "".join(keep))

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()


def read_metrics(workdir: str | pathlib.Path, split: str | None = None) -> list[dict]:
  """The lines of `metrics.jsonl`, optionally of one split."""
  path = pathlib.Path(workdir) / "metrics.jsonl"
  if not path.is_file():
    return []
  rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
  return [r for r in rows if split is None or r["split"] == split]


def progress_bar(total: int, initial: int, enabled: bool, desc: str) -> tqdm.tqdm:
  return tqdm.tqdm(total=total, initial=initial, disable=not enabled, desc=desc or "train",
                   unit="step", dynamic_ncols=True, mininterval=2.0)
