"""`python -m worker stats`: the dashboard views as tables (rich), read through the ``Dashboard`` port."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from worker.compose import build_transports
from worker.config import Settings
from worker.core.errors import StoreError
from worker.core.ports import VIEWS


async def print_stats(settings: Settings) -> int:
    transports = await build_transports(settings)
    console = Console()
    try:
        for view in VIEWS:
            rows = await transports.dashboard.read_view(view)
            console.print(_table(view, rows) if rows else f"public.{view}: no rows\n")
    except StoreError as exc:
        where = settings.supabase_url if settings.worker_store == "supabase" else "DATABASE_URL"
        console.print(f"[red]cannot read the dashboard views from {where}: {exc}[/red]")
        return 1
    finally:
        await transports.store.close()
    return 0


def _table(title: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=f"public.{title}", title_justify="left")
    columns = list(rows[0])
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    return table
