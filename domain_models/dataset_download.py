"""Download a cloud dataset as the MVTec AD folder ``train defect --data DIR`` reads.

The same calls as ``factoryctl datasets export``: ``GET /api/v1/datasets/{id}`` (paged file
listing with each file's SHA-256) and ``GET /api/v1/datasets/{id}/files/{name}``, placed by
:mod:`protocol.dataset_layout`. Only HTTP: domain_models never imports the cloud's code. Every
file's bytes are hashed as they arrive; one that disagrees with the listing refuses the whole
download, so a model is never fit on frames other than the dataset's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from domain_models.common import PipelineError
from protocol.captures import CAPTURE_ID_PATTERN
from protocol.dataset_layout import mvtec_layout, write_folder, write_hashed

# factoryctl's names, so one exported pair of variables serves both tools.
URL_ENV = "FACTORY_API_URL"
TOKEN_ENV = "FACTORY_API_TOKEN"  # noqa: S105 (a variable name, not a secret)
DEFAULT_CLOUD = "http://127.0.0.1:8000"  # the demo's API
FILES_PAGE = 500
TIMEOUT_S = 60.0
TOKEN_HINT = (
    f"set {TOKEN_ENV} to a viewer's API token ('factory-cloud tokens create --role viewer' on the "
    "server, or the admin token 'make demo' prints)"
)


def cloud_url(given: str | None, env: Mapping[str, str]) -> str:
    """``--cloud``, else ``$FACTORY_API_URL``, else the demo's API."""
    return (given or env.get(URL_ENV) or DEFAULT_CLOUD).rstrip("/")


def download_dataset(dataset_id: str, cloud: str, token: str | None, target: Path) -> dict[str, Any]:
    """Write dataset ``dataset_id`` of ``cloud`` into ``target`` (absent or empty); its facts.

    ``target`` is filled under ``target.part`` and renamed only when every file matched its hash.
    """
    if not re.match(CAPTURE_ID_PATTERN, dataset_id):
        raise PipelineError(f"--dataset {dataset_id!r}: not a dataset id (cap- and 12-32 lower-case hex)")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise PipelineError(f"--dataset-dir {target}: exists and is not an empty folder; choose another")
    # Without a token the request goes bare: the demo profile's API serves reads to anyone.
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with httpx.Client(base_url=cloud, headers=headers, timeout=TIMEOUT_S) as client:
            dataset, files = _listing(client, dataset_id, cloud)
            placed = mvtec_layout(files, dataset.get("label"))
            if not placed:
                raise PipelineError(
                    f"dataset {dataset_id}: no file labelled for training (label frames good first)"
                )
            facts = write_folder(
                placed,
                dataset,
                target,
                lambda item, path: _download(client, dataset_id, item.name, item.sha256, path),
            )
    except httpx.TransportError as exc:
        raise PipelineError(
            f"cannot reach the cloud at {cloud} ({exc}); start it or pass --cloud URL"
        ) from None
    except OSError as exc:
        raise PipelineError(f"cannot write {target}: {exc.strerror or exc}") from None
    return facts


def _listing(
    client: httpx.Client, dataset_id: str, cloud: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    files: list[dict[str, Any]] = []
    dataset: dict[str, Any] = {}
    offset: int | None = 0
    while offset is not None:
        path = f"/api/v1/datasets/{dataset_id}"
        response = client.get(path, params={"files_offset": offset, "files_limit": FILES_PAGE})
        _check(response, dataset_id, cloud, path)
        dataset = response.json()
        files.extend(dataset.pop("files"))
        offset = dataset["files_next_offset"]
    return dataset, files


def _check(response: httpx.Response, dataset_id: str, cloud: str, path: str) -> None:
    """One line per refusal: what it means for this dataset, not the bare status."""
    status = response.status_code
    if status < 400:
        return
    if status == 401:
        given = "Authorization" in response.request.headers
        what = "refused the API token (401: wrong or expired)" if given else "needs an API token (401)"
        raise PipelineError(f"{cloud} {what}; {TOKEN_HINT}")
    if status == 403:
        raise PipelineError(f"{cloud}: the API token may not read datasets (403); {TOKEN_HINT}")
    if status == 404 and path == f"/api/v1/datasets/{dataset_id}":
        raise PipelineError(
            f"dataset {dataset_id}: not found on {cloud} ('factoryctl datasets list' lists them)"
        )
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text
    raise PipelineError(f"{cloud}: GET {path} answered {status}: {str(detail)[:200]}")


def _download(client: httpx.Client, dataset_id: str, name: str, sha256: str, path: Path) -> None:
    url = f"/api/v1/datasets/{dataset_id}/files/{name}"
    with client.stream("GET", url) as response:
        if response.status_code >= 400:
            response.read()
            _check(response, dataset_id, str(client.base_url).rstrip("/"), url)
        digest = write_hashed(response.iter_bytes(), path)
    if digest != sha256:
        raise PipelineError(
            f"dataset {dataset_id}: {name} hashes to {digest}, the listing says {sha256}; "
            "refusing to train on it (nothing was kept)"
        )
