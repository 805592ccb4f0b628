"""HTTP(S) download with Range resume into a partial file, bounded by the declared size."""

from __future__ import annotations

import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from email.message import Message
from http.client import HTTPException
from pathlib import Path

from protocol.ota import ModelOffer

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
MAX_EXTRA_FILE_BYTES = 256 * 1024 * 1024  # tokenizers, golden inputs: bounded though unsized


class DownloadError(RuntimeError):
    """A download that cannot complete; the message names the URL and the reason."""


def _announced_total(url: str, status: int, headers: Message, have: int) -> int | None:
    content_range = headers.get("Content-Range")
    if status == 206 and content_range and "/" in content_range:
        total = content_range.rsplit("/", 1)[1].strip()
        return int(total) if total.isdigit() else None
    length = headers.get("Content-Length")
    if length is None or not length.strip().isdigit():
        return None
    return int(length) + (have if status == 206 else 0)


def _fetch_once(
    url: str,
    part: Path,
    limit: int,
    exact: bool,
    deadline: float,
    read_timeout_s: float,
    on_chunk: Callable[[int], None],
) -> None:
    have = part.stat().st_size if part.exists() else 0
    if have > limit:
        part.unlink()
        have = 0
    if exact and have == limit:
        return
    headers = {"Range": f"bytes={have}-"} if have else {}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - scheme checked by download()
    with urllib.request.urlopen(request, timeout=read_timeout_s) as resp:  # noqa: S310
        if have and resp.status != 206:
            log.info("download %s: server ignored Range, starting over", url)
            have = 0
        total = _announced_total(url, resp.status, resp.headers, have)
        if total is not None and total > limit:
            raise DownloadError(f"{url}: server announces {total} bytes, more than the allowed {limit}")
        if exact:
            total = limit
        elif total is None:
            raise DownloadError(f"{url}: server sent no length for a file of unknown size")
        with part.open("r+b" if have else "wb") as fh:
            fh.seek(have)
            fh.truncate()
            while True:
                if time.monotonic() > deadline:
                    raise DownloadError(f"{url}: download timed out at {have} of {total} bytes")
                chunk = resp.read1(
                    CHUNK
                )  # whatever has arrived: a slow server must not block the deadline check
                if not chunk:
                    break
                have += len(chunk)
                if have > total:
                    raise DownloadError(f"{url}: more than the declared {total} bytes; aborted")
                fh.write(chunk)
                fh.flush()
                on_chunk(have)
            os.fsync(fh.fileno())
    if have < total:
        raise ConnectionError(f"connection closed at {have} of {total} bytes")


def download(
    url: str,
    dest: Path,
    size: int,
    timeout_s: float,
    max_retries: int,
    on_chunk: Callable[[int], None] = lambda n: None,
    exact: bool = True,
) -> Path:
    """Download ``url`` to ``dest`` (via ``dest.part``), resuming a partial file from earlier.

    With ``exact`` the body must be ``size`` bytes (the manifest's declared size) and the
    download aborts as soon as it exceeds it; otherwise ``size`` is only an upper bound. The
    whole download, retries included, fails after ``timeout_s``. Returns ``dest``.
    """
    if not url.startswith(("http://", "https://")):
        raise DownloadError(f"{url}: only http:// and https:// URLs are accepted")
    if dest.exists():
        return dest  # complete from an earlier attempt (renamed only when whole); hashes are checked next
    part = dest.with_name(dest.name + ".part")
    deadline = time.monotonic() + timeout_s
    attempt = 0
    while True:
        try:
            _fetch_once(url, part, size, exact, deadline, min(timeout_s, 30.0), on_chunk)
            break
        except (OSError, HTTPException) as exc:  # URLError, timeouts, resets, truncated bodies
            if isinstance(exc, urllib.error.HTTPError) and exc.code < 500 and exc.code != 429:
                raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
            attempt += 1
            if time.monotonic() > deadline:
                raise DownloadError(f"{url}: download timed out ({exc})") from None
            if attempt > max_retries:
                raise DownloadError(f"{url}: failed after {max_retries} retries: {exc}") from None
            log.info("download %s: %s; resuming (retry %d of %d)", url, exc, attempt, max_retries)
            time.sleep(min(0.2 * attempt, max(0.0, deadline - time.monotonic())))
    os.replace(part, dest)
    return dest


def fetch_release(
    offer: ModelOffer, folder: Path, timeout_s: float, max_retries: int, on_chunk: Callable[[int], None]
) -> None:
    """Download an offer's artifact (exactly its declared size) and every manifest file into ``folder``."""
    m = offer.manifest
    download(offer.artifact_url, folder / m.artifact, m.size_bytes, timeout_s, max_retries, on_chunk)
    for name in m.files:
        url = offer.file_urls.get(name)
        if url is None:
            raise DownloadError(f"the offer of {m.name} {m.version} has no URL for its file {name}")
        download(url, folder / name, MAX_EXTRA_FILE_BYTES, timeout_s, max_retries, on_chunk, exact=False)
