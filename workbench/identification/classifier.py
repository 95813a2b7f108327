"""The writer classifier (the slides' "Approach 1"): its data split, loading, inference and
evaluation (top-1 / top-5, the slides' per-writer lines, accuracy per CrossMedia-zh medium)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from workbench import engine
from workbench.checkpoint import WeightsCard, load_module
from workbench.config import PreprocessConfig
from workbench.data import GENUINE, dedupe, read_corpus
from workbench.data.batches import array_batches
from workbench.data.corpus import natural_key
from workbench.data.image_bank import ImageBank
from workbench.models.writer_id import WriterClassifier

# CrossMedia-zh: each writer's images 1-10 on paper, 11-20 iPad, 21-30 phone in hand, 31-40 phone
# on table.
CROSSMEDIA_MEDIA = ("paper", "iPad", "phone in hand", "phone on table")


def crossmedia_medium(index: int) -> str:
    return CROSSMEDIA_MEDIA[min(max(index - 1, 0) // 10, 3)]


def image_split(
    corpus_paths: str | Path | Sequence[str | Path],
    *,
    test_fraction: float,
    holdout_writers: int,
    seed: int,
    val_fraction: float = 0.0,
) -> dict:
    """Per writer, seeded shares of its genuine images for validation and testing;
    ``holdout_writers`` writers (seeded, over all corpora) are left out of training altogether.

    Each corpus is deduplicated first. With several corpora a writer is named
    ``<corpus folder>/<writer>`` (BHSig-B's writer 12 is not BHSig-H's).

    Returns:
        dict with ``writers`` (known, class order), ``holdout`` writers, ``corpus`` (the paths)
        and ``train`` / ``val`` / ``test`` / ``holdout_images`` lists of [absolute path, writer,
        index].

    Raises:
        ValueError: shares outside [0, 1) or summing to 1 or more, or more held-out writers
            than there are writers.
    """
    paths = [corpus_paths] if isinstance(corpus_paths, str | Path) else list(corpus_paths)
    if not paths:
        raise ValueError("Give at least one corpus folder.")
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(
            f"The validation ({val_fraction}) and test ({test_fraction}) shares of each writer's "
            "images must be in [0, 1) and leave images for training."
        )
    records: dict[str, list[list]] = {}
    for path in paths:
        corpus = dedupe(read_corpus(path))
        prefix = f"{Path(path).resolve().name}/" if len(paths) > 1 else ""
        for writer in corpus.writers:
            items = [
                [str(corpus.absolute(r).resolve()), prefix + writer, r.index]
                for r in corpus.of_writer(writer, GENUINE)
            ]
            if items:
                records[prefix + writer] = items
    writers = list(records)
    if holdout_writers >= len(writers):
        raise ValueError(
            f"{holdout_writers} held-out writers leave none of the {len(writers)} writers to "
            "train on."
        )
    rng = np.random.default_rng(seed)
    holdout = sorted(
        (writers[i] for i in rng.permutation(len(writers))[:holdout_writers]), key=natural_key
    )
    split: dict = {
        "writers": [w for w in writers if w not in holdout],
        "holdout": holdout,
        "corpus": [str(p) for p in paths] if len(paths) > 1 else str(paths[0]),
        "train": [],
        "val": [],
        "test": [],
        "holdout_images": [],
    }
    for w_index, (writer, items) in enumerate(records.items()):
        if writer in holdout:
            split["holdout_images"] += items
            continue
        order = np.random.default_rng([seed, w_index]).permutation(len(items))
        n_test = int(round(len(items) * test_fraction))
        n_val = int(round(len(items) * val_fraction))
        split["test"] += [items[i] for i in order[:n_test]]
        split["val"] += [items[i] for i in order[n_test : n_test + n_val]]
        split["train"] += [items[i] for i in order[n_test + n_val :]]
    return split


def load_classifier(weights: str | Path) -> tuple[WriterClassifier, WeightsCard, PreprocessConfig]:
    """The writer classifier saved at ``weights``: (model in eval mode, its card, preprocessing).

    Raises:
        ValueError: files missing, not a writer classifier, or weights that do not fit.
    """
    return load_module(weights, architecture="writer_classifier")


def classes_and_split(card: WeightsCard) -> tuple[list[str], dict]:
    """The classifier's writer names (output order) and its image split.

    Raises:
        ValueError: the card records no ``classes`` or no ``split``.
    """
    if card.classes is None or card.split is None:
        raise ValueError(
            "The writer classifier's JSON records no classes or no split: retrain it with "
            "`python -m workbench.cli.identify train`."
        )
    return list(card.classes), card.split


def classify(model: WriterClassifier, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Softmax probabilities (N, n_writers), float32, for normalized uint8 images (N, H, W), on
    the model's device (``engine.predict``)."""
    batches = array_batches(images, batch_size=batch_size)
    probs = engine.predict(model, batches, output=engine.class_probabilities, dtype=np.float32)
    return probs if len(probs) else np.zeros((0, model.config.n_writers), dtype=np.float32)


def evaluate_classifier(
    weights: str | Path, *, media: bool = False, progress: bool = False
) -> dict:
    """Top-1 / top-5 on the held-out images of known writers, per writer and (CrossMedia) per
    medium."""
    model, card, pre = load_classifier(weights)
    classes, split = classes_and_split(card)
    bank = ImageBank([p for p, _, _ in split["test"]], config=pre, progress=progress)
    return score_classifier(model, classes, split["test"], bank, media=media)


def score_classifier(
    model: WriterClassifier,
    classes: Sequence[str],
    items: Sequence[Sequence],
    bank: ImageBank,
    *,
    media: bool = False,
) -> dict:
    """Top-1 / top-5 of ``model`` on [path, writer, index] items of known writers (those whose
    image is in ``bank``), a per-writer count (the slides' lines) and, for CrossMedia-zh, top-1
    per medium."""
    items = [t for t in items if t[0] in bank]
    probs = classify(model, bank.get([p for p, _, _ in items]))
    index = {w: i for i, w in enumerate(classes)}
    truth = np.array([index[w] for _, w, _ in items])
    ranks = (-probs).argsort(1)
    top1 = ranks[:, 0] == truth
    top5 = (ranks[:, :5] == truth[:, None]).any(1)
    per_writer = []
    for w_index, writer in enumerate(classes):
        mask = truth == w_index
        if mask.any():
            per_writer.append(
                {"writer": writer, "images": int(mask.sum()), "correct": int(top1[mask].sum())}
            )
    result = {
        "images": len(items),
        "writers": len(classes),
        "top1": float(top1.mean()) if len(items) else None,
        "top5": float(top5.mean()) if len(items) else None,
        "per_writer": per_writer,
    }
    if media:
        names = np.array([crossmedia_medium(i) for _, _, i in items])
        result["per_medium"] = {
            m: float(top1[names == m].mean()) for m in CROSSMEDIA_MEDIA if (names == m).any()
        }
    return result


def slides_line(entry: dict) -> str:
    """The slides' per-writer line: "24 images of writer 58: 23 correct, 95.83%"."""
    pct = 100.0 * entry["correct"] / entry["images"]
    return (
        f"{entry['images']} images of writer {entry['writer']}: "
        f"{entry['correct']} correct, {pct:.2f}%"
    )
