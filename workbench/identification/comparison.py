"""The classroom comparison, measured: writer identification (closed set) against identification
through verification (enrollment, open set), on the classifier's own split.

Writers: the classifier's known writers, plus its held-out writers shared out in three: *new*
writers, enrolled into the verification gallery with k references and no retraining, and two
groups of *never enrolled* writers, whose signatures a verifier should reject: one chooses the
rejection threshold (with the known writers' validation images), the other measures it.
"""

from __future__ import annotations

import time

import numpy as np

from workbench.data.image_bank import ImageBank
from workbench.identification.classifier import (
    CROSSMEDIA_MEDIA,
    classes_and_split,
    classify,
    crossmedia_medium,
    load_classifier,
)
from workbench.identification.gallery import Gallery, Scorer

# The design's groups of images: references to enroll, then queries.
GROUPS = (
    "known_refs",
    "new_refs",
    "known_val",
    "known_queries",
    "new_queries",
    "never_val",
    "never_queries",
)


def _pick(items: list[list], writers: list[str], start: int, count: int) -> dict[str, list[str]]:
    chosen: dict[str, list[str]] = {w: [] for w in writers}
    for path, writer, _ in items:
        if writer in chosen:
            chosen[writer].append(path)
    return {w: paths[start : start + count] for w, paths in chosen.items()}


def plan(split: dict, *, k: int, queries: int, media: bool = False) -> dict:
    """Reference and query images per group of writers.

    The held-out writers are shared out at random (seeded by the split's seed) in three: *new*
    writers (enrolled with ``k`` references), *never-enrolled validation* writers (with the
    known writers' validation images, they choose the rejection threshold) and *never-enrolled
    test* writers. Images are taken in split order, so a plan is deterministic.
    """
    holdout = list(split["holdout"])
    order = np.random.default_rng([int(split.get("seed", 0)), 1]).permutation(len(holdout))
    shuffled = [holdout[i] for i in order]
    n_new = -(-len(shuffled) // 3)
    n_val = (len(shuffled) - n_new) // 2
    new = shuffled[:n_new]
    never_val, never = shuffled[n_new : n_new + n_val], shuffled[n_new + n_val :]
    images = split["holdout_images"]
    design = {
        "known_refs": _pick(split["train"], split["writers"], 0, k),
        "known_val": _pick(split.get("val", []), split["writers"], 0, queries),
        "known_queries": _pick(split["test"], split["writers"], 0, queries),
        "new_refs": _pick(images, new, 0, k),
        "new_queries": _pick(images, new, k, queries),
        "never_val": _pick(images, never_val, 0, queries),
        "never_queries": _pick(images, never, 0, queries),
    }
    if media:
        design["media"] = {
            p: crossmedia_medium(i) for p, _, i in split["test"] + split["holdout_images"]
        }
    return design


def per_medium(design: dict, queries: list[tuple[str, str]], correct) -> dict[str, float] | None:
    """The share of ``correct`` (right, or rejected) among ``queries`` per CrossMedia-zh medium
    (None without media)."""
    media = design.get("media")
    if not media:
        return None
    names = np.array([media.get(p, "") for _, p in queries])
    right = np.asarray(correct, dtype=bool)
    return {m: float(right[names == m].mean()) for m in CROSSMEDIA_MEDIA if (names == m).any()}


def rejection_threshold(genuine_best: np.ndarray, max_false_rejection: float) -> float:
    """The highest threshold that rejects at most ``max_false_rejection`` of the enrolled
    writers' own signatures: their best-match scores, sorted, at index
    ``floor(max_false_rejection * n)`` (fewer than that many lie strictly below it).

    Raises:
        ValueError: no scores, or a share outside [0, 1).
    """
    if len(genuine_best) == 0:
        raise ValueError("No validation signatures of enrolled writers to choose a threshold on.")
    if not 0 <= max_false_rejection < 1:
        raise ValueError(f"The false-rejection share must be in [0, 1), not {max_false_rejection}.")
    ordered = np.sort(np.asarray(genuine_best, dtype=float))
    return float(ordered[int(np.floor(max_false_rejection * len(ordered)))])


def _flat(groups: dict[str, list[str]]) -> list[tuple[str, str]]:
    return [(w, p) for w, paths in groups.items() for p in paths]


def measure_classifier(weights, design: dict) -> dict:
    model, card, pre = load_classifier(weights)
    classes, _ = classes_and_split(card)
    known, unknown = (
        _flat(design["known_queries"]),
        _flat(design["new_queries"])
        + _flat(design.get("never_val", {}))
        + _flat(design["never_queries"]),
    )
    bank = ImageBank([p for _, p in known + unknown], config=pre, progress=False)
    started = time.perf_counter()
    probs = classify(model, bank.get([p for _, p in known]))
    ms = 1000 * (time.perf_counter() - started) / max(len(known), 1)
    ranks = (-probs).argsort(1)
    truth = np.array([classes.index(w) for w, _ in known])
    medium = per_medium(design, known, ranks[:, 0] == truth)
    unknown_probs = (
        classify(model, bank.get([p for _, p in unknown]))
        if unknown
        else np.zeros((0, len(classes)))
    )
    return {
        "known_writers": len(classes),
        "top1": float((ranks[:, 0] == truth).mean()),
        "top5": float((ranks[:, :5] == truth[:, None]).any(1).mean()),
        "new_writer_top1": 0.0,  # a new writer is not among its outputs
        "unknown_mean_confidence": float(unknown_probs.max(1).mean()) if len(unknown) else None,
        "unknown_queries": len(unknown),
        "parameters": sum(p.numel() for p in model.parameters()),
        "training_seconds": card.training_seconds,
        "ms_per_identification": ms,
        **({"per_medium": medium} if medium else {}),
    }


def measure_verification(
    scorer: Scorer,
    pre,
    design: dict,
    *,
    threshold: float | None = None,
    fallback_threshold: float,
    max_false_rejection: float = 0.05,
    parameters: int,
    training_seconds,
) -> dict:
    """Enroll the known and new writers, rank every query, count rejections.

    A query is accepted when its best-matching writer's score (``Gallery.rank``: the mean
    score, or for an embedding the similarity to the writer's centroid) reaches the threshold. The
    threshold is ``threshold`` when given, else the one that rejects ``max_false_rejection`` of
    the known writers' validation signatures (``rejection_threshold``), else (a split without
    validation images) ``fallback_threshold``.
    """
    groups = [g for g in GROUPS if design.get(g)]
    bank = ImageBank([p for g in groups for _, p in _flat(design[g])], config=pre, progress=False)
    gallery = Gallery()
    for key in ("known_refs", "new_refs"):
        for writer, paths in design[key].items():
            if paths:
                gallery.enroll(writer, bank.get(paths))
    ranked: dict[str, list] = {}
    started, count = time.perf_counter(), 0
    for key in ("known_val", "never_val", "known_queries", "new_queries", "never_queries"):
        ranked[key] = [
            (w, gallery.rank(bank.get([p])[0], scorer)) for w, p in _flat(design.get(key, {}))
        ]
        count += len(ranked[key])
    ms = 1000 * (time.perf_counter() - started) / max(count, 1)
    best = {key: np.array([m[0].score for _, m in items]) for key, items in ranked.items()}
    source = "given"
    if threshold is None and len(best["known_val"]):
        threshold = rejection_threshold(best["known_val"], max_false_rejection)
        source = (
            f"rejects {100 * max_false_rejection:g}% of {len(best['known_val'])} validation "
            "signatures of known writers"
        )
    elif threshold is None:
        threshold, source = fallback_threshold, "fallback (the split has no validation images)"
    result: dict = {
        "enrolled": len(gallery),
        "threshold": threshold,
        "threshold_source": source,
        "parameters": parameters,
        "training_seconds": training_seconds,
        "ms_per_identification": ms,
    }
    if len(best["never_val"]):
        result["never_val_rejected"] = float((best["never_val"] < threshold).mean())
    for key in ("known_queries", "new_queries", "never_queries"):
        if not ranked[key]:
            continue
        name = key.replace("_queries", "")
        result[f"{name}_queries"] = len(ranked[key])
        rejected = float((best[key] < threshold).mean())
        if name == "never":
            result["never_rejected"] = rejected
            if medium := per_medium(design, _flat(design[key]), best[key] < threshold):
                result["never_rejected_per_medium"] = medium
            continue
        right = [m[0].writer == w for w, m in ranked[key]]
        result[f"{name}_top1"] = float(np.mean(right))
        if medium := per_medium(design, _flat(design[key]), right):
            result["per_medium" if name == "known" else f"{name}_per_medium"] = medium
        result[f"{name}_top5"] = float(
            np.mean([w in [x.writer for x in m[:5]] for w, m in ranked[key]])
        )
        result[f"{name}_rejected"] = rejected
    return result


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def slides_table(design: dict, classifier: dict, verifiers: dict[str, dict], *, k: int) -> str:
    """The slides' comparison table (goal, scalability, use case, complexity) with measured
    numbers."""
    n_new, n_never = len(design["new_refs"]), len(design["never_queries"])
    header = (
        "| Feature | Identification (classifier) | "
        + " | ".join(f"Verification ({n})" for n in verifiers)
        + " |"
    )
    rows = [header, "|" + "---|" * (2 + len(verifiers))]
    c = classifier
    rows.append(
        f"| Goal | Classify among {c['known_writers']} known writers: "
        f"top-1 {_pct(c['top1'])}, top-5 {_pct(c['top5'])} | "
        + " | ".join(
            "Match pairs; ranking enrolled writers: "
            f"top-1 {_pct(v.get('known_top1'))}, top-5 {_pct(v.get('known_top5'))}"
            for v in verifiers.values()
        )
        + " |"
    )
    rows.append(
        f"| Scalability | Poor: {n_new} new writers cannot be named without retraining (0%) | "
        + " | ".join(
            f"Excellent: {n_new} new writers enrolled with {k} references, no retraining: "
            f"top-1 {_pct(v.get('new_top1'))}"
            for v in verifiers.values()
        )
        + " |"
    )
    rows.append(
        f"| Use case | Closed set: signatures of {n_new + n_never} unknown writers get a known "
        f"name, mean confidence {_pct(c['unknown_mean_confidence'])} | "
        + " | ".join(
            f"Open set: rejects {_pct(v.get('never_rejected'))} of {n_never} never-enrolled "
            f"writers' signatures at threshold {v['threshold']:.3f} "
            f"(falsely rejects {_pct(v.get('known_rejected'))} of known)"
            for v in verifiers.values()
        )
        + " |"
    )
    rows.append(
        f"| Complexity | {c['parameters']:,} parameters, trained in {c['training_seconds']} s, "
        f"{c['ms_per_identification']:.1f} ms per identification | "
        + " | ".join(
            f"{v['parameters']:,} parameters, trained in {v['training_seconds']} s, "
            f"{v['ms_per_identification']:.0f} ms per identification over {v['enrolled']} writers"
            for v in verifiers.values()
        )
        + " |"
    )
    return "\n".join(rows)


def k_table(results: dict[int, dict[str, dict]]) -> str:
    """One row per verifier and number of references k: how identification and open-set
    rejection grow with the references enrolled (``results[k][verifier name]``)."""
    rows = [
        "| Verifier | k | known top-1 | new writers top-1 | never-enrolled rejected | "
        "known rejected | threshold (chosen on) |",
        "|---|---|---|---|---|---|---|",
    ]
    names = sorted({name for by_name in results.values() for name in by_name})
    for name in names:
        for k in sorted(results):
            v = results[k].get(name)
            if v is None:
                continue
            rows.append(
                f"| {name} | {k} | {_pct(v.get('known_top1'))} | {_pct(v.get('new_top1'))} | "
                f"{_pct(v.get('never_rejected'))} | {_pct(v.get('known_rejected'))} | "
                f"{v['threshold']:.3f} ({v['threshold_source']}) |"
            )
    return "\n".join(rows)


def medium_table(design: dict, classifier: dict, verifiers: dict[str, dict], *, k: int) -> str:
    """Per CrossMedia-zh medium: known writers' top-1 (classifier and each verifier), new
    writers' top-1 and never-enrolled writers' rejection (each verifier). Empty without media."""
    if not design.get("media"):
        return ""
    rows = [
        "| Model | measure | " + " | ".join(CROSSMEDIA_MEDIA) + " |",
        "|---|---|" + "---|" * len(CROSSMEDIA_MEDIA),
    ]

    def row(model: str, measure: str, values: dict | None) -> None:
        if values:
            cells = " | ".join(_pct(values.get(m)) for m in CROSSMEDIA_MEDIA)
            rows.append(f"| {model} | {measure} | {cells} |")

    row("classifier", "known writers, top-1", classifier.get("per_medium"))
    for name, v in verifiers.items():
        row(name, "known writers, top-1", v.get("per_medium"))
        row(name, f"new writers (k = {k}), top-1", v.get("new_per_medium"))
        row(name, "never-enrolled, rejected", v.get("never_rejected_per_medium"))
    return "\n".join(rows)
