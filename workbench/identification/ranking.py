"""The models that rank a gallery's enrolled writers: the paper's pairwise verifier and the
slides' embedding Siamese, each with its acceptance threshold and where that comes from."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.config import FALLBACK_THRESHOLD, WEIGHTS_DIR
from workbench.identification.gallery import Scorer, verifier_scorer

if TYPE_CHECKING:
    from workbench.verification.workbench import Workbench

log = logging.getLogger(__name__)

DEFAULT_EMBEDDINGS = (
    WEIGHTS_DIR / "siamese_triplet.safetensors",
    WEIGHTS_DIR / "siamese_contrastive.safetensors",
)
PAIRWISE = "pairwise Siamese, the paper's"


@dataclass(frozen=True)
class RankingVerifier:
    """A model that ranks enrolled writers, with its acceptance threshold.

    Attributes:
        name: what the app calls it (``PAIRWISE`` or "embedding Siamese, <loss> loss").
        scorer: the ``Gallery`` scorer.
        threshold: a best writer score (``Gallery.rank``) at or above it names that writer (0..1).
        threshold_note: where the threshold comes from.
        validation_top1: top-1 among known writers on validation images (embeddings), if known.
    """

    name: str
    scorer: Scorer
    threshold: float
    threshold_note: str
    validation_top1: float | None = None


def ranking_verifiers(
    workbench: Workbench, embedding_weights: Sequence[str | Path] | None
) -> tuple[dict[str, RankingVerifier], list[str]]:
    """The pairwise verifier (when ``workbench`` has weights) and each embedding Siamese of
    ``embedding_weights`` that exists and was made with the verifier's preprocessing (the
    gallery holds images normalized once, with it).

    Returns:
        (verifiers by name, one note per embedding file saying whether and why it is used).
    """
    verifiers: dict[str, RankingVerifier] = {}
    if workbench.model is not None:
        scorer = verifier_scorer(workbench.model)

        def shared(references, questioned):  # the model is shared with the other tabs' requests
            with workbench.model_use.shared():
                return scorer(references, questioned)

        verifiers[PAIRWISE] = RankingVerifier(
            PAIRWISE,
            shared,
            workbench.card.threshold,  # the network's own: the ranking scores are its alone
            "the verifier's validation threshold",
        )
    notes = [_load_embedding(verifiers, workbench, w) for w in embedding_weights or ()]
    return verifiers, notes


def _load_embedding(
    verifiers: dict[str, RankingVerifier], workbench: Workbench, weights: str | Path
) -> str:
    """Add an embedding Siamese to ``verifiers``; a note saying what happened."""
    path = Path(weights)
    if not path.exists():
        return f"No embedding Siamese at {path}."
    from workbench.identification.embedding import (
        embedding_name,
        embedding_scorer,
        load_embedding,
    )

    try:
        model, card, pre = load_embedding(path)
    except (ValueError, KeyError) as error:
        log.warning("embedding Siamese not loaded: %s", error)
        return f"The embedding Siamese at {path} could not be loaded ({error})."
    if pre != workbench.preprocess_config:
        return (
            f"The embedding Siamese at {path} was trained on other preprocessing than the "
            "verifier's; it is not used."
        )
    validation = card.validation
    threshold, note, top1 = FALLBACK_THRESHOLD, "the argmax default (no validation)", None
    if validation is not None and validation.threshold is not None:
        threshold = float(validation.threshold)
        note = str(validation.extra.get("rule", "chosen on validation writers"))
        top1 = validation.extra.get("top1")
    name = embedding_name(model, card)
    verifiers[name] = RankingVerifier(name, embedding_scorer(model), threshold, note, top1)
    return f"Loaded {name} from {path}."
