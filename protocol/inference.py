"""The inference contract: what each task's tensors are named and what its labels and scores mean.

A release's manifest (``protocol.manifest``) lists its tensors, labels and thresholds; this module
says which names, label sets and threshold keys (the ``*_KEY`` constants, and
:data:`URGENCY_PREFIX`) each task relies on, so the gateway's runners (``edge_agent.runtime``),
the training and evaluation code (``domain_models``) and the simulators' ground truth read one
definition. Wire scores are always in [0, 1].

``defect``, classifier graph
    One output (N, len(labels)): a softmax over ``labels`` in order; ``good_label`` passes a part.
    The top label is a defect only when it is not the good label and its probability reaches
    ``thresholds[label]``, else ``thresholds["defect"]``, else :data:`DEFAULT_DEFECT_THRESHOLD`;
    otherwise the result is the good label with the good label's probability as its score. When
    the top label is a defect label, the result's ``threshold`` is the cut-off it was judged
    against (a defect then reads as "scratch 0.83, cut-off 0.50"). The simulated camera line and
    the bundled classifier use :data:`DEFECT_LABELS` (:data:`GOOD_LABEL` and the
    :data:`DEFECT_TYPES`).

``defect``, anomaly graph (fit on good parts only)
    Outputs :data:`SCORE_OUTPUT` (N,), a raw feature distance, and :data:`MAP_OUTPUT`
    (N, h, w), the anomaly map over the model's input; ``thresholds["defect"]`` is the raw
    distance calibrated on held-out good parts. The wire score is :func:`normalized_score`:
    ``raw / (raw + threshold)``, monotonic and exactly 0.5 at the threshold; the result also
    carries the raw distance (``raw_score``) and ``threshold``, so a score reads as a multiple of
    the threshold (``raw_score / threshold``: 1.0 and up is a defect). Labels are
    :data:`ANOMALY_LABELS` (the good label and :data:`ANOMALY_LABEL`), followed by the defect
    types of an optional supervised head, :data:`TYPE_OUTPUT` (N, 1 + K): a softmax over (good,
    type_1 .. type_K) in ``labels`` order. A flagged part is named after its type when the type's
    probability reaches ``thresholds["type"]`` (:data:`DEFAULT_TYPE_CONFIDENCE` if absent) and
    stays :data:`ANOMALY_LABEL` otherwise; with ``thresholds["type_flag"]`` the head also flags a
    part below the threshold whose best type reaches that probability.

``classification``
    One output (N, len(labels)) of probabilities; the result is the arg-max label.

``notes`` (text)
    Inputs :data:`NOTES_INPUTS` (token ids and attention mask, int64, from the release's
    tokenizer). Outputs :data:`CATEGORY_OUTPUT` (N, len(labels)), :data:`URGENCY_OUTPUT`
    (N, urgencies) and :data:`EMBEDDING_OUTPUT` (training, and the gateway's drift watch only:
    never sent). ``labels`` are the categories in output order; ``thresholds["urgency.<label>"]``
    (:data:`URGENCY_PREFIX`) gives each urgency label's index in the urgency output, since a
    manifest has one label list. Result scores hold each category by name and each urgency as
    ``urgency.<label>``. The bundled model and the notes simulator use :data:`NOTE_CATEGORIES`
    and :data:`NOTE_URGENCIES`.

``parcels``
    The detector's one output (N, 2, H, W) holds the probability maps :data:`PARCEL_MAPS` in that
    order (``thresholds["parcel"]`` and ``thresholds["damage"]`` are their cut-offs). A release may
    list its sort table as :data:`ROUTES_FILE` and one crop classifier ``<DAMAGE_PREFIX>*.onnx``
    among its files: input :data:`DAMAGE_INPUT` (N, 3, 64, 96) RGB in [0, 1], output
    :data:`DAMAGE_OUTPUT` (N, 1) = P(damaged), cut-off ``thresholds[DAMAGE_THRESHOLD]`` applied
    to a parcel's mean score. A parcel's result carries that mean (``damage_score``, over the
    frames it was wholly in view) and the cut-off applied (``damage_threshold``).
"""

from __future__ import annotations

# ---- defect: classifier graphs -------------------------------------------------------------

GOOD_LABEL = "good"
DEFECT_TYPES: tuple[str, ...] = ("scratch", "hole", "stain", "crack")
DEFECT_LABELS: tuple[str, ...] = (GOOD_LABEL, *DEFECT_TYPES)
# The manifest ``thresholds`` keys a task reads are named ``*_KEY`` (a manifest has one flat
# mapping): here the cut-off of every defect label without one of its own (anomaly graphs: the raw
# distance), used at DEFAULT_DEFECT_THRESHOLD when absent.
DEFECT_KEY = "defect"
DEFAULT_DEFECT_THRESHOLD = 0.5

# ---- defect: anomaly graphs ----------------------------------------------------------------

SCORE_OUTPUT = "score"
MAP_OUTPUT = "anomaly_map"
TYPE_OUTPUT = "defect_type"
ANOMALY_LABEL = "anomaly"
ANOMALY_LABELS: tuple[str, ...] = (GOOD_LABEL, ANOMALY_LABEL)  # + the type head's types when it has one
TYPE_CONFIDENCE_KEY = "type"  # least type probability that names a flagged part's type
DEFAULT_TYPE_CONFIDENCE = 0.5
TYPE_FLAG_KEY = "type_flag"  # optional: the type probability that flags a part on its own


def normalized_score(raw: float, threshold: float) -> float:
    """An anomaly graph's raw distance -> the wire score in [0, 1): 0.5 exactly at the threshold."""
    raw = max(float(raw), 0.0)
    return raw / (raw + threshold) if raw + threshold > 0 else 0.0


# ---- notes ---------------------------------------------------------------------------------

NOTES_INPUTS: tuple[str, ...] = ("input_ids", "attention_mask")
CATEGORY_OUTPUT = "category_probs"
URGENCY_OUTPUT = "urgency_probs"
EMBEDDING_OUTPUT = "embedding"
NOTES_OUTPUTS: tuple[str, ...] = (CATEGORY_OUTPUT, URGENCY_OUTPUT, EMBEDDING_OUTPUT)
URGENCY_PREFIX = "urgency."  # manifest thresholds and result scores keys of the urgency labels
NOTE_CATEGORIES: tuple[str, ...] = (
    "electrical",
    "mechanical",
    "hydraulic_pneumatic",
    "controls_software",
    "quality",
    "safety",
)
NOTE_URGENCIES: tuple[str, ...] = ("low", "medium", "high")
# The urgency that needs someone now: the cloud counts such notes apart and the console highlights them.
HIGH_URGENCY = NOTE_URGENCIES[-1]

# ---- parcels -------------------------------------------------------------------------------

PARCEL_MAPS: tuple[str, ...] = ("parcel", "damage")
PARCEL_KEY = "parcel"  # cut-off of the parcel map
DAMAGE_MAP_KEY = "damage"  # cut-off of the damage map
MIN_AREA_KEY = "min_area"  # smallest parcel blob, model pixels
LENGTH_OFFSET_KEY = "length_offset_px"  # the detector's mean size bias, subtracted
WIDTH_OFFSET_KEY = "width_offset_px"
BIRTH_WINDOW_KEY = "birth_window"  # fraction of the width past the counting line that still counts
# The line's camera calibration and counting line: the gateway config's values first.
MM_PER_PX_KEY = "mm_per_px"
COUNT_LINE_X_KEY = "count_line_x"
ROUTES_FILE = "parcel-routes.json"
DAMAGE_PREFIX = "parcel-damage"
DAMAGE_THRESHOLD = "damage_crop"  # the manifest thresholds key of the crop classifier's cut-off
DAMAGE_INPUT = "crops"
DAMAGE_OUTPUT = "damage"
