"""Request dependencies: one DB session per request, the app-wide Temporal client, the caller."""
from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api.auth import Principal, principal_from_request
from domain.settings import Settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessionmaker() as session:
        yield session


def get_temporal(request: Request) -> Client:
    return request.app.state.temporal


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


async def get_principal(request: Request, session: AsyncSession = Depends(get_session)) -> Principal:
    return await principal_from_request(request, session)
