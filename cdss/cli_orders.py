"""`cdss orders run` (the routing worker) and `cdss orders status` (the durable queue).

The worker can also run inside `cdss serve` (CDSS_ORDERS_WORKER=true); run one worker per store,
since two would race on the same due rows (delivery stays idempotent, but work is doubled).
"""

from __future__ import annotations

import orjson
import typer
from rich.console import Console
from rich.table import Table

from cdss.settings import Settings
from cdss.stopping import stop_on_signals
from fhir_facade.orders import outbox
from fhir_facade.orders.config import OrderSettings
from fhir_facade.orders.intake import connection
from fhir_facade.orders.worker import Tally, Worker
from fhir_facade.store.base import Store
from fhir_facade.store.factory import open_store

console = Console(stderr=True)
orders_app = typer.Typer(help="Order communication: route signed orders, show the queue.")


def _store() -> Store:
    return open_store(Settings().effective_database_url)  # CDSS_STORE=sql|upstream


def _summary(t: Tally) -> str:
    return (
        f"routed {t.routed}, completed {t.completed}, cancelled {t.cancelled}, "
        f"refused {t.refused}, retried {t.retried}, failed {t.failed}"
    )


@orders_app.command()
def run(
    once: bool = typer.Option(
        False, help="One round (deliver what is due, poll status), then exit"
    ),
) -> None:
    """Deliver queued orders to SENAITE and the worklist, cancel revoked ones, poll status back."""
    settings, store = OrderSettings(), _store()
    worker = Worker(store, settings)
    stop = stop_on_signals()
    try:
        while True:
            tally = worker.run_once()
            if once or tally.routed or tally.completed or tally.cancelled or tally.failed:
                console.print(_summary(tally))
            if once or stop.wait(settings.orders_poll_s):
                break
    finally:
        worker.close()
        store.close()


@orders_app.command()
def status(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output"),
    limit: int = typer.Option(50, min=1, help="Most recent orders listed"),
) -> None:
    """The order queue: counts per state and the most recent orders with their last error."""
    store = _store()
    try:
        with store.read_unit() as unit:
            counts = outbox.counts(connection(unit))
            recent = outbox.listing(connection(unit), limit)
    finally:
        store.close()
    if as_json:
        rows = [
            {
                "order": r.order_id,
                "target": r.target,
                "state": r.state,
                "key": r.key,
                "external_id": r.external_id,
                "attempts": r.attempts,
                "last_error": r.last_error,
            }
            for r in recent
        ]
        out = {"counts": counts, "orders": rows}
        typer.echo(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
        return
    typer.echo(", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no orders")
    table = Table("order", "target", "state", "key", "downstream", "tries", "last error")
    for r in recent:
        table.add_row(
            r.order_id,
            r.target,
            r.state,
            r.key,
            r.external_id or "",
            str(r.attempts),
            (r.last_error or "")[:60],
        )
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(orders_app, name="orders")
