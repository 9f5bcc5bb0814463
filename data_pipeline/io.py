"""Atomic file writes: a temp file beside the target, renamed over it only when complete,
so a failure (or a kill) never leaves a half-written file or loses the old one."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import tempfile
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[pathlib.Path]:
  """Yields a temp path beside `path`; on success it replaces `path`, on error it is removed
  and `path` is left as it was."""
  path = pathlib.Path(path)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
  os.close(fd)
  try:
    yield pathlib.Path(tmp)
    os.replace(tmp, path)
  except BaseException:
    pathlib.Path(tmp).unlink(missing_ok=True)
    raise


def write_text(path: str | os.PathLike, text: str) -> None:
  with atomic_output(path) as tmp:
    tmp.write_text(text)


def write_json(path: str | os.PathLike, payload: Any) -> None:
  """Indented, key-sorted JSON."""
  write_text(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")
