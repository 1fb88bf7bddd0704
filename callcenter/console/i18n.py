"""Every label of the console in Indonesian (the default) and English.

Indonesian terms are those of shared/GLOSSARY-id.md: one term for one thing.

>>> translate("id", "queue"), translate("en", "queue")
('Antrean', 'Queue')
>>> translate("id", "no.such.key")
'no.such.key'
"""

from __future__ import annotations

from typing import Literal

Lang = Literal["id", "en"]
LANGS: tuple[Lang, ...] = ("id", "en")
DEFAULT: Lang = "id"

# key: (Indonesian, English)
LABELS: dict[str, tuple[str, str]] = {
    "app": ("Call Center TTU Siaga 112", "Call Center TTU Siaga 112"),
    "login": ("Masuk", "Log in"),
    "logout": ("Keluar", "Log out"),
    "username": ("Nama pengguna", "Username"),
    "password": ("Kata sandi", "Password"),
    "save": ("Simpan", "Save"),
    "cancel": ("Batal", "Cancel"),
    "search": ("Cari", "Search"),
    "switch_lang": ("English", "Bahasa Indonesia"),
    "operator_view": ("Petugas", "Operator"),
    "supervisor_view": ("Supervisor", "Supervisor"),
    "admin_view": ("Admin", "Admin"),
    "callbacks": ("Telepon balik", "Call-backs"),
    "queue": ("Antrean", "Queue"),
    "live_queue": ("Antrean langsung", "Live queue"),
    "live_connected": ("Tersambung ke siaran langsung", "Live stream connected"),
    "live_reconnecting": ("Menyambung ulang…", "Reconnecting…"),
    "no_calls": ("Tidak ada panggilan saat ini", "No calls right now"),
    "caller": ("Penelepon", "Caller"),
    "state": ("Status", "State"),
    "waiting_for": ("Lama menunggu", "Wait time"),
    "operator": ("Petugas", "Operator"),
    "open": ("Buka", "Open"),
    "flagged": ("penelepon tercatat iseng", "flagged prank caller"),
    "withheld": ("nomor disembunyikan", "withheld number"),
    "no_number": ("tanpa nomor", "no number"),
    "in_ivr": ("di IVR", "in IVR"),
    "queued": ("menunggu", "waiting"),
    "ringing": ("berdering", "ringing"),
    "connected": ("tersambung", "connected"),
    "answered": ("dijawab", "answered"),
    "abandoned_in_ivr": ("ditutup penelepon saat salam pembuka", "abandoned in IVR"),
    "abandoned_in_queue": ("ditutup penelepon saat menunggu", "abandoned in queue"),
    "unanswered": ("tidak terjawab", "unanswered"),
    "failed": ("gagal", "failed"),
    "ended": ("selesai", "ended"),
    "incoming_call": ("Panggilan masuk untuk Anda", "A call for you"),
    "call": ("Panggilan", "Call"),
    "started": ("Mulai", "Started"),
    "answer_time": ("Waktu jawab", "Answer time"),
    "talk_time": ("Lama bicara", "Talk time"),
    "classification": ("Klasifikasi", "Classification"),
    "emergency": ("darurat", "emergency"),
    "prank": ("iseng", "prank"),
    "non_emergency": ("bukan darurat", "non-emergency"),
    "untagged": ("belum ditandai", "not tagged"),
    "reason": ("Alasan", "Reason"),
    "note": ("Catatan", "Note"),
    "tag_hint": (
        "Tombol: D = darurat, I = iseng, B = bukan darurat",
        "Keys: D = emergency, I = prank, B = non-emergency",
    ),
    "tag_saved": ("Klasifikasi disimpan", "Classification saved"),
    "stale": (
        "Panggilan ini sudah diubah orang lain sejak Anda membukanya. Data terbaru sudah "
        "dimuat ulang: periksa lalu ulangi.",
        "Someone changed this call since you opened it. The latest data has been loaded: "
        "check it and try again.",
    ),
    "history": ("Riwayat perubahan", "Change history"),
    "caller_history": ("Riwayat penelepon", "Caller history"),
    "earlier_calls": ("Panggilan sebelumnya", "Earlier calls"),
    "prank_count": ("Jumlah iseng", "Pranks"),
    "calls_total": ("Jumlah panggilan", "Calls"),
    "repeat_caller": ("penelepon berulang", "repeat caller"),
    "no_history": ("Belum ada panggilan sebelumnya", "No earlier calls"),
    "callback_items": ("Telepon balik terbuka", "Open call-backs"),
    "privacy_asked": (
        "Penelepon meminta nomornya disembunyikan: nomor disimpan untuk telepon balik, "
        "disamarkan di daftar untuk supervisor",
        "The caller asked to withhold the number: it is kept for call-back and masked in "
        "supervisors' lists",
    ),
    "privacy_not_asked": (
        "Penelepon tidak meminta nomornya disembunyikan",
        "The caller did not ask to withhold the number",
    ),
    "incident": ("Kejadian", "Incident"),
    "new_incident": ("Buat kejadian", "Create incident"),
    "category": ("Jenis kejadian", "Category"),
    "district": ("Kecamatan", "District"),
    "village": ("Desa / kelurahan", "Village"),
    "summary": ("Ringkasan", "Summary"),
    "location_notes": ("Keterangan lokasi", "Location notes"),
    "agencies": ("Instansi", "Agencies"),
    "agency": ("Instansi", "Agency"),
    "primary": ("Instansi utama", "Primary agency"),
    "assign": ("Tugaskan", "Assign"),
    "choose": ("— pilih —", "— choose —"),
    "incident_saved": ("Kejadian disimpan", "Incident saved"),
    "followup": ("Tindak lanjut", "Follow-up"),
    "pending": ("belum diteruskan", "pending"),
    "dispatched": ("diteruskan", "dispatched"),
    "acknowledged": ("diterima", "acknowledged"),
    "resolved": ("selesai ditangani", "resolved"),
    "not_followed_up": ("tidak ditindaklanjuti", "not followed up"),
    "overdue": ("terlambat", "overdue"),
    "overdue_assignments": ("Penugasan terlambat", "Overdue assignments"),
    "status_saved": ("Tindak lanjut disimpan", "Follow-up saved"),
    "reason_needed": ("alasan (wajib)", "reason (required)"),
    "attempts": ("Percobaan", "Attempts"),
    "last_attempt": ("Percobaan terakhir", "Last attempt"),
    "record_attempt": ("Catat percobaan", "Record attempt"),
    "reached": ("berhasil dihubungi", "reached"),
    "no_answer": ("tidak diangkat", "no answer"),
    "not_needed": ("tidak perlu", "not needed"),
    "silent_call": ("panggilan kosong", "silent call"),
    "attempt_saved": ("Percobaan dicatat", "Attempt recorded"),
    "worklist_empty": ("Tidak ada telepon balik", "No call-backs to make"),
    "why": ("Sebab", "Why"),
    "today": ("Hari ini", "Today"),
    "period": ("Periode", "Period"),
    "from": ("Dari", "From"),
    "to": ("Sampai", "To"),
    "show": ("Tampilkan", "Show"),
    "calls": ("Panggilan", "Calls"),
    "pranks": ("Iseng", "Pranks"),
    "emergencies_open": ("Aduan darurat terbuka per instansi", "Open emergencies by agency"),
    "answer_times": ("Waktu jawab", "Answer times"),
    "within_15": ("dijawab ≤ 15 dtk", "answered ≤ 15 s"),
    "within_20": ("dijawab ≤ 20 dtk", "answered ≤ 20 s"),
    "target": ("target", "target"),
    "calls_per_hour": ("Panggilan per jam", "Calls per hour"),
    "mix_per_day": ("Klasifikasi per hari", "Classification per day"),
    "operators": ("Petugas", "Operators"),
    "tagged": ("ditandai", "tagged"),
    "mean_talk": ("rata-rata bicara", "mean talk"),
    "by_agency": ("Aduan darurat per instansi", "Emergencies by agency"),
    "by_district": ("Per kecamatan (untuk sosialisasi)", "By district (for awareness)"),
    "monthly_recap": ("Rekap bulanan", "Monthly recap"),
    "download_csv": ("Unduh CSV", "Download CSV"),
    "printable": ("Versi cetak", "Printable"),
    "day": ("Tanggal", "Day"),
    "hour": ("Jam", "Hour"),
    "total": ("Jumlah", "Total"),
    "share": ("Persentase", "Share"),
    "users": ("Pengguna", "Users"),
    "role_operator": ("petugas", "operator"),
    "role_supervisor": ("supervisor", "supervisor"),
    "role_admin": ("admin", "admin"),
    "role": ("Peran", "Role"),
    "display_name": ("Nama tampilan", "Display name"),
    "queue_member": ("Anggota antrean (nama)", "Queue member (name)"),
    "queue_interface": ("Telepon petugas", "Operator phone"),
    "active": ("Aktif", "Active"),
    "inactive": ("nonaktif", "inactive"),
    "deactivate": ("Nonaktifkan", "Deactivate"),
    "activate": ("Aktifkan", "Activate"),
    "reset_password": ("Atur ulang kata sandi", "Reset password"),
    "new_password": ("Kata sandi baru", "New password"),
    "create_user": ("Tambah pengguna", "Add user"),
    "code": ("Kode", "Code"),
    "name": ("Nama", "Name"),
    "kind": ("Jenis", "Kind"),
    "add_agency": ("Tambah instansi", "Add agency"),
    "saved": ("Tersimpan", "Saved"),
    "yes": ("ya", "yes"),
    "no": ("tidak", "no"),
    "forbidden": (
        "Halaman ini tidak untuk peran Anda.",
        "This page is not for your role.",
    ),
    "login_failed": ("Nama pengguna atau kata sandi salah.", "Wrong username or password."),
    "locked": (
        "Terlalu banyak percobaan masuk yang gagal. Coba lagi nanti.",
        "Too many failed logins. Try again later.",
    ),
    "session_expired": ("Sesi Anda berakhir. Silakan masuk lagi.", "Your session ended."),
    "csrf_failed": (
        "Formulir ini kedaluwarsa atau tidak sah. Muat ulang halaman lalu coba lagi.",
        "This form is stale or not genuine. Reload the page and try again.",
    ),
    "error": ("Tidak dapat disimpan", "Could not be saved"),
    "skip_to_main": ("Langsung ke isi", "Skip to content"),
    "signed_in_as": ("Masuk sebagai", "Signed in as"),
    "back_to_board": ("Kembali ke antrean", "Back to the queue"),
    "recent_calls": ("Panggilan terakhir", "Recent calls"),
    "abandoned": ("Ditutup penelepon", "Abandoned"),
    "seconds": ("dtk", "s"),
    "percentiles": ("Persentil waktu jawab (p50 / p90 / p95)", "Answer time p50 / p90 / p95"),
    "emergencies": ("Aduan darurat", "Emergencies"),
    "month": ("Bulan", "Month"),
    # Incident categories and classification reasons (codes from config/callcenter.toml).
    "fire": ("kebakaran", "fire"),
    "medical": ("medis", "medical"),
    "crime": ("kriminalitas", "crime"),
    "traffic_accident": ("kecelakaan lalu lintas", "traffic accident"),
    "disaster": ("bencana", "disaster"),
    "search_and_rescue": ("pencarian dan pertolongan", "search and rescue"),
    "electricity": ("listrik", "electricity"),
    "other": ("lainnya", "other"),
    "information_request": ("permintaan informasi", "information request"),
    "silent_or_ghost_call": ("panggilan kosong", "silent or ghost call"),
    "misdial": ("salah sambung", "misdial"),
    "test_call": ("panggilan uji coba", "test call"),
    "complaint": ("keluhan", "complaint"),
    "harassment": ("pelecehan", "harassment"),
    "child_playing": ("anak bermain telepon", "child playing"),
    # agency kinds (config/callcenter.toml, [[agencies]] kind)
    "kind.police": ("kepolisian", "police"),
    "kind.military": ("militer (Kodim)", "military district"),
    "kind.search_and_rescue": ("pencarian dan pertolongan (SAR)", "search and rescue"),
    "kind.electricity": ("listrik (PLN)", "electricity"),
    "kind.hospital": ("rumah sakit", "hospital"),
    "kind.fire": ("pemadam kebakaran", "fire brigade"),
    "kind.disaster": ("penanggulangan bencana", "disaster management"),
    "kind.social": ("dinas sosial", "social services"),
    "changed_at": ("Waktu", "When"),
}


def agency_kind(lang: str, kind: str) -> str:
    """An agency's kind in words; a kind the console has no words for is shown as it is.

    >>> agency_kind("id", "fire"), agency_kind("en", "fire"), agency_kind("id", "ferry")
    ('pemadam kebakaran', 'fire brigade', 'ferry')
    """
    return translate(lang, f"kind.{kind}") if f"kind.{kind}" in LABELS else kind


def translate(lang: str, key: str) -> str:
    pair = LABELS.get(key)
    if pair is None:
        return key
    return pair[1] if lang == "en" else pair[0]


def pick(value: str | None) -> Lang:
    """The language in a cookie or query value; Indonesian unless English was chosen."""
    return "en" if value == "en" else DEFAULT
