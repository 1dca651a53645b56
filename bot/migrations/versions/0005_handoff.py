"""handoff: staff accounts, audit log, handoffs and the staff messages in them

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-24 09:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import bot.db


revision = '0005'
down_revision = '0003'
branch_labels = None
depends_on = None

OPEN_SQL = "status IN ('waiting', 'claimed')"


def upgrade() -> None:
    op.create_table('staff_users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('full_name', sa.String(length=200), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('region', sa.String(length=8), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('failed_logins', sa.Integer(), nullable=False),
    sa.Column('locked_until', bot.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('session_version', sa.Integer(), nullable=False),
    sa.Column('last_login_at', bot.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', bot.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', bot.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('username')
    )

    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', bot.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('target', sa.String(length=80), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('ip', sa.String(length=45), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['staff_users.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_audit_log_at', ['at'], unique=False)
        batch_op.create_index('ix_audit_log_actor_at', ['actor', 'at'], unique=False)
        batch_op.create_index('ix_audit_log_target', ['target'], unique=False)

    op.create_table('handoffs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=24), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('region', sa.String(length=8), nullable=True),
    sa.Column('province_code', sa.String(length=2), nullable=True),
    sa.Column('report_reference', sa.String(length=20), nullable=True),
    sa.Column('assigned_to_id', sa.Integer(), nullable=True),
    sa.Column('created_at', bot.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('claimed_at', bot.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('first_response_at', bot.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('waiting_since', bot.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_inbound_at', bot.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ended_at', bot.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ended_by_id', sa.Integer(), nullable=True),
    sa.Column('outcome', sa.String(length=24), nullable=True),
    sa.Column('outcome_note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['assigned_to_id'], ['staff_users.id'], ),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], ),
    sa.ForeignKeyConstraint(['ended_by_id'], ['staff_users.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('handoffs', schema=None) as batch_op:
        batch_op.create_index('ix_handoffs_created', ['created_at'], unique=False)
        batch_op.create_index('ix_handoffs_status_waiting', ['status', 'waiting_since'], unique=False)
        batch_op.create_index(
            'uq_handoffs_open_contact', ['contact_id'], unique=True,
            sqlite_where=sa.text(OPEN_SQL), postgresql_where=sa.text(OPEN_SQL),
        )

    op.create_table('handoff_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('handoff_id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('staff_user_id', sa.Integer(), nullable=True),
    sa.Column('fell_back_to_sms', sa.Boolean(), nullable=False),
    sa.Column('created_at', bot.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['handoff_id'], ['handoffs.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], ),
    sa.ForeignKeyConstraint(['staff_user_id'], ['staff_users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('message_id')
    )
    with op.batch_alter_table('handoff_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_handoff_messages_handoff_id'), ['handoff_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('handoff_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_handoff_messages_handoff_id'))
    op.drop_table('handoff_messages')

    with op.batch_alter_table('handoffs', schema=None) as batch_op:
        batch_op.drop_index('uq_handoffs_open_contact')
        batch_op.drop_index('ix_handoffs_status_waiting')
        batch_op.drop_index('ix_handoffs_created')
    op.drop_table('handoffs')

    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_log_target')
        batch_op.drop_index('ix_audit_log_actor_at')
        batch_op.drop_index('ix_audit_log_at')
    op.drop_table('audit_log')

    op.drop_table('staff_users')
