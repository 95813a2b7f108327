"""The Workbench: one object the UI and the command lines call; no Gradio inside."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from workbench.config import PreprocessConfig
from workbench.errors import SignatureInputError
from workbench.intake.cleaning import DEFAULT_CLEANING, CleaningConfig
from workbench.preprocess import ImageSource, PreprocessRecord, load_signature, normalize_stages
from workbench.verification.intake_cache import IntakeCache, file_key
from workbench.verification.sharing import SharedLock

if TYPE_CHECKING:
    from workbench.checkpoint import WeightsCard
    from workbench.intake.signatures import Intake


@dataclass(frozen=True)
class NormalizedSignature:
    """A signature at each preprocessing stage, for display.

    Attributes:
        original: ``uint8`` (H, W) grey levels as loaded (the whole page for a page or PDF).
        grayscale: ``uint8`` (H, W) after eq. 1 (strokes mean 30 / std 10, paper 255).
        image: ``uint8`` (height, width) after eq. 2-5, the network's input.
        record: what was measured on the way.
        intake: the cleaning steps before eq. 1 and, for a page, where the signature was found
            (``workbench.intake.signatures.Intake``); None for an in-memory image.
    """

    original: np.ndarray
    grayscale: np.ndarray
    image: np.ndarray
    record: PreprocessRecord
    intake: Intake | None = None


@dataclass(frozen=True)
class PairExplanation:
    """Where the verifier looked, for one (reference, questioned) pair.

    Attributes:
        reference, questioned: the normalized ``uint8`` images the network saw.
        block_maps: per dense block, a (2, h, w) float array of attention weights on the
            reference and the questioned branch (the same difference heatmap twice for
            difference SimAM); None for modules without a spatial map.
        cross_attention: (A1, A2), two (21, 21) arrays whose rows sum to 1, or None.
        score: the pair's same-writer probability.
    """

    reference: np.ndarray
    questioned: np.ndarray
    block_maps: list
    cross_attention: tuple | None
    score: float


@dataclass(frozen=True)
class Verdict:
    """The decision on one questioned signature against one or more references.

    Attributes:
        scores: the score against each reference, in 0..1: the network's same-writer
            probability fused with the shape correlation where the weights carry a score
            fusion (``verification.fusion``), else the network's probability.
        score: their mean, the aggregate the decision uses.
        threshold: scores at or above it are accepted as genuine.
        genuine: ``score >= threshold``.
        references, questioned: the normalized ``uint8`` images that were scored.
        intakes: what intake did to each file, references first, then the questioned one
            (``Intake``: cleaning steps, where on a page the signature was found).
        similarity: the writer space's similarity (-1..1) of the questioned signature to the
            references together (``verification.writer_space``), or None when the weights
            carry no writer space. The likelihood ratios use it beside ``score``.
        network_scores: the network's same-writer probability against each reference.
        shapes: the shape correlation (-1..1) with each reference; empty without a fusion.
        local_shapes: the local shape correlation (-1..1) with each reference; empty where the
            fusion does not use it.
    """

    scores: tuple[float, ...]
    score: float
    threshold: float
    genuine: bool
    references: tuple[np.ndarray, ...] = ()
    questioned: np.ndarray | None = None
    intakes: tuple = ()
    similarity: float | None = None
    network_scores: tuple[float, ...] = ()
    shapes: tuple[float, ...] = ()
    local_shapes: tuple[float, ...] = ()

    @property
    def fused(self) -> bool:
        """Whether ``scores`` fuse the network's probability with the shape correlation."""
        return bool(self.shapes)


def validation_rates(card: WeightsCard, threshold: float) -> dict | None:
    """FAR and FRR of the validation writers at ``threshold``, read at the nearest threshold
    tabulated in the weights' card: the score fusion's curve when the card carries one
    (``cli.fuse``), else ``card.validation.curve`` (written by ``workbench.cli.ship``).

    Returns:
        {"threshold", "far", "frr", "n_genuine", "n_forged"} (counts None when not recorded), or
        None when the card has no curve.
    """
    from workbench.verification.fusion import stored_fusion

    fusion = stored_fusion(card)
    curve = (card.validation.curve if card.validation is not None else None) or {}
    if fusion is not None:
        curve = fusion.curve
    if not (curve.get("threshold") and curve.get("far") and curve.get("frr")):
        return None
    index = int(np.argmin(np.abs(np.asarray(curve["threshold"], dtype=float) - float(threshold))))
    return {
        "threshold": curve["threshold"][index],
        "far": curve["far"][index],
        "frr": curve["frr"][index],
        "n_genuine": curve.get("n_genuine"),
        "n_forged": curve.get("n_forged"),
    }


class Workbench:
    """Loads the verifier once, then serves typed requests.

    Args:
        weights: a ``.safetensors`` file with its ``.json`` beside it; None = preprocessing only.
        preprocess_config: used when no weights are loaded (weights carry their own).
        device: ``cuda`` when a GPU is present (a Hugging Face Space with one), else ``cpu``.
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        *,
        preprocess_config: PreprocessConfig | None = None,
        device: str | None = None,
    ) -> None:
        import torch

        from workbench.checkpoint import WeightsCard, load_verifier
        from workbench.verification.fusion import stored_fusion
        from workbench.verification.writer_space import stored_writer_space

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = None
        self.preprocess_config = preprocess_config or PreprocessConfig()
        self.cleaning: CleaningConfig = DEFAULT_CLEANING  # intake before eq. 1 (issue 14)
        self.intake_cache = IntakeCache()  # references are taken in once (issue 15)
        # ... and their stem and first dense block computed once (``scoring.score_against``)
        self.feature_cache = IntakeCache(max_items=64, max_bytes=64 * 2**20)
        # Scoring shares the model between requests; captum's attributions take it alone.
        self.model_use = SharedLock()
        # Without weights, an empty card: no name, no validation, the fallback threshold.
        self.card: WeightsCard = WeightsCard(preprocess=self.preprocess_config)
        if weights is not None:
            self.model, self.card, self.preprocess_config = load_verifier(
                weights, device=self.device, fuse=True
            )
        # The writer space stored with the weights (``cli.writer_space``), or None.
        self.writer_space = stored_writer_space(self.card) if self.model is not None else None
        # The score fusion (network score + shape correlation, ``cli.fuse``), or None.
        self.fusion = stored_fusion(self.card) if self.model is not None else None

    def validation_rates(self, threshold: float) -> dict | None:
        """``validation_rates(self.card, threshold)``."""
        return validation_rates(self.card, threshold)

    @property
    def threshold(self) -> float:
        """The verdict's validation threshold: the score fusion's where the weights carry one,
        else the network's (0.5, the argmax, without one)."""
        return self.card.threshold if self.fusion is None else self.fusion.threshold

    @property
    def calibrations(self) -> list:
        """The score-to-LR calibrations stored with the weights (``cli.calibrate``); empty
        when the weights carry none or a record is unreadable."""
        from workbench.verification.calibration import Calibration

        try:
            return [Calibration.from_dict(c) for c in self.card.extra.get("calibration", [])]
        except (ValueError, AttributeError):
            return []

    @property
    def copy_check(self):
        """The copy / tracing rule stored with the weights (``verification.copies``), or
        None."""
        from workbench.verification.copies import CopyCheck

        record = self.card.extra.get("copy_check")
        try:
            return CopyCheck.from_dict(record) if isinstance(record, dict) else None
        except ValueError:
            return None

    def conditions_check(self, verdict: Verdict):
        """How far ``verdict``'s images lie from the validated conditions
        (``verification.conditions``), or None without stored conditions."""
        from workbench.verification.conditions import check_conditions, stored_conditions

        conditions = stored_conditions(self.card)
        if conditions is None or verdict.questioned is None:
            return None
        images = [*verdict.references, verdict.questioned]
        pooled = None
        if conditions.tower is not None:
            from workbench.verification.scoring import pooled_features

            with self.model_use.shared():
                pooled = pooled_features(self.model, images, cache=self.feature_cache)
        return check_conditions(conditions, images, pooled)

    def copy_flag(self, verdict: Verdict):
        """The copy check of ``verdict``'s questioned image against its references, or None
        without a stored rule."""
        from workbench.verification.copies import check_copies

        check = self.copy_check
        if check is None or verdict.questioned is None or not len(verdict.references):
            return None
        # a fused verdict has the copy check's measure already (the shape correlations)
        return check_copies(check, verdict.references, verdict.questioned, verdict.shapes or None)

    def evidence(self, verdict: Verdict, population: str = "") -> list:
        """The likelihood ratio of ``verdict``'s mean score under each alternative hypothesis
        (``verification.evidence``), calibrated for its number of references on
        ``population``'s validation writers ("" = pooled over every validated corpus); empty
        without calibrations.

        Raises:
            ValueError: a population the weights carry no calibration for.
        """
        from workbench.verification.evidence import evidence

        stored = self.calibrations
        if verdict.similarity is None and any(c.uses_writer_space for c in stored):
            raise ValueError(
                "The weights' likelihood-ratio calibrations need the writer space, which their "
                "JSON lacks or holds damaged: refit it with `python -m workbench.cli.writer_space "
                "--write-card`, then `python -m workbench.cli.calibrate --split val --write-card`."
            )
        return evidence(stored, verdict.score, len(verdict.scores), population, verdict.similarity)

    @property
    def populations(self) -> list[str]:
        """The calibration populations the weights carry: "" (pooled) first, then corpora."""
        from workbench.verification.calibration import populations

        return populations(self.calibrations)

    def normalize(
        self,
        source: ImageSource,
        *,
        kind: str = "auto",
        choice: int = 1,
        cleaning: CleaningConfig | None = None,
    ) -> NormalizedSignature:
        """Intake (cleaning; for a page or PDF, finding the signature) then every stage of
        eq. 1-5 for one signature.

        Args:
            source: a file (path or bytes: a signature image, a page, a PDF) or an image in
                memory (always taken as the signature itself).
            kind, choice: ``take_signature``'s: ``auto`` / ``signature`` / ``page``, and which
                candidate of a page (1 = the best).
            cleaning: the cleaning switches (default: ``self.cleaning``).

        Raises:
            SignatureInputError: for inputs that are not usable signatures or pages.
        """
        from workbench.intake.cleaning import clean_signature
        from workbench.intake.signatures import Intake, take_signature

        cleaning = cleaning or self.cleaning
        key = None
        if isinstance(source, (str, os.PathLike, bytes, bytearray)):
            key = file_key(source, kind, choice, cleaning, self.preprocess_config)
            cached = self.intake_cache.get(key)
            if cached is not None:
                return cached
            intake = take_signature(source, kind=kind, choice=choice, cleaning=cleaning)
        else:
            loaded = load_signature(source, config=self.preprocess_config)
            cleaned, steps = clean_signature(loaded, config=cleaning)
            intake = Intake(cleaned, tuple(steps), None, loaded)
        grayscale, image, record = normalize_stages(intake.gray, config=self.preprocess_config)
        result = NormalizedSignature(
            original=intake.loaded, grayscale=grayscale, image=image, record=record, intake=intake
        )
        self.intake_cache.put(key, result)
        return result

    def verify(
        self,
        references: Sequence[ImageSource],
        questioned: ImageSource,
        *,
        threshold: float | None = None,
        questioned_choice: int = 1,
    ) -> Verdict:
        """Score ``questioned`` against each reference (fused with the shape correlation
        where the weights carry a score fusion); decide on the mean score. Pages and PDFs are
        searched (``normalize``); ``questioned_choice`` picks the questioned page's candidate,
        references from pages use their best one.

        Raises:
            SignatureInputError: an input is not a usable signature.
            ValueError: no references, or no weights loaded.
        """
        from workbench.verification.scoring import score_against, writer_space_similarity

        if self.model is None:
            raise ValueError("No verifier weights are loaded.")
        if not references:
            raise SignatureInputError("Give at least one reference signature.")
        given = [self.normalize(r) for r in references]
        given.append(self.normalize(questioned, choice=questioned_choice))
        refs = np.stack([g.image for g in given[:-1]])
        query = given[-1].image
        similarity = None
        with self.model_use.shared():
            scores = score_against(self.model, refs, query, cache=self.feature_cache)
            if self.writer_space is not None:
                similarity = writer_space_similarity(
                    self.model, self.writer_space, refs, query, cache=self.feature_cache
                )
        cut = self.threshold if threshold is None else float(threshold)
        if not 0.0 <= cut <= 1.0:
            raise ValueError(f"The threshold must lie between 0 and 1, not {cut}.")
        network, shapes, local = scores, (), ()
        if self.fusion is not None:
            from workbench.verification.fusion import shape_measures

            uses_local = self.fusion.uses_local
            measured = [shape_measures(r, query, local=uses_local) for r in refs]
            shapes = tuple(shape for shape, _ in measured)
            local = tuple(near for _, near in measured) if uses_local else ()
            scores = self.fusion.fuse(network, shapes, local or None)
        mean = float(scores.mean())
        return Verdict(
            scores=tuple(float(s) for s in scores),
            score=mean,
            threshold=cut,
            genuine=mean >= cut,
            references=tuple(refs),
            questioned=query,
            intakes=tuple(g.intake for g in given),
            similarity=similarity,
            network_scores=tuple(float(s) for s in network),
            shapes=shapes,
            local_shapes=local,
        )

    def explain(
        self, reference: ImageSource, questioned: ImageSource, *, questioned_choice: int = 1
    ) -> PairExplanation:
        """The attention maps and cross-attention matrices of one pair (DESIGN.md, eq. 7-10)."""
        import torch

        from workbench.models import images_to_tensor

        if self.model is None:
            raise ValueError("No verifier weights are loaded.")
        ref = self.normalize(reference).image
        query = self.normalize(questioned, choice=questioned_choice).image
        with torch.inference_mode(), self.model_use.shared():
            x1, x2 = images_to_tensor(ref).to(self.device), images_to_tensor(query).to(self.device)
            logits, explanation = self.model(x1, x2, explain=True)
        maps = [None if m is None else m[0].float().cpu().numpy() for m in explanation.block_maps]
        cross = None
        if explanation.cross_attention is not None:
            cross = tuple(a[0].float().cpu().numpy() for a in explanation.cross_attention)
        score = float(torch.softmax(logits, 1)[0, 0])
        return PairExplanation(
            reference=ref, questioned=query, block_maps=maps, cross_attention=cross, score=score
        )
