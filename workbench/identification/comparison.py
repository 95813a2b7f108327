"""The classroom comparison, measured: writer identification (closed set) against identification
through verification (enrollment, open set), on the classifier's own split.

Writers: the classifier's known writers, plus its held-out writers split in two: *new* writers,
enrolled into the verification gallery with k references and no retraining, and *never
enrolled* writers, whose signatures a verifier should reject.
"""

from __future__ import annotations

import time

import numpy as np

from workbench.data.image_bank import ImageBank
from workbench.identification.classifier import classes_and_split, classify, load_classifier
from workbench.identification.gallery import Gallery, Scorer


def _pick(items: list[list], writers: list[str], start: int, count: int) -> dict[str, list[str]]:
    chosen: dict[str, list[str]] = {w: [] for w in writers}
    for path, writer, _ in items:
        if writer in chosen:
            chosen[writer].append(path)
    return {w: paths[start : start + count] for w, paths in chosen.items()}


def plan(split: dict, *, k: int, queries: int) -> dict:
    """Reference and query images per group of writers (deterministic: split order)."""
    holdout = split["holdout"]
    new, never = holdout[: (len(holdout) + 1) // 2], holdout[(len(holdout) + 1) // 2 :]
    return {
        "known_refs": _pick(split["train"], split["writers"], 0, k),
        "known_queries": _pick(split["test"], split["writers"], 0, queries),
        "new_refs": _pick(split["holdout_images"], new, 0, k),
        "new_queries": _pick(split["holdout_images"], new, k, queries),
        "never_queries": _pick(split["holdout_images"], never, 0, queries),
    }


def _flat(groups: dict[str, list[str]]) -> list[tuple[str, str]]:
    return [(w, p) for w, paths in groups.items() for p in paths]


def measure_classifier(weights, design: dict) -> dict:
    model, card, pre = load_classifier(weights)
    classes, _ = classes_and_split(card)
    known, unknown = (
        _flat(design["known_queries"]),
        _flat(design["new_queries"]) + _flat(design["never_queries"]),
    )
    bank = ImageBank([p for _, p in known + unknown], config=pre, progress=False)
    started = time.perf_counter()
    probs = classify(model, bank.get([p for _, p in known]))
    ms = 1000 * (time.perf_counter() - started) / max(len(known), 1)
    ranks = (-probs).argsort(1)
    truth = np.array([classes.index(w) for w, _ in known])
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
    }


def measure_verification(
    scorer: Scorer, pre, design: dict, *, threshold: float, parameters: int, training_seconds
) -> dict:
    """Enroll known and new writers, rank every query, count rejections of never-enrolled
    writers."""
    groups = ("known_refs", "new_refs", "known_queries", "new_queries", "never_queries")
    bank = ImageBank([p for g in groups for _, p in _flat(design[g])], config=pre, progress=False)
    gallery = Gallery()
    for key in ("known_refs", "new_refs"):
        for writer, paths in design[key].items():
            if paths:
                gallery.enroll(writer, bank.get(paths))
    result: dict = {
        "enrolled": len(gallery),
        "threshold": threshold,
        "parameters": parameters,
        "training_seconds": training_seconds,
    }
    started, count = time.perf_counter(), 0
    for key in ("known_queries", "new_queries", "never_queries"):
        ranked = [(w, gallery.rank(bank.get([p])[0], scorer)) for w, p in _flat(design[key])]
        count += len(ranked)
        if not ranked:
            continue
        top1 = [m[0].writer == w for w, m in ranked]
        top5 = [w in [x.writer for x in m[:5]] for w, m in ranked]
        best = np.array([m[0].score for _, m in ranked])
        name = key.replace("_queries", "")
        result[f"{name}_queries"] = len(ranked)
        if name != "never":
            result[f"{name}_top1"], result[f"{name}_top5"] = (
                float(np.mean(top1)),
                float(np.mean(top5)),
            )
            result[f"{name}_rejected"] = float((best < threshold).mean())
        else:
            result["never_rejected"] = float((best < threshold).mean())
    result["ms_per_identification"] = 1000 * (time.perf_counter() - started) / max(count, 1)
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
