"""TOML is read the same way on Python 3.10 (tomli) and 3.11+ (tomllib)."""

import ast
from pathlib import Path

from percalign import _toml

SRC = Path(__file__).resolve().parents[1] / "src" / "percalign"


def _guarded(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Whether an import sits under a version check or a try that falls back on ImportError."""
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "version_info" in ast.unparse(node.test):
            return True
        if isinstance(node, ast.Try) and any(
            h.type is not None and "ImportError" in ast.unparse(h.type) for h in node.handlers
        ):
            return True
    return False


def test_no_module_imports_tomllib_without_a_fallback():
    bare = []
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text())
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if "tomllib" in names and not _guarded(node, parents):
                bare.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert not bare, f"tomllib imported without the 3.10 fallback (use percalign._toml): {bare}"


def test_survey_texts_are_read_with_the_fallback(tmp_path):
    from percalign.cli.survey import _texts

    path = tmp_path / "texts.toml"
    path.write_text('consent = "Run by A. Lee"\n')
    assert _texts(path) == {"consent": "Run by A. Lee"}
    assert _toml.loads("a = 1") == {"a": 1}
