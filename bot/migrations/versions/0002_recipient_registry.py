"""recipient registry: recipients, programmes, enrolments, disbursements, NIK look-ups

The four programmes are seeded here, as data of this revision: the importer and the
status service read them from the table, so a later programme arrives by migration.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 11:43:42.669486
"""
from alembic import op
import sqlalchemy as sa
import bot.db


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

PROGRAMS = [
    {
        "code": "PKH",
        "name": "Program Keluarga Harapan",
        "description": (
            "Bantuan tunai bersyarat untuk keluarga dengan ibu hamil, anak usia dini, "
            "anak sekolah, lansia atau penyandang disabilitas berat; cair empat tahap setahun."
        ),
        "gives_cash": True,
    },
    {
        "code": "BPNT",
        "name": "Bantuan Pangan Non Tunai (Sembako)",
        "description": "Rp200.000 per bulan untuk kebutuhan pangan, disalurkan per tiga bulan.",
        "gives_cash": True,
    },
    {
        "code": "BLT",
        "name": "Bantuan Langsung Tunai",
        "description": "Bantuan tunai langsung sesuai program pemerintah yang sedang berjalan.",
        "gives_cash": True,
    },
    {
        "code": "PBI-JK",
        "name": "Penerima Bantuan Iuran Jaminan Kesehatan",
        "description": "Iuran BPJS Kesehatan dibayar pemerintah, tanpa uang tunai ke keluarga.",
        "gives_cash": False,
    },
]


def upgrade() -> None:
    programs = op.create_table('programs',
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('gives_cash', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('code')
    )
    op.bulk_insert(programs, PROGRAMS)

    op.create_table('recipients',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('nik', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('birth_date', sa.Date(), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=True),
    sa.Column('province_code', sa.String(length=2), nullable=False),
    sa.Column('regency', sa.String(length=100), nullable=False),
    sa.Column('district', sa.String(length=100), nullable=False),
    sa.Column('village', sa.String(length=100), nullable=False),
    sa.Column('address', sa.Text(), nullable=False),
    sa.Column('has_smartphone', sa.Boolean(), nullable=False),
    sa.Column('created_at', bot.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', bot.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('nik', name='uq_recipients_nik')
    )
    with op.batch_alter_table('recipients', schema=None) as batch_op:
        batch_op.create_index('ix_recipients_phone', ['phone'], unique=False)

    op.create_table('enrolments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('recipient_id', sa.Integer(), nullable=False),
    sa.Column('program_code', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', bot.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', bot.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['program_code'], ['programs.code'], ),
    sa.ForeignKeyConstraint(['recipient_id'], ['recipients.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('recipient_id', 'program_code', name='uq_enrolments_recipient_program')
    )

    op.create_table('disbursements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('recipient_id', sa.Integer(), nullable=False),
    sa.Column('program_code', sa.String(length=16), nullable=False),
    sa.Column('period', sa.String(length=40), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=True),
    sa.Column('scheduled_date', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('disbursed_at', bot.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', bot.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', bot.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['program_code'], ['programs.code'], ),
    sa.ForeignKeyConstraint(['recipient_id'], ['recipients.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('recipient_id', 'program_code', 'period', name='uq_disbursements_recipient_program_period')
    )
    with op.batch_alter_table('disbursements', schema=None) as batch_op:
        batch_op.create_index('ix_disbursements_recipient_date', ['recipient_id', 'scheduled_date'], unique=False)
        batch_op.create_index('ix_disbursements_status_date', ['status', 'scheduled_date'], unique=False)

    op.create_table('nik_lookups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sender_key', sa.String(length=64), nullable=False),
    sa.Column('nik_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', bot.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('nik_lookups', schema=None) as batch_op:
        batch_op.create_index('ix_nik_lookups_created', ['created_at'], unique=False)
        batch_op.create_index('ix_nik_lookups_sender_created', ['sender_key', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('nik_lookups', schema=None) as batch_op:
        batch_op.drop_index('ix_nik_lookups_sender_created')
        batch_op.drop_index('ix_nik_lookups_created')
    op.drop_table('nik_lookups')

    with op.batch_alter_table('disbursements', schema=None) as batch_op:
        batch_op.drop_index('ix_disbursements_status_date')
        batch_op.drop_index('ix_disbursements_recipient_date')
    op.drop_table('disbursements')

    op.drop_table('enrolments')

    with op.batch_alter_table('recipients', schema=None) as batch_op:
        batch_op.drop_index('ix_recipients_phone')
    op.drop_table('recipients')

    op.drop_table('programs')
