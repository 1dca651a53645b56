"""signal indexes: complaints by kind and date, one announcement row per supervisor and cluster

The "Sinyal" page and the supervisors' summary read every complaint of the period
and its baseline (`kind = 'pengaduan' AND created_at >= ...`); no earlier index
starts with `kind`. An announcement is now one row per supervisor and cluster
(updated when a cluster is announced again after a quiet period), so duplicates
left by the earlier insert-only rows are dropped, keeping the latest, before the
unique index replaces the plain one.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 15:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_reports_kind_created', 'reports', ['kind', 'created_at'])
    op.execute(sa.text(
        "DELETE FROM signal_announcements WHERE id NOT IN ("
        "SELECT keep FROM (SELECT MAX(id) AS keep FROM signal_announcements "
        "GROUP BY staff_user_id, cluster_hash) AS latest)"
    ))
    op.drop_index('ix_signal_announcements_user_cluster', table_name='signal_announcements')
    op.create_index(
        'uq_signal_announcements_user_cluster', 'signal_announcements', ['staff_user_id', 'cluster_hash'], unique=True
    )


def downgrade() -> None:
    op.drop_index('uq_signal_announcements_user_cluster', table_name='signal_announcements')
    op.create_index(
        'ix_signal_announcements_user_cluster', 'signal_announcements',
        ['staff_user_id', 'cluster_hash', 'announced_at'], unique=False,
    )
    op.drop_index('ix_reports_kind_created', table_name='reports')
