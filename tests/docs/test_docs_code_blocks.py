"""The documents' code blocks, links and paths: nothing in them points at what is not there.

- Every code block is fenced with a language: ``sh`` (commands: tests/docs/test_docs_commands.py
  runs them), ``yaml`` (a fragment of a gateway config: loaded here) or ``text`` (not code). An
  unfenced (indented) block or another language fails, so no command escapes the command tests.
- Every ``yaml`` block, laid over edge_agent/gateway.example.yaml, is a config the agent's own
  loader accepts, and every manifest it names loads with its hashes verified.
- Every relative link resolves (to a file, and to a heading for ``#anchor``), and every path in
  backticks under one of the repository's top-level folders exists (a glob must match).
"""

from __future__ import annotations

import glob
import re
from pathlib import Path

import pytest
import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token

from edge_agent.config import AgentConfig, parse_config
from protocol.manifest import ManifestError, load_manifest
from tests.support.doc_blocks import LANGUAGES, ROOT, YAML, CodeBlock, code_blocks, documents, relative

EXAMPLE = ROOT / "edge_agent" / "gateway.example.yaml"
TOP_FOLDERS = (
    "protocol",
    "edge_agent",
    "cloud",
    "domain_models",
    "simulators",
    "deploy",
    "docs",
    "bench",
    "tests",
)
BLOCKS = [block for path in documents() for block in code_blocks(path)]


def _inline_tokens(path: Path) -> list[Token]:
    tokens = MarkdownIt("commonmark").enable("table").parse(path.read_text(encoding="utf-8"))
    return [child for token in tokens for child in (token.children or [])]


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    tokens = MarkdownIt("commonmark").parse(path.read_text(encoding="utf-8"))
    return {_slug(tokens[i + 1].content) for i, t in enumerate(tokens) if t.type == "heading_open"}


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.where)
def test_code_block_is_fenced_with_a_known_language(block: CodeBlock) -> None:
    hint = f"{block.where}: fence the block with one of {LANGUAGES} (sh blocks are run by tests/docs)"
    assert block.fenced, f"{hint}, not an indented block"
    assert block.language in LANGUAGES, f"{hint}, not {block.language or 'no language'!r}"


def _load_fragment(block: CodeBlock) -> None:
    fragment = yaml.safe_load(block.text)
    assert isinstance(fragment, dict), f"{block.where}: a yaml block is a mapping of gateway config sections"
    unknown = set(fragment) - set(AgentConfig.model_fields)
    assert not unknown, f"{block.where}: {sorted(unknown)} are not gateway config sections"
    # The fragment's sections replace the example's, and resolve paths as the example does.
    data = {**yaml.safe_load(EXAMPLE.read_text()), **fragment}
    config = parse_config(data, block.where, base_dir=EXAMPLE.parent)
    for model in config.models:
        load_manifest(model.manifest)  # raises ManifestError naming a missing file or a bad hash


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.language == YAML], ids=lambda b: b.where)
def test_yaml_block_is_a_gateway_config_that_loads(block: CodeBlock) -> None:
    _load_fragment(block)


def test_the_yaml_check_refuses_a_missing_manifest() -> None:
    block = next(b for b in BLOCKS if b.language == YAML and "manifest:" in b.text)
    broken = re.sub(r"-\d+\.\d+\.\d+\.manifest\.json", "-0.0.1.manifest.json", block.text, count=1)
    with pytest.raises(ManifestError, match="manifest file not found"):
        _load_fragment(CodeBlock(block.doc, block.line, YAML, broken, True))


@pytest.mark.parametrize("doc", documents(), ids=relative)
def test_links_resolve(doc: Path) -> None:
    broken = []
    for token in _inline_tokens(doc):
        href = str(token.attrs.get("href", "")) if token.type == "link_open" else ""
        if not href or re.match(r"^[a-z]+:", href):
            continue  # not a link, or an absolute URL
        target, _, anchor = href.partition("#")
        path = (doc.parent / target).resolve() if target else doc
        if not path.exists():
            broken.append(f"{href}: no file {relative(path) if path.is_relative_to(ROOT) else path}")
        elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
            broken.append(f"{href}: no heading #{anchor} in {relative(path)}")
    assert not broken, f"{relative(doc)}: broken links: {broken}"


@pytest.mark.parametrize("doc", documents(), ids=relative)
def test_paths_in_backticks_exist(doc: Path) -> None:
    missing = []
    for token in _inline_tokens(doc):
        words = token.content.split() if token.type == "code_inline" else []
        path = words[0].rstrip(":,") if words else ""
        if path.split("/")[0] not in TOP_FOLDERS or "/" not in path or any(c in path for c in "<>{}|"):
            continue
        if not glob.glob(str(ROOT / path)):
            missing.append(path)
    assert not missing, f"{relative(doc)} names paths that do not exist: {missing}"
