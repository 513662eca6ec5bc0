"""Check that every `CONTRACT x.y` reference in the tree names a section of docs/contract.md.

About 400 comments, docstrings and READMEs cite the spec as ``CONTRACT 6.9``,
``CONTRACT 3``, ``CONTRACT section 3``, ``CONTRACT §6.9``, ``docs/contract.md 6.9``
or ``docs/contract.md §6.9``, ranges and lists included (``CONTRACT 2.1-2.3``,
``CONTRACT 3, 6.5``), sometimes broken across a line. ``python -m devkit.contract_refs``
scans the code and documentation (or the paths given) and exits 1, listing
``file:line`` and the section, for each reference docs/contract.md does not have, so
a renumbered or deleted section cannot leave a citation pointing at nothing.

A section is a numbered heading of docs/contract.md (``## 3. ...``, ``### 6.9 ...``);
the numbered rules directly under a top-level heading are sections too (rule 5 of
section 3 is ``3.5``), as the code cites them that way.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
CONTRACT_DOC = Path("docs/contract.md")
SCANNED_DIRS = ("shared", "chassis", "services", "devkit", "bench", "tests", "examples")
SCANNED_FILES = ("README.md",)
SCANNED_GLOBS = ("docs/*.md",)
SUFFIXES = frozenset({".py", ".md", ".j2", ".html", ".txt", ".yaml", ".yml", ".toml", ".js"})
SKIPPED_DIRS = frozenset({"__pycache__", "node_modules", ".venv", ".data"})

_NUMBER = r"\d+(?:\.\d+)?"
# "CONTRACT" (a whole word: not CONTRACT_TOPICS, not CONTRACT.md) or "docs/contract.md",
# optionally a line break with a comment marker, "section(s)" or "§", then a number and
# any further numbers of a list or range ("3, 6.5", "6.2 and 6.9", "2.1-2.3" with a
# hyphen or an en dash).
REFERENCE = re.compile(
    r"(?P<cite>\bCONTRACT\b(?!\.md)|docs/contract\.md)"
    r"(?:[ \t]*\n[ \t]*(?:#+|//|\*)?)?[ \t]*"
    r"(?:sections?[ \t]+|§[ \t]*)?"
    rf"(?P<first>{_NUMBER})"
    rf"(?P<rest>(?:[ \t]*(?:,|-|\N{{EN DASH}}|and)[ \t]*§?{_NUMBER}(?![\d^]))*)"
)
_LISTED = re.compile(_NUMBER)
_HEADING = re.compile(r"^(?P<level>#{2,3})[ \t]+(?P<number>\d+(?:\.\d+)?)\.?[ \t]")
_RULE = re.compile(r"^(?P<number>\d+)\.[ \t]")


@dataclass(frozen=True, slots=True)
class Reference:
    """One section named by one citation."""

    path: Path
    line: int
    text: str
    section: str

    def __str__(self) -> str:
        return (
            f"{self.path}:{self.line}: {self.text!r} names section {self.section},"
            f" which {CONTRACT_DOC} does not have"
        )


def sections(text: str) -> set[str]:
    """The section numbers of a contract document: its headings and the rules of ``## N.``."""
    found: set[str] = set()
    rules: set[str] = set()
    top: str | None = None
    for line in text.splitlines():
        heading = _HEADING.match(line)
        if heading:
            found.add(heading["number"])
            top = heading["number"] if len(heading["level"]) == 2 else None
            continue
        if line.startswith("#"):
            top = None
            continue
        rule = _RULE.match(line)
        if rule and top is not None and "." not in top:
            rules.add(f"{top}.{rule['number']}")
    # A heading wins over a rule of the same number (there are none today).
    return found | rules


def references(path: Path, text: str) -> Iterator[Reference]:
    """Every section ``text`` cites, one per number of a list or range."""
    for match in REFERENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        raw = " ".join(match.group(0).split())
        yield Reference(path, line, raw, match["first"])
        for number in _LISTED.findall(match["rest"]):
            yield Reference(path, line, raw, number)


def scanned_files(root: Path) -> Iterator[Path]:
    """The files whose citations must resolve, relative to ``root``."""
    for name in SCANNED_DIRS:
        for path in sorted((root / name).rglob("*")):
            if (
                path.is_file()
                and path.suffix in SUFFIXES
                and not SKIPPED_DIRS.intersection(path.relative_to(root).parts)
            ):
                yield path
    for name in SCANNED_FILES:
        if (root / name).is_file():
            yield root / name
    for pattern in SCANNED_GLOBS:
        yield from sorted(root.glob(pattern))


def dangling(paths: Iterable[Path], known: set[str], root: Path = REPO_ROOT) -> list[Reference]:
    """The references in ``paths`` to sections not in ``known``."""
    missing: list[Reference] = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        shown = path.relative_to(root) if path.is_relative_to(root) else path
        missing.extend(ref for ref in references(shown, text) if ref.section not in known)
    return missing


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "paths", nargs="*", type=Path, help="files to check (default: the code and docs)"
    )
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="the repository")
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    contract = root / CONTRACT_DOC
    if not contract.is_file():
        print(f"{CONTRACT_DOC} is missing: every CONTRACT reference dangles", file=sys.stderr)
        return 1
    known = sections(contract.read_text(encoding="utf-8"))
    paths = [p.resolve() for p in args.paths] if args.paths else list(scanned_files(root))
    missing = dangling(paths, known, root)
    for reference in missing:
        print(reference, file=sys.stderr)
    if missing:
        print(f"{len(missing)} dangling contract reference(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
