"""The classroom identification desk: a writer CLASSIFIER and a Siamese VERIFIER side by side.

The classifier (``workbench.identification.classifier``) answers "which of my training writers
wrote this?": a closed set, so a new writer needs retraining and a stranger still gets one of
its names. The verifier ranks the writers enrolled in a ``Gallery`` (a few reference signatures
each, no weights change) and can answer "no enrolled writer matches" when the best writer score
(``Gallery.rank``) is under its threshold: the open-set rejection the classifier cannot make.

The desk starts with a few synthetic writers from the project's generator (fixed seed, nothing
downloaded). No Gradio here: the Identify tab (``workbench.ui.identify_tab``) calls this module.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from workbench.config import DEFAULT_CLASSIFIER, WEIGHTS_DIR
from workbench.errors import SignatureInputError
from workbench.identification.gallery import Gallery, Match
from workbench.identification.ranking import (
    DEFAULT_EMBEDDINGS,
    PAIRWISE,
    RankingVerifier,
    ranking_verifiers,
)
from workbench.preprocess import ImageSource, array_to_gray
from workbench.verification.workbench import Workbench

if TYPE_CHECKING:
    from workbench.checkpoint import WeightsCard

log = logging.getLogger(__name__)

DEFAULT_COMPARISON = WEIGHTS_DIR / "identification.md"
# The same comparison on CrossMedia-zh (one name, many hands, four media): the advanced case.
CROSSMEDIA_COMPARISON = WEIGHTS_DIR / "identification_crossmedia.md"
SYNTHETIC_SEED = 2026
SYNTHETIC_NAME = "synthetic writer {}"
MAX_NAME_LENGTH = 80


@dataclass(frozen=True)
class ClassifierGuess:
    """One of the classifier's training writers and its softmax probability (0..1)."""

    writer: str
    probability: float


@dataclass(frozen=True)
class Identification:
    """Both answers to "who wrote this?" for one questioned signature.

    Attributes:
        guesses: the classifier's best training writers, most probable first; empty without a
            classifier. Always names one of its training writers, whoever wrote the signature.
        classifier_note: what the classifier can and cannot answer, or why it is absent.
        matches: every enrolled writer, best writer score first (``Gallery.rank``).
        threshold: the verifier's acceptance threshold (writer score >= threshold matches).
        questioned: the normalized ``uint8`` (H, W) image the verifier scored.
        verifier: the name of the verifier that ranked the writers.
    """

    guesses: tuple[ClassifierGuess, ...]
    classifier_note: str
    matches: tuple[Match, ...]
    threshold: float
    questioned: np.ndarray
    verifier: str = PAIRWISE

    @property
    def best(self) -> Match:
        return self.matches[0]

    @property
    def accepted(self) -> bool:
        """True when the best enrolled writer's score reaches the threshold."""
        return self.best.score >= self.threshold

    @property
    def decision(self) -> str:
        """The verifier's answer in words: a writer's name or ``no enrolled writer matches``."""
        if self.accepted:
            return (
                f"{self.best.writer} (writer score {self.best.score:.4f} "
                f">= threshold {self.threshold:.4f})"
            )
        return (
            f"no enrolled writer matches (best: {self.best.writer}, "
            f"writer score {self.best.score:.4f} < threshold {self.threshold:.4f})"
        )


def drawn_signature(value: object) -> np.ndarray | None:
    """A drawing (a sketchpad's dict value or an image array) as ``uint8`` (H, W) grey levels.

    A dict is reduced to its ``"composite"`` entry. Transparent pixels are flattened onto white
    paper, so dark strokes on a transparent or white canvas both give dark ink on white.

    Returns:
        the grey image, or None when nothing was drawn (no value, or no pixel darker than mid-grey).
    """
    if isinstance(value, Mapping):
        value = value.get("composite")
    if value is None:
        return None
    try:
        grey = array_to_gray(np.asarray(value))
    except SignatureInputError:  # an empty or oddly shaped canvas: nothing usable was drawn
        return None
    return grey if (grey < 128).any() else None


def _label(source: ImageSource, index: int) -> str:
    if isinstance(source, (str, Path)):
        return Path(source).name
    return f"signature {index}"


class IdentificationDesk:
    """A verifier's gallery of enrolled writers and, when its weights exist, a writer classifier.

    Args:
        workbench: supplies the verifier (``workbench.model``), its preprocessing and threshold.
        classifier_weights: writer-classifier ``.safetensors`` (JSON beside it); None, or a
            missing file, leaves the desk without a classifier (identify then explains why).
        synthetic_writers: synthetic writers enrolled at start, named "synthetic writer 1"...
        references: reference signatures per synthetic writer.
        seed: the generator's seed; the same seed gives the same writers and images.
        embedding_weights: embedding Siamese ``.safetensors`` files; those present (and made
            with the verifier's preprocessing) rank writers too, with the open-set threshold
            their training chose on validation writers. The one with the best validation top-1
            is the default ranking verifier; without any, the pairwise verifier is.

    ``enroll`` / ``remove`` / ``identify`` act on the desk's own gallery unless given another
    one: the app hands each browser session its own copy (``session_gallery``) so that writers
    one user enrolls are not seen by others.
    """

    def __init__(
        self,
        workbench: Workbench,
        classifier_weights: str | Path | None = DEFAULT_CLASSIFIER,
        *,
        synthetic_writers: int = 5,
        references: int = 3,
        seed: int = SYNTHETIC_SEED,
        embedding_weights: Sequence[str | Path] | None = DEFAULT_EMBEDDINGS,
    ) -> None:
        self.workbench = workbench
        self.verifiers, self.embedding_notes = ranking_verifiers(workbench, embedding_weights)
        embeddings = [v for v in self.verifiers.values() if v.name != PAIRWISE]
        self.default_verifier = (
            max(embeddings, key=lambda v: v.validation_top1 or 0.0).name if embeddings else PAIRWISE
        )
        self.classifier = None
        self.classes: list[str] = []
        self.classifier_card: WeightsCard | None = None
        self.classifier_workbench: Workbench | None = None
        self.classifier_note = self._load_classifier(classifier_weights)
        self.gallery = Gallery()
        self._enroll_synthetic(synthetic_writers, references, seed)

    def _load_classifier(self, weights: str | Path | None) -> str:
        if weights is None:
            return "No writer classifier is loaded: only the verification ranking is available."
        path = Path(weights)
        if not path.exists():
            return (
                f"No writer classifier weights at {path}: train one with "
                "`python -m workbench.cli.identify train --data CORPUS --out weights` "
                "(the lead engineer ships it). Only the verification ranking is available."
            )
        from workbench.identification.classifier import load_classifier

        try:
            self.classifier, self.classifier_card, pre = load_classifier(path)
        except (ValueError, KeyError) as error:
            log.warning("writer classifier not loaded: %s", error)
            return (
                f"The writer classifier at {path} could not be loaded ({error}). "
                "Only the verification ranking is available."
            )
        self.classes = [str(c) for c in self.classifier_card.classes or ()]
        if len(self.classes) != self.classifier.config.n_writers:
            self.classes = [f"class {i + 1}" for i in range(self.classifier.config.n_writers)]
        self.classifier_workbench = Workbench(None, preprocess_config=pre)
        return (
            f"The classifier can only answer one of the {len(self.classes)} writers it was "
            "trained on: a writer it never saw still gets one of their names, and a new writer "
            "needs retraining."
        )

    def verifier(self, name: str | None = None) -> RankingVerifier:
        """The ranking verifier called ``name`` (None: the default one).

        Raises:
            ValueError: no such verifier, or none at all.
        """
        if not self.verifiers:
            raise ValueError(
                "No verifier weights are loaded: identification through verification is "
                "unavailable."
            )
        name = name or self.default_verifier
        if name not in self.verifiers:
            raise ValueError(
                f"No verifier called {name!r}; choose one of: {', '.join(self.verifiers)}."
            )
        return self.verifiers[name]

    def _enroll_synthetic(self, writers: int, references: int, seed: int) -> None:
        if writers < 0 or (writers and references < 1):
            raise ValueError(
                "synthetic_writers must be >= 0 and references >= 1 "
                f"(got {writers} and {references})."
            )
        from workbench.data.synthetic import sample_writer

        for w in range(writers):
            genuine, _ = sample_writer(seed, writer=w, genuine=references, forgeries=0)
            self.enroll(SYNTHETIC_NAME.format(w + 1), genuine)

    @property
    def has_classifier(self) -> bool:
        return self.classifier is not None

    @property
    def threshold(self) -> float:
        """The default ranking verifier's threshold."""
        return self.verifier().threshold if self.verifiers else self.workbench.threshold

    def _target(self, gallery: Gallery | None) -> Gallery:
        # Not `gallery or ...`: an empty Gallery is falsy (it has __len__).
        return self.gallery if gallery is None else gallery

    def session_gallery(self) -> Gallery:
        """A copy of the desk's gallery that a session may change without affecting others."""
        copy = Gallery()
        for writer in self.gallery.writers:
            copy.enroll(writer, self.gallery.references(writer))
        return copy

    def writers(self, gallery: Gallery | None = None) -> list[str]:
        return self._target(gallery).writers

    def classifier_knows(self, writer: str) -> bool:
        """Whether ``writer`` is one of the classifier's training writers (by name)."""
        return writer in self.classes

    def references(
        self, name: str, sources: Sequence[ImageSource] | ImageSource | None
    ) -> tuple[str, np.ndarray]:
        """Validate an enrollment and normalize its signatures (eq. 1-5), without enrolling.

        Returns:
            (the stripped name, ``uint8`` (k, H, W) normalized references).

        Raises:
            SignatureInputError: an empty or over-long name, no signatures, or an input that is
                not a usable signature (the message names it).
        """
        name = (name or "").strip()
        if not name:
            raise SignatureInputError("Give the writer a name before enrolling.")
        if len(name) > MAX_NAME_LENGTH:
            raise SignatureInputError(
                f"The writer's name is {len(name)} characters long; use at most {MAX_NAME_LENGTH}."
            )
        if sources is None or isinstance(sources, (str, Path, bytes, bytearray, np.ndarray)):
            sources = [] if sources is None else [sources]
        items = [s for s in sources if s is not None]
        if not items:
            raise SignatureInputError(
                f"Add at least one signature of {name} (upload image files or draw one)."
            )
        images = []
        for index, source in enumerate(items, start=1):
            try:
                images.append(self.workbench.normalize(source).image)
            except SignatureInputError as error:
                raise SignatureInputError(
                    f"{_label(source, index)} cannot be enrolled: {error}"
                ) from None
        return name, np.stack(images)

    def enroll(
        self,
        name: str,
        sources: Sequence[ImageSource] | ImageSource,
        *,
        gallery: Gallery | None = None,
    ) -> str:
        """Enroll (or re-enroll, replacing its references) a writer; no weights change.

        Returns:
            the name as enrolled (surrounding spaces removed).

        Raises:
            SignatureInputError: see ``references``.
        """
        name, images = self.references(name, sources)
        self._target(gallery).enroll(name, images)
        return name

    def remove(self, name: str, *, gallery: Gallery | None = None) -> None:
        """Forget an enrolled writer.

        Raises:
            SignatureInputError: no writer of that name is enrolled.
        """
        target = self._target(gallery)
        name = (name or "").strip()
        if name not in target.writers:
            raise SignatureInputError(
                f"No enrolled writer is called {name!r}; "
                f"enrolled: {', '.join(target.writers) or 'none'}."
            )
        target.remove(name)

    def classify(self, source: ImageSource, *, top: int = 5) -> tuple[ClassifierGuess, ...]:
        """The classifier's ``top`` training writers for one signature; () without a classifier."""
        if self.classifier is None or self.classifier_workbench is None:
            return ()
        from workbench.identification.classifier import classify

        image = self.classifier_workbench.normalize(source).image
        probs = classify(self.classifier, image[None])[0]
        order = np.argsort(-probs, kind="stable")[: max(int(top), 0)]
        return tuple(ClassifierGuess(self.classes[i], float(probs[i])) for i in order)

    def identify(
        self,
        source: ImageSource,
        *,
        top: int = 5,
        gallery: Gallery | None = None,
        threshold: float | None = None,
        verifier: str | None = None,
    ) -> Identification:
        """Rank the enrolled writers with a verifier (``verifier``: its name; None = the
        default) and, if present, the classifier's top ``top``.

        Raises:
            SignatureInputError: the input is not a usable signature.
            ValueError: no verifier weights, an unknown verifier, no enrolled writer, or a
                threshold outside 0..1.
        """
        ranking = self.verifier(verifier)
        target = self._target(gallery)
        if not len(target):
            raise SignatureInputError("No writers are enrolled: enroll a writer first.")
        cut = ranking.threshold if threshold is None else float(threshold)
        if not 0.0 <= cut <= 1.0:
            raise ValueError(f"The threshold must lie between 0 and 1, not {cut}.")
        normalized = self.workbench.normalize(source)
        matches = target.rank(normalized.image, ranking.scorer)
        # The classifier re-normalizes the decoded grey image with its own settings.
        return Identification(
            guesses=self.classify(normalized.original, top=top),
            classifier_note=self.classifier_note,
            matches=tuple(matches),
            threshold=cut,
            questioned=normalized.image,
            verifier=ranking.name,
        )
