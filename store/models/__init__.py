"""The tables every journey shares. A journey's own tables live in store/models/<journey>.py;
all modules of this package are imported here so that `Base.metadata` knows every table."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


def _uuid() -> uuid.UUID:
    return uuid.uuid4()


class PolicyVersion(Base):
    __tablename__ = "policy_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Cam(Base):
    __tablename__ = "cams"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=_uuid)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # offboarded: no sign-in, keys revoked, decisions refused; the partners keep it until handed over
    deactivated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Partner(Base):
    __tablename__ = "partners"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=_uuid)
    name: Mapped[str] = mapped_column(String(200))
    domain: Mapped[str] = mapped_column(String(253), unique=True)
    country: Mapped[str] = mapped_column(String(2))
    type: Mapped[str] = mapped_column(String(20))
    tier: Mapped[str] = mapped_column(String(20), index=True)
    cam_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("cams.id"), index=True, nullable=True
    )
    contact_email: Mapped[str] = mapped_column(String(320))
    status: Mapped[str] = mapped_column(String(20), index=True)
    # Numbers the coverage (tier, CAM): raised with each change, in its transaction (migration 0014).
    coverage_version: Mapped[int] = mapped_column(Integer, server_default="0", default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (Index("ix_partners_created_at_id", "created_at", "id"),)  # list order (migration 0010)
    # created_at and updated_at come back with the INSERT (RETURNING): no re-read after creating one
    __mapper_args__ = {"eager_defaults": True}


class JourneyRecord(Base):
    """Read model: the current state of every journey, by workflow id."""

    __tablename__ = "journeys"

    workflow_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    partner_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("partners.id", ondelete="CASCADE"), index=True
    )
    journey: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # How to start it (written with the entity, in the same transaction) and whether the start was
    # confirmed: a row with started_at NULL is started again, idempotently, until it is.
    workflow_type: Mapped[str | None] = mapped_column(String(80), nullable=True)
    start_input: Mapped[dict[str, Any] | None] = mapped_column(JSONB, nullable=True)
    task_queue: Mapped[str | None] = mapped_column(String(200), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    # While the journey waits for ops after a permanent failure: the step, the error, since when.
    attention: Mapped[dict[str, Any] | None] = mapped_column(JSONB, nullable=True)
    # The partner's coverage version the journey was told (a signal Temporal took); the reconciler
    # re-sends the coverage to journeys behind their partner (api/journeys.py `deliver_coverage`).
    coverage_version: Mapped[int] = mapped_column(Integer, server_default="0", default=0)


class Handover(Base):
    """A CAM handover (`POST /cams/{id}/handover`), run by `cam-handover-{id}`: its request and
    its progress (`progress`: per partner id, what moving it did), the read model of
    `GET /cams/{id}/handovers/{handover id}`."""

    __tablename__ = "cam_handovers"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=_uuid)
    from_cam_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("cams.id"), index=True)
    to_cam_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("cams.id"))
    partner_ids: Mapped[list[Any]] = mapped_column(JSONB)
    note: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(20), default="running")
    progress: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    requested_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AuditEvent(Base):
    """Every state change, who/what/when. The idempotency key guards each step of a journey."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(300), unique=True, nullable=True)
    partner_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), index=True, nullable=True)
    journey: Mapped[str | None] = mapped_column(String(20), nullable=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(80))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class OutboxMessage(Base):
    """One email to send: written with the state change, sent by the send activity."""

    __tablename__ = "outbox"
    __table_args__ = (UniqueConstraint("idempotency_key", "recipient", "template"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(300), index=True)
    partner_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    journey: Mapped[str] = mapped_column(String(20))
    template: Mapped[str] = mapped_column(String(80))
    recipient: Mapped[str] = mapped_column(String(320))
    recipient_role: Mapped[str] = mapped_column(String(20))
    context: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    message_id: Mapped[str] = mapped_column(String(400), unique=True)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=_uuid)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(10))
    cam_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("cams.id"), nullable=True)
    partner_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("partners.id", ondelete="CASCADE"), nullable=True
    )
    label: Mapped[str] = mapped_column(String(200), default="")
    # What the journeys grant the key (`JourneySpec.grants`), by full name: {"mdf.approver_level": 2}
    grants: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class IdempotencyRecord(Base):
    """The stored answer to a creating POST sent with an `Idempotency-Key` header."""

    __tablename__ = "idempotency_records"

    api_key_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(500))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), index=True)


class UsedLink(Base):
    """A one-click decision link that was used, of any kind (api/links.py): each link works once."""

    __tablename__ = "used_links"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    deal_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)  # the entity, whatever its kind
    used_by: Mapped[str] = mapped_column(String(200))
    used_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


def _import_platform_models() -> None:
    """The platform's other tables (a journey's own tables live in journeys/<name>/models.py and
    join `Base.metadata` when the journey is imported: see `import_journey_models`)."""
    import importlib
    import pkgutil

    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


def import_journey_models() -> None:
    """Every journey's tables, by the convention `journeys/<name>/models.py` (for migrations)."""
    import importlib
    from pathlib import Path

    for path in sorted((Path(__file__).resolve().parents[2] / "journeys").glob("*/models.py")):
        importlib.import_module(f"journeys.{path.parent.name}.models")


_import_platform_models()
