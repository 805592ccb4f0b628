"""A deterministic stream of shop-floor maintenance notes with ground truth.

Note ``i`` of a stream depends only on ``(seed, i)``: terse operator English with part numbers,
units, shorthand and typos, labelled with a category and an urgency. Used to train the notes
model, to feed demos and to test the agent end to end. The held-out evaluation set of the model
is written by hand in another style, so a model cannot score well by learning these templates.
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from protocol.inference import NOTE_CATEGORIES, NOTE_URGENCIES

__all__ = ["Note", "NotesLine", "stream_notes", "write_notes"]


def _split(words: str) -> tuple[str, ...]:
    return tuple(words.split("|"))


# Per category: equipment words and fault phrases ("{eq}" = an equipment word, "{part}" a part
# number, "{n}" a number). Faults combine freely with equipment so the model sees the fault, not
# a memorised sentence.
_EQUIPMENT: dict[str, tuple[str, ...]] = {
    "electrical": _split(
        "motor|VFD|drive|breaker|fuse|contactor|MCC|panel|cabinet|cable|heater|transformer|"
        "power supply|socket|relay|lamp"
    ),
    "mechanical": _split(
        "bearing|belt|chain|gearbox|coupling|roller|shaft|sprocket|pulley|conveyor|spindle|cam|"
        "guide rail|idler|clutch|gear"
    ),
    "hydraulic_pneumatic": _split(
        "cylinder|air line|hose|valve|pump|compressor|fitting|hyd unit|power pack|regulator|"
        "vacuum cup|air dryer|manifold|accumulator|seal|gripper"
    ),
    "controls_software": _split(
        "PLC|HMI|robot|recipe|program|sensor|encoder|network|scanner|MES|touchscreen|IO card|"
        "software|vision system|counter|controller"
    ),
    "quality": _split(
        "parts|batch|lot|finish|weld|coating|dimension|label print|seal|torque|weight|sample|"
        "product|cartons|moulding|thread"
    ),
    "safety": _split(
        "guard|e-stop|interlock|light curtain|walkway|floor|fire extinguisher|first aid kit|rail|"
        "ladder|exit|PPE|forklift|lockout|fence|alarm horn"
    ),
}

# A fault starting with "!" is severe: it only appears in high-urgency notes.
_FAULTS: dict[str, tuple[str, ...]] = {
    "electrical": _split(
        "{eq} tripping|{eq} tripped on overcurrent|blown fuse F{n} on {eq}|{eq} no power|"
        "no 24V at {eq}|{eq} fault code E{n}|{eq} overheating {n}C|{eq} cable insulation chafed|"
        "!burning smell from {eq}|earth fault on {eq}|{eq} undervoltage {n}V|!{eq} sparking|"
        "{eq} humming loud|loose wire X{n} in {eq}|{eq} open circuit|{eq} flickering|"
        "{eq} keeps resetting|phase missing on {eq} {part}"
    ),
    "mechanical": _split(
        "{eq} noisy grinding|{eq} slipping|{eq} worn|!{eq} seized|{eq} cracked|{eq} misaligned|"
        "{eq} vibration {n} mm/s|{eq} jammed|!{eq} broken|bolts loose on {eq}|{eq} squealing|"
        "{eq} knocking|{eq} play too big|{eq} tension low|{eq} needs grease|!{eq} snapped|"
        "{eq} bent|{eq} rattling {part}"
    ),
    "hydraulic_pneumatic": _split(
        "air leak at {eq}|{eq} leaking oil|{eq} pressure low {n} bar|{eq} slow|{eq} sticking|"
        "{eq} losing pressure|{eq} hissing|!{eq} burst|main air {n} psi|hyd oil temp {n}C|"
        "{eq} weeping|{eq} cavitating|{eq} not holding pressure|water in {eq}|{eq} drifting down|"
        "!{eq} blown|oil mist from {eq}|{eq} no air"
    ),
    "controls_software": _split(
        "{eq} fault after restart|{eq} frozen|{eq} not loading|{eq} not seen by plc|"
        "{eq} stops at step {n}|{eq} comm loss|{eq} lost its settings|{eq} wrong values|"
        "{eq} alarm {n} latching|!{eq} crashed|{eq} update broke it|{eq} counts wrong|"
        "{eq} offline|{eq} timeout|!{eq} boots to error|{eq} logic bug|{eq} data not reaching MES|"
        "{eq} rejects everything"
    ),
    "quality": _split(
        "{eq} out of tolerance {n} mm|burrs on {eq}|scratches on {eq}|{eq} porosity|"
        "wrong {eq} spec|{eq} colour off|{eq} short shots|{eq} misprinted|{eq} rough|"
        "!customer complaint on {eq}|{eq} spc out of control|{eq} underweight|"
        "{eq} failed inspection|{eq} cracks found|{eq} on hold for QA|{eq} scrap rate {n}%|"
        "{eq} dims drifting|{eq} wrong date code"
    ),
    "safety": _split(
        "{eq} bypassed|{eq} not working|{eq} missing|{eq} damaged|slip hazard at {eq}|"
        "!operator injured near {eq}|!near miss with {eq}|{eq} blocked|!smoke near {eq}|"
        "{eq} muted|!fire at {eq}|{eq} unsafe|!chemical spill by {eq}|{eq} expired|"
        "trip hazard by {eq}|!somebody got hurt at {eq}|!{eq} open while running|{eq} defeated"
    ),
}

_URGENCY_CUES: dict[str, tuple[str, ...]] = {
    "low": _split(
        "fix next PM|when convenient|low prio|no rush|cosmetic only|fyi|still running fine|"
        "add to backlog|check next week|minor|no impact on production|can wait|"
        "not affecting output|whenever possible|just noting it|for the record|next shutdown ok|"
        "no hurry|small issue|nice to have|runs ok otherwise|pls look sometime"
    ),
    "medium": _split(
        "getting worse|intermittent|check this shift|running slow|needs attention today|"
        "monitor closely|happened {n}x today|rate down {n}%|workaround in place|"
        "schedule repair asap|sometimes|more scrap than usual|fix before weekend|output reduced|"
        "keeps coming back|need to look today|degrading|running but not right|"
        "operators resetting it|off and on since morning|pls check soon|slowing us down"
    ),
    "high": _split(
        "LINE DOWN|line stopped|urgent|need maint now|production stopped|stop the line|"
        "immediate action|danger|cannot run|!!! asap now|machine down|nothing running|we are down|"
        "emergency|right now|shut it off|out of action|halted|evacuate|"
        "call maintenance immediately|total stop|no production"
    ),
}

# Safety notes are urgent more often than the others; everything else is balanced.
_URGENCY_WEIGHTS: dict[str, tuple[float, float, float]] = {
    c: ((0.2, 0.35, 0.45) if c == "safety" else (1 / 3, 1 / 3, 1 / 3)) for c in NOTE_CATEGORIES
}
_PARTS = ("M3", "P12", "CV-4", "ST2", "R1", "HP-7", "AX2", "L4", "B-101", "K7", "FZ9", "PR3")
_PREFIXES = ("", "", "", "shift 2: ", "L{n} ", "st{n} - ", "night shift ", "op: ", "wo#{w} ")
_PLACES = ("", "", "", " on line {n}", " at st{n}", " press {n}", " cell {n}", " by dock {n}", " {part}")
_TYPO_RATE = 0.04
# Another site's operators write shop-floor German shorthand: common words of a note swapped one by
# one through this glossary (the grammar stays the templates'). For drift checks, not for training.
_GERMAN: dict[str, str] = dict(
    pair.split("=", 1)
    for pair in _split(
        "motor=Motor|drive=Antrieb|breaker=Schutzschalter|fuse=Sicherung|cable=Kabel|"
        "panel=Schaltschrank|cabinet=Schrank|bearing=Lager|belt=Riemen|chain=Kette|"
        "gearbox=Getriebe|roller=Rolle|shaft=Welle|conveyor=Förderband|valve=Ventil|pump=Pumpe|"
        "hose=Schlauch|cylinder=Zylinder|compressor=Kompressor|seal=Dichtung|sensor=Sensor|"
        "robot=Roboter|program=Programm|network=Netzwerk|parts=Teile|batch=Charge|weld=Schweißnaht|"
        "guard=Schutzgitter|floor=Boden|ladder=Leiter|air=Luft|oil=Öl|pressure=Druck|leak=Leck|"
        "leaking=undicht|low=niedrig|noisy=laut|worn=verschlissen|broken=kaputt|jammed=klemmt|"
        "loose=locker|slow=langsam|missing=fehlt|damaged=beschädigt|blocked=blockiert|"
        "fault=Störung|alarm=Alarm|line=Linie|stopped=steht|down=steht|urgent=dringend|now=sofort|"
        "today=heute|shift=Schicht|week=Woche|check=prüfen|fix=reparieren|running=läuft|not=nicht|"
        "no=kein|working=geht|again=wieder|on=an|at=bei|in=im|from=von|with=mit|and=und|the=die|"
        "needs=braucht|production=Produktion|scrap=Ausschuss"
    )
)


@dataclass(frozen=True, slots=True)
class Note:
    """One generated note and its ground truth."""

    index: int
    text: str
    category: str
    urgency: str


def _typo(word: str, rng: random.Random) -> str:
    if len(word) < 4 or not word.isalpha():
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(3)
    if kind == 0:  # swapped letters
        return word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]
    if kind == 1:  # dropped letter
        return word[:i] + word[i + 1 :]
    return word[:i] + word[i] + word[i:]  # doubled letter


def _fill(template: str, rng: random.Random) -> str:
    return template.format(
        part=rng.choice(_PARTS) + (f"-{rng.randrange(1, 40)}" if rng.random() < 0.3 else ""),
        n=rng.randrange(1, 99),
        w=rng.randrange(10000, 99999),
    )


class NotesLine:
    """An endless, reproducible stream of labelled notes.

    ``german``: the share of notes written in German shorthand (another site's operators, see
    ``_GERMAN``); with 0, the default, the stream is the one the notes model was trained on.
    """

    def __init__(self, seed: int = 0, german: float = 0.0) -> None:
        if not 0.0 <= german <= 1.0:
            raise ValueError(f"german must be in [0, 1], got {german}")
        self.seed = seed
        self.german = german

    def note(self, index: int) -> Note:
        """Note number ``index`` (depends only on the seed and the index)."""
        if index < 0:
            raise ValueError(f"note index must be >= 0, got {index}")
        rng = random.Random(self.seed * 1_000_003 + index)  # noqa: S311 - simulation, not security
        category = (
            NOTE_CATEGORIES[index % len(NOTE_CATEGORIES)]
            if rng.random() < 0.5
            else rng.choice(NOTE_CATEGORIES)
        )
        urgency = rng.choices(NOTE_URGENCIES, weights=_URGENCY_WEIGHTS[category])[0]
        faults = _FAULTS[category]
        fault = rng.choice(faults if urgency == "high" else [f for f in faults if not f.startswith("!")])
        fault = fault.removeprefix("!")
        symptom = _fill(fault.replace("{eq}", rng.choice(_EQUIPMENT[category])) + rng.choice(_PLACES), rng)
        cue = _fill(rng.choice(_URGENCY_CUES[urgency]), rng)
        parts = [symptom, cue] if rng.random() < 0.7 else [cue, symptom]
        text = _fill(rng.choice(_PREFIXES), rng) + rng.choice((", ", " - ", ". ", " ")).join(parts)
        words = [_typo(w, rng) if rng.random() < _TYPO_RATE else w for w in text.split(" ")]
        text = " ".join(words)
        if rng.random() < 0.3:
            text = text.lower()
        # Drawn last and only when asked for, so the default stream stays what training saw.
        if self.german > 0.0 and rng.random() < self.german:
            text = re.sub(r"[A-Za-z]+", lambda m: _GERMAN.get(m.group().lower(), m.group()), text)
        return Note(index, text, category, urgency)

    def notes(self, count: int, start: int = 0) -> list[Note]:
        """``count`` consecutive notes from ``start``."""
        return [self.note(i) for i in range(start, start + count)]

    def __iter__(self) -> Iterator[Note]:
        index = 0
        while True:
            yield self.note(index)
            index += 1


def write_notes(folder: Path, notes: list[Note]) -> Path:
    """Write one ``note-NNNNNN.txt`` per note plus ``truth.jsonl``; return the truth file's path."""
    folder.mkdir(parents=True, exist_ok=True)
    truth = folder / "truth.jsonl"
    with truth.open("w", encoding="utf-8") as fh:
        for note in notes:
            name = f"note-{note.index:06d}.txt"
            (folder / name).write_text(note.text + "\n", encoding="utf-8")
            row = {"file": name, "text": note.text, "category": note.category, "urgency": note.urgency}
            fh.write(json.dumps(row) + "\n")
    return truth


def stream_notes(
    folder: Path, line: NotesLine, rate_per_s: float, stop: threading.Event, count: int | None = None
) -> int:
    """Drop notes into ``folder`` at ``rate_per_s`` until ``stop`` (or ``count`` notes); return how many.

    Each note is written under a temporary name and renamed, so a watching ``notes`` source never
    reads half a note. The ground truth goes to ``truth.jsonl`` as notes appear.
    """
    if rate_per_s <= 0:
        raise ValueError(f"rate_per_s must be > 0, got {rate_per_s}")
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    with (folder / "truth.jsonl").open("a", encoding="utf-8") as truth:
        for note in line:
            if stop.is_set() or (count is not None and written >= count):
                break
            name = f"note-{note.index:06d}.txt"
            tmp = folder / f".{name}.tmp"
            tmp.write_text(note.text + "\n", encoding="utf-8")
            os.replace(tmp, folder / name)
            row = {"file": name, "text": note.text, "category": note.category, "urgency": note.urgency}
            truth.write(json.dumps(row) + "\n")
            truth.flush()
            written += 1
            stop.wait(1.0 / rate_per_s)
    return written
