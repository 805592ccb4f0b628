"""``factory-cloud users create`` and ``factory-cloud tokens create``: run on the server itself,
with direct database access, so the first admin can exist before any token does."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Mapping

from cloud.auth.service import AuthError, Principal, Role, audit, create_token, create_user
from cloud.config import CloudSettings
from cloud.db.engine import make_engine, make_sessionmaker
from cloud.db.migrate import migrate

CLI_ACTOR = Principal("cli:factory-cloud", Role.admin)


def run_access_command(args: argparse.Namespace, settings: CloudSettings, env: Mapping[str, str]) -> int:
    """Create a user or a token; print the token secret once. Returns the exit code."""
    if settings.migrate_on_start:
        migrate(settings.db_url, wait_s=settings.db_wait_s)
    engine = make_engine(settings.db_url)
    try:
        with make_sessionmaker(engine).begin() as session:
            if args.command == "users":
                password = env.get("FACTORY_NEW_PASSWORD") or getpass.getpass(
                    f"password for {args.username}: "
                )
                try:
                    create_user(session, args.username, password, Role.parse(args.role))
                except AuthError as exc:
                    print(f"factory-cloud: cannot create user: {exc}", file=sys.stderr)  # noqa: T201
                    return 1
                audit(session, CLI_ACTOR, "user.create", args.username, role=args.role)
                print(f"user {args.username} created with role {args.role}")  # noqa: T201
            else:
                row, secret = create_token(session, args.name, Role.parse(args.role))
                audit(session, CLI_ACTOR, "token.create", args.name, role=args.role, prefix=row.prefix)
                print(secret)  # noqa: T201  # the only time the secret exists outside its holder
    finally:
        engine.dispose()
    return 0
