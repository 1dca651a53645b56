"""Which clusters each supervisor has been told about, so the summary tells each one once."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from bot.db import Base
from bot.conversation.models import utcnow

# A SHA-256 of the cluster's key (bot.reports.signals.Cluster.key), in hex.
CLUSTER_HASH_CHARS = 64


class SignalAnnouncement(Base):
    """One cluster announced to one staff member, when last; it is new again after a quiet period."""

    __tablename__ = "signal_announcements"
    __table_args__ = (
        Index("uq_signal_announcements_user_cluster", "staff_user_id", "cluster_hash", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"))
    cluster_hash: Mapped[str] = mapped_column(String(CLUSTER_HASH_CHARS))
    announced_at: Mapped[datetime] = mapped_column(default=utcnow)
