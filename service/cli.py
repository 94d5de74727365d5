"""Service commands: ``serve``, ``keys``, ``db upgrade`` and ``corpus export-feedback``.

They are registered through the ``codesuggest.commands`` entry points (pyproject.toml), so
``pipeline`` never imports ``service``. Heavy imports (FastAPI, uvicorn, the model) happen inside
the handlers, keeping ``codesuggest --help`` fast.
"""

from __future__ import annotations

import argparse
import functools
import logging
import logging.config
import os
import sys
from pathlib import Path
from typing import Any

from pipeline.commands import CommandRegistry, print_json

logger = logging.getLogger(__name__)


def _db_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        metavar="URL",
        default=None,
        help="database URL (default: CODESUGGEST_DATABASE_URL, else sqlite:///var/codesuggest.sqlite3)",
    )


def _database(args: argparse.Namespace) -> Any:
    from service.config import load_settings
    from service.db import Database

    url = args.db or load_settings().database_url
    db = Database(url)
    db.upgrade()
    return db


# -- serve --------------------------------------------------------------------------------------
def register_serve(registry: CommandRegistry) -> None:
    """Register ``codesuggest serve``.

    Args:
        registry: the CLI's command registry.
    """
    parser = registry.command("serve", _serve, help="run the suggestion service (HTTP API)")
    parser.add_argument("--host", default=None, help="address to bind (default CODESUGGEST_HOST, 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default CODESUGGEST_PORT, 8000)")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes (default CODESUGGEST_WORKERS, 1)",
    )
    parser.add_argument(
        "--insecure-dev",
        action="store_true",
        help="serve WITHOUT API keys (every caller is admin); local development only",
    )


def uvicorn_log_config(level: str) -> dict[str, Any]:
    """The logging configuration every worker process applies (one format, no access log).

    Args:
        level: the service's log level.

    Returns:
        A :func:`logging.config.dictConfig` document.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": {"format": "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        # Our request middleware logs each request by route template; the access log would
        # print raw paths and query strings (search terms), so it stays off.
        # nmslib (the fuzzy matcher's index) logs every registered space at INFO.
        "loggers": {
            "uvicorn.access": {"level": "WARNING"},
            "alembic": {"level": "WARNING"},
            "nmslib": {"level": "WARNING"},
        },
    }


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from pipeline.manifest import verify_manifest
    from service.config import ENV_PREFIX, load_settings
    from service.db import Database
    from service.main import INSECURE_WARNING, create_app, load_suggester
    from service.transport import PROTOCOL
    from service.workers import serve_workers

    settings = load_settings(
        host=args.host,
        port=args.port,
        workers=args.workers,
        insecure_dev=True if args.insecure_dev else None,
    )
    logging.getLogger().setLevel(settings.log_level)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if settings.insecure_dev:
        sys.stderr.write(f"codesuggest: WARNING: {INSECURE_WARNING}\n")
    # Cheap checks first, so that a missing or tampered artefact stops here with one line.
    verify_manifest(settings.model_dir)
    verify_manifest(settings.kb_dir)
    # Migrate once here, so that several workers never race to create the schema.
    db = Database(settings.database_url)
    try:
        db.upgrade()
    finally:
        db.dispose()
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_config": uvicorn_log_config(settings.log_level),
        "access_log": False,
        "timeout_graceful_shutdown": 30,
        "http": PROTOCOL,
    }
    if settings.workers == 1:
        # Load here: a bad model stops the command with the loader's one-line message.
        suggester = load_suggester(settings)
        uvicorn.run(create_app(settings, suggester=suggester), **common)
        return 0
    # Worker processes build their own app from the environment; pass the flags on that way.
    for name in ("host", "port", "workers", "insecure_dev"):
        os.environ[f"{ENV_PREFIX}{name.upper()}"] = str(getattr(settings, name))
    # Each worker binds its own SO_REUSEPORT socket so that the kernel spreads connections over
    # them (uvicorn's shared socket let one worker take them all; see service.workers).
    logging.config.dictConfig(common["log_config"])
    return serve_workers({"app": "service.main:create_app", "factory": True, **common}, settings.workers)


# -- keys ---------------------------------------------------------------------------------------
def register_keys(registry: CommandRegistry) -> None:
    """Register ``codesuggest keys create|list|revoke``.

    Args:
        registry: the CLI's command registry.
    """
    from service.security import ROLES

    registry.group("keys", help="API keys of the service")
    create = registry.command(
        "create", _keys_create, help="create an API key (its secret is printed once)", group="keys"
    )
    create.add_argument("--name", required=True, help="who or what the key is for")
    create.add_argument("--role", required=True, choices=ROLES, help="what the key may do")
    create.add_argument("--json", action="store_true", help="print a JSON document")
    _db_argument(create)
    listing = registry.command("list", _keys_list, help="list API keys (never their secrets)", group="keys")
    listing.add_argument("--active", action="store_true", help="leave out revoked keys")
    listing.add_argument("--json", action="store_true", help="print a JSON document")
    _db_argument(listing)
    revoke = registry.command("revoke", _keys_revoke, help="revoke an API key", group="keys")
    revoke.add_argument("id", help="the key id (the 12 hex digits after csk_)")
    _db_argument(revoke)


def _keys_create(args: argparse.Namespace) -> int:
    from service.security import create_key

    db = _database(args)
    try:
        with db.session() as session:
            info, token = create_key(session, args.name, args.role)
    finally:
        db.dispose()
    if args.json:
        print_json({"id": info.id, "name": info.name, "role": info.role, "key": token})
    else:
        sys.stdout.write(token + "\n")
    sys.stderr.write(f"created {info.role} key {info.id} for {info.name!r}; store it now, it cannot be shown again\n")
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    from sqlalchemy import func, select

    from service.models import AuditEntry
    from service.security import list_keys

    db = _database(args)
    try:
        with db.session() as session:
            keys = list_keys(session, include_revoked=not args.active)
            last_used = dict(
                session.execute(select(AuditEntry.key_id, func.max(AuditEntry.at)).group_by(AuditEntry.key_id)).all()
            )
    finally:
        db.dispose()
    rows: list[dict[str, Any]] = [
        {
            "id": k.id,
            "name": k.name,
            "role": k.role,
            "created_at": k.created_at.isoformat(timespec="seconds"),
            "revoked_at": k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else None,
            "last_used_at": _iso(last_used.get(k.id)),
        }
        for k in keys
    ]
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        sys.stderr.write("no API keys; create one with: codesuggest keys create --name N --role R\n")
        return 0
    header = f"{'id':<12}  {'role':<11}  {'created':<19}  {'revoked':<19}  {'last used':<19}  name"
    sys.stdout.write(header + "\n")
    for r in rows:
        revoked = str(r["revoked_at"] or "-")[:19]
        used = str(r["last_used_at"] or "-")[:19]
        sys.stdout.write(
            f"{r['id']:<12}  {r['role']:<11}  {r['created_at'][:19]:<19}  {revoked:<19}  {used:<19}  {r['name']}\n"
        )
    return 0


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat(timespec="seconds") if hasattr(value, "isoformat") else str(value)


def _keys_revoke(args: argparse.Namespace) -> int:
    from service.security import revoke_key

    db = _database(args)
    try:
        with db.session() as session:
            info = revoke_key(session, args.id)
    finally:
        db.dispose()
    sys.stderr.write(f"revoked key {info.id} ({info.role}, {info.name!r})\n")
    return 0


# -- db -----------------------------------------------------------------------------------------
def register_db(registry: CommandRegistry) -> None:
    """Register ``codesuggest db upgrade``.

    Args:
        registry: the CLI's command registry.
    """
    registry.group("db", help="the service database")
    upgrade = registry.command("upgrade", _db_upgrade, help="create or migrate the service database", group="db")
    _db_argument(upgrade)


def _db_upgrade(args: argparse.Namespace) -> int:
    db = _database(args)
    try:
        sys.stderr.write(f"database {db.safe_url} at revision {db.current_revision()}\n")
    finally:
        db.dispose()
    return 0


def _vault_if_needed(db: Any, settings: Any) -> Any:
    """The encounter key when the database holds encounters (a key file is never created here)."""
    from sqlalchemy import func, select

    from service.config import DEFAULT_ENCOUNTER_KEY_FILE
    from service.encounters import load_vault
    from service.errors import ServiceConfigError
    from service.models import Encounter

    with db.session() as session:
        if not session.scalar(select(func.count()).select_from(Encounter)):
            return None
    has_key = settings.encounter_key is not None and settings.encounter_key.get_secret_value().strip()
    key_file = Path(settings.encounter_key_file or DEFAULT_ENCOUNTER_KEY_FILE).expanduser()
    if not has_key and not key_file.exists():
        raise ServiceConfigError(
            f"the database holds encounters but the encounter key file {key_file} does not exist: "
            "set CODESUGGEST_ENCOUNTER_KEY or CODESUGGEST_ENCOUNTER_KEY_FILE to the key they were stored with"
        )
    return load_vault(settings)


# -- encounters ---------------------------------------------------------------------------------
def register_encounters(registry: CommandRegistry) -> None:
    """Register ``codesuggest encounters import|purge``.

    Args:
        registry: the CLI's command registry.
    """
    registry.group("encounters", help="notes queued for review in the coder's workbench")
    imp = registry.command(
        "import",
        _encounters_import,
        help="queue the notes of a corpus file (JSONL) for review; all or none",
        group="encounters",
    )
    imp.add_argument("corpus", type=Path, help="corpus file (corpora/README.md format); its codes are ignored")
    imp.add_argument("--setting", choices=["outpatient", "inpatient"], default=None, help="for notes without one")
    imp.add_argument("--retention-days", type=int, default=None, help="days the note texts are kept")
    imp.add_argument("--json", action="store_true", help="print a JSON document")
    _db_argument(imp)
    purge = registry.command(
        "purge", _encounters_purge, help="delete note texts whose retention ended", group="encounters"
    )
    _db_argument(purge)


def _encounters_import(args: argparse.Namespace) -> int:
    import datetime as dt

    from pydantic import ValidationError

    from corpora.format import read_corpus
    from pipeline.errors import InputError
    from service.config import load_settings
    from service.encounter_schemas import EncounterIn
    from service.encounters import load_vault, store_encounters

    settings = load_settings()
    notes = read_corpus(args.corpus)
    items = []
    for i, note in enumerate(notes, start=1):
        meta = note.meta or {}
        date = meta.get("encounter_date")
        try:
            items.append(
                EncounterIn.model_validate(
                    {
                        "encounter_id": note.id,
                        "text": note.text,
                        "setting": note.setting or args.setting or "outpatient",
                        "encounter_date": dt.date.fromisoformat(date) if isinstance(date, str) else None,
                        "expected_value": meta.get("expected_value"),
                        "retention_days": args.retention_days,
                    }
                )
            )
        except (ValidationError, ValueError) as exc:
            first = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            raise InputError(f"{args.corpus}: note {i} ({note.id!r}): {first}") from exc
    if not items:
        raise InputError(f"{args.corpus}: no notes")
    db = _database(args)
    try:
        rows = store_encounters(db, load_vault(settings), items, None, settings.encounter_retention_days)
    finally:
        db.dispose()
    if args.json:
        print_json({"imported": len(rows), "encounters": [r.encounter_id for r in rows]})
    else:
        sys.stderr.write(f"queued {len(rows)} encounters for review (note texts sealed with the encounter key)\n")
    return 0


def _encounters_purge(args: argparse.Namespace) -> int:
    from service.encounters import purge_expired

    db = _database(args)
    try:
        purged = purge_expired(db)
    finally:
        db.dispose()
    sys.stderr.write(f"deleted the note texts of {purged} encounters whose retention ended\n")
    return 0


# -- corpus export-feedback ---------------------------------------------------------------------
def register_feedback(registry: CommandRegistry) -> None:
    """Register ``codesuggest corpus export-feedback``.

    Args:
        registry: the CLI's command registry.
    """
    export = registry.command(
        "export-feedback",
        _export_feedback,
        help="write coders' accepted, added and modified codes as a training corpus (JSONL)",
        group="corpus",
    )
    export.add_argument("--out", required=True, type=Path, help="corpus file to write")
    export.epilog = (
        "Reviewed encounters of the workbench are exported from their submitted code sets; their note "
        "texts are opened with the encounter key (CODESUGGEST_ENCOUNTER_KEY or _KEY_FILE)."
    )
    export.add_argument("--json", action="store_true", help="print the report as JSON")
    _db_argument(export)


def _export_feedback(args: argparse.Namespace) -> int:
    from service.config import load_settings
    from service.encounters import reviewed_notes
    from service.feedback import export_feedback

    db = _database(args)
    try:
        vault = _vault_if_needed(db, load_settings())
        reviewed = functools.partial(reviewed_notes, db, vault) if vault is not None else None
        report = export_feedback(db, args.out, reviewed=reviewed)
    finally:
        db.dispose()
    if args.json:
        print_json(
            {
                "out": str(report.out),
                "written": report.written,
                "decisions": report.decisions,
                "skipped": {
                    "no_text": report.skipped_no_text,
                    "no_codes": report.skipped_no_codes,
                },
            }
        )
    else:
        sys.stderr.write(report.summary() + "\n")
    return 0
