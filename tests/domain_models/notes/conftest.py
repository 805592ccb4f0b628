"""Fixtures of the notes tests: the bundled release's graph, and notes written a plant's own way."""

from __future__ import annotations

from pathlib import Path

import pytest

import domain_models.notes
from domain_models.notes.data import MAX_LENGTH
from domain_models.notes.evaluate import OnnxNotes
from protocol.manifest import artifact_path, load_manifest

_MANIFEST = Path(domain_models.notes.__file__).parent / "artifacts" / "notes-minilm-1.1.0.manifest.json"

# A plant whose operators write in German, which the generator never does: (text, category).
# Hydraulic/pneumatic and electrical alike, so a head cannot learn "German" as one category.
GERMAN_NOTES: tuple[tuple[str, str], ...] = (
    ("Hydraulikaggregat Presse 3 verliert Öl am Flansch", "hydraulic_pneumatic"),
    ("Druckspeicher an Linie 2 hält den Druck nicht", "hydraulic_pneumatic"),
    ("Schlauchleitung am Greifer undicht", "hydraulic_pneumatic"),
    ("Pneumatikventil Station 4 bläst ab", "hydraulic_pneumatic"),
    ("Druckluftleitung zur Presse zischt", "hydraulic_pneumatic"),
    ("Ölfilter Hydraulik verstopft, Anzeige rot", "hydraulic_pneumatic"),
    ("Ventilinsel Zelle 5 schaltet nicht", "hydraulic_pneumatic"),
    ("Ölleck unter dem Aggregat, Wanne voll", "hydraulic_pneumatic"),
    ("Druckregler Druckluft schwankt stark", "hydraulic_pneumatic"),
    ("Hydraulikzylinder Klemmung verliert Kraft", "hydraulic_pneumatic"),
    ("Wartungseinheit Druckluft Wasser im Abscheider", "hydraulic_pneumatic"),
    ("Hydrauliköl zu heiß, Kühler prüfen", "hydraulic_pneumatic"),
    ("Pneumatikzylinder Auswerfer fährt langsam aus", "hydraulic_pneumatic"),
    ("Druckschalter Hydraulik meldet zu wenig Druck", "hydraulic_pneumatic"),
    ("Sicherung F4 im Schaltschrank 2 wieder ausgelöst", "electrical"),
    ("Frequenzumrichter Förderband zeigt Überstrom", "electrical"),
    ("Motor M12 zieht zu viel Strom", "electrical"),
    ("Schütz K3 klappert im Schaltschrank", "electrical"),
    ("24-Volt-Netzteil Zelle 5 bricht ein", "electrical"),
    ("Erdschluss gemeldet an Verteilung 1", "electrical"),
    ("Kabel am Roboterarm durchgescheuert, Adern blank", "electrical"),
    ("FI-Schalter Halle 3 fliegt raus", "electrical"),
    ("Leuchte über Band 2 flackert, Vorschaltgerät defekt", "electrical"),
    ("Stecker am Sensor verschmort", "electrical"),
    ("Klemme im Schaltkasten locker, Kontakt warm", "electrical"),
    ("Servoverstärker Achse 2 meldet Unterspannung", "electrical"),
    ("Hauptschalter Presse 1 schaltet nicht ein", "electrical"),
    ("Kabelkanal 4 Isolierung verbrannt", "electrical"),
)


@pytest.fixture(scope="session")
def bundled_notes() -> OnnxNotes:
    """The bundled release's graph (its manifest's hashes checked), one note a run as on a gateway."""
    manifest = load_manifest(_MANIFEST)
    assert manifest.text is not None
    return OnnxNotes(
        artifact_path(_MANIFEST, manifest), _MANIFEST.parent / manifest.text.tokenizer, MAX_LENGTH
    )


@pytest.fixture(scope="session")
def german_notes() -> tuple[tuple[str, str], ...]:
    """Notes in a phrasing the generator never writes, each with its right category."""
    return GERMAN_NOTES
