"""Operators' dispositions of flagged results: confirmed defect, false reject, needs review."""
