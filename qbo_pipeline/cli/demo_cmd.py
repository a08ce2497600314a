"""``qbo-backup demo``: the whole backup-and-recovery story on the embedded sandbox."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command."""

    @app.command("demo")
    def demo(
        folder: Path = typer.Option(
            Path("data/demo"), help="The demo's own folder, started afresh on every run."
        ),
        days: int = typer.Option(7, min=1, max=60, help="Days of simulated bookkeeping."),
    ) -> None:
        """Run the main job end to end on the embedded sandbox, and say where to look next."""
        from qbo_pipeline.cli.demo import DemoError, run_demo

        console = Console(soft_wrap=True)
        try:
            result = run_demo(folder, days=days, console=console)
        except DemoError as exc:
            console.print(f"[red]demo:[/red] {exc}")
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            console.print("[yellow]demo cancelled[/yellow]")
            raise typer.Exit(130) from None
        if not result.verified:
            console.print("[red]the restore did not verify: see the plan's verify.json[/red]")
            raise typer.Exit(1)
