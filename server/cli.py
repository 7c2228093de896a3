"""The `sharedcare` command line: serve, database upgrade, reindex, and loading data."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .config import Settings


@click.group()
def main() -> None:
    """Shared care record server."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--upgrade/--no-upgrade", default=True, show_default=True, help="Upgrade the schema first.")
def serve(host: str, port: int, upgrade: bool) -> None:
    """Run the development server (use gunicorn in production)."""
    from .app import create_app
    from .store.conformance import install_bundled
    from .store.migrate import upgrade as run_upgrade

    settings = Settings.from_env()
    if upgrade:
        run_upgrade(settings.database_url)
        install_bundled(settings.database_url, settings.project_base_uri)
    app = create_app(settings)
    click.echo(f"Serving FHIR R4 at http://{host}:{port}{settings.fhir_path} ({settings.database_url})")
    app.run(host=host, port=port, threaded=True)


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply schema migrations, then install the bundled profiles and terminology (idempotent)."""
    from .store.conformance import install_bundled
    from .store.migrate import upgrade

    settings = Settings.from_env()
    upgrade(settings.database_url, revision)
    click.echo(f"Database at {settings.database_url} is at revision {revision}")
    if revision == "head":
        click.echo(install_bundled(settings.database_url, settings.project_base_uri).describe())


@db.command("analyze")
def db_analyze() -> None:
    """Refresh planner statistics after bulk loads (VACUUM ANALYZE on PostgreSQL)."""
    from .store.db import Database
    from .store.maintenance import analyze

    database = Database.connect(Settings.from_env().database_url)
    analyze(database)
    database.dispose()
    click.echo("Statistics refreshed")


@db.command("current")
def db_current() -> None:
    """Show the schema revision."""
    from .store.migrate import current

    current(Settings.from_env().database_url)


@main.command("import")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--first", multiple=True, help="File name patterns to load first (e.g. practitioner*).")
def import_bundles(paths: tuple[Path, ...], first: tuple[str, ...]) -> None:
    """Load FHIR batch/transaction Bundles (JSON files, folders or .tar.gz archives) in-process."""
    from .loading import load_bundle_files

    settings = Settings.from_env()
    summary = load_bundle_files(settings, list(paths), first_patterns=list(first) or None)
    click.echo(summary.describe())
    sys.exit(1 if summary.failed else 0)


@main.command()
@click.option("--synth-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("var") / "synth",
              show_default=True, help="Where the synthetic extracts are generated (once).")
@click.option("--patients", default=2000, show_default=True, help="People on the practice lists.")
@click.option("--practices", default=3, show_default=True, help="GP practices.")
@click.option("--seed", default=2026, show_default=True, help="Seed of the synthetic population.")
def demo(synth_dir: Path, patients: int, practices: int, seed: int) -> None:
    """Prepare a demo database: upgrade the schema and, if it is empty, generate a small synthetic
    population (GP, SWIFT and hospital extracts), load it through the extract loaders and stratify it."""
    from loaders.cli import demo_data

    from .store.conformance import CONFORMANCE_TYPES, install_bundled
    from .store.db import make_engine
    from .store.migrate import upgrade
    from .store.schema import resources

    settings = Settings.from_env()
    upgrade(settings.database_url)
    install_bundled(settings.database_url, settings.project_base_uri)
    engine = make_engine(settings.database_url)
    with engine.connect() as connection:
        data = resources.select().where(resources.c.type.notin_(CONFORMANCE_TYPES)).limit(1)
        populated = connection.execute(data).first() is not None
    engine.dispose()
    if populated:
        click.echo("The database already holds data; nothing loaded.")
        return
    click.echo(demo_data(settings, synth_dir, patients=patients, practices=practices, seed=seed))
    from .care.commands import stratify as run_stratify

    click.echo(run_stratify(settings, None, [], 2000).describe())


@main.command()
@click.option("--batch", default=500, show_default=True, help="Resources per transaction.")
@click.option("--restart", is_flag=True, help="Start again from the first resource.")
def reindex(batch: int, restart: bool) -> None:
    """Rebuild search indexes for the current SearchParameter definitions (resumable)."""
    from .store.reindex import run_reindex

    settings = Settings.from_env()
    done = run_reindex(settings, batch_size=batch, restart=restart)
    click.echo(f"Reindexed {done} resources")


@main.command()
@click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]), help="Assessment date (default today).")
@click.option("--method", "methods", multiple=True, help="Rule set or measure code (repeat; default all).")
@click.option("--batch", default=2000, show_default=True, help="Patients per write transaction.")
def stratify(as_of: object, methods: tuple[str, ...], batch: int) -> None:
    """Stratify the whole population under the rule sets and measures of profiles/rulesets/."""
    from .care.commands import stratify as run

    summary = run(Settings.from_env(), as_of.date() if as_of else None, list(methods), batch)  # type: ignore[attr-defined]
    click.echo(summary.describe())


def _register_loaders() -> None:
    """`sharedcare load` and `sharedcare synth` live in loaders/cli.py."""
    from loaders.cli import register

    register(main)


_register_loaders()


if __name__ == "__main__":
    main()
