"""The code blocks of the project's Markdown documents, and the shell commands in them.

Parsed with markdown-it-py (CommonMark), as a Markdown viewer would, so a block is found wherever
it sits (in a list item too) and an indented code block is seen as one. A shell block's commands
are what bash would read: a line ending in a backslash continues on the next one; blank lines and
whole-line comments are not commands.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[2]
SHELL = "sh"  # the language of a block of commands
YAML = "yaml"  # a fragment of a gateway config (edge_agent/gateway.example.yaml is the whole)
TEXT = "text"  # not code: folder layouts, diagrams, printed output
LANGUAGES = (SHELL, YAML, TEXT)
# What the reader types in: <admin token printed by make demo>, <id printed above>.
PLACEHOLDER = re.compile(r"<[A-Za-z][^<>]*>")


def documents() -> list[Path]:
    """The documents whose commands and configs must work: README.md, docs/*.md, and the
    READMEs of the gateway and the cloud."""
    found = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    found += [ROOT / "edge_agent" / "README.md", ROOT / "cloud" / "README.md"]
    return found


def relative(path: Path) -> str:
    """``path`` relative to the repository root, as the documents spell paths."""
    return path.resolve().relative_to(ROOT).as_posix()


@dataclass(frozen=True)
class CodeBlock:
    """One code block: where it starts, its language (the fence's first word) and its text."""

    doc: str
    line: int  # 1-based line of the opening fence (or of an indented block's first line)
    language: str
    text: str
    fenced: bool

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"


@dataclass(frozen=True)
class DocCommand:
    """One shell command of a document: ``text`` is what bash runs (continuations joined)."""

    doc: str
    line: int  # 1-based line of the command's first line in the document
    text: str

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"

    @property
    def words(self) -> list[str]:
        """The command split as the shell splits it, without its trailing comment; each
        ``<placeholder>`` is one word, ``PLACEHOLDER``."""
        return shlex.split(PLACEHOLDER.sub("PLACEHOLDER", self.text), comments=True)

    def __str__(self) -> str:
        return f"{self.where}: {self.text}"


def code_blocks(path: Path) -> list[CodeBlock]:
    """Every fenced and indented code block of the Markdown file at ``path``, in order."""
    blocks = []
    for token in MarkdownIt("commonmark").parse(path.read_text(encoding="utf-8")):
        if token.type not in ("fence", "code_block") or token.map is None:
            continue
        language = token.info.split()[0] if token.info.strip() else ""
        blocks.append(
            CodeBlock(relative(path), token.map[0] + 1, language, token.content, token.type == "fence")
        )
    return blocks


def commands(block: CodeBlock) -> list[DocCommand]:
    """The commands of a shell block."""
    found: list[DocCommand] = []
    first_line = block.line + (1 if block.fenced else 0)
    pending: list[str] = []
    start = 0
    for number, line in enumerate(block.text.splitlines(), start=first_line):
        if not pending:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        found.append(DocCommand(block.doc, start, " ".join(part.strip() for part in pending)))
        pending = []
    if pending:
        raise AssertionError(f"{block.where}: the block ends inside a continued command")
    return found


def shell_commands(path: Path) -> list[DocCommand]:
    """Every command of every shell block of the document at ``path``, in reading order."""
    return [cmd for block in code_blocks(path) if block.language == SHELL for cmd in commands(block)]


def documented_commands() -> list[DocCommand]:
    """Every command of every document, in reading order."""
    return [cmd for path in documents() for cmd in shell_commands(path)]
