"""recipient name look-up: indexes for the status check by name and village

The check by name and village (bot/registry/status.py) compares `lower(village)` and
`lower(name)`; without an index on those expressions every look-up reads the whole
register, which for a national register is millions of rows per citizen's message.
PostgreSQL and SQLite (3.9 or later) both index expressions.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 14:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_recipients_village_lower', 'recipients', [sa.text('lower(village)')])
    op.create_index('ix_recipients_name_lower', 'recipients', [sa.text('lower(name)')])


def downgrade() -> None:
    op.drop_index('ix_recipients_name_lower', table_name='recipients')
    op.drop_index('ix_recipients_village_lower', table_name='recipients')
