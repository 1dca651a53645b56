"""media items: our own copies of citizens' attachments (bot/media/)

One row per attachment of an inbound message: the provider's URL until our copy is
stored, the key of that copy, its checked type, size and SHA-256, and whether the
provider's copy is deleted. Messages stored before this revision keep their media
as Twilio's URLs only; nothing is fetched for them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 13:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import bot.db


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('media_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=32), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('source_url', sa.String(length=500), nullable=False),
    sa.Column('declared_type', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('refusal', sa.String(length=16), nullable=True),
    sa.Column('content_type', sa.String(length=100), nullable=True),
    sa.Column('size', sa.Integer(), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', bot.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=64), nullable=True),
    sa.Column('created_at', bot.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('stored_at', bot.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('provider_deleted_at', bot.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    with op.batch_alter_table('media_items', schema=None) as batch_op:
        batch_op.create_index('ix_media_items_message', ['message_id'], unique=False)
        batch_op.create_index('ix_media_items_next_attempt', ['next_attempt_at'], unique=False)
        batch_op.create_index('ix_media_items_source_url', ['source_url'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('media_items', schema=None) as batch_op:
        batch_op.drop_index('ix_media_items_source_url')
        batch_op.drop_index('ix_media_items_next_attempt')
        batch_op.drop_index('ix_media_items_message')
    op.drop_table('media_items')
