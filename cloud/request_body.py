"""Request bodies read with a cap (the API's and the console's), so a client cannot make the server
hold more than it allows.

A declared ``Content-Length`` over the cap is refused (413) before a byte of the body is read; a
body sent without one (chunked) is read piece by piece and refused as soon as it passes the cap,
so memory holds at most the cap plus one piece (the server reads at most 64 KiB at a time).
"""

from __future__ import annotations

from fastapi import HTTPException, Request


async def read_capped(request: Request, cap: int, what: str) -> bytes:
    """The body of ``request`` if it is at most ``cap`` bytes; 413 naming ``what`` otherwise."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise HTTPException(400, f"{what}: Content-Length {declared!r} is not a number") from None
        if size > cap:
            raise HTTPException(413, f"{what} of {size} bytes is over the limit of {cap} bytes")
    chunks: list[bytes] = []
    held = 0
    async for chunk in request.stream():
        held += len(chunk)
        if held > cap:
            raise HTTPException(413, f"{what} is over the limit of {cap} bytes (refused after {held} bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_chunk(request: Request, size: int, offset: int, max_chunk: int) -> bytes:
    """One chunk of a resumable upload of a ``size``-byte file: 409 when ``offset`` is past the
    file's end; the body read no further than ``max_chunk`` or the file's end (413 beyond)."""
    if offset > size:
        raise HTTPException(409, f"offset {offset} is past the end of a {size}-byte file")
    return await read_capped(
        request, min(max_chunk, size - offset), f"chunk at offset {offset} of a {size}-byte file"
    )
