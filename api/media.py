"""Photos and videos attached to reports: checked by content, size-limited, stored on disk."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    return Upload(declared, data, file.filename or "upload")


def store_media(root: Path, ref: str, uploads: list[Upload]) -> list[dict[str, str]]:
    """Write the files under root/ref/ with unguessable names; returns their records."""
    folder = root / ref
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for upload in uploads:
        name = secrets.token_urlsafe(12) + ALLOWED[upload.content_type][0]
        (folder / name).write_bytes(upload.data)
        records.append({"path": f"{ref}/{name}", "content_type": upload.content_type, "filename": upload.filename})
    return records
