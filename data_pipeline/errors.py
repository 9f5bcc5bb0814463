"""Exceptions for bad input files: each message names the file, the row/field and what was
expected, so a user can fix the data without reading our code."""

from __future__ import annotations


class DataFormatError(ValueError):
  """An input file exists but its content is not what the GeneExp layout specifies."""


class PickleNotAllowedError(DataFormatError):
  """A mask is only available as a pickle and the caller did not opt in to unpickling."""
