"""The one-page acknowledgement form: plain HTML, no script, readable on a cheap phone."""

from __future__ import annotations

from html import escape

from callcenter.incidents.models import Assignment
from callcenter.notify.messages import STATUS_NAMES, category_name, place

_STYLE = (
    "body{font-family:sans-serif;margin:1em;max-width:32em;color:#111}"
    "h1{font-size:1.2em}button{font-size:1.1em;padding:.6em 1em;margin:.3em 0;width:100%}"
    "input{font-size:1.1em;width:100%;padding:.4em;box-sizing:border-box}"
    ".ok{color:#060}.no{color:#a00}"
)


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html><html lang='id'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}"
        "<p><small>Call Center TTU Siaga 112</small></p></body></html>"
    )


def form(assignment: Assignment, token: str) -> str:
    incident = assignment.incident
    status = assignment.status.value
    facts = {
        "district": incident.district,
        "village": incident.village,
        "location_text": incident.location_text,
    }
    done = status in ("resolved", "not_followed_up")
    buttons = (
        ""
        if done
        else (
            f"<form method='post' action='/ack/{escape(token)}'>"
            "<p><label>Nama petugas instansi<br>"
            "<input name='name' maxlength='100' required autocomplete='name'></label></p>"
            "<button name='action' value='acknowledged'>Penugasan diterima</button>"
            "<button name='action' value='resolved'>Selesai ditangani</button></form>"
        )
    )
    body = (
        f"<p><b>{escape(assignment.agency.name)}</b></p>"
        f"<p>Kejadian {incident.id}: {escape(category_name(incident.category))}<br>"
        f"Lokasi: {escape(place(facts))}</p>"
        + (f"<p>{escape(incident.summary)}</p>" if incident.summary else "")
        + f"<p>Status: <b>{escape(STATUS_NAMES.get(status, status))}</b></p>{buttons}"
    )
    return _page(f"Penugasan kejadian {incident.id}", body)


def done(assignment: Assignment) -> str:
    status = STATUS_NAMES.get(assignment.status.value, assignment.status.value)
    return _page(
        f"Penugasan kejadian {assignment.incident_id}",
        f"<p class='ok'>Terima kasih. Status penugasan: <b>{escape(status)}</b>.</p>",
    )


def refused(message: str) -> str:
    return _page("Tautan tidak dapat dipakai", f"<p class='no'>{escape(message)}</p>")
