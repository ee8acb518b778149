"""The README's fenced blocks, each named by the ``<!-- snippet: NAME -->`` comment on the line above it.

Every fenced block in the README carries such a name, and ``tests/e2e/test_readme.py`` either runs it as
written (against the emulator and a moto S3 server) or checks it against the code, so what a newcomer
pastes keeps working. A block without a name fails that test.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"

_MARKER = re.compile(r"<!--\s*snippet:\s*([\w.:-]+)\s*-->")
_FENCE = re.compile(r"^(\s*)```(\w*)\s*$")


@dataclass(frozen=True)
class Snippet:
    name: str | None  # None: the block has no marker (a test failure)
    language: str
    code: str
    line: int  # 1-based line of the opening fence


def snippets(path: Path = README) -> list[Snippet]:
    lines = path.read_text().splitlines()
    found: list[Snippet] = []
    index = 0
    while index < len(lines):
        fence = _FENCE.match(lines[index])
        if not fence:
            index += 1
            continue
        indent, language = fence.group(1), fence.group(2)
        previous = lines[index - 1] if index else ""
        marker = _MARKER.search(previous)
        body: list[str] = []
        end = index + 1
        while not _FENCE.match(lines[end]):
            body.append(lines[end][len(indent) :] if lines[end].startswith(indent) else lines[end].lstrip())
            end += 1
        name = marker.group(1) if marker else None
        found.append(Snippet(name, language, "\n".join(body) + "\n", index + 1))
        index = end + 1
    return found


def snippet(name: str, path: Path = README) -> Snippet:
    (found,) = [s for s in snippets(path) if s.name == name]
    return found


def dag_source(dag_id: str, *names: str) -> str:
    """A DAG file whose body is the named blocks, in order, as written (fragments go inside a DAG)."""
    body = "".join(snippet(name).code for name in names)
    return f"from airflow.sdk import DAG\n\nwith DAG({dag_id!r}, schedule=None):\n" + textwrap.indent(
        body, "    "
    )
