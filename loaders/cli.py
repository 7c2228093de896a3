"""The ``sharedcare load`` and ``sharedcare synth`` commands (registered by server/cli.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

SOURCES = ("gp", "swift", "hospital")
EXIT_FAILED = 3


def make_sink(source: str, server: str | None, token: str | None, auth: object = None) -> tuple[object, str]:
    """(sink, project base): HTTP to ``server``, else the in-process API on DATABASE_URL (schema upgraded)."""
    from server.config import Settings

    from .sinks import HttpSink, InProcessSink

    settings = Settings.from_env()
    if server:
        return HttpSink(server, token, auth=auth), settings.project_base_uri  # type: ignore[arg-type]
    from server.store.conformance import install_bundled
    from server.store.migrate import upgrade

    upgrade(settings.database_url)
    install_bundled(settings.database_url, settings.project_base_uri)
    return InProcessSink.from_settings(settings, source), settings.project_base_uri


@click.command("load")
@click.argument("source", type=click.Choice(SOURCES))
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--server", metavar="URL", help="FHIR base URL to load over HTTP (default: in-process, DATABASE_URL).")
@click.option("--token", envvar="SHAREDCARE_TOKEN", metavar="T", help="Bearer token for --server "
              "(or SHAREDCARE_TOKEN).")
@click.option("--client", "client_id", metavar="ID", help="For --server: get (and renew) tokens as this registered "
              "SMART Backend Services client, instead of --token.")
@click.option("--key", "key_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The --client's private JWK.")
@click.option("--scope", default="system/*.cruds", show_default=True, help="Scopes to ask for with --client.")
@click.option("--encoding", default="utf-8-sig", show_default=True, help="Text encoding of the files, e.g. cp1252.")
@click.option("--dry-run", is_flag=True, help="Check and map every row and validate the resources; write nothing.")
@click.option("--rejects", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the rejects and held-rows files (default: next to each input file).")
@click.option("--org", help="Organisation code when PATH does not follow <source>/<org>/<date>/.")
@click.option("--extract-date", help="Extract date (YYYY-MM, SWIFT YYYY-MM-DD) when PATH does not follow the layout.")
@click.option("--batch", default=300, show_default=True, help="Resources per transaction.")
@click.option("--no-snapshot", is_flag=True, help="Do not end what a full snapshot no longer holds.")
@click.option("--full", is_flag=True, help="Map and compare every row, even those the load ledger shows "
              "unchanged since their last load (in-process loads skip them by default).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def load_command(source: str, path: Path, server: str | None, token: str | None, client_id: str | None,
                 key_file: Path | None, scope: str, encoding: str, dry_run: bool,
                 rejects: Path | None, org: str | None, extract_date: str | None, batch: int, no_snapshot: bool,
                 full: bool, quiet: bool) -> None:
    """Load GP, SWIFT or hospital extracts (a file, an extract folder or a folder of extracts).

    Exit code: 0 clean, 1 rows were rejected (see the rejects files), 2 a file was refused (file-level
    fault, nothing of it written), 3 the load failed (server unreachable or failing).
    """
    from server.security.tokenclient import TokenRequestError

    from .load import Loader, LoadOptions
    from .reader import FileFault, resolve_encoding
    from .sinks import SinkError, SinkUnavailable

    try:
        resolve_encoding(encoding)
    except FileFault as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    options = LoadOptions(encoding=encoding, rejects=rejects, dry_run=dry_run, progress=not quiet, org=org,
                          extract_date=extract_date, batch_resources=batch, snapshot=not no_snapshot,
                          skip_unchanged=not full)
    auth = None
    if client_id or key_file:
        if not (client_id and key_file and server):
            raise click.UsageError("--client and --key go together, with --server")
        from server.security.keys import private_key_from
        from server.security.tokenclient import BackendServicesAuth

        auth = BackendServicesAuth(server, client_id, private_key_from(key_file.read_text(encoding="utf-8")), scope)
    sink = None
    try:
        base = None
        if not dry_run:
            sink, base = make_sink(source, server, token, auth)
        report = Loader(sink, options, base=base).load(source, path)  # type: ignore[arg-type]
    except (SinkUnavailable, SinkError, TokenRequestError) as exc:
        click.echo(f"error: the load stopped: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    except FileNotFoundError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    finally:
        if sink is not None:
            sink.close()  # type: ignore[attr-defined]
    if dry_run:
        click.echo("dry run: nothing was written (created = resources that would be written)")
    click.echo(report.render())
    sys.exit(report.exit_code())


@click.command("synth")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--patients", default=2000, show_default=True, help="People on the practice lists.")
@click.option("--practices", default=3, show_default=True, help="GP practices (ODS Y90001 ...).")
@click.option("--seed", default=1, show_default=True, help="Same seed, same files (byte for byte).")
@click.option("--months", default=1, show_default=True, help="Monthly snapshots to write.")
@click.option("--first-month", default="2026-10", show_default=True, help="YYYY-MM of the first snapshot.")
@click.option("--clean", is_flag=True, help="No formatting noise and no invalid rows.")
def synth_command(out: Path, patients: int, practices: int, seed: int, months: int, first_month: str,
                  clean: bool) -> None:
    """Write GP, SWIFT and hospital extracts for a synthetic population into OUT (and OUT/summary.json,
    which lists every injected invalid row)."""
    from .synth import NoiseRates, generate

    summary = generate(out, patients=patients, practices=practices, seed=seed, months=months,
                       first_month=first_month, noise=NoiseRates.none() if clean else None)
    summary.write_json(out / "summary.json")
    rows = summary.rows_by_name()
    click.echo(f"wrote {len(summary.files)} files, {sum(rows.values())} rows, {len(summary.invalid)} injected "
               f"invalid rows into {out}")
    for name, count in sorted(rows.items()):
        click.echo(f"  {name:22} {count:9}")


def register(group: click.Group) -> None:
    """Add the loader commands to the ``sharedcare`` command group."""
    group.add_command(load_command)
    group.add_command(synth_command)

