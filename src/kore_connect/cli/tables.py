"""Tables in a command's report: fit to the terminal's width (80 columns when the output is not a
terminal), long cells (reasons, ARNs, URIs) wrapped, never cut as Rich does by default."""

from __future__ import annotations

from collections.abc import Collection

from rich.table import Table


def wrapping_table(*headers: str, whole: Collection[str] = ()) -> Table:
    """A table of `headers`; the columns named in `whole` (short names, numbers) are never broken."""
    table = Table(header_style="bold")
    for header in headers:
        if header in whole:
            table.add_column(header, no_wrap=True)
        else:
            table.add_column(header, overflow="fold")
    return table
