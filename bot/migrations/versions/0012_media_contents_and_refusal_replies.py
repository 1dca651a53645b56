"""media contents and refusal replies: our copies' bytes in the database, one reply per message

With several hosts, a copy on one host's disk is a 404 for an officer served by
another, and `bansos purge` on one host cannot delete it. The `database` media store
(bot/media/store.py, MEDIA_STORE=database) keeps each copy in `media_contents`
instead, under its random key.

`media_refusal_replies` has one row per message whose refused attachments the citizen
was told about: its primary key lets only one of several workers reply.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 15:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import bot.db


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('media_contents',
    sa.Column('key', sa.String(length=32), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('stored_at', bot.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('media_refusal_replies',
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('created_at', bot.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('message_id')
    )


def downgrade() -> None:
    op.drop_table('media_refusal_replies')
    op.drop_table('media_contents')
