"""Request dependencies: one DB session per request, the app-wide Temporal client, the caller."""
from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api.auth import Principal, principal_from_request
from core.settings import Settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessionmaker() as session:
        yield session


def get_temporal(request: Request) -> Client:
    return request.app.state.temporal


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


# Declared so that /docs offers "Authorize" for the API key; the check itself is ours (JSON 401s).
bearer = HTTPBearer(auto_error=False, scheme_name="ApiKey", description="`Authorization: Bearer <api key>`")


async def get_principal(request: Request, session: AsyncSession = Depends(get_session),
                        _: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Principal:
    return await principal_from_request(request, session)
