"""One line per headline figure, the form ``benchmarks/run.py`` collects::

FIGURE: <name> = <value> (goal: <goal>, met | not met)
FIGURE: <name> = <value> (no goal)
"""

from __future__ import annotations


def figure_line(name: str, value: str, goal: str | None = None, met: bool | None = None) -> str:
    """The FIGURE line of ``name``; ``goal`` and ``met`` together, or neither."""
    if (goal is None) != (met is None):
        raise ValueError("pass both goal and met, or neither")
    tail = "no goal" if goal is None else f"goal: {goal}, {'met' if met else 'not met'}"
    return f"FIGURE: {name} = {value} ({tail})"


def figure(name: str, value: str, goal: str | None = None, met: bool | None = None) -> None:
    """Print :func:`figure_line` (flushed, so that a collecting parent sees it at once)."""
    print(figure_line(name, value, goal, met), flush=True)
