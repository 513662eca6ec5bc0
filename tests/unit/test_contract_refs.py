"""Every `CONTRACT x.y` reference in the tree names a section docs/contract.md has."""

from __future__ import annotations

from pathlib import Path

import pytest

from devkit import contract_refs

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
# Built, not written out, so this file does not cite the sections itself.
CITE = "CON" + "TRACT"
DOC = "docs/" + "contract.md"


def _known() -> set[str]:
    return contract_refs.sections((ROOT / contract_refs.CONTRACT_DOC).read_text(encoding="utf-8"))


def test_the_contract_has_every_numbered_section_the_code_cites() -> None:
    # The headings 1 ... 6.9, and section 3's rules 1-6 (cited as 3.1 ... 3.6).
    expected = {"1", "1.1", "1.2", "1.3", "1.4", "2", "2.1", "2.2", "2.3", "3", "4", "5", "6"}
    expected |= {f"6.{n}" for n in range(1, 10)} | {f"3.{n}" for n in range(1, 7)}
    assert _known() == expected


def test_every_reference_in_the_tree_resolves() -> None:
    files = list(contract_refs.scanned_files(ROOT))
    assert any(path.name == "events.py" for path in files)
    found = [ref for path in files for ref in contract_refs.references(path, path.read_text())]
    assert len(found) > 300  # the scan sees the tree's citations, not none
    assert contract_refs.dangling(files, _known(), ROOT) == []
    assert contract_refs.main([]) == 0


def test_a_dangling_reference_is_reported_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "module.py"
    source.write_text(
        f'"""Fine: {CITE} 6.9 and {CITE} section 3."""\n'
        f"# Dangling: {CITE} 6.10, and in a list ({CITE} 2.1, 7).\n"
        f"# {DOC} §4.2 across a line: {CITE}\n"
        "# 3.9\n"
    )
    assert contract_refs.main([str(source)]) == 1
    err = capsys.readouterr().err
    assert f"{source}:2: '{CITE} 6.10'" in err
    assert "names section 7," in err
    assert f"{source}:3: '{DOC} §4.2'" in err
    assert f"{source}:3: '{CITE} # 3.9'" in err
    assert "names section 6.9" not in err and "names section 3," not in err
    assert "4 dangling contract reference(s)" in err


@pytest.mark.parametrize(
    ("text", "sections"),
    [
        (f"({CITE} 6.9)", ["6.9"]),
        (f"{CITE} §6.9", ["6.9"]),
        (f"{CITE} section 3", ["3"]),
        (f"{DOC} 6.9", ["6.9"]),
        (f"{DOC} §6.9", ["6.9"]),
        (f"{CITE} 3.1-3.3", ["3.1", "3.3"]),
        (f"{CITE} 2.1\N{EN DASH}2.3", ["2.1", "2.3"]),
        (f"{CITE} 1.3, 2.1, 3, 4)", ["1.3", "2.1", "3", "4"]),
        (f"{CITE} 1 and 3.6", ["1", "3.6"]),
        (f"({CITE}\n    6.2)", ["6.2"]),
        (f"{CITE} 6.9: 0 <= amount <= 10^15", ["6.9"]),
        (f"{CITE}_TOPICS = 3", []),
        (f"{CITE}.md 3", []),
        (f"{CITE}, NEGLIGENCE", []),
    ],
)
def test_reference_forms(text: str, sections: list[str]) -> None:
    found = [ref.section for ref in contract_refs.references(Path("x.py"), text)]
    assert found == sections
