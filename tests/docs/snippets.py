"""The Python examples of the user guide, as modules: every ```python block of a page, in order.

Each page's blocks are joined into one module (a later block uses what an earlier one
defined), compiled with the page as file name and the blocks at their own line numbers, so a
failure points at the line of the Markdown file. Functions named ``test_*`` become pytest
tests (``tests/docs/test_guide_examples.py``), with the kuar.testing fixtures.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "guide"


@dataclass(frozen=True)
class Block:
    """One fenced ```python block."""

    path: Path
    line: int  # first line of code (1-based)
    code: str


def python_blocks(path: Path) -> list[Block]:
    """The ```python blocks of a Markdown file."""
    blocks: list[Block] = []
    lines = path.read_text().splitlines()
    inside, start, body = False, 0, []
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if not inside and stripped == "```python":
            inside, start, body = True, number + 1, []
        elif inside and stripped == "```":
            blocks.append(Block(path, start, "\n".join(body)))
            inside = False
        elif inside:
            body.append(line)
    if inside:
        raise ValueError(f"{path}:{start}: unclosed ```python block")
    return blocks


def load_page(path: Path) -> types.ModuleType:
    """Run a page's blocks as one module (definitions only; tests are called by pytest)."""
    name = f"docs_guide_{path.stem.replace('-', '_')}"
    module = types.ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module  # pydantic resolves annotations through sys.modules
    source_lines: list[str] = []
    for block in python_blocks(path):
        source_lines += [""] * (block.line - 1 - len(source_lines))
        source_lines += block.code.splitlines()
    exec(compile("\n".join(source_lines), str(path), "exec"), module.__dict__)
    return module


def guide_pages() -> list[Path]:
    """The guide's pages that hold Python examples."""
    return [p for p in sorted(GUIDE.glob("*.md")) if python_blocks(p)]
