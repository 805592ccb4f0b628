"""The console's own files: its stylesheet and scripts, and the favicon (no page, no login)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response

from cloud.console.render import HERE

router = APIRouter()

# The console's icon: a dark tile with a check mark, inline (no binary asset to ship).
FAVICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" '
    'fill="#1d2430"/><path d="M4 8.5l2.5 2.5L12 5" fill="none" stroke="#fff" stroke-width="2"/></svg>'
)
STATIC = {
    "console.css": "text/css",
    "console.js": "text/javascript",
    "live.js": "text/javascript",
    "labels.js": "text/javascript",
    "teach.js": "text/javascript",
}


@router.get("/console/static/{name}")
async def static(name: str) -> Response:
    if name not in STATIC:
        raise HTTPException(404, f"no console asset {name!r}")
    body = (HERE / "static" / name).read_bytes()
    return Response(body, media_type=STATIC[name], headers={"Cache-Control": "max-age=300"})


@router.get("/favicon.ico")
async def favicon() -> Response:
    """A tiny SVG icon, so browsers' automatic request gets no 404 (base.html links it too)."""
    return Response(FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})
