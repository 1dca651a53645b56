"""notices: outbox of disbursement notices, attempts, campaigns, the scheduler lease

Also the recipients' data-cleaning flag for numbers a provider refused for good, and
the single row of the operators' pause switch. APScheduler's own job table
(`apscheduler_jobs`) is created by its job store, in the schema its version expects.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 09:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import bot.db


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('recipients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('flagged_phone', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('flagged_phone_reason', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('flagged_phone_at', bot.db.UTCDateTime(timezone=True), nullable=True))

    op.create_table('notice_campaigns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('label', sa.String(length=100), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('paused', sa.Boolean(), nullable=False),
    sa.Column('paused_at', bot.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', bot.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('notices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('disbursement_id', sa.Integer(), nullable=False),
    sa.Column('recipient_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('scheduled_date', sa.Date(), nullable=False),
    sa.Column('to_address', sa.String(length=20), nullable=False),
    sa.Column('province_code', sa.String(length=2), nullable=False),
    sa.Column('zone', sa.String(length=32), nullable=False),
    sa.Column('preferred_channel', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('segments', sa.Integer(), nullable=False),
    sa.Column('content_variables', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('not_before', bot.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('claim_token', sa.String(length=32), nullable=True),
    sa.Column('claimed_at', bot.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('provider', sa.String(length=16), nullable=True),
    sa.Column('provider_sid', sa.String(length=64), nullable=True),
    sa.Column('provider_status', sa.String(length=16), nullable=True),
    sa.Column('error_code', sa.String(length=16), nullable=True),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.Column('sent_at', bot.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', bot.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', bot.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['notice_campaigns.id'], ),
    sa.ForeignKeyConstraint(['disbursement_id'], ['disbursements.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['recipient_id'], ['recipients.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('disbursement_id', 'kind', 'scheduled_date', name='uq_notices_disbursement_kind_date')
    )
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.create_index('ix_notices_status_not_before', ['status', 'not_before'], unique=False)
        batch_op.create_index('ix_notices_campaign_status', ['campaign_id', 'status'], unique=False)
        batch_op.create_index('ix_notices_recipient', ['recipient_id'], unique=False)

    op.create_table('notice_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('notice_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('claim_token', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('provider_sid', sa.String(length=64), nullable=True),
    sa.Column('provider_status', sa.String(length=16), nullable=True),
    sa.Column('error_code', sa.String(length=16), nullable=True),
    sa.Column('started_at', bot.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', bot.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['notice_id'], ['notices.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('provider', 'provider_sid', name='uq_notice_attempts_provider_sid')
    )
    with op.batch_alter_table('notice_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_notice_attempts_notice', ['notice_id'], unique=False)

    control = op.create_table('notice_control',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('paused', sa.Boolean(), nullable=False),
    sa.Column('changed_at', bot.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('changed_by', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.bulk_insert(control, [{"id": 1, "paused": False}])

    op.create_table('scheduler_leases',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('holder', sa.String(length=128), nullable=False),
    sa.Column('acquired_at', bot.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', bot.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade() -> None:
    op.drop_table('scheduler_leases')
    op.drop_table('notice_control')
    with op.batch_alter_table('notice_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_notice_attempts_notice')
    op.drop_table('notice_attempts')
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.drop_index('ix_notices_recipient')
        batch_op.drop_index('ix_notices_campaign_status')
        batch_op.drop_index('ix_notices_status_not_before')
    op.drop_table('notices')
    op.drop_table('notice_campaigns')
    with op.batch_alter_table('recipients', schema=None) as batch_op:
        batch_op.drop_column('flagged_phone_at')
        batch_op.drop_column('flagged_phone_reason')
        batch_op.drop_column('flagged_phone')
