"""``factory-cloud users create|disable`` and ``factory-cloud tokens create``: run on the server
itself, with direct database access, so the first admin can exist before any token does (and a
demo account can be disabled while the production API refuses to start because of it)."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from cloud.auth.demo_accounts import demo_credentials_problem
from cloud.auth.lifetimes import DEFAULT_API_TOKEN_LIFETIME, parse_lifetime
from cloud.auth.service import (
    AuthError,
    Principal,
    Role,
    audit,
    audit_new_token,
    create_gateway_token,
    create_token,
    create_user,
    set_user_disabled,
)
from cloud.config import CloudSettings
from cloud.db.engine import make_engine, make_sessionmaker
from cloud.db.migrate import migrate
from cloud.db.models import ApiToken

CLI_ACTOR = Principal("cli:factory-cloud", Role.admin)


def sqlite_file(db_url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases and in-memory SQLite)."""
    url = make_url(db_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def where_written(db_url: str, created: bool) -> str:
    """The line telling the user which database was written; the password never shows."""
    shown = make_url(db_url).render_as_string(hide_password=True)
    line = f"written to database {shown}"
    if created:
        # The classic slip: no --db, so a fresh default file is made and the running cloud
        # (the demo's own database) never sees the user or token.
        line += (
            f"\nwarning: {shown} did not exist and was just created empty; if your cloud runs on "
            "another database, pass its --db URL (or set FACTORY_DB_URL): the demo prints its own"
        )
    return line


def _new_password(username: str, env: Mapping[str, str]) -> str | None:
    """The new user's password: from the environment, else asked twice on a terminal; None if
    neither is possible (a script or a pipe: getpass would fail with a traceback)."""
    if env.get("FACTORY_NEW_PASSWORD"):
        return env["FACTORY_NEW_PASSWORD"]
    if not sys.stdin.isatty():
        return None
    while True:
        first = getpass.getpass(f"password for {username}: ")
        if first and getpass.getpass("again: ") == first:
            return first
        print("the two entries differ (or are empty); try again", file=sys.stderr)  # noqa: T201


def _mint_token(session: Session, args: argparse.Namespace) -> tuple[ApiToken, str]:
    """A person's token of ``--role``, or with ``--role gateway`` one bound to ``--gateway``; it
    expires after ``--expires`` (90 days unless given)."""
    try:
        lifetime = parse_lifetime(args.expires) if args.expires else DEFAULT_API_TOKEN_LIFETIME
    except ValueError as exc:
        raise AuthError(f"--expires: {exc}") from None
    if args.role == "gateway":
        if not args.gateway:
            raise AuthError("--role gateway needs --gateway ID: a gateway token is bound to one gateway")
        return create_gateway_token(session, args.gateway, args.name, lifetime)
    if args.gateway:
        raise AuthError(f"--gateway is for gateway tokens; a {args.role} token is not bound to a gateway")
    return create_token(session, args.name or "cli", Role.parse(args.role), lifetime=lifetime)


def _create_user(session: Session, args: argparse.Namespace, password: str) -> int:
    try:
        create_user(session, args.username, password, Role.parse(args.role))
    except AuthError as exc:
        print(f"factory-cloud: cannot create user: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    audit(session, CLI_ACTOR, "user.create", args.username, role=args.role)
    print(f"user {args.username} created with role {args.role}")  # noqa: T201
    return 0


def _disable_user(session: Session, args: argparse.Namespace) -> int:
    try:
        _user, revoked = set_user_disabled(session, args.username, disabled=True)
    except AuthError as exc:
        print(f"factory-cloud: cannot disable user: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    audit(session, CLI_ACTOR, "user.disable", args.username, tokens_revoked=revoked)
    print(f"user {args.username} disabled; {revoked} token(s) revoked")  # noqa: T201
    return 0


def _create_token(session: Session, args: argparse.Namespace) -> int:
    try:
        row, secret = _mint_token(session, args)
    except AuthError as exc:
        print(f"factory-cloud: cannot create token: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    audit_new_token(session, CLI_ACTOR, row)
    print(secret)  # noqa: T201  # the only time the secret exists outside its holder
    print(f"expires {row.expires_at.isoformat(timespec='seconds')}", file=sys.stderr)  # noqa: T201
    return 0


def run_access_command(args: argparse.Namespace, settings: CloudSettings, env: Mapping[str, str]) -> int:
    """Create a user, disable one, or create a token (its secret printed once). Returns the exit
    code.

    Stdout holds only the result (the token secret, for scripts); which database was written,
    and a warning if it did not exist before, go to stderr."""
    password = ""
    if args.command == "users" and args.action == "create":
        got = _new_password(args.username, env)
        if got is None:
            print(  # noqa: T201
                "factory-cloud: no password for the new user: set FACTORY_NEW_PASSWORD, or run the "
                "command in a terminal to be asked",
                file=sys.stderr,
            )
            return 2
        password = got
        problem = (
            demo_credentials_problem(args.username, password) if settings.profile == "production" else None
        )
        if problem is not None:
            print(f"factory-cloud: cannot create user: production profile: {problem}", file=sys.stderr)  # noqa: T201
            return 1
    path = sqlite_file(settings.db_url)
    created = path is not None and not path.exists()
    if settings.migrate_on_start:
        migrate(settings.db_url, wait_s=settings.db_wait_s)
    engine = make_engine(settings.db_url)
    try:
        with make_sessionmaker(engine).begin() as session:
            if args.command == "tokens":
                code = _create_token(session, args)
            elif args.action == "create":
                code = _create_user(session, args, password)
            else:
                code = _disable_user(session, args)
    finally:
        engine.dispose()
    if code:
        return code
    print(where_written(settings.db_url, created), file=sys.stderr)  # noqa: T201
    return 0
