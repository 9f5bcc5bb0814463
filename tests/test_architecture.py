"""The layout shows the architecture: a folder is a layer and imports point down, the
model layer imports nothing else of the project, no module sits at the package root but
the CLI, files stay small, the README's layout table matches the tree, and every reference
to the method's documentation resolves inside the repo."""

import ast
import pathlib
import re

import pytest

from conftest import REPO

# Layers of seq2exp_jax, bottom up: a module may import its own layer and layers below.
LAYERS = {"model": 1, "config": 1, "evaluation": 2, "outputs": 2, "torch_port": 2, "train": 3,
          "ablation": 4, "commands": 5, "cli": 6}
DATA_RANK = 0  # data_pipeline: below the whole package
MAX_LINES = 400
SOURCES = sorted(p for top in ("seq2exp_jax", "data_pipeline", "experiments", "benchmarks",
                               "tests") for p in (REPO / top).rglob("*.py"))


def _imports(path: pathlib.Path) -> list[str]:
  """Absolute names of the modules a file imports (relative imports resolved)."""
  tree = ast.parse(path.read_text())
  package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
  names = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names += [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                        + ([base] if base else []))
      names += [f"{base}.{a.name}" for a in node.names] + [base]
  return names


def _rank(module: str) -> tuple[str, int] | None:
  parts = module.split(".")
  if parts[0] == "data_pipeline":
    return "data_pipeline", DATA_RANK
  if parts[0] == "seq2exp_jax" and len(parts) > 1 and parts[1] in LAYERS:
    return parts[1], LAYERS[parts[1]]
  return None


PACKAGE_FILES = [p for p in SOURCES if p.relative_to(REPO).parts[0] in
                 ("seq2exp_jax", "data_pipeline")]


@pytest.mark.parametrize("path", PACKAGE_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_imports_point_down(path):
  module = ".".join(path.relative_to(REPO).with_suffix("").parts)
  here = _rank(module)
  if here is None:  # seq2exp_jax/__init__.py
    return
  bad = []
  for name in _imports(path):
    there = _rank(name)
    if there is None or there[0] == here[0]:
      continue
    if here[0] == "data_pipeline" or there[1] >= here[1]:
      bad.append(name)
  assert not bad, f"{module} ({here[0]}) imports {bad}: imports must point to lower layers"


def test_the_model_layer_imports_nothing_else_of_the_project():
  for path in (REPO / "seq2exp_jax" / "model").glob("*.py"):
    others = [n for n in _imports(path) if n.split(".")[0] in ("seq2exp_jax", "data_pipeline")
              and not n.startswith("seq2exp_jax.model")]
    assert not others, (path.name, others)


def test_only_the_cli_sits_at_the_package_root():
  root = sorted(p.name for p in (REPO / "seq2exp_jax").glob("*.py"))
  assert root == ["__init__.py", "cli.py"]
  assert {p.name for p in (REPO / "seq2exp_jax").iterdir() if p.is_dir()
          and p.name != "__pycache__"} == set(LAYERS) - {"cli"}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_files_hold_one_idea(path):
  assert len(path.read_text().splitlines()) <= MAX_LINES


def _layout_paths() -> list[str]:
  """The backticked paths in the first cell of every row of the README's layout table."""
  readme = (REPO / "README.md").read_text()
  section = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
  cells = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
  return [p for cell in cells for p in re.findall(r"`([^`]+)`", cell)]


def test_readme_layout_table_matches_the_tree():
  paths = _layout_paths()
  assert paths, "README.md has no layout table"
  for path in paths:
    assert (REPO / path).exists(), f"README layout row {path} does not exist"
  listed = {p.rstrip("/") for p in paths}
  for top in ("seq2exp_jax", "data_pipeline"):
    for folder in [REPO / top] + [d for d in (REPO / top).iterdir() if d.is_dir()
                                  and d.name not in ("__pycache__",)]:
      rel = str(folder.relative_to(REPO))
      files = {f"{rel}/{p.name}" for p in folder.glob("*.py") if p.name != "__init__.py"}
      covered = rel in listed or all(f in listed for f in files)
      assert covered, f"README layout table lists neither {rel}/ nor all of its modules"


DOC_REFERENCE = re.compile(r'docs/(\w+)\.md(?:,\s+"([^"]+)")?')


def test_every_reference_to_the_docs_resolves():
  texts = {p: p.read_text() for p in SOURCES}
  texts[REPO / "README.md"] = (REPO / "README.md").read_text()
  found = 0
  spec_reference = "SPEC " + "§"  # a document that is not in the repo
  for path, text in texts.items():
    assert spec_reference not in text, path
    if path.parent.name != "tests":
      assert "/shared/" not in text and "`shared/" not in text, path  # outside the repo
    for doc, section in DOC_REFERENCE.findall(re.sub(r"\s*\n\s*", " ", text)):
      target = REPO / "docs" / f"{doc}.md"
      assert target.is_file(), (path, doc)
      if section:
        headings = re.findall(r"^#+ (.+)$", target.read_text(), flags=re.M)
        assert section in headings, f"{path}: docs/{doc}.md has no section {section!r}"
      found += 1
  assert found >= 10
