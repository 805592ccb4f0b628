"""The CSV writer under the export API: rows go out a batch at a time, each chunk whole rows."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from cloud.db import make_engine, make_sessionmaker
from cloud.export import KINDS, ExportRange, csv_chunks
from tests.support.messages import T0
from tests.support.plant import Plant


def test_rows_go_out_one_batch_per_chunk_and_add_up_to_the_whole_export(plant: Plant) -> None:
    engine = make_engine(plant.db_url)
    try:
        bounds = ExportRange(T0, T0 + timedelta(hours=1))
        chunks = list(csv_chunks(make_sessionmaker(engine), KINDS["results"], bounds, batch_rows=4))
    finally:
        engine.dispose()
    # The header first, on its own, then the 15 seeded results in batches of at most 4.
    per_chunk = [list(csv.reader(io.StringIO(c.decode(), newline=""))) for c in chunks]
    assert [len(rows) for rows in per_chunk] == [1, 4, 4, 4, 3]
    whole = plant.client.get(
        "/api/v1/export/results.csv",
        params={"since": bounds.since.isoformat(), "until": bounds.until.isoformat()},
        headers=plant.headers("viewer"),
    )
    assert b"".join(chunks) == whole.content
