"""Argument types that validate at parse time: a bad value is a usage error (one line,
exit status 2) before any work starts, never a traceback half-way through a run."""

from __future__ import annotations

import argparse
import pathlib


def _number(text: str, kind, what: str):
  try:
    return kind(text.replace("_", "") if kind is int else text)
  except ValueError:
    raise argparse.ArgumentTypeError(f"{text!r}: expected {what}") from None


def _int_at_least(text: str, low: int) -> int:
  value = _number(text, int, f"an integer >= {low}")
  if value < low:
    raise argparse.ArgumentTypeError(f"{value}: expected an integer >= {low}")
  return value


def positive_int(text: str) -> int:
  return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
  return _int_at_least(text, 0)


def unit_interval(text: str) -> float:
  """A mask value: a number in [0, 1]."""
  value = _number(text, float, "a number in [0, 1]")
  if not 0.0 <= value <= 1.0:
    raise argparse.ArgumentTypeError(f"{value}: expected a number in [0, 1] (the mask's "
                                     "range)")
  return value


def comma_list(text: str) -> list[str]:
  """`a,b,c` -> ['a', 'b', 'c'] (empty items dropped); at least one item."""
  items = [t.strip() for t in text.split(",") if t.strip()]
  if not items:
    raise argparse.ArgumentTypeError(f"{text!r}: expected a comma-separated list of names")
  return items


FOLDS = range(1, 13)  # the leave-chromosome-out folds of the fold CSV (fold_1 .. fold_12)


def fold_list(text: str) -> list[int]:
  """`1-12`, `1,3,11` or `1-3,11` -> sorted distinct folds, each in 1..12."""
  folds: set[int] = set()
  for item in text.split(","):
    first, dash, last = item.strip().partition("-")
    try:
      low, high = int(first), int(last if dash else first)
    except ValueError:
      raise argparse.ArgumentTypeError(
          f"{text!r}: expected folds as a range or list, e.g. 1-12 or 1,3,11") from None
    if low > high or low not in FOLDS or high not in FOLDS:
      raise argparse.ArgumentTypeError(
          f"{text!r}: {item.strip()!r} is not a fold or an increasing range of folds in "
          f"{FOLDS.start}..{FOLDS.stop - 1} (the fold CSV's fold_1 .. fold_12)")
    folds.update(range(low, high + 1))
  return sorted(folds)


def existing_dir(text: str) -> pathlib.Path:
  """A directory that must exist (a workdir to read, a prepared data set)."""
  path = pathlib.Path(text)
  if not path.is_dir():
    raise argparse.ArgumentTypeError(f"{text}: no such directory")
  return path
