"""signals: a phone number for staff (the supervisors' daily summary) and the clusters announced

`staff_users.phone` is added in place (`ALTER TABLE ... ADD COLUMN`): batch mode's
copy-and-rename would drop a table that other tables reference.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 13:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import bot.db


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('staff_users', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('phone', sa.String(length=20), nullable=True))

    op.create_table('signal_announcements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('staff_user_id', sa.Integer(), nullable=False),
    sa.Column('cluster_hash', sa.String(length=64), nullable=False),
    sa.Column('announced_at', bot.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['staff_user_id'], ['staff_users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('signal_announcements', schema=None) as batch_op:
        batch_op.create_index(
            'ix_signal_announcements_user_cluster', ['staff_user_id', 'cluster_hash', 'announced_at'], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table('signal_announcements', schema=None) as batch_op:
        batch_op.drop_index('ix_signal_announcements_user_cluster')
    op.drop_table('signal_announcements')

    with op.batch_alter_table('staff_users', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('phone')
