"""Evaluate the loaded verifier on an uploaded corpus (a .zip, optionally with a CSV of pairs).

The app's counterpart of ``python -m workbench.cli.evaluate --writers all``: every writer of the
corpus, no split. Pairs come from the corpus layout (all genuine-genuine and genuine-skilled
forgery pairs of each writer, after removing duplicated images) or from a CSV with the columns
``reference``, ``questioned`` and ``label`` (1 = genuine pair, 0 = forgery), paths relative to
the zip's root. Images that preprocessing refuses are left out and counted, not fatal.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from workbench import metrics
from workbench.config import FALLBACK_THRESHOLD, PreprocessConfig
from workbench.data.archive import safe_extract, single_top_folder
from workbench.data.dedupe import dedupe
from workbench.data.image_bank import ImageBank
from workbench.data.pair_table import read_pair_table
from workbench.data.pairs import Pair, make_pairs
from workbench.data.readers import read_corpus
from workbench.errors import SignatureInputError
from workbench.plots import det_figure, histogram_figure, roc_figure
from workbench.verification.fusion import verdict_scores
from workbench.verification.scoring import write_scores_csv

ProgressCallback = Callable[[float, str], None]
MAX_PAIRS = 250_000


@dataclass(frozen=True)
class EvaluationMetrics:
    """What one evaluation measured (rates in 0..1; accepted as genuine when score >= threshold).

    Attributes:
        source: ``layout <name>`` or ``pairs CSV``.
        n_pairs, n_genuine, n_forged: pairs scored (label 1 / label 0).
        writers: distinct writers among the scored pairs (0 when a CSV names none).
        far, frr, acc: at the network's argmax threshold 0.5.
        val_threshold, val_far, val_frr, val_acc: at the threshold stored with the weights.
        eer, eer_threshold: equal error rate measured on these scores and where it lies.
        auc: area under the ROC curve.
        images_left_out: images preprocessing refused (their pairs are not scored).
        duplicates_removed: identical images dropped before pairing (layout mode only).
    """

    source: str
    n_pairs: int
    n_genuine: int
    n_forged: int
    writers: int
    far: float
    frr: float
    acc: float
    val_threshold: float
    val_far: float
    val_frr: float
    val_acc: float
    eer: float
    eer_threshold: float
    auc: float
    images_left_out: int
    duplicates_removed: int

    def rows(self) -> list[list[str]]:
        """``[metric, value]`` rows for a table, rates as percentages."""

        def pct(value: float) -> str:
            return f"{100 * value:.2f}%"

        cut = f"{self.val_threshold:.4f}"
        return [
            ["pairs source", self.source],
            ["pairs", str(self.n_pairs)],
            ["genuine pairs (label 1)", str(self.n_genuine)],
            ["forgery pairs (label 0)", str(self.n_forged)],
            ["writers", str(self.writers)],
            [f"FAR at {FALLBACK_THRESHOLD}", pct(self.far)],
            [f"FRR at {FALLBACK_THRESHOLD}", pct(self.frr)],
            [f"accuracy at {FALLBACK_THRESHOLD}", pct(self.acc)],
            [f"FAR at validation threshold {cut}", pct(self.val_far)],
            [f"FRR at validation threshold {cut}", pct(self.val_frr)],
            [f"accuracy at validation threshold {cut}", pct(self.val_acc)],
            ["EER (on these pairs)", pct(self.eer)],
            ["EER threshold", f"{self.eer_threshold:.4f}"],
            ["AUC", f"{self.auc:.4f}"],
            ["images left out", str(self.images_left_out)],
            ["duplicate images removed", str(self.duplicates_removed)],
        ]


@dataclass(frozen=True)
class CorpusEvaluation:
    """The result of ``evaluate_archive``.

    Attributes:
        metrics: the measured figures.
        pairs: the scored pairs, paths relative to the corpus root.
        scores: float64 (n_pairs,) scores in 0..1, in ``pairs`` order: the verdict's (fused
            with the shape correlations where the weights carry a score fusion).
        roc, det, histogram: matplotlib figures (already released from pyplot).
        scores_csv: one row per pair: reference, questioned, label, writer, kind, score (and,
            fused, the network score and the shape correlations).
        left_out: relative path -> reason, for every image preprocessing refused.
    """

    metrics: EvaluationMetrics
    pairs: tuple[Pair, ...]
    scores: np.ndarray
    roc: plt.Figure
    det: plt.Figure
    histogram: plt.Figure
    scores_csv: Path
    left_out: dict[str, str]
    validity: object | None = None  # evidence.CorpusValidity of the stored calibration
    tippett: plt.Figure | None = None
    ece: plt.Figure | None = None


def _quiet(fraction: float, message: str) -> None:
    return None


def corpus_pairs(folder: str | os.PathLike) -> tuple[list[Pair], str, int, Path]:
    """Pairs of every writer of the corpus under ``folder``, layout auto-detected.

    A corpus inside one top-level folder is read from that folder, unless doing so changes the
    layout (a zip of a single writer's ``genuine/`` and ``forged/`` folders stays as it is).

    Returns:
        (pairs with paths relative to the root, layout, duplicates removed, root).

    Raises:
        SignatureInputError: no images, or no layout fits.
    """
    root = Path(folder)
    try:
        corpus = read_corpus(root)
    except ValueError as error:
        raise SignatureInputError(f"{error} Or upload a CSV of pairs with the zip.") from None
    inner = single_top_folder(root)
    if inner is not None:
        try:
            nested = read_corpus(inner)
        except ValueError:
            nested = None
        if (
            nested is not None
            and nested.layout == corpus.layout
            and len(nested.records) == len(corpus.records)
        ):
            root, corpus = inner, nested
    corpus = dedupe(corpus)
    return make_pairs(corpus, corpus.writers), corpus.layout, len(corpus.duplicates), root


def _preprocess(
    paths: list[str], config: PreprocessConfig, report: ProgressCallback, span: tuple[float, float]
) -> ImageBank:
    """One ImageBank over ``paths``, reporting progress every 16 images."""

    def on_image(done: int, total: int) -> None:
        if done % 16 == 0 or done == total:
            report(
                span[0] + (span[1] - span[0]) * done / total, f"Preprocessing images {done}/{total}"
            )

    return ImageBank(paths, config=config, progress=False, on_image=on_image)


def evaluate_archive(
    workbench,
    archive: str | os.PathLike,
    pairs_csv: str | os.PathLike | None = None,
    *,
    out_dir: str | os.PathLike | None = None,
    progress: ProgressCallback | None = None,
    batch_size: int = 32,
    max_pairs: int = MAX_PAIRS,
) -> CorpusEvaluation:
    """Score every pair of an uploaded corpus with ``workbench.model`` and measure the errors.

    Args:
        workbench: a ``Workbench`` with weights loaded (its model, meta, threshold and
            preprocessing settings are used).
        archive: a .zip of a corpus in any layout ``read_corpus`` knows, or of the images a
            ``pairs_csv`` names.
        pairs_csv: optional CSV of pairs; replaces the pairs the layout would give.
        out_dir: where ``scores.csv`` goes (a new temporary folder by default).
        progress: called as ``progress(fraction in 0..1, message)`` along the way.

    Raises:
        ValueError: no weights loaded.
        SignatureInputError: the upload is unusable (see ``safe_extract``, ``corpus_pairs``,
            ``read_pair_table``), too many pairs, or no pairs of both kinds remain.
    """
    if workbench.model is None:
        raise ValueError(
            "No verifier weights are loaded; start the app with weights (SIGNATURE_WEIGHTS) "
            "to evaluate."
        )
    report = progress or _quiet
    out = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="signature-eval-"))
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="signature-corpus-") as scratch:
        report(0.0, "Unpacking the zip")
        extracted = Path(scratch)
        safe_extract(archive, extracted)
        report(0.05, "Building pairs")
        duplicates = 0
        if pairs_csv is not None:
            inner = single_top_folder(extracted)
            pairs, files = read_pair_table(pairs_csv, [extracted] + ([inner] if inner else []))
            source = "pairs CSV"
        else:
            pairs, layout, duplicates, root = corpus_pairs(extracted)
            files = {p: root / p for pair in pairs for p in (pair.reference, pair.questioned)}
            source = f"layout {layout}"
        if len(pairs) > max_pairs:
            raise SignatureInputError(
                f"The corpus gives {len(pairs)} pairs, more than the {max_pairs} the app scores "
                "at once; "
                "upload fewer writers or use `python -m workbench.cli.evaluate`."
            )
        bank = _preprocess(
            [str(f) for f in dict.fromkeys(files.values())],
            workbench.preprocess_config,
            report,
            (0.1, 0.5),
        )
    absolute = [
        replace(p, reference=str(files[p.reference]), questioned=str(files[p.questioned]))
        for p in pairs
    ]
    keep = [i for i, p in enumerate(absolute) if p.reference in bank and p.questioned in bank]
    pairs, absolute = [pairs[i] for i in keep], [absolute[i] for i in keep]
    labels = np.array([p.label for p in pairs], dtype=int)
    n_genuine, n_forged = int(labels.sum()), int((labels == 0).sum())
    if n_genuine == 0 or n_forged == 0:
        raise SignatureInputError(
            "Need both genuine and forgery pairs to measure errors; "
            f"found {n_genuine} genuine and {n_forged} forgery pair(s) "
            f"({len(bank.failed)} image(s) left out). A corpus without forgeries needs a pairs CSV."
        )
    parts = []  # the verdict's scores (fused where the weights carry a fusion), chunk by chunk
    chunk = max(batch_size, 1) * 4
    for start in range(0, len(pairs), chunk):
        part = absolute[start : start + chunk]
        with workbench.model_use.shared():  # an explanation may take the model between chunks
            parts.append(
                verdict_scores(workbench.model, bank, part, workbench.fusion, batch_size=batch_size)
            )
        done = start + len(part)
        report(0.5 + 0.4 * done / len(pairs), f"Scoring pairs {done}/{len(pairs)}")
    scores = np.concatenate([p.scores for p in parts])
    report(0.92, "Measuring errors and drawing curves")
    result = _measure(
        labels,
        scores,
        workbench.threshold,
        source=source,
        pairs=pairs,
        left_out=len(bank.failed),
        duplicates=duplicates,
    )
    title = workbench.card.name or ""
    cuts = {f"{FALLBACK_THRESHOLD}": FALLBACK_THRESHOLD}
    if result.val_threshold != FALLBACK_THRESHOLD:
        cuts["val"] = result.val_threshold
    figures = [
        roc_figure(labels, scores, title=title),
        det_figure(labels, scores, title=title),
        histogram_figure(labels, scores, title=title, thresholds=cuts),
    ]
    for figure in figures:
        plt.close(figure)
    similarities = _similarities(workbench, bank, absolute)
    validity, validity_figures = _validity(workbench, labels, scores, pairs, title, similarities)
    columns = {
        name: np.concatenate([p.columns()[name] for p in parts]) for name in parts[0].columns()
    }
    csv_path = write_scores_csv(pairs, scores, out / "scores.csv", columns)
    reverse = {str(v): k for k, v in files.items()}
    left_out = {reverse.get(p, p): reason for p, reason in bank.failed.items()}
    report(1.0, "Done")
    return CorpusEvaluation(
        result,
        tuple(pairs),
        scores,
        *figures,
        scores_csv=csv_path,
        left_out=left_out,
        validity=validity,
        **validity_figures,
    )


def _similarities(workbench, bank, pairs: list[Pair]) -> np.ndarray | None:
    """The writer space's similarity of each pair's two images (None without a writer space):
    what a calibration that fuses it needs beside the pair score."""
    from workbench.verification.writer_space import embed_images, pair_similarities

    if workbench.writer_space is None:
        return None
    paths = sorted({q for p in pairs for q in (p.reference, p.questioned)})
    with workbench.model_use.shared():
        features = embed_images(workbench.model, bank.get(paths))
    return pair_similarities(workbench.writer_space, dict(zip(paths, features)), pairs)


def _validity(workbench, labels, scores, pairs, title: str, similarities=None) -> tuple:
    """The stored calibration's validity on these pairs, with Tippett and ECE figures
    (``(None, {})`` when the weights carry no calibration)."""
    from workbench.plots import lr_validity_figures
    from workbench.verification.evidence import corpus_validity

    labels, scores = np.asarray(labels), np.asarray(scores)
    validity = corpus_validity(
        workbench.calibrations, labels, scores, [p.kind for p in pairs], similarities
    )
    if validity is None:
        return None, {}
    figures = lr_validity_figures(
        validity.log10_same, validity.log10_different, validity.ranked_same,
        validity.ranked_different, title=title,
    )  # fmt: skip
    return validity, figures


def _measure(
    labels,
    scores,
    val_threshold: float,
    *,
    source: str,
    pairs: list[Pair],
    left_out: int,
    duplicates: int,
) -> EvaluationMetrics:
    at_half = metrics.far_frr(labels, scores, FALLBACK_THRESHOLD)
    at_val = metrics.far_frr(labels, scores, val_threshold)
    rate, cut = metrics.eer(labels, scores)
    return EvaluationMetrics(
        source=source,
        n_pairs=len(labels),
        n_genuine=int(labels.sum()),
        n_forged=int((labels == 0).sum()),
        writers=len({p.writer for p in pairs if p.writer}),
        far=at_half["far"],
        frr=at_half["frr"],
        acc=at_half["acc"],
        val_threshold=float(val_threshold),
        val_far=at_val["far"],
        val_frr=at_val["frr"],
        val_acc=at_val["acc"],
        eer=rate,
        eer_threshold=cut,
        auc=metrics.auc(labels, scores),
        images_left_out=left_out,
        duplicates_removed=duplicates,
    )
