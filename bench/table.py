"""The benchmarks' markdown tables and their files in bench/out/.

    from table import markdown, write      # bench/ is the script's directory
    lines = markdown(["stage", "seconds"], [("build", f"{s:.1f}") for s, ... in ...])
    write("pipeline.md", head + "\n\n" + "\n".join(lines) + "\n")

Cells are formatted by the caller (each benchmark has its own units and precision); a
``|`` in a cell is escaped so that it cannot split the row.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"


def row(*cells: object) -> str:
    """One table line: ``| a | b |`` (an empty cell is ``| |``)."""
    text = (str(c).replace("|", "\\|") for c in cells)
    return "|" + "|".join(f" {t} " if t else " " for t in text) + "|"


def markdown(header: Sequence[str], rows: Iterable[Sequence[object]],
             align: str | None = None) -> list[str]:
    """The lines of a table: ``header``, the alignment line, one line a row. ``align``
    has an ``l`` (left) or ``r`` (right) a column; by default the first column is left
    and the others right (names, then numbers)."""
    align = align if align is not None else "l" + "r" * (len(header) - 1)
    if len(align) != len(header) or set(align) - {"l", "r"}:
        raise ValueError(f"align {align!r}: one 'l' or 'r' for each of {len(header)} columns")
    lines = [row(*header), "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    for cells in rows:
        if len(cells) != len(header):
            raise ValueError(f"row {list(cells)!r}: {len(cells)} cells for "
                             f"{len(header)} columns")
        lines.append(row(*cells))
    return lines


def write(name: str, text: str, save: bool = True) -> Path:
    """Print ``text``; with ``save``, also write it to bench/out/``name``. Returns that
    path."""
    path = OUT / name
    if save:
        OUT.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    print(text)
    return path
