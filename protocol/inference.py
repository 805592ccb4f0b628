"""The inference contract: what each task's tensors are named and what its labels and scores mean.

A release's manifest (``protocol.manifest``) lists its tensors, labels and thresholds; this module
says which names, label sets and threshold keys each task relies on, so the gateway's runners
(``edge_agent.runtime``), the training and evaluation code (``domain_models``) and the simulators'
ground truth read one definition. Wire scores are always in [0, 1].

``defect``, classifier graph
    One output (N, len(labels)): a softmax over ``labels`` in order; ``good_label`` passes a part.
    The top label is a defect only when it is not the good label and its probability reaches
    ``thresholds[label]``, else ``thresholds["defect"]``, else :data:`DEFAULT_DEFECT_THRESHOLD`;
    otherwise the result is the good label with the good label's probability as its score. The
    simulated camera line and the bundled classifier use :data:`DEFECT_LABELS`
    (:data:`GOOD_LABEL` and the :data:`DEFECT_TYPES`).

``defect``, anomaly graph (fit on good parts only)
    Outputs :data:`SCORE_OUTPUT` (N,), a raw feature distance, and :data:`MAP_OUTPUT`
    (N, h, w), the anomaly map over the model's input; ``thresholds["defect"]`` is the raw
    distance calibrated on held-out good parts. The wire score is :func:`normalized_score`:
    ``raw / (raw + threshold)``, monotonic and exactly 0.5 at the threshold. Labels are
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
    (N, urgencies) and :data:`EMBEDDING_OUTPUT` (training and drift use only; the gateway does not
    read it). ``labels`` are the categories in output order; ``thresholds["urgency.<label>"]``
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
    to a parcel's mean score.
"""

from __future__ import annotations

# ---- defect: classifier graphs -------------------------------------------------------------

GOOD_LABEL = "good"
DEFECT_TYPES: tuple[str, ...] = ("scratch", "hole", "stain", "crack")
DEFECT_LABELS: tuple[str, ...] = (GOOD_LABEL, *DEFECT_TYPES)
DEFAULT_DEFECT_THRESHOLD = 0.5

# ---- defect: anomaly graphs ----------------------------------------------------------------

SCORE_OUTPUT = "score"
MAP_OUTPUT = "anomaly_map"
TYPE_OUTPUT = "defect_type"
ANOMALY_LABEL = "anomaly"
ANOMALY_LABELS: tuple[str, ...] = (GOOD_LABEL, ANOMALY_LABEL)  # + the type head's types when it has one
DEFAULT_TYPE_CONFIDENCE = 0.5


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

# ---- parcels -------------------------------------------------------------------------------

PARCEL_MAPS: tuple[str, ...] = ("parcel", "damage")
ROUTES_FILE = "parcel-routes.json"
DAMAGE_PREFIX = "parcel-damage"
DAMAGE_THRESHOLD = "damage_crop"
DAMAGE_INPUT = "crops"
DAMAGE_OUTPUT = "damage"
