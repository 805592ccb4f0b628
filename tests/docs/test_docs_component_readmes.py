"""edge_agent/README.md and cloud/README.md name every package and module they hold.

A module counts as named when its file name (``bulk.py``) appears in backticks in its package's
README, or its bare name in a list of them (``gateways`` in the routers' row), or a pattern that
matches it (``*_view.py``); a subpackage when its folder (``ingest/``) does. Alembic's own files
under ``migrations/`` are covered by ``migrations/``.
"""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from tests.support.doc_blocks import ROOT, relative

COMPONENTS = ("edge_agent", "cloud")


def _code_spans(readme: Path) -> list[str]:
    tokens = MarkdownIt("commonmark").enable("table").parse(readme.read_text(encoding="utf-8"))
    return [c.content for t in tokens for c in (t.children or []) if c.type == "code_inline"]


def _named(part: str, spans: list[str]) -> bool:
    name = Path(part).name + ("/" if part.endswith("/") else "")
    return any(
        name in span or span == Path(part).stem or ("*" in span and fnmatch(name, span)) for span in spans
    )


def _parts(package: Path) -> list[str]:
    """The subpackages (``ingest/``) and modules (``ingest/bulk.py``) under ``package``."""
    found = []
    for path in sorted(package.rglob("*")):
        inside = path.relative_to(package)
        packages = [package / Path(*inside.parts[:i]) for i in range(1, len(inside.parts))]
        if not all((p / "__init__.py").is_file() for p in packages):
            continue  # under a folder that is not a package (migrations/, templates/, static/)
        if path.is_dir() and (path / "__init__.py").is_file():
            found.append(f"{inside.as_posix()}/")
        elif path.suffix == ".py" and path.name != "__init__.py":
            found.append(inside.as_posix())
    return found


@pytest.mark.parametrize("component", COMPONENTS)
def test_readme_names_every_package_and_module(component: str) -> None:
    readme = ROOT / component / "README.md"
    spans = _code_spans(readme)
    missing = [part for part in _parts(ROOT / component) if not _named(part, spans)]
    assert not missing, f"{relative(readme)} does not name {missing}: give each a line (what it is, briefly)"
