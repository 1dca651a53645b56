"""tapped title: what a citizen saw on the WhatsApp button or list item they tapped

A tap arrives as its payload ("2", "YA"), which the bot reads as the typed answer and
keeps in `body`; the title the citizen saw ("Potongan / pungutan liar") is kept
beside it for staff (transcript, inbox, conversation export).

Added in place (`ALTER TABLE ... ADD COLUMN`), as 0008 does.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 14:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('messages', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('tapped_title', sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('tapped_title')
