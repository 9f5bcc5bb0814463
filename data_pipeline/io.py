"""Reading and writing every layer shares: atomic files and directories, and the
chromosome lengths of a genome.

Atomic: a file is written to a temp file beside the target and renamed over it only when
complete, a directory is built beside its target and swapped into place, so a failure (or
a kill) never leaves a half-written output or loses the old one.

Chromosome lengths come from the data root's `chr_length.json` ({"hg38": {chrom: length}}),
from the copy a prepared data set keeps in its metadata.json, from a UCSC `.chrom.sizes`
file or a JSON {chrom: length}: `read_chrom_lengths` reads all four, `check_chrom_lengths`
is their one validation.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import tempfile
from typing import Any, Iterator

from data_pipeline.errors import DataFormatError, MissingInputError, OutputExistsError

GENOME = "hg38"
# Key of the data root's {chrom: length} in a prepared data set's metadata.json.
CHROM_LENGTHS_KEY = "chrom_lengths"


__all__ = ["OutputExistsError", "atomic_output", "atomic_output_dir", "check_chrom_lengths",
           "check_same_lengths", "clean_stale", "file_set", "mark_owner", "read_chrom_lengths",
           "replace_dir", "swap_in_versioned", "write_json", "write_text"]


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
  """Writes `text` to `path` atomically (its directory is created if missing)."""
  pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
  with atomic_output(path) as tmp:
    tmp.write_text(text)


def write_json(path: str | os.PathLike, payload: Any, *, indent: int = 2,
               sort_keys: bool = True) -> None:
  """JSON (indented, keys sorted unless told otherwise), atomically."""
  write_text(path, json.dumps(payload, indent=indent, sort_keys=sort_keys) + "\n")


def replace_dir(built: pathlib.Path, final: pathlib.Path) -> None:
  """Moves the complete directory `built` to `final`, replacing an old `final` only once
  the new one is in place beside it."""
  if final.exists():
    old = pathlib.Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
    os.replace(final, old / final.name)
    os.replace(built, final)
    shutil.rmtree(old, ignore_errors=True)
  else:
    os.replace(built, final)


OWNER_FILE = ".owner-pid"


def mark_owner(tmp: pathlib.Path) -> None:
  """Records this process as the owner of temporary directory `tmp` (see clean_stale)."""
  (tmp / OWNER_FILE).write_text(str(os.getpid()))


def _owner_alive(tmp: pathlib.Path) -> bool:
  try:
    pid = int((tmp / OWNER_FILE).read_text())
  except (OSError, ValueError):
    return False  # no owner recorded: left by a process killed before it wrote one
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True  # another user's live process
  return True


def clean_stale(parent: pathlib.Path, prefix: str, keep: set[pathlib.Path] = frozenset()
                ) -> list[pathlib.Path]:
  """Removes the temporaries `parent/<prefix>*` left by killed runs: directories whose
  owner process (mark_owner) is gone, and links. Those in `keep` (resolved) and those of a
  live process are left. Returns what was removed."""
  removed = []
  for path in sorted(parent.glob(prefix + "*")) if parent.is_dir() else []:
    if path.resolve() in keep or (path.is_dir() and not path.is_symlink()
                                  and _owner_alive(path)):
      continue
    if path.is_symlink() or path.is_file():
      path.unlink(missing_ok=True)
    else:
      shutil.rmtree(path, ignore_errors=True)
    removed.append(path)
  return removed


def _unused_name(parent: pathlib.Path, prefix: str) -> pathlib.Path:
  """A path `parent/<prefix><random>` that nothing uses (to rename a directory to)."""
  path = pathlib.Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
  path.rmdir()
  return path


def swap_in_versioned(built: pathlib.Path, final: pathlib.Path) -> pathlib.Path:
  """Makes the complete directory `built` the one `final` names, with no moment where
  `final` is missing: `built` becomes the sibling `.<final>-v<n>` and `final` a symlink to
  it, replaced by one atomic rename; the version it pointed to before is then removed.
  (An older build where `final` is a real directory is moved aside first, once.)
  Returns the new version's directory."""
  parent = final.parent
  previous = final.resolve() if final.is_symlink() else None
  version = _unused_name(parent, f".{final.name}-v")
  os.replace(built, version)
  link = parent / f".{final.name}.link-{version.name}"
  link.unlink(missing_ok=True)
  link.symlink_to(version.name)  # relative: the data set can be moved as a whole
  if final.exists() and not final.is_symlink():
    legacy = _unused_name(parent, f".{final.name}-v")
    os.replace(final, legacy)
    previous = legacy
  os.replace(link, final)  # atomic: readers see the old or the new data set, never none
  if previous is not None and previous != version.resolve():
    shutil.rmtree(previous, ignore_errors=True)
  return version


@contextlib.contextmanager
def file_set(directory: str | os.PathLike) -> Iterator[pathlib.Path]:
  """Yields a temporary directory inside `directory`: the files written into it replace
  their namesakes in `directory` only once the block succeeds and all of them are complete
  (each by an atomic rename); on any error nothing in `directory` changes. For outputs
  that sit beside other work (a benchmark's results.md, results.json and plot)."""
  directory = pathlib.Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  clean_stale(directory, ".set-")  # left behind by a run that was killed
  tmp = pathlib.Path(tempfile.mkdtemp(prefix=".set-", dir=directory))
  mark_owner(tmp)
  try:
    yield tmp
    (tmp / OWNER_FILE).unlink()
    for path in sorted(tmp.iterdir()):
      os.replace(path, directory / path.name)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_output_dir(out: str | os.PathLike, overwrite: bool) -> Iterator[pathlib.Path]:
  """Yields a fresh temporary directory beside `out` that becomes `out` when the block
  succeeds. An existing `out` is refused unless `overwrite`, and then replaced only after
  the new one is complete. On any exception the temporary directory is removed."""
  out = pathlib.Path(out).absolute()
  if out.exists() and not overwrite:
    raise OutputExistsError(f"{out} already exists: pass --overwrite to replace it")
  out.parent.mkdir(parents=True, exist_ok=True)
  clean_stale(out.parent, f".{out.name}.tmp-")  # left behind by a run that was killed
  tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
  mark_owner(tmp)
  try:
    yield tmp
    (tmp / OWNER_FILE).unlink()
    tmp.chmod(0o755)
    replace_dir(tmp, out)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise


def check_chrom_lengths(path: str | os.PathLike, field: str, lengths: Any
                        ) -> dict[str, int]:
  """`lengths` ({chrom: length}, read from `field` of file `path`) if it is a non-empty
  object of positive integer lengths, else DataFormatError naming the file, field and
  chromosome."""
  if not isinstance(lengths, dict) or not lengths:
    raise DataFormatError(f"{path}: {field}: expected a non-empty object {{chrom: length}}")
  for chrom, length in lengths.items():
    if not isinstance(length, int) or isinstance(length, bool) or length <= 0:
      raise DataFormatError(f"{path}: {field}.{chrom} = {length!r}, expected a positive "
                            "integer length")
  return {str(c): int(n) for c, n in lengths.items()}


def check_same_lengths(reference: dict[str, int], reference_path: str | os.PathLike,
                       other: dict[str, int], other_path: str | os.PathLike) -> None:
  """Two files that must agree on the length of every chromosome both name (e.g. the FASTA
  and chr_length.json, a bigWig's header and chr_length.json): DataFormatError naming both
  files, the chromosome and both lengths at the first disagreement."""
  for chrom, length in reference.items():
    if chrom in other and other[chrom] != length:
      raise DataFormatError(f"{other_path}: {chrom} has length {other[chrom]:,} but "
                            f"{reference_path} says {length:,}; the two files must describe "
                            "the same genome (a truncated download or another assembly?)")


def _read_json(path: pathlib.Path) -> Any:
  try:
    return json.loads(path.read_text())
  except json.JSONDecodeError as e:
    raise DataFormatError(f"{path}: not valid JSON ({e})") from e


def _read_chrom_sizes(path: pathlib.Path) -> dict[str, int]:
  """A UCSC `.chrom.sizes` file: name<TAB>length lines, no chromosome twice."""
  sizes: dict[str, int] = {}
  for n, line in enumerate(path.read_text().splitlines(), start=1):
    if not line.strip() or line.startswith("#"):
      continue
    fields = line.split()
    if len(fields) != 2 or not fields[1].isdigit():
      raise DataFormatError(f"{path}: line {n} {line!r}: expected <chrom><TAB><length>")
    if fields[0] in sizes:
      raise DataFormatError(f"{path}: line {n}: chromosome {fields[0]!r} listed twice")
    sizes[fields[0]] = int(fields[1])
  return check_chrom_lengths(path, "lengths", sizes)


def read_chrom_lengths(path: str | os.PathLike, genome: str = GENOME) -> dict[str, int]:
  """{chrom: length}, in file order, from any of: a data root's chr_length.json
  ({genome: {chrom: length}}), a prepared data set directory (its metadata.json), a JSON
  {chrom: length} or a `.chrom.sizes` file."""
  path = pathlib.Path(path)
  if path.is_dir():
    if not (path / "dataset_info.json").is_file():
      raise MissingInputError(f"{path}: no dataset_info.json, not a prepared GeneExp data set")
    metadata = path / "metadata.json"
    hint = "rebuild it with `seq2exp build-data` (which stores them) or pass --chrom-sizes"
    if not metadata.is_file():
      raise MissingInputError(f"{path}: no metadata.json with chromosome lengths; {hint}")
    data = _read_json(metadata)
    lengths = data.get(CHROM_LENGTHS_KEY) if isinstance(data, dict) else None
    if not isinstance(lengths, dict):
      raise DataFormatError(f"{metadata}: no {CHROM_LENGTHS_KEY!r} object "
                            f"{{chrom: length}}; {hint}")
    return check_chrom_lengths(metadata, CHROM_LENGTHS_KEY, lengths)
  if not path.is_file():
    raise MissingInputError(f"{path}: no such file or data set directory (expected a prepared "
                            "data set, chr_length.json, a .chrom.sizes file or a JSON "
                            "{chrom: length})")
  if path.suffix != ".json" and not path.read_text().lstrip().startswith("{"):
    return _read_chrom_sizes(path)
  data = _read_json(path)
  if not isinstance(data, dict):
    raise DataFormatError(f"{path}: expected a JSON object")
  if isinstance(data.get(genome), dict):
    return check_chrom_lengths(path, genome, data[genome])
  if data and all(not isinstance(v, dict) for v in data.values()):
    return check_chrom_lengths(path, "lengths", data)
  raise DataFormatError(f"{path}: expected an object with key {genome!r} holding "
                        "{chrom: length} (chr_length.json), or {chrom: length}")
