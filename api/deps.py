"""Request dependencies: the session and the settings."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from data.settings import Settings


def get_session(request: Request) -> Iterator[Session]:
    """One session per request; the transaction is committed or rolled back at its edge."""
    with request.app.state.sessions() as session:
        yield session


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
