"""Dependencies as ``Annotated`` aliases, so routes declare what they need in their signature."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from cloud.config import CloudSettings


def get_session(request: Request) -> Iterator[Session]:
    """A database session for one request, closed afterwards."""
    sessions: sessionmaker[Session] = request.app.state.sessions
    with sessions() as session:
        yield session


def get_settings(request: Request) -> CloudSettings:
    """The settings the app was created with."""
    settings: CloudSettings = request.app.state.settings
    return settings


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[CloudSettings, Depends(get_settings)]
