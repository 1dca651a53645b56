"""reports: usul, sanggah and pengaduan with attachments and status history

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 14:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import bot.db


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=20), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('reporter_contact_id', sa.Integer(), nullable=False),
    sa.Column('reporter_channel', sa.String(length=16), nullable=False),
    sa.Column('subject_nik', sa.String(length=16), nullable=True),
    sa.Column('subject_name', sa.String(length=200), nullable=True),
    sa.Column('subject_address', sa.Text(), nullable=True),
    sa.Column('province_code', sa.String(length=2), nullable=True),
    sa.Column('regency', sa.String(length=100), nullable=True),
    sa.Column('district', sa.String(length=100), nullable=True),
    sa.Column('village', sa.String(length=100), nullable=True),
    sa.Column('category', sa.String(length=40), nullable=False),
    sa.Column('proposed_for', sa.String(length=40), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('is_sensitive', sa.Boolean(), nullable=False),
    sa.Column('routed_to', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('created_at', bot.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', bot.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['reporter_contact_id'], ['contacts.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('reference')
    )
    with op.batch_alter_table('reports', schema=None) as batch_op:
        batch_op.create_index('ix_reports_province', ['province_code'], unique=False)
        batch_op.create_index('ix_reports_reporter_kind_created', ['reporter_contact_id', 'kind', 'created_at'], unique=False)
        batch_op.create_index('ix_reports_status_kind', ['status', 'kind'], unique=False)
        batch_op.create_index('ix_reports_subject_nik', ['subject_nik'], unique=False)

    op.create_table('report_attachments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('report_id', sa.Integer(), nullable=False),
    sa.Column('url', sa.String(length=1000), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('created_at', bot.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['report_id'], ['reports.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('report_attachments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_attachments_report_id'), ['report_id'], unique=False)

    op.create_table('report_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('report_id', sa.Integer(), nullable=False),
    sa.Column('event', sa.String(length=16), nullable=False),
    sa.Column('from_status', sa.String(length=24), nullable=True),
    sa.Column('to_status', sa.String(length=24), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('at', bot.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['report_id'], ['reports.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('report_events', schema=None) as batch_op:
        batch_op.create_index('ix_report_events_report_at', ['report_id', 'at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('report_events', schema=None) as batch_op:
        batch_op.drop_index('ix_report_events_report_at')
    op.drop_table('report_events')

    with op.batch_alter_table('report_attachments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_report_attachments_report_id'))
    op.drop_table('report_attachments')

    with op.batch_alter_table('reports', schema=None) as batch_op:
        batch_op.drop_index('ix_reports_subject_nik')
        batch_op.drop_index('ix_reports_status_kind')
        batch_op.drop_index('ix_reports_reporter_kind_created')
        batch_op.drop_index('ix_reports_province')
    op.drop_table('reports')
