"""The `sharedcare` command line: serve, database upgrade, reindex, loading data, clients, keys and tokens."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .config import Settings

if TYPE_CHECKING:
    from .security.authserver import AuthServer


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


@main.command()
@click.option("--poll", default=0.1, show_default=True, help="Seconds between looks for work on SQLite.")
@click.option("--threads", default=4, show_default=True, help="Delivering threads (PostgreSQL; SQLite uses one).")
def worker(poll: float, threads: int) -> None:
    """Deliver Subscription notifications (several may run on PostgreSQL; one delivers on SQLite)."""
    import signal
    import threading

    from .events.install import delivery_settings, endpoint_policy, set_endpoint_policy
    from .events.worker import run
    from .store.db import Database
    from .store.services import StoreServices

    settings = Settings.from_env()
    logging_setup(settings)
    database = Database.connect(settings.database_url, pool_size=threads + 2, limits=settings.statement_limits)
    services = StoreServices.build(database, settings.base_url, settings.project_base_uri,
                                   settings.mandatory_profiles, settings.access_policy_dir or None,
                                   settings.referential_integrity)
    set_endpoint_policy(services, endpoint_policy(settings))
    stop = threading.Event()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signal_number, lambda *_: stop.set())
    click.echo(f"Delivering notifications from {database.writer.url.render_as_string()}")
    run(services, delivery_settings(settings), settings.base_url or settings.project_base_uri, stop, poll, threads)
    database.dispose()


def logging_setup(settings: Settings) -> None:
    import logging

    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


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
@click.option("--patients", default=2000, show_default=True, envvar="DEMO_PATIENTS",
              help="People on the practice lists (or DEMO_PATIENTS).")
@click.option("--practices", default=3, show_default=True, envvar="DEMO_PRACTICES",
              help="GP practices (or DEMO_PRACTICES).")
@click.option("--seed", default=2026, show_default=True, help="Seed of the synthetic population.")
def demo(synth_dir: Path, patients: int, practices: int, seed: int) -> None:
    """Prepare a demo database: upgrade the schema and, if it is empty, build the demo area: a synthetic
    population loaded through the extract loaders, stratified, and a year of case management."""
    from loaders.demo import DemoSize, build

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
    fhir_base = settings.base_url or f"http://127.0.0.1:8080{settings.fhir_path}"
    if populated:
        click.echo(f"The database at {settings.database_url} already holds data (the demo area, built before): "
                   "nothing loaded.")
        click.echo(f"To start again from nothing: {start_again(settings.database_url, synth_dir)}, then run "
                   "`make demo` (or `sharedcare demo`) again.")
    else:
        build(settings, synth_dir, DemoSize(patients, practices, seed), echo=click.echo)
    click.echo(demo_client_keys(settings, synth_dir))
    click.echo(f"The API is at {fhir_base} while `sharedcare serve` runs (`make demo` starts it); README.md, \"Ten "
               "minutes with the shared record\", walks through it.")


def start_again(database_url: str, synth_dir: Path) -> str:
    """How to empty the demo's database (and its generated extracts) by hand."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return f"rm -rf {url.database} {synth_dir} var/clients"
    return (f"dropdb -h {url.host or '127.0.0.1'} -U {url.username or 'postgres'} {url.database} && createdb -h "
            f"{url.host or '127.0.0.1'} -U {url.username or 'postgres'} {url.database}; rm -rf {synth_dir} var/clients")


def demo_client_keys(settings: Settings, synth_dir: Path) -> str:
    """Register the demo clients (one per kind, for the demo area's organisations); how to get a token."""
    import json

    from loaders.demo_story import localities_of

    from .security.demo import demo_clients, describe, register_demo_clients
    from .store.db import Database

    area = json.loads((synth_dir / "summary.json").read_text(encoding="utf-8"))
    code, _name, practices = localities_of(list(area["practices"]))[0]
    clients = demo_clients(settings.project_base_uri, area["practices"][0], area["providers"][0], area["council"],
                           (code, practices))
    database = Database.connect(settings.database_url)
    try:
        made = register_demo_clients(database, Path("var") / "clients", clients)
    finally:
        database.dispose()
    return describe(made, settings.base_url or f"http://127.0.0.1:8080{settings.fhir_path}")


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


@main.group()
def clients() -> None:
    """SMART Backend Services clients: register, list, revoke."""


def auth_server() -> AuthServer:
    """The authorization server on DATABASE_URL (schema upgraded first), without the FHIR API."""
    from .security.authserver import AuthServer
    from .security.clients import policy_folders
    from .store.db import Database
    from .store.migrate import upgrade

    settings = Settings.from_env()
    upgrade(settings.database_url)
    return AuthServer(Database.connect(settings.database_url), ca_bundle=settings.jwks_ca_bundle,
                      policy_folders=policy_folders(settings.access_policy_dir or None))


@clients.command("add")
@click.argument("client_id")
@click.option("--organization", required=True, metavar="CODE", help="ODS code, or an identifier token system|value.")
@click.option("--kind", required=True, help="Access policy of the client (profiles/access/<kind>.yaml).")
@click.option("--scope", required=True, help='Registered scopes, e.g. "system/Patient.rs system/CarePlan.rs".')
@click.option("--jwks", "jwks_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The client's public JWKS (a file).")
@click.option("--jwks-uri", metavar="URL", help="https URL of the client's public JWKS.")
def clients_add(client_id: str, organization: str, kind: str, scope: str, jwks_file: Path | None,
                jwks_uri: str | None) -> None:
    """Register a client with its public keys (--jwks FILE or --jwks-uri URL)."""
    from .security.clients import ClientError

    if (jwks_file is None) == (jwks_uri is None):
        raise click.UsageError("give exactly one of --jwks FILE or --jwks-uri URL")
    try:
        client = auth_server().registry.add(
            client_id, organization=organization, kind=kind, scope=scope,
            jwks=jwks_file.read_text(encoding="utf-8") if jwks_file else None, jwks_uri=jwks_uri)
    except ClientError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Registered {client.id}: {client.kind} of {client.organization}, scope {client.scope}")


@clients.command("list")
def clients_list() -> None:
    """List the registered clients."""
    for client in auth_server().registry.list():
        state = "revoked" if client.revoked else "active"
        keys = client.jwks_uri or f"{len((client.jwks or {}).get('keys', []))} key(s) by value"
        click.echo(f"{client.id}\t{state}\t{client.kind}\t{client.organization}\t{client.scope}\t{keys}")


@clients.command("revoke")
@click.argument("client_id")
def clients_revoke(client_id: str) -> None:
    """Revoke a client: no new tokens; its tokens are refused within a second by every server process."""
    from .security.clients import ClientError

    try:
        auth_server().revoke_client(client_id)
    except ClientError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Revoked {client_id}")


@main.group()
def keys() -> None:
    """Client keys for SMART Backend Services."""


@keys.command("generate")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the private JWK (the public JWKS goes beside it, as .jwks.json).")
@click.option("--alg", type=click.Choice(["ES384", "RS384"]), default="ES384", show_default=True)
def keys_generate(out: Path, alg: str) -> None:
    """Make a client key pair: the private JWK (keep it) and the public JWKS (register it)."""
    import json
    import os

    from .security.keys import generate_private_key

    public_path = out.with_suffix(".jwks.json")
    if public_path == out:
        raise click.UsageError("--out must not end in .jwks.json (that name is for the public JWKS)")
    key = generate_private_key(alg)
    out.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(key.as_dict(private=True), handle, indent=2)
    public_path.write_text(json.dumps({"keys": [key.as_dict(private=False)]}, indent=2), encoding="utf-8")
    click.echo(f"Private key ({alg}, kid {key.kid}) written to {out}")
    click.echo(str(public_path))


@main.command()
@click.option("--client", "client_id", required=True, help="The registered client id.")
@click.option("--key", "key_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The client's private JWK.")
@click.option("--scope", help="Scopes to ask for (default: all the client's registered scopes; required with "
              "--server).")
@click.option("--server", metavar="URL", help="FHIR base URL to ask over HTTP (default: in-process on DATABASE_URL, "
              "for the server at BASE_URL).")
def token(client_id: str, key_file: Path, scope: str | None, server: str | None) -> None:
    """Sign a client assertion and get an access token from the token endpoint; prints the token."""
    from .security.access_tokens import token_url
    from .security.keys import private_key_from
    from .security.tokenclient import TokenRequestError, request_token, token_form

    try:
        key = private_key_from(key_file.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise click.ClickException(f"{key_file}: {exc}") from exc
    if server:
        if not scope:
            raise click.UsageError("--scope is required with --server")
        try:
            answer = request_token(server.rstrip("/"), client_id, key, scope)
        except TokenRequestError as exc:
            raise click.ClickException(str(exc)) from exc
    else:
        settings = Settings.from_env()
        base = settings.base_url or f"http://127.0.0.1:8080{settings.fhir_path}"
        if not settings.base_url:
            click.echo(f"BASE_URL is not set: the token is for {base}", err=True)
        auth = auth_server()
        if not scope:
            client = auth.registry.get(client_id)
            scope = client.scope if client else ""
        event = auth.token(list(token_form(client_id, key, token_url(base), scope).items()), base)
        if event.refused:
            raise click.ClickException(f"token request refused: {event.error}: {event.description}")
        answer = event.body or {}
    click.echo(f"scope: {answer['scope']}; expires in {answer['expires_in']} s", err=True)
    click.echo(answer["access_token"])


def _register_loaders() -> None:
    """`sharedcare load` and `sharedcare synth` live in loaders/cli.py."""
    from loaders.cli import register

    register(main)


_register_loaders()


if __name__ == "__main__":
    main()
