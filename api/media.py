"""Photos and videos attached to reports: checked by content, size-limited, stored on disk,
and served only to whom they may be shown.

A resident's photo may show a neighbour's door or a number plate. Until staff accept the
report (its status moves past ``reported``) its files are served to staff only; after
that to anyone with the link, like the case itself. A rejected report's files stay staff-only.
"""

from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse
from sqlalchemy import select

from api.deps import SessionDep, SettingsDep
from api.security import CurrentStaff
from data.cases import NotFound, can_see
from data.models import Issue

# The statuses in which a case's media are public: accepted by staff, and not rejected.
PUBLIC_MEDIA_FROM = {"accepted", "dispatched", "in_progress", "responded", "verified", "closed"}
MAX_FILENAME = 120  # characters of the original name kept as metadata

# Declared type -> (extension, magic-byte test). The bytes are checked as well as the
# header, because a phone app's declared type is only a claim.
ALLOWED: dict[str, tuple[str, Any]] = {
    "image/jpeg": (".jpg", lambda b: b.startswith(b"\xff\xd8\xff")),
    "image/png": (".png", lambda b: b.startswith(b"\x89PNG\r\n\x1a\n")),
    "image/webp": (".webp", lambda b: b[:4] == b"RIFF" and b[8:12] == b"WEBP"),
    "video/mp4": (".mp4", lambda b: b[4:8] == b"ftyp"),
    "video/quicktime": (".mov", lambda b: b[4:8] in (b"ftyp", b"moov", b"wide", b"mdat")),
}


class MediaRejected(ValueError):
    """An upload that is not an accepted image or video, or too big."""


@dataclass(frozen=True)
class Upload:
    content_type: str
    data: bytes
    filename: str


async def read_media(file: Any, max_bytes: int) -> Upload:
    """Read and check one uploaded file; nothing is written here."""
    declared = (file.content_type or "").split(";")[0].strip().lower()
    if declared not in ALLOWED:
        raise MediaRejected(
            f"{file.filename!r}: media type {declared or 'unknown'} is not accepted; send "
            + ", ".join(ALLOWED)
        )
    data = await file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise MediaRejected(f"{file.filename!r} is larger than {max_bytes // (1024 * 1024)} MB")
    if not ALLOWED[declared][1](data[:16]):
        raise MediaRejected(f"{file.filename!r}: its content is not {declared}")
    return Upload(declared, data, safe_filename(file.filename))


def safe_filename(name: str | None) -> str:
    """The uploaded file's name as metadata only: its last path part, without NUL, line
    breaks, other control or format characters, at most MAX_FILENAME characters.

    Never used to name a file on disk (those are random); kept so staff can match a photo
    to what the reporter sent. Pages escape it like any other text.
    """
    text = unicodedata.normalize("NFC", name or "").replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(
        " " if unicodedata.category(ch) in ("Zl", "Zp") else ch
        for ch in text
        if not unicodedata.category(ch).startswith("C")
    ).strip()
    if text in ("", ".", ".."):
        return "upload"
    if len(text) > MAX_FILENAME:
        _stem, dot, extension = text.rpartition(".")
        keep = f".{extension}" if dot and 0 < len(extension) <= 10 else ""
        text = text[: MAX_FILENAME - len(keep) - 1] + "…" + keep
    return text


def store_media(root: Path, ref: str, uploads: list[Upload]) -> list[dict[str, str]]:
    """Write the files under root/ref/ with unguessable names; returns their records."""
    folder = root / ref
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for upload in uploads:
        name = secrets.token_urlsafe(12) + ALLOWED[upload.content_type][0]
        (folder / name).write_bytes(upload.data)
        records.append(
            {
                "path": f"{ref}/{name}",
                "content_type": upload.content_type,
                "filename": upload.filename,
            }
        )
    return records


# --- serving -----------------------------------------------------------------------------

router = APIRouter(tags=["media"])


@router.get(
    "/media/{ref}/{name}",
    response_class=FileResponse,
    responses={404: {"description": "No such file, or not yet public"}},
)
def media_file(
    ref: str, name: str, session: SessionDep, settings: SettingsDep, staff: CurrentStaff
) -> FileResponse:
    """A report's photo or video: to staff at once, to the public once the report is accepted.

    Not yet public reads as missing (404), so a link reveals nothing about the report.
    """
    issue = session.scalar(select(Issue).where(Issue.ref == ref))
    record = (
        next((m for m in (issue.media or []) if m.get("path") == f"{ref}/{name}"), None)
        if issue
        else None
    )
    public = issue is not None and issue.status in PUBLIC_MEDIA_FROM
    if (
        issue is None
        or record is None
        or not (public or (staff is not None and can_see(issue, staff)))
    ):
        raise NotFound(f"no media file {ref}/{name}")
    # The path comes from the stored record (a random name under the case's folder), not
    # from the request, so nothing a client sends can reach outside the media folder.
    path = settings.data_dir / "media" / record["path"]
    if not path.is_file():
        raise NotFound(f"no media file {ref}/{name}")
    headers = {
        "Cache-Control": "public, max-age=300" if public else "private, no-store",
        "X-Content-Type-Options": "nosniff",
    }
    return FileResponse(path, media_type=record["content_type"], headers=headers)
