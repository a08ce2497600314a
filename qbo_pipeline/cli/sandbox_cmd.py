"""``qbo-backup sandbox ...``: run the embedded QBO-compatible sandbox.

``serve`` starts it on loopback and prints its base URL, realm ids and the OAuth client id and
secret it accepts. The defaults (:data:`~qbo_pipeline.config.EMBEDDED_CLIENT_ID` and
``EMBEDDED_CLIENT_SECRET``) are documented and protect nothing real; override them with
``--client-id``/``--client-secret`` or ``QBO_SANDBOX_CLIENT_ID``/``QBO_SANDBOX_CLIENT_SECRET``.
``simulate``, ``incident`` and ``new-company`` (a company as QBO creates it: default accounts,
terms, tax codes, no transactions) change a state file directly, or a running sandbox through its
``/_sandbox/`` admin endpoints (``--url``).

The sandbox itself is imported only when one of these commands runs: every other command of the
CLI works without loading it.
"""

from __future__ import annotations

import json
import signal
import threading
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import requests
import typer

from qbo_pipeline.config import (
    EMBEDDED_CLIENT_ID,
    EMBEDDED_CLIENT_SECRET,
    ConfigError,
    Environment,
    Settings,
)

INCIDENT_HELP = "One of: bulk_delete_invoices, bad_import_customers, deactivate_item."
"""The incidents the sandbox can stage (``qbo_pipeline.sandbox.app.INCIDENTS``, which a test
compares), written out so that ``--help`` does not load the sandbox."""


def _state_path(state: Path | None) -> Path:
    if state is not None:
        return state
    try:
        # The sandbox commands are the embedded environment by definition.
        return Settings.from_env(environment=Environment.EMBEDDED).sandbox_state_path
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from None


def _parse_clock(value: str | None) -> datetime | Literal["real"] | None:
    """``--clock``: None, ``"real"``, or a time-zone aware ISO time."""
    if value is None or value.strip().lower() == "real":
        return None if value is None else "real"
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise typer.BadParameter(
            f"--clock {value!r} must be 'real' or an ISO time with a UTC offset, "
            "such as 2024-12-31T09:00:00-08:00"
        )
    return when


def _parse_params(values: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--param {item!r} must look like key=value")
        params[key] = int(value) if value.isdigit() and key != "item_id" else value
    return params


def _post_admin(url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    try:
        response = requests.post(f"{url.rstrip('/')}/_sandbox/{path}", json=body, timeout=600)
    except requests.RequestException as exc:
        raise typer.BadParameter(f"cannot reach the sandbox at {url}: {exc}") from None
    payload = response.json()
    if response.status_code != 200:
        raise typer.BadParameter(str(payload.get("error", payload)))
    return payload


def register(app: typer.Typer) -> None:
    """Add the ``sandbox`` command group."""
    sandbox = typer.Typer(help="The embedded QBO-compatible sandbox.", no_args_is_help=True)
    app.add_typer(sandbox, name="sandbox")

    @sandbox.command("serve")
    def serve(
        host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
        port: int = typer.Option(0, min=0, max=65535, help="Port (0 picks a free one)."),
        realms: int = typer.Option(1, min=1, max=50, help="Companies to serve."),
        transactions: int | None = typer.Option(
            None, min=1, help="Transactions per generated company (default: the sample's)."
        ),
        seed: int = typer.Option(42, help="Generation seed."),
        state: Path | None = typer.Option(
            None, help="State file (default: QBO_SANDBOX_STATE or data/sandbox/sandbox.sqlite3)."
        ),
        rate_limits: bool = typer.Option(
            False, "--rate-limits", help="Enforce QBO's 500/min and 10-concurrent limits."
        ),
        latency_ms: float = typer.Option(0.0, min=0, help="Latency added to every API call."),
        client_id: str | None = typer.Option(
            None,
            help="OAuth client id accepted (default: QBO_SANDBOX_CLIENT_ID or "
            f"{EMBEDDED_CLIENT_ID}).",
            show_default=False,
        ),
        client_secret: str | None = typer.Option(
            None,
            help="OAuth client secret accepted (default: QBO_SANDBOX_CLIENT_SECRET or the "
            "documented one).",
            show_default=False,
        ),
        consent_page: bool = typer.Option(
            False, "--consent-page", help="Show a consent page instead of consenting at once."
        ),
        clock: str | None = typer.Option(
            None,
            "--clock",
            "--fixed-clock",
            help="'real': every company's clock follows the host's; an ISO time such as "
            "2024-12-31T09:00:00-08:00: pin every clock there (new histories end there). "
            "Default: as the state file has it (real for new companies).",
        ),
    ) -> None:
        """Serve the sandbox until interrupted (Ctrl-C)."""
        from qbo_pipeline.sandbox.server import SandboxServer

        fixed_clock = _parse_clock(clock)
        path = _state_path(state)
        settings = Settings.from_env(environment=Environment.EMBEDDED)
        if client_id is None:
            client_id = settings.sandbox_client_id or EMBEDDED_CLIENT_ID
        if client_secret is None:
            secret = settings.sandbox_client_secret
            client_secret = secret.reveal() if secret else EMBEDDED_CLIENT_SECRET
        new = not path.exists()
        if new:
            typer.echo(f"Generating {realms} sandbox compan{'y' if realms == 1 else 'ies'} ...")
        server = SandboxServer(
            path,
            host=host,
            port=port,
            realms=realms,
            seed=seed,
            transactions=transactions,
            client_id=client_id,
            client_secret=client_secret,
            auto_consent=not consent_page,
            realism={"rate_limits": rate_limits, "latency_ms": latency_ms},
            fixed_clock=fixed_clock,
        )
        server.start()
        stop = threading.Event()
        # Both stop it, even when SIGINT came ignored from the parent (a script's background
        # job, a test runner's worker): "Press Ctrl-C" must hold.
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        try:
            typer.echo(f"QBO sandbox serving at {server.base_url}")
            typer.echo(f"  state file:    {path}")
            typer.echo(f"  realm ids:     {', '.join(server.realm_ids)}")
            typer.echo(f"  client id:     {server.client_id}")
            typer.echo(f"  client secret: {server.client_secret}")
            typer.echo(f"  authorize:     {server.base_url}/connect/oauth2")
            typer.echo(f"  token:         {server.base_url}/oauth2/v1/tokens/bearer")
            typer.echo("Press Ctrl-C to stop.")
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
            typer.echo("Sandbox stopped.")

    @sandbox.command("simulate")
    def simulate(
        days: int = typer.Option(..., min=1, max=3650, help="Days of activity to simulate."),
        realm: str | None = typer.Option(None, help="Realm id (default: the first)."),
        seed: int = typer.Option(7, help="Simulation seed."),
        state: Path | None = typer.Option(None, help="State file to change."),
        url: str | None = typer.Option(None, help="A running sandbox's base URL instead."),
    ) -> None:
        """Advance a company's clock N days with realistic activity."""
        body: dict[str, Any] = {"days": days, "seed": seed}
        if realm:
            body["realmId"] = realm
        if url:
            result = _post_admin(url, "simulate", body)
        else:
            from qbo_pipeline.sandbox.simulate import simulate_days

            store = _open_store(state)
            try:
                target = realm or store.realm_ids()[0]
                log = simulate_days(store, target, days, seed=seed)
                result = {"realmId": target, "days": days, "changes": _counts(log)}
            finally:
                store.close()
        typer.echo(json.dumps(result, indent=2))

    @sandbox.command("incident")
    def incident(
        kind: str = typer.Argument(..., help=INCIDENT_HELP),
        param: list[str] = typer.Option([], "--param", help="Incident parameter key=value."),
        realm: str | None = typer.Option(None, help="Realm id (default: the first)."),
        state: Path | None = typer.Option(None, help="State file to change."),
        url: str | None = typer.Option(None, help="A running sandbox's base URL instead."),
    ) -> None:
        """Stage an incident: a bulk delete, a bad import or a deactivated item."""
        from qbo_pipeline.sandbox.app import INCIDENTS

        if kind not in INCIDENTS:
            raise typer.BadParameter(f"incident {kind!r} is not one of {', '.join(INCIDENTS)}")
        params = _parse_params(param)
        if url:
            body: dict[str, Any] = {"kind": kind, "params": params}
            if realm:
                body["realmId"] = realm
            result = _post_admin(url, "incident", body)
        else:
            from qbo_pipeline.sandbox.app import run_incident

            store = _open_store(state)
            try:
                target = realm or store.realm_ids()[0]
                try:
                    params = _incident_defaults(store, target, kind, params)
                    log = run_incident(store, target, kind, params)
                except (TypeError, ValueError) as exc:
                    raise typer.BadParameter(str(exc)) from None
                result = {"realmId": target, "kind": kind, "changes": _counts(log)}
            finally:
                store.close()
        typer.echo(json.dumps(result, indent=2))

    @sandbox.command("new-company")
    def new_company(
        country: str = typer.Option("US", help="US, or CA (Canada: CAD, GST/HST tax codes)."),
        multicurrency: bool = typer.Option(
            False, "--multicurrency/--no-multicurrency", help="Turn multicurrency on."
        ),
        name: str | None = typer.Option(
            None, help="Company name (default: New Company <country>)."
        ),
        realm: str | None = typer.Option(None, help="Realm id (default: the next free one)."),
        state: Path | None = typer.Option(None, help="State file to add it to (created if new)."),
        url: str | None = typer.Option(None, help="A running sandbox's base URL instead."),
    ) -> None:
        """Add a company as QBO creates one: default accounts, terms, tax codes, no transactions."""
        body: dict[str, Any] = {"kind": "new", "country": country, "multicurrency": multicurrency}
        if name is not None:
            body["companyName"] = name
        if realm is not None:
            body["realmId"] = realm
        if url:
            result = _post_admin(url, "realms", body)
        else:
            from qbo_pipeline.sandbox.new_company import create_new_company
            from qbo_pipeline.sandbox.store import SandboxStore

            path = _state_path(state)
            path.parent.mkdir(parents=True, exist_ok=True)
            store = SandboxStore(path)
            try:
                company = create_new_company(
                    store,
                    country=country,
                    multicurrency=multicurrency,
                    realm_id=realm,
                    company_name=name,
                )
            except ValueError as exc:
                raise typer.BadParameter(str(exc)) from None
            finally:
                store.close()
            result = company.to_dict()
        typer.echo(json.dumps(result, indent=2))


def _incident_defaults(
    store: Any, realm_id: str, kind: str, params: dict[str, Any]
) -> dict[str, Any]:
    """A bulk delete without dates deletes the demo's range of invoices (and says which)."""
    if kind != "bulk_delete_invoices" or ("start" in params and "end" in params):
        return params
    from qbo_pipeline.cli.demo import invoice_range

    start, end = invoice_range(store, realm_id)
    chosen = {"start": start.isoformat(), "end": end.isoformat()} | params
    typer.echo(
        f"deleting the invoices dated {chosen['start']} to {chosen['end']} with their payments "
        "(--param start=YYYY-MM-DD --param end=YYYY-MM-DD to choose)",
        err=True,
    )
    return chosen


def _open_store(state: Path | None) -> Any:
    from qbo_pipeline.sandbox.store import SandboxStore

    path = _state_path(state)
    if not path.exists():
        raise typer.BadParameter(
            f"no sandbox state at {path}; run `qbo-backup sandbox serve` once to generate it"
        )
    store = SandboxStore(path)
    if not store.realm_ids():
        store.close()
        raise typer.BadParameter(f"the sandbox state at {path} holds no company")
    return store


def _counts(log: Any) -> dict[str, int]:
    counts = log.counts() if hasattr(log, "counts") else {}
    return {f"{entity}.{action}": n for (entity, action), n in counts.items()}
