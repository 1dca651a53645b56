"""staff sessions: one row per sign-in, so logout ends a session on every host

The cookie now names a `staff_sessions` row (by a hash of its id) instead of carrying
the account's `session_version`, which goes: ending an account's sessions is ending
its rows. Existing cookies name no row, so everyone signs in once more.

`session_version` is dropped in place (`ALTER TABLE ... DROP COLUMN`, SQLite 3.35 or
later): batch mode's copy-and-rename of `staff_users` would drop a table that the
audit log and handoffs reference, which SQLite refuses with foreign keys on.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 09:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import bot.db


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('staff_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('id_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', bot.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', bot.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', bot.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', bot.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['staff_users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('id_hash')
    )
    with op.batch_alter_table('staff_sessions', schema=None) as batch_op:
        batch_op.create_index('ix_staff_sessions_user', ['user_id'], unique=False)

    with op.batch_alter_table('staff_users', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('session_version')


def downgrade() -> None:
    with op.batch_alter_table('staff_users', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('session_version', sa.Integer(), nullable=False, server_default='1'))

    with op.batch_alter_table('staff_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_staff_sessions_user')
    op.drop_table('staff_sessions')
