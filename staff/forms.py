"""The dashboard's forms; Flask-WTF gives each a CSRF token and bounds every field."""
from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, DateField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, EqualTo, Length, Optional

from bot.handoff.service import REPLY_MAX_CHARS
from bot.handoff.models import OUTCOME_NOTE_MAX_CHARS, HandoffOutcome
from bot.reports.models import NOTE_MAX_CHARS
from bot.handoff.staff_models import FULL_NAME_MAX_CHARS, StaffRole
from bot.handoff.staff_users import PASSWORD_MAX_CHARS, PASSWORD_MIN_CHARS

ROLE_LABELS = {
    StaffRole.AGENT: "Petugas (wilayahnya)",
    StaffRole.SUPERVISOR: "Supervisor (semua wilayah)",
    StaffRole.ADMIN: "Admin",
}


class ActionForm(FlaskForm):
    """A button that changes something: only the CSRF token."""


class LoginForm(FlaskForm):
    username = StringField("Nama pengguna", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Kata sandi", validators=[DataRequired(), Length(max=PASSWORD_MAX_CHARS)])


class ReplyForm(FlaskForm):
    body = TextAreaField("Balasan", validators=[DataRequired(), Length(max=REPLY_MAX_CHARS)])


class AssignForm(FlaskForm):
    assignee = SelectField("Tugaskan ke", coerce=int)


class CloseForm(FlaskForm):
    outcome = SelectField(
        "Hasil", choices=[(code, HandoffOutcome.LABELS[code]) for code in HandoffOutcome.ALL]
    )
    note = TextAreaField("Catatan (opsional)", validators=[Optional(), Length(max=OUTCOME_NOTE_MAX_CHARS)])


class StatusForm(FlaskForm):
    status = SelectField("Status baru")
    note = TextAreaField(
        "Catatan untuk pelapor", validators=[Optional(), Length(max=NOTE_MAX_CHARS)]
    )


class ExportForm(FlaskForm):
    include_nik = BooleanField("Sertakan NIK utuh (dicatat di log audit)")


class ConversationExportForm(FlaskForm):
    """A region (a province, or a regency within it) and a period in the citizens' local dates."""

    province = SelectField("Provinsi", validators=[Optional()])
    regency = StringField("Kode kabupaten/kota (opsional, 4 angka)", validators=[Optional(), Length(max=4)])
    first = DateField("Dari tanggal", validators=[DataRequired("Isi tanggal awal.")])
    last = DateField("Sampai tanggal", validators=[DataRequired("Isi tanggal akhir.")])
    include_nik = BooleanField("Tampilkan NIK utuh (dicatat di log audit)")


class UserCreateForm(FlaskForm):
    username = StringField("Nama pengguna", validators=[DataRequired(), Length(max=64)])
    full_name = StringField("Nama lengkap", validators=[DataRequired(), Length(max=FULL_NAME_MAX_CHARS)])
    role = SelectField("Peran", choices=list(ROLE_LABELS.items()))
    region = StringField("Kode wilayah (kosong: nasional)", validators=[Optional(), Length(max=4)])
    password = PasswordField(
        "Kata sandi awal",
        validators=[DataRequired(), Length(min=PASSWORD_MIN_CHARS, max=PASSWORD_MAX_CHARS)],
    )


class UserEditForm(FlaskForm):
    role = SelectField("Peran", choices=list(ROLE_LABELS.items()))
    region = StringField("Kode wilayah (kosong: nasional)", validators=[Optional(), Length(max=4)])
    phone = StringField("No. HP untuk ringkasan Sinyal harian (supervisor)", validators=[Optional(), Length(max=32)])
    active = BooleanField("Aktif")


class PasswordForm(FlaskForm):
    password = PasswordField(
        "Kata sandi baru",
        validators=[DataRequired(), Length(min=PASSWORD_MIN_CHARS, max=PASSWORD_MAX_CHARS)],
    )
    confirm = PasswordField("Ulangi kata sandi", validators=[EqualTo("password", "Kata sandi tidak sama.")])


class ImportForm(FlaskForm):
    kind = SelectField(
        "Jenis data",
        choices=[("recipients", "Penerima (KPM)"), ("disbursements", "Penyaluran")],
    )
    file = FileField("Berkas CSV (UTF-8)", validators=[FileRequired()])
