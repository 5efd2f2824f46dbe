"""Partner portal users the platform writes outside the portal: the primary contact becomes the
partner's first admin at enrolment (api/partners/service.py), in the enrolment's statement."""

from __future__ import annotations

import uuid

from store.models import Partner
from store.models.portal import PartnerUser
from store.repo import NewRow

ADMIN = "admin"  # api/portal/team.py TeamRole.admin


def contact_admin(partner: Partner, actor: str) -> NewRow:
    """The partner's primary contact as its admin, written with the partner (`repo.write_created`,
    in its statement). An address already a user of another partner stays theirs (the unique
    address decides: ON CONFLICT DO NOTHING): one address, one partner."""
    email = partner.contact_email.lower()
    user = {
        "id": uuid.uuid4(),
        "partner_id": partner.id,
        "name": email.split("@")[0],
        "email": email,
        "role": ADMIN,
        "language": "en",
        "time_zone": "UTC",
        "created_by": actor,
    }
    return NewRow(PartnerUser, user, conflict=("email",))
