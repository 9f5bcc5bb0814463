"""The product's exceptions: what a user can cause, as opposed to a bug in our code.

`seq2exp` catches `Seq2ExpError` at the top and prints its message as one line,
`seq2exp <command>: <file or field>: <what was wrong, what was expected>`, with exit status
`exit_code` (2 for bad input or usage, 1 for a failure of the run); any other exception is a
bug and keeps its traceback. So every message names the file or field, what was found and
what was expected, and a user can fix the input without reading our code.

Each kind also derives from the built-in exception a caller would catch without knowing
ours (ValueError, FileNotFoundError, FileExistsError).
"""

from __future__ import annotations


class Seq2ExpError(Exception):
  """A user error or a failure the user can act on; `exit_code` is the command's status."""

  exit_code = 1


class InputError(Seq2ExpError, ValueError):
  """A command-line value or an input file that is not what was expected."""

  exit_code = 2


class MissingInputError(InputError, FileNotFoundError):
  """A file or directory the command needs does not exist (or is not what it must be)."""


class ConfigError(InputError):
  """An experiment config: its file, variant, a `--config.` override or a field's value."""


class DataFormatError(InputError):
  """An input file exists but its content is not what the GeneExp layout specifies."""


class PickleNotAllowedError(DataFormatError):
  """A mask is only available as a pickle and the caller did not opt in to unpickling."""


class DataSetError(InputError):
  """A prepared data set (`seq2exp build-data` output) is missing, incomplete or damaged."""


class OutputExistsError(Seq2ExpError, FileExistsError):
  """The output exists and replacing it was not asked for."""

  exit_code = 2


class CheckpointError(Seq2ExpError, ValueError):
  """A workdir's checkpoints cannot be used: another model's, or none restorable."""


class RunFailedError(Seq2ExpError):
  """The run itself failed in a way the user should see as one line (e.g. a NaN loss)."""
