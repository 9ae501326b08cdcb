"""IndentedBuffer: write generated source line by line with an ``indent()`` context."""

from __future__ import annotations

import contextlib


class IndentedBuffer:
    """Lines of source with a current indentation level."""

    def __init__(self, indent: str = "    "):
        self.lines: list[str] = []
        self.level = 0
        self.unit = indent

    def writeline(self, line: str = "") -> None:
        """Append one line at the current indentation."""
        self.lines.append(self.unit * self.level + line if line else "")

    def writelines(self, lines) -> None:
        """Append several lines."""
        for ln in lines:
            self.writeline(ln)

    @contextlib.contextmanager
    def indent(self, n: int = 1):
        """Indent the lines written inside the ``with`` block."""
        self.level += n
        try:
            yield
        finally:
            self.level -= n

    def getvalue(self) -> str:
        """The source text."""
        return "\n".join(self.lines) + "\n"
