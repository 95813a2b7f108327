"""The verdict's score fusion (workbench/verification/fusion.py, cli/fuse.py): the network's
probability and the registered shape correlation, fitted on validation writers only."""

from __future__ import annotations

import html
import json
import shutil

import cv2
import numpy as np
import pytest

from tests.conftest import synthetic_signature
from workbench.verification.fusion import (
    ScoreFusion,
    fit_fusion,
    local_similarity,
    stored_fusion,
)


def test_the_fused_score_by_hand():
    fusion = ScoreFusion(intercept=-1.0, network_weight=2.0, shape_weight=3.0, threshold=0.5)
    # sigmoid(-1 + 2 * log(0.8 / 0.2) + 3 * 0.5)
    expected = 1.0 / (1.0 + np.exp(-(-1.0 + 2.0 * np.log(4.0) + 1.5)))
    assert fusion.fuse([0.8], [0.5])[0] == pytest.approx(expected)
    # the network alone: weights (0, 1, 0) give its probability back
    alone = ScoreFusion(0.0, 1.0, 0.0, 0.5)
    assert alone.fuse([0.2, 0.7], [0.9, -0.3]) == pytest.approx([0.2, 0.7])
    from workbench.verification.calibration import score_log_odds

    assert score_log_odds([0.0, 1.0]) == pytest.approx([-13.8155, 13.8155], abs=1e-3)
    with pytest.raises(ValueError, match="2 network scores but 1"):
        fusion.fuse([0.1, 0.2], [0.3])
    # the local shape correlation adds its own term; a fusion using it needs it
    local = ScoreFusion(-1.0, 2.0, 3.0, 0.5, local_weight=-2.0)
    with_local = 1.0 / (1.0 + np.exp(-(-1.0 + 2.0 * np.log(4.0) + 1.5 - 2.0 * 0.25)))
    assert local.uses_local and not fusion.uses_local
    assert local.fuse([0.8], [0.5], [0.25])[0] == pytest.approx(with_local)
    assert fusion.fuse([0.8], [0.5], [0.25])[0] == pytest.approx(expected)  # weight 0: unused
    with pytest.raises(ValueError, match="needs the local shape correlations"):
        local.fuse([0.8], [0.5])
    with pytest.raises(ValueError, match="1 network scores but 2 local"):
        local.fuse([0.8], [0.5], [0.1, 0.2])


def _normalized(seed: int, *, forgery: bool = False) -> np.ndarray:
    from workbench.preprocess import preprocess

    return preprocess(synthetic_signature(seed, forgery=forgery))[0]


def test_the_local_shape_correlation_forgives_strokes_that_moved_but_not_other_shapes():
    from workbench.verification.copies import copy_similarity

    first = _normalized(3)
    assert local_similarity(first, first) == pytest.approx(1.0, abs=1e-4)
    # a signing whose right half drifted 6 px down: the global correlation suffers, the local
    # one (each patch finds its own place) hardly does
    drifted = first.copy()
    half = first.shape[1] // 2
    drifted[:, half:] = np.roll(first[:, half:], 6, axis=0)
    assert local_similarity(first, drifted) > 0.9
    assert local_similarity(first, drifted) > copy_similarity(first, drifted) + 0.1
    # another writer's signature (a different shape) stays far below
    stranger = _normalized(11)
    assert local_similarity(first, stranger) < local_similarity(first, drifted) - 0.2
    # symmetric: both images' patches are matched in the other
    assert local_similarity(first, stranger) == pytest.approx(
        local_similarity(stranger, first), abs=0.05
    )
    blank = np.full_like(first, 255)
    assert local_similarity(first, blank) == 0.0
    with pytest.raises(ValueError, match="one size"):
        local_similarity(first, first[:100])


def test_the_fit_uses_a_shape_that_separates_and_sets_its_threshold():
    rng = np.random.default_rng(0)
    labels = np.r_[np.ones(300), np.zeros(300)].astype(int)
    network = np.clip(rng.normal(0.5 + 0.05 * labels, 0.1), 0.01, 0.99)  # barely separates
    shape = rng.normal(0.2 + 0.3 * labels, 0.1)  # separates well
    at_eer = fit_fusion(labels, network, shape, data="test pairs", threshold_rule="eer")
    assert at_eer.shape_weight > 0 and at_eer.fused_eer < at_eer.network_eer
    fused = at_eer.fuse(network, shape)
    accepted = fused >= at_eer.threshold
    far, frr = accepted[labels == 0].mean(), (~accepted[labels == 1]).mean()
    assert abs(far - frr) < 0.02 and far == pytest.approx(at_eer.fused_eer, abs=0.02)
    fusion = fit_fusion(labels, network, shape, data="test pairs")
    assert fusion.fuse(network, shape) == pytest.approx(fused)  # the same fit, another rule
    accepted = fused >= fusion.threshold
    assert len(fusion.curve["threshold"]) == 201 and fusion.curve["n_genuine"] == 300
    assert ScoreFusion.from_dict(json.loads(json.dumps(fusion.to_dict()))) == fusion
    assert not fusion.uses_local
    # the default rule: the threshold where the most validation pairs are decided right
    assert fusion.threshold_rule == "accuracy"
    best = max(np.mean((fused >= t) == (labels == 1)) for t in np.unique(fused))
    assert np.mean(accepted == (labels == 1)) == pytest.approx(best)
    with pytest.raises(ValueError, match="threshold rule"):
        fit_fusion(labels, network, shape, threshold_rule="median")
    with pytest.raises(ValueError, match="genuine and forgery"):
        fit_fusion(np.ones(5), np.full(5, 0.5), np.zeros(5))
    # a local correlation that separates better still gets the larger weight and a lower EER
    local = rng.normal(0.3 + 0.5 * labels, 0.1)
    three = fit_fusion(labels, network, shape, local)
    assert three.uses_local and three.local_weight > 0 and three.fused_eer <= fusion.fused_eer
    assert ScoreFusion.from_dict(json.loads(json.dumps(three.to_dict()))) == three
    with pytest.raises(ValueError, match="600 labels but 600, 600, 5"):
        fit_fusion(labels, network, shape, local[:5])


def test_a_damaged_fusion_record_is_refused_and_reads_as_none():
    good = ScoreFusion(0.1, 2.0, 3.0, 0.4).to_dict()
    damages = ({"threshold": 1.5}, {"shape_weight": float("nan")}, {"local_weight": "x"})
    for damage in (*damages, {"weights": 1}):
        with pytest.raises(ValueError, match="unreadable"):
            ScoreFusion.from_dict({**good, **damage})

    class Card:
        extra = {"score_fusion": {**good, "threshold": -1}}

    assert stored_fusion(Card()) is None


def _images() -> list[np.ndarray]:
    return [synthetic_signature(s) for s in range(3)]


def test_a_fused_verdict_shows_both_parts_and_decides_at_the_fusion_threshold(
    tiny_verifier, tmp_path
):
    from workbench.ui.verify_tab import _verdict_markdown, verify_data
    from workbench.verification.copies import copy_similarity, fit_copy_check
    from workbench.verification.report import build_report
    from workbench.verification.workbench import Workbench

    plain = Workbench(tiny_verifier.weights)
    fusion = ScoreFusion(0.2, 1.5, 4.0, 0.61, n_genuine=3, n_forged=4)
    extra = {"score_fusion": fusion.to_dict(), "copy_check": fit_copy_check([0.4, 0.6]).to_dict()}
    bench = Workbench(tiny_verifier.save(tmp_path / "fused", extra=extra))
    assert bench.threshold == 0.61 and bench.card.threshold == plain.threshold
    images = _images()
    alone = plain.verify(images[:2], images[2])
    assert not alone.fused and alone.shapes == ()
    verdict = bench.verify(images[:2], images[2])
    assert verdict.fused and verdict.threshold == 0.61
    assert verdict.network_scores == pytest.approx(alone.scores)
    shapes = [copy_similarity(r, verdict.questioned) for r in verdict.references]
    assert verdict.shapes == pytest.approx(shapes)
    assert verdict.scores == pytest.approx(fusion.fuse(alone.scores, shapes))
    assert verdict.genuine == (np.mean(verdict.scores) >= 0.61)
    assert bench.copy_flag(verdict).similarity == pytest.approx(max(shapes))
    assert "shape correlation" in _verdict_markdown(verdict, 2)
    assert "shape correlation" not in _verdict_markdown(alone, 2)
    files = [tmp_path / f"{i}.png" for i in range(3)]
    for path, image in zip(files, images):
        cv2.imwrite(str(path), image)
    data = verify_data(bench, [str(f) for f in files[:2]], str(files[2]))
    on_files = bench.verify(files[:2], files[2])
    assert [r["network_score"] for r in data["references"]] == pytest.approx(
        on_files.network_scores, abs=1e-6
    )
    assert [r["shape_correlation"] for r in data["references"]] == pytest.approx(
        on_files.shapes, abs=1e-6
    )
    assert (
        verify_data(plain, [str(f) for f in files[:2]], str(files[2]))["references"][0][
            "shape_correlation"
        ]
        is None
    )
    page = build_report(bench, files[:2], files[2], on_files)
    assert "<th>shape correlation</th>" in page and f"{on_files.shapes[0]:+.3f}" in page
    assert html.escape("the fused score's validation threshold") in page
    assert "local shape correlation" not in page and on_files.local_shapes == ()
    assert data["references"][0]["local_shape_correlation"] is None
    # a fusion with the local shape correlation: a third part, shown wherever the others are
    three = ScoreFusion(0.2, 1.5, 4.0, 0.61, local_weight=-3.0)
    local_bench = Workbench(
        tiny_verifier.save(tmp_path / "local", extra={"score_fusion": three.to_dict()})
    )
    verdict = local_bench.verify(files[:2], files[2])
    local = [local_similarity(r, verdict.questioned) for r in verdict.references]
    assert verdict.local_shapes == pytest.approx(local)
    assert verdict.scores == pytest.approx(
        three.fuse(alone.scores, verdict.shapes, local), abs=1e-5
    )
    assert verdict.scores != pytest.approx(fusion.fuse(alone.scores, verdict.shapes), abs=1e-3)
    data = verify_data(local_bench, [str(f) for f in files[:2]], str(files[2]))
    assert [r["local_shape_correlation"] for r in data["references"]] == pytest.approx(
        local, abs=1e-6
    )
    assert "local shape correlation" in _verdict_markdown(verdict, 2)
    page = build_report(local_bench, files[:2], files[2], verdict)
    assert "<th>local shape correlation</th>" in page and f"{local[1]:+.3f}" in page
    # the identification ranking scores with the network alone: its own threshold
    from workbench.identification.ranking import ranking_verifiers

    verifiers, _ = ranking_verifiers(bench, [])
    assert next(iter(verifiers.values())).threshold == bench.card.threshold


def _val_folder(tmp_path, split="val"):
    """An evaluate-like folder of validation pairs over synthetic images."""
    rows, paths = [], []
    for s in range(6):
        path = tmp_path / "images" / f"{s}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), synthetic_signature(s, forgery=s % 2 == 1))
        paths.append(path)
    for i in range(6):
        for j in range(i + 1, 6):
            label = int(i % 2 == 0 and j % 2 == 0)
            rows.append((paths[i], paths[j], label, "w", "genuine" if label else "skilled"))
    folder = tmp_path / "eval-val"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    with (folder / "scores.csv").open("w") as handle:
        handle.write("reference,questioned,label,writer,kind,score\n")
        for r, q, label, w, kind in rows:
            handle.write(f"{r},{q},{label},{w},{kind},{rng.uniform(0.2, 0.8):.6f}\n")
    (folder / "metrics.json").write_text(json.dumps({"split": split}))
    return folder


def test_cli_fuse_fits_on_validation_only_and_evaluate_uses_the_fusion(tiny_verifier, tmp_path):
    from workbench.checkpoint import read_card
    from workbench.cli import evaluate, fuse

    weights = tiny_verifier.save(tmp_path / "w")
    test_folder = _val_folder(tmp_path / "t", split="test")
    assert fuse.main(["--weights", str(weights), "--val-eval", str(test_folder), "--quiet"]) == 2
    folder = _val_folder(tmp_path)
    argv = ["--weights", str(weights), "--val-eval", str(folder), "--quiet", "--write-card"]
    assert fuse.main(argv) == 0
    fusion = stored_fusion(read_card(weights.with_suffix("")))
    assert fusion is not None and fusion.n_genuine == 3 and fusion.n_forged == 12
    corpus = tmp_path / "corpus"
    for w in range(2):
        for kind, forged in (("genuine", False), ("forged", True)):
            (corpus / f"writer_{w}" / kind).mkdir(parents=True)
            for n in range(2):
                image = synthetic_signature(10 * w + n, forgery=forged)
                cv2.imwrite(str(corpus / f"writer_{w}" / kind / f"{kind}_{n + 1:02d}.png"), image)
    out = tmp_path / "eval"
    base = ["--weights", str(weights), "--data", str(corpus), "--writers", "all", "--quiet"]
    assert evaluate.main([*base, "--out", str(out)]) == 0
    measured = json.loads((out / "metrics.json").read_text())
    assert measured["score"] == "fused" and measured["val_threshold"] == fusion.threshold
    header = (out / "scores.csv").read_text().splitlines()[0]
    assert header.endswith("score,network_score,shape,local_shape") and fusion.uses_local
    rows = [line.split(",") for line in (out / "scores.csv").read_text().splitlines()[1:]]
    network, shape, local = (np.array([float(r[i]) for r in rows]) for i in (6, 7, 8))
    fused = fusion.fuse(network, shape, local)
    assert [float(r[5]) for r in rows] == pytest.approx(fused, abs=2e-6)
    # --network-only: the network's scores at its own threshold, the fusion left aside
    alone = tmp_path / "alone"
    assert evaluate.main([*base, "--out", str(alone), "--network-only"]) == 0
    plain = json.loads((alone / "metrics.json").read_text())
    assert (
        plain["score"] == "network"
        and plain["val_threshold"] == tiny_verifier.meta["validation"]["threshold"]
    )
    lines = (alone / "scores.csv").read_text().splitlines()[1:]
    assert [float(r.split(",")[5]) for r in lines] == pytest.approx(network, abs=2e-6)
    # --without-local: the network and the shape correlation alone
    assert fuse.main([*argv, "--without-local"]) == 0
    assert not stored_fusion(read_card(weights.with_suffix(""))).uses_local
    # a fused folder cannot be fitted on again
    shutil.copy(out / "scores.csv", folder / "scores.csv")
    (folder / "metrics.json").write_text(json.dumps({"split": "val", "score": "fused"}))
    assert fuse.main(["--weights", str(weights), "--val-eval", str(folder), "--quiet"]) == 2


def test_the_fit_records_the_shape_correlation_per_corpus_and_kind():
    from workbench.cli.fuse import shape_by_group
    from workbench.data.pairs import Pair

    pairs = [
        Pair("/d/A/w1/1.png", "/d/A/w1/2.png", 1, "w1", "genuine"),
        Pair("/d/A/w1/1.png", "/d/A/w1_forg/1.png", 0, "w1", "skilled"),
        Pair("/d/B/x/y/w2/1.png", "/d/B/x/y/w2/2.png", 1, "w2", "genuine"),
        Pair("/d/B/x/y/w2/3.png", "/d/B/x/y/w2/4.png", 1, "w2", "genuine"),
    ]
    found = shape_by_group(pairs, [0.5, 0.2, 0.3, 0.1])
    assert found == {
        "A genuine": {"mean": 0.5, "pairs": 1},
        "A skilled": {"mean": 0.2, "pairs": 1},
        "B genuine": {"mean": 0.2, "pairs": 2},
    }


def test_ship_keep_extra_keeps_the_fitted_records_of_the_same_weights(tiny_verifier, tmp_path):
    from workbench.checkpoint import read_card
    from workbench.cli import ship

    source = tiny_verifier.save(tmp_path / "run" / "model")
    dest = tmp_path / "weights"
    fusion = ScoreFusion(0.1, 2.0, 3.0, 0.4).to_dict()
    tiny_verifier.save(dest / "verifier", extra={"score_fusion": fusion, "writer_space": {"x": 1}})
    argv = ["--model", str(source), "--dest", str(dest), "--keep-extra"]
    assert ship.main(argv) == 0
    shipped = read_card(dest / "verifier")
    assert shipped.extra["score_fusion"] == fusion and shipped.extra["writer_space"] == {"x": 1}
    assert [e["shape"] is not None for e in shipped.examples] == [True] * len(shipped.examples)
    # without --keep-extra the run's own card is shipped: nothing fitted later survives
    assert ship.main(argv[:-1]) == 0
    assert "score_fusion" not in read_card(dest / "verifier").extra
    # other weights at the destination: nothing to keep, an error
    tiny_verifier.save(dest / "verifier", extra={"score_fusion": fusion})
    changed = lambda m: m.classifier.weight.add_(1)  # noqa: E731
    other = tiny_verifier.save(tmp_path / "other" / "model", edit=changed)
    assert ship.main(["--model", str(other), "--dest", str(dest), "--keep-extra"]) == 2
