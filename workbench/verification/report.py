"""The examiner's report: one self-contained, printable HTML page per verification.

Everything is inside the page: images are base64 PNG data URIs, the CSS is inline (with an
``@media print`` block), there is no JavaScript and no external resource. Every string that
comes from a user or a file (file names, JSON values) is HTML-escaped. With the time fixed,
the same inputs and weights give a byte-identical page.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

from workbench.checkpoint import Validation, WeightsCard
from workbench.config import FALLBACK_THRESHOLD
from workbench.data.dedupe import file_sha256
from workbench.verification.attribution import overlay_attribution
from workbench.verification.fusion import LOCAL_PATCH, LOCAL_SEARCH, stored_fusion
from workbench.verification.overlays import cross_attention_figure, overlay_heatmap
from workbench.verification.workbench import PairExplanation, Verdict, Workbench, validation_rates

__all__ = [
    "build_report",
    "figure_data_uri",
    "file_sha256",
    "png_data_uri",
    "threshold_provenance",
    "write_report",
]

_CSS = (
    "\n"
    'body{font-family:system-ui,-apple-system,"Segoe UI",Arial,sans-serif;color:#111;'
    "margin:2em auto;max-width:60em;line-height:1.4}\n"
    "h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;"
    "border-bottom:1px solid #999;margin-top:1.6em}\n"
    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #bbb;"
    "padding:.25em .5em;text-align:left;vertical-align:top}\n"
    "code,.hash{font-family:ui-monospace,Consolas,monospace;font-size:.85em;"
    "word-break:break-all}\n"
    ".verdict{padding:.6em 1em;border:2px solid;font-size:1.2em;font-weight:bold}\n"
    ".genuine{color:#1a7f37;border-color:#1a7f37}.rejected{color:#b42318;"
    "border-color:#b42318}\n"
    "figure{display:inline-block;margin:.4em;vertical-align:top;text-align:center}\n"
    "figure img{min-width:12em;max-width:22em;max-height:18em;border:1px solid #ccc}\n"
    "figure.wide img{max-width:100%;max-height:none}figcaption{font-size:.8em}\n"
    ".note{background:#f4f4f4;padding:.5em 1em;border-left:4px solid #888}"
    ".meta{color:#555;font-size:.9em}\n"
    "@media print{body{margin:0;max-width:none;font-size:10pt}h2{break-after:avoid}\n"
    "figure,table,.verdict{break-inside:avoid}"
    ".verdict,.note{-webkit-print-color-adjust:exact;print-color-adjust:exact}}\n"
)


def png_data_uri(image: np.ndarray) -> str:
    """``uint8`` (H, W) grey or (H, W, 3) RGB image -> ``data:image/png;base64,...``."""
    array = np.ascontiguousarray(image)
    if array.dtype != np.uint8 or array.ndim not in (2, 3):
        raise ValueError(
            "Only uint8 (H, W) or (H, W, 3) images can be embedded, "
            f"not {array.dtype} {array.shape}."
        )
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def figure_data_uri(figure) -> str:
    """A matplotlib Figure -> PNG data URI (no software/time metadata, so it is reproducible)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _utc(when: datetime | None) -> datetime:
    """``when`` in UTC (naive times are taken as UTC); now when None."""
    if when is None:
        return datetime.now(UTC)
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _pct(value) -> str:
    return f"{100 * float(value):.2f}%"


def threshold_provenance(card: WeightsCard, threshold: float) -> tuple[str, list[str]]:
    """Where ``threshold`` comes from and the error rates the weights' card records for it.

    Uses, when present: ``validation.curve`` (FAR/FRR tabulated over thresholds: read at the
    nearest tabulated threshold), ``validation.far``/``frr`` or ``validation.eer`` (at the stored
    threshold) and each ``test`` entry's ``val_threshold_far``/``frr``. Every one may be absent.

    Returns:
        (source, rates): a sentence and zero or more sentences, plain text (escape before use).
    """
    validation = card.validation or Validation()
    fusion = stored_fusion(card)
    stored = card.stored_threshold if fusion is None else fusion.threshold
    at_stored = stored is not None and abs(stored - threshold) < 1e-9
    if at_stored and fusion is not None:
        point = (
            "highest accuracy" if fusion.threshold_rule == "accuracy" else "equal-error-rate point"
        )
        source = (
            "the fused score's validation threshold stored with the weights "
            f"({point} of {fusion.n_genuine + fusion.n_forged} pairs of validation writers)"
        )
    elif at_stored:
        epoch = f", epoch {validation.epoch}" if validation.epoch is not None else ""
        source = (
            "the validation threshold stored with the weights "
            f"(equal-error-rate point on validation writers{epoch})"
        )
    elif stored is None and abs(threshold - FALLBACK_THRESHOLD) < 1e-9:
        source = (
            f"{FALLBACK_THRESHOLD}, the argmax of the two logits "
            "(the weights store no validation threshold)"
        )
    elif stored is None:
        source = "set by the examiner (the weights store no validation threshold)"
    else:
        source = f"set by the examiner (the weights' validation threshold is {stored:.4f})"
    rates, elsewhere = [], []
    curve = validation_rates(card, threshold)
    if curve is not None:
        count = lambda n: "?" if n is None else n  # noqa: E731
        rates.append(
            f"Validation writers at threshold {float(curve['threshold']):.3f} (nearest tabulated): "
            f"FAR {_pct(curve['far'])} (forgeries accepted, of {count(curve['n_forged'])} pairs), "
            f"FRR {_pct(curve['frr'])} (genuine rejected, of {count(curve['n_genuine'])} pairs)."
        )
    elif validation.far is not None and validation.frr is not None and stored is not None:
        elsewhere.append(
            f"Validation writers: FAR {_pct(validation.far)}, FRR {_pct(validation.frr)} "
            "at the validation threshold."
        )
    elif validation.eer is not None and stored is not None:
        eer = _pct(validation.eer)
        elsewhere.append(
            f"Validation writers: equal error rate {eer}, i.e. FAR = FRR = {eer} "
            "at the validation threshold."
        )
    for entry in card.test or ():
        if "val_threshold_far" in entry and "val_threshold_frr" in entry:
            protocols = (
                ", ".join(
                    str(d.get("protocol", d.get("path", "?"))) for d in entry.get("data") or []
                )
                or "test set"
            )
            extra = f"; EER {_pct(entry['eer'])}" if "eer" in entry else ""
            elsewhere.append(
                f"Test writers ({protocols}, {entry.get('n_pairs', '?')} pairs): "
                f"FAR {_pct(entry['val_threshold_far'])}, "
                f"FRR {_pct(entry['val_threshold_frr'])} at the validation threshold{extra}."
            )
    if elsewhere and not at_stored:
        elsewhere.append(
            f"Rates at the validation threshold ({stored:.4f}) do not apply to the "
            f"{threshold:.4f} used here."
        )
    return source, rates + elsewhere


def _figure(uri: str, caption: str, *, wide: bool = False) -> str:
    css = ' class="wide"' if wide else ""
    text = html.escape(caption)
    return f'<figure{css}><img src="{uri}" alt="{text}"><figcaption>{text}</figcaption></figure>'


def _table(rows: Sequence[tuple[str, str]]) -> str:
    return (
        "<table>"
        + "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
        + "</table>"
    )


def _downscaled(image: np.ndarray, max_side: int) -> np.ndarray:
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image
    scale = max_side / max(h, w)
    return np.asarray(
        Image.fromarray(image).resize(
            (max(1, round(w * scale)), max(1, round(h * scale))), Image.LANCZOS
        )
    )


def _explanation_section(explanation, attribution, method, names, index, questioned_image) -> str:
    parts = [
        "<h2>Where the verifier looked</h2>",
        f"<p>Explained pair: reference {index + 1} (<code>{html.escape(names[index])}</code>) "
        "with the questioned signature.</p>",
    ]
    if explanation is not None:
        overlays = []
        for block, maps in enumerate(explanation.block_maps, start=1):
            if maps is None:
                continue
            overlays.append(
                _figure(
                    png_data_uri(overlay_heatmap(explanation.reference, maps[0])),
                    f"block {block}: reference",
                )
            )
            overlays.append(
                _figure(
                    png_data_uri(overlay_heatmap(explanation.questioned, maps[1])),
                    f"block {block}: questioned",
                )
            )
        if overlays:
            parts += [
                "<h3>Difference SimAM heatmap after each dense block</h3>",
                "<div>",
                *overlays,
                "</div>",
            ]
        if explanation.cross_attention is not None:
            import matplotlib.pyplot as plt

            figure = cross_attention_figure(*explanation.cross_attention)
            try:
                uri = figure_data_uri(figure)
            finally:
                plt.close(figure)
            parts += [
                "<h3>Cross-attention between the 21 SPP cells of both signatures</h3>",
                _figure(uri, "cross-attention matrices A1, A2 (rows sum to 1)", wide=True),
            ]
        parts.append(
            f'<p class="meta">Network score of the explained pair: {explanation.score:.4f}.</p>'
        )
    if attribution is not None:
        attribution = np.asarray(attribution, dtype=np.float32)
        if attribution.shape != questioned_image.shape:
            raise ValueError(
                f"The attribution map is {attribution.shape}; it must match the normalized "
                f"questioned image {questioned_image.shape}."
            )
        label = {"integrated_gradients": "Integrated Gradients", "gradcam": "Grad-CAM"}.get(
            method, method
        )
        caption = (
            f"{label}: attribution of the same-writer logit to the questioned signature "
            "(brighter = more)"
        )
        parts += [
            "<h3>Attribution on the questioned signature</h3>",
            _figure(png_data_uri(overlay_attribution(questioned_image, attribution)), caption),
        ]
    return "\n".join(parts)


def _evidence_section(
    workbench: Workbench, verdict: Verdict, references: int, population: str = ""
) -> str:
    """The LRs (``population``'s calibration, "" = pooled), and the copy and conditions
    warnings that apply (``verification.evidence``)."""
    from workbench.verification.evidence import evidence_html

    copy, conditions = workbench.copy_flag(verdict), workbench.conditions_check(verdict)
    warnings = [x.message() for x in (copy, conditions) if x is not None]
    return evidence_html(workbench.evidence(verdict, population), references, warnings)


def intake_note(intake) -> str:
    """Where a signature was taken from: the whole image, or page, box and candidate rank."""
    if intake is None or intake.found is None:
        return "the whole image"
    found = intake.found
    x0, y0, x1, y1 = found.candidate.box
    of = f" of {found.page.pages_in_file}" if found.page.pages_in_file > 1 else ""
    return f"page {found.page.number}{of}, box ({x0}, {y0})-({x1}, {y1}), candidate {found.rank}"


def _cleaning_note(intakes) -> str:
    """The cleaning stages that changed an input before eq. 1, or that none did."""
    done = [
        f"{label}: {step.name} ({step.detail})"
        for label, intake in zip(
            [f"reference {i + 1}" for i in range(len(intakes) - 1)] + ["questioned"], intakes
        )
        for step in intake.steps
        if step.applied
    ]
    if not done:
        return "<p>Cleaning before eq. 1 changed none of the inputs.</p>"
    return "<p>Cleaning before eq. 1: " + html.escape("; ".join(done)) + ".</p>"


def build_report(
    workbench: Workbench,
    references: Sequence[str | Path],
    questioned: str | Path,
    verdict: Verdict,
    *,
    explanation: PairExplanation | None = None,
    attribution: np.ndarray | None = None,
    attribution_method: str = "integrated_gradients",
    explained_reference: int = 0,
    generated_at: datetime | None = None,
    max_original_side: int = 1600,
    questioned_choice: int = 1,
    population: str = "",
) -> str:
    """The report as one HTML string.

    Args:
        workbench: the Workbench that produced ``verdict`` (weights metadata, preprocessing).
        references, questioned: the files that were verified, in the order ``verdict`` scored them.
        verdict: ``Workbench.verify(references, questioned, ...)``.
        explanation: ``Workbench.explain(references[explained_reference], questioned)``, optional.
        attribution: (H, W) float map in [0, 1] on the normalized questioned image
            (``QuestionedAttribution.attribute``), optional; ``attribution_method`` names it.
        explained_reference: index of the reference the explanation and attribution used.
        generated_at: time stamp shown (UTC; naive times are taken as UTC); default now.
        max_original_side: originals larger than this are embedded downscaled (hashes are of
            the files as given).
        questioned_choice: the questioned page's candidate the verdict used (1 = the best), for
            a verdict that carries no intake records (``Verdict.intakes``); otherwise the files
            are not read again. Where each signature was taken from (page, box) is recorded.
        population: the likelihood ratios' calibration population ("" = pooled over every
            validated corpus; ``Workbench.populations``).

    Raises:
        ValueError: a file is missing, or the counts or shapes do not match the verdict.
        SignatureInputError: a file is not a usable signature.
    """
    paths = [Path(p) for p in references]
    query_path = Path(questioned)
    for path in [*paths, query_path]:
        if not path.is_file():
            raise ValueError(f"Input file not found: {path}. Pass the files that were verified.")
    if len(paths) != len(verdict.scores):
        raise ValueError(
            f"The verdict has {len(verdict.scores)} reference scores but {len(paths)} "
            "reference files were given."
        )
    if not 0 <= explained_reference < len(paths):
        raise ValueError(
            f"explained_reference must index one of the {len(paths)} references, "
            f"not {explained_reference}."
        )
    when = _utc(generated_at)
    card = workbench.card
    names = [p.name for p in paths]
    if len(verdict.intakes) == len(paths) + 1 and verdict.questioned is not None:
        # What the verdict took in (the page searched, the crop cleaned) is what is reported.
        intakes, images, query_image = verdict.intakes, verdict.references, verdict.questioned
    else:
        normalized = [workbench.normalize(p) for p in paths]
        normalized.append(workbench.normalize(query_path, choice=questioned_choice))
        intakes = [n.intake for n in normalized]
        images = list(verdict.references) or [n.image for n in normalized[:-1]]
        query_image = verdict.questioned if verdict.questioned is not None else normalized[-1].image

    decision = (
        "GENUINE (same writer)" if verdict.genuine else "NOT GENUINE (forgery or another writer)"
    )
    local = verdict.local_shapes or (None,) * len(verdict.shapes)
    parts = (
        [
            f"<td>{n:.4f}</td><td>{c:+.3f}</td>" + ("" if v is None else f"<td>{v:+.3f}</td>")
            for n, c, v in zip(verdict.network_scores, verdict.shapes, local, strict=True)
        ]
        if verdict.fused
        else [""] * len(names)
    )
    rows = "".join(
        f'<tr><td>{i + 1}</td><td>{html.escape(name)}</td><td class="hash">{file_sha256(path)}</td>'
        f"<td>{html.escape(intake_note(intake))}</td>{part}"
        f"<td>{score:.4f}</td><td>{'accept' if score >= verdict.threshold else 'reject'}</td></tr>"
        for i, (name, path, intake, score, part) in enumerate(
            zip(names, paths, intakes, verdict.scores, parts)
        )
    )
    figures = []
    for label, name, intake, image in [
        *(
            (f"reference {i + 1}", n, it, im)
            for i, (n, it, im) in enumerate(zip(names, intakes, images))
        ),
        ("questioned", query_path.name, intakes[-1], query_image),
    ]:
        size = f"{intake.loaded.shape[1]}x{intake.loaded.shape[0]}"
        figures.append(
            f"<div><h3>{html.escape(label)}: <code>{html.escape(name)}</code></h3>"
            + _figure(
                png_data_uri(_downscaled(intake.loaded, max_original_side)), f"original ({size} px)"
            )
            + _figure(
                png_data_uri(image), f"normalized (eq. 1-5, {image.shape[1]}x{image.shape[0]})"
            )
            + "</div>"
        )

    recorded = lambda value: "(not recorded)" if value is None else str(value)  # noqa: E731
    model_rows = [
        ("name", "(unnamed)" if card.name is None else card.name),
        ("architecture", card.architecture),
        ("weights SHA-256", recorded(card.weights_sha256)),
        ("weights format version", recorded(card.format_version)),
    ]
    model_rows += [(f"model.{k}", str(v)) for k, v in card.model.items()]
    pre_rows = [(k, str(v)) for k, v in workbench.preprocess_config.to_dict().items()]
    source, rates = threshold_provenance(card, verdict.threshold)
    training = card.training or {}
    trained_on = (
        ", ".join(str(p) for p in training.get("protocol") or [])
        if isinstance(training.get("protocol"), list)
        else str(training.get("protocol", ""))
    )
    import torch

    from workbench import __version__

    body = [
        "<h1>Signature examination report</h1>",
        (
            f'<p class="meta">Generated {when:%Y-%m-%d %H:%M:%S} UTC '
            f"({when.isoformat(timespec='seconds')}) by Signature Workbench "
            f"{html.escape(__version__)}, torch {html.escape(torch.__version__)}.</p>"
        ),
        "<h2>Verdict</h2>",
        f'<p class="verdict {"genuine" if verdict.genuine else "rejected"}">{decision}</p>',
        (
            f"<p>Aggregate score <b>{verdict.score:.4f}</b> (mean of {len(paths)} "
            f"reference score{'s' if len(paths) > 1 else ''}) "
            f"against threshold <b>{verdict.threshold:.4f}</b>: "
            "accepted as genuine when score &gt;= threshold.</p>"
        ),
        (
            f"<p>Writer-space similarity of the questioned signature to the references "
            f"together: <b>{verdict.similarity:+.3f}</b> (-1 .. 1).</p>"
            if verdict.similarity is not None
            else ""
        ),
        _evidence_section(workbench, verdict, len(paths), population),
        "<h2>Inputs and per-reference scores</h2>",
        "<table><tr><th>#</th><th>reference file</th><th>SHA-256 of the file</th>"
        "<th>signature taken from</th>"
        + ("<th>network score</th><th>shape correlation</th>" if verdict.fused else "")
        + ("<th>local shape correlation</th>" if verdict.local_shapes else "")
        + "<th>score</th><th>this reference alone</th></tr>"
        + rows
        + "</table>",
        f"<p>Questioned file: <code>{html.escape(query_path.name)}</code>, "
        f'SHA-256 <span class="hash">{file_sha256(query_path)}</span>; signature taken from '
        f"<span id='questioned-source'>{html.escape(intake_note(intakes[-1]))}"
        "</span>.</p>",
        _cleaning_note(intakes),
        "<h2>Images</h2>",
        *figures,
    ]
    if explanation is not None or attribution is not None:
        body.append(
            _explanation_section(
                explanation,
                attribution,
                attribution_method,
                names,
                explained_reference,
                query_image,
            )
        )
    body += [
        "<h2>Model</h2>",
        _table(model_rows),
        "<h2>Preprocessing settings</h2>",
        _table(pre_rows),
        "<h2>Threshold</h2>",
        f"<p>Threshold {verdict.threshold:.4f}: {html.escape(source)}.</p>",
        *(
            f"<p>{html.escape(r)}</p>"
            for r in rates
            or ["The weights' JSON records no validation error rates for this threshold."]
        ),
        "<h2>What the score means</h2>",
        '<p class="note">'
        + (
            f"Each score fuses {'three' if verdict.local_shapes else 'two'} measurements of one "
            "(reference, questioned) pair: the verifier's softmax output for the same-writer "
            "class (network score, 0..1), the highest correlation of the two normalized images' "
            "ink over shifts of up to 8 pixels (shape correlation, -1..1)"
            + (
                f" and the ink-weighted mean of each {LOCAL_PATCH}-pixel patch's highest "
                f"correlation within {LOCAL_SEARCH} pixels of its place in the other image "
                "(local shape correlation, -1..1)"
                if verdict.local_shapes
                else ""
            )
            + ", by a logistic regression fitted on validation writers' "
            "pairs; the result lies in 0..1 and the decision uses its mean. "
            if verdict.fused
            else "Each score is the verifier's softmax output for the same-writer class "
            "of one (reference, questioned) pair, in 0..1; the decision uses their mean. "
        )
        + "It is a model "
        "output, not a calibrated probability that the signature is genuine. FAR is the share of "
        "forgeries accepted, FRR the share of genuine signatures rejected, measured on writers the "
        "model never saw in training"
        + (f" (trained on {html.escape(trained_on)})" if trained_on else "")
        + "; error rates on other populations, scripts or scanning conditions may differ. The "
        "figures show what the network attended to, not a handwriting examiner's reasoning.</p>",
    ]
    head = (
        '<head><meta charset="utf-8"><title>Signature examination report</title>'
        f"<style>{_CSS}</style></head>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">'
        + head
        + "<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def write_report(
    destination: str | Path,
    workbench: Workbench,
    references: Sequence[str | Path],
    questioned: str | Path,
    verdict: Verdict,
    **options,
) -> Path:
    """Write ``build_report(workbench, references, questioned, verdict, **options)`` as UTF-8.

    ``destination`` is a file path, or an existing directory in which
    ``signature-report-YYYYMMDDTHHMMSSZ.html`` is created. Returns the file's path.
    """
    options["generated_at"] = _utc(options.get("generated_at"))
    page = build_report(workbench, references, questioned, verdict, **options)
    path = Path(destination)
    if path.is_dir():
        path = path / f"signature-report-{options['generated_at']:%Y%m%dT%H%M%SZ}.html"
    path.write_text(page, encoding="utf-8", newline="\n")
    return path
