"""Tables of the CAM workspace (api/web/): operators who may sign in as ops, browser sessions
(stored by the hash of their cookie), and the sign-in links already used (each works once)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, _uuid


class WebOperator(Base):
    """A channel-operations user of the workspace (CAMs sign in with their `cams.email`)."""

    __tablename__ = "web_operators"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=_uuid)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # the highest MDF approval level this operator decides (1 = the first); None: the first level only
    approver_level: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class WebSession(Base):
    """A signed-in browser. The cookie holds a random token; only its SHA-256 is stored."""

    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(10))  # cam | ops
    cam_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("cams.id", ondelete="CASCADE"), nullable=True, index=True
    )
    operator_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("web_operators.id", ondelete="CASCADE"), nullable=True
    )
    email: Mapped[str] = mapped_column(String(320))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class UsedSignInLink(Base):
    """A magic sign-in link that was used: each link signs in once."""

    __tablename__ = "web_used_sign_in_links"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    used_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
