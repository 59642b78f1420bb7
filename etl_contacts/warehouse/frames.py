"""The shape of a batch the loader takes: what the pipeline must produce, declared by the warehouse
so that the warehouse imports nothing above it."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

CONTACT_COLUMNS = (
    "account",
    "contact_id",
    "uuid",
    "name",
    "email",
    "email_domain",
    "phone_e164",
    "channel",
    "bot_id",
    "status",
    "agent_id",
    "is_online",
    "user_interacted",
    "is_live_chat_active",
    "last_message_by",
    "website_visits",
    "has_ordered",
    "last_order_at",
    "created_at",
    "updated_at",
    "last_seen_at",
    "raw",
    "content_hash",
    "tracked_hash",
)
REJECT_COLUMNS = ["account", "contact_id", "reason", "detail", "record"]


@dataclass(frozen=True)
class Frames:
    """One batch, normalized: the contacts, their child rows, and what could not be loaded."""

    contacts: pd.DataFrame
    tags: pd.DataFrame
    attributes: pd.DataFrame
    segments: pd.DataFrame
    rejects: pd.DataFrame
    superseded: pd.DataFrame
    """Copies of a contact that differ from the copy the batch keeps and are not newer than it,
    shaped like `rejects` (reason `superseded_in_batch`): refused as older, and quarantined, so
    that the counts say what happened to them and their content is not lost."""
    collapsed: int = 0
    """Copies in the same batch identical to the one kept: nothing new, counted as unchanged."""
