"""outbound route: how a message the app sent on its own went, and what replaced it

Messages the app sends on its own (report status notices, staff replies, hand-back)
go as WhatsApp free text, a Content template or SMS (bot/channels/later.py). The row
keeps its kind and template variables, so a 63016 reported later in a status callback
can still fall back, the template it went as, and `fallback_of_id`: the message it
replaced. The unique index lets a message be replaced once only, even when two
callbacks race.

Columns are added in place (`ALTER TABLE ... ADD COLUMN`), no foreign key: batch
mode's copy-and-rename of `messages` would drop a table other tables reference.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 13:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('messages', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('later_kind', sa.String(length=24), nullable=True))
        batch_op.add_column(sa.Column('template_sid', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('template_variables', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('fallback_of_id', sa.Integer(), nullable=True))
        batch_op.create_index('ix_messages_fallback_of', ['fallback_of_id'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None, recreate='never') as batch_op:
        batch_op.drop_index('ix_messages_fallback_of')
        batch_op.drop_column('fallback_of_id')
        batch_op.drop_column('template_variables')
        batch_op.drop_column('template_sid')
        batch_op.drop_column('later_kind')
