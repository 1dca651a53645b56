"""Texts the core itself sends to citizens (the assistant's own texts live in domain.yml).

Plain Indonesian, polite, GSM-7 safe and within one SMS segment each.
"""

# Only when the assistant is down, never because it is busy: a busy assistant answers
# a little later, through the provider's API, without an apology first.
SERVICE_DOWN = (
    "Maaf, layanan sedang gangguan. Pesan Bapak/Ibu sudah kami simpan dan akan "
    "kami balas segera. Darurat: hubungi 171."
)
EMPTY_MESSAGE = "Pesan Bapak/Ibu kosong. Ketik MENU untuk melihat layanan."
MEDIA_WITHOUT_TEXT = (
    "Lampiran sudah kami terima. Mohon tulis juga pesan Bapak/Ibu dalam bentuk teks. "
    "Ketik MENU untuk melihat layanan."
)
STORAGE_DOWN = (
    "Maaf, layanan sedang gangguan dan pesan Bapak/Ibu belum tersimpan. "
    "Mohon kirim ulang beberapa saat lagi."
)
TOO_MANY_MESSAGES = (
    "Maaf, terlalu banyak pesan dari nomor ini dalam waktu singkat. Mohon tunggu "
    "sebentar, lalu kirim lagi satu pesan. Darurat: hubungi 171."
)

# An attachment that is not kept as evidence (bot/media/intake.py); {limit} is MEDIA_MAX_BYTES.
MEDIA_WRONG_TYPE = (
    "Maaf, lampiran Bapak/Ibu tidak kami simpan karena jenisnya tidak didukung. "
    "Kirim bukti sebagai foto (JPG, PNG) atau PDF, paling besar {limit}."
)
MEDIA_TOO_BIG = (
    "Maaf, lampiran Bapak/Ibu terlalu besar (lebih dari {limit}) dan tidak kami simpan. "
    "Mohon kirim foto yang lebih kecil atau PDF paling besar {limit}."
)
