"""The same inputs give the same scores, verdict and report (issue 15): run to run, across
thread counts, for crops and for pages."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import cv2
import pytest
import torch

from workbench.data.pages import document_with
from workbench.data.synthetic import sample_writer
from workbench.verification.report import build_report
from workbench.verification.workbench import Workbench


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("same")
    genuine, forged = sample_writer(21, writer=0, genuine=4, forgeries=1)
    paths = []
    for i, image in enumerate(genuine + forged):
        paths.append(root / f"s{i}.png")
        cv2.imwrite(str(paths[-1]), image)
    page, _ = document_with(genuine[3], seed=3, dpi=150)
    paths.append(root / "page.jpg")
    cv2.imwrite(str(paths[-1]), cv2.cvtColor(page, cv2.COLOR_RGB2BGR))
    return paths


def test_scores_verdict_and_report_repeat_exactly(tiny_verifier, files):
    bench = Workbench(tiny_verifier.weights)
    references, questioned = files[:3], files[-1]
    first = bench.verify(references, questioned)
    second = Workbench(tiny_verifier.weights).verify(references, questioned)
    assert first.scores == second.scores and first.genuine == second.genuine
    when = datetime(2026, 12, 2, tzinfo=UTC)
    pages = [
        build_report(bench, references, questioned, v, generated_at=when) for v in (first, second)
    ]
    assert hashlib.sha256(pages[0].encode()).digest() == hashlib.sha256(pages[1].encode()).digest()


def test_thread_counts_do_not_change_the_verdict(tiny_verifier, files):
    bench = Workbench(tiny_verifier.weights)
    before = torch.get_num_threads()
    found = {}
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            found[threads] = [bench.verify(files[:3], q) for q in files[3:]]
    finally:
        torch.set_num_threads(before)
    for one, two in zip(found[1], found[2]):
        assert one.scores == pytest.approx(two.scores, abs=1e-5)
        assert one.genuine == two.genuine


def test_references_are_taken_in_once_and_the_cache_changes_no_answer(tiny_verifier, files):
    bench = Workbench(tiny_verifier.weights)
    references, questioned = files[:3], files[3]
    first = bench.verify(references, questioned)
    assert (bench.intake_cache.hits, bench.intake_cache.misses) == (0, 4)
    again = bench.verify(references, questioned)
    assert (bench.intake_cache.hits, bench.intake_cache.misses) == (4, 4)
    uncached = Workbench(tiny_verifier.weights)
    uncached.intake_cache.max_items = 0  # nothing is kept
    fresh = uncached.verify(references, questioned)
    assert len(uncached.intake_cache) == 0
    assert first.scores == again.scores == fresh.scores
    # A cached image cannot be drawn on: a later answer cannot change behind the cache's back.
    with pytest.raises(ValueError, match="read-only"):
        again.intakes[0].loaded[0, 0] = 0


def test_the_cache_keys_on_the_bytes_the_name_and_the_switches(tiny_verifier, files, tmp_path):
    from workbench.intake.cleaning import CleaningConfig

    bench = Workbench(tiny_verifier.weights)
    renamed = tmp_path / "other-name.png"
    renamed.write_bytes(files[0].read_bytes())
    a, b = bench.normalize(files[0]), bench.normalize(renamed)
    assert a is not b and len(bench.intake_cache) == 2  # a report names the file it was given
    assert a.intake.loaded.tobytes() == b.intake.loaded.tobytes()
    plain = bench.normalize(files[0], cleaning=CleaningConfig(flatten=False))
    assert plain is not a and len(bench.intake_cache) == 3
    assert bench.normalize(files[0]) is a
    bench.intake_cache.max_bytes = 1  # larger than the bound: computed, never kept
    big = bench.normalize(files[1])
    assert big.image.flags.writeable and len(bench.intake_cache) == 3


def test_scoring_that_reuses_each_image_gives_the_pairs_scores(tiny_verifier, monkeypatch):
    import numpy as np

    from workbench.checkpoint import load_verifier
    from workbench.config import PreprocessConfig
    from workbench.data.image_bank import ImageBank
    from workbench.data.pairs import Pair
    from workbench.verification import scoring

    model, _, config = load_verifier(tiny_verifier.weights, fuse=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (9, config.height, config.width), dtype=np.uint8)
    keys = [f"w{i // 3}/{i}.png" for i in range(9)]
    bank = ImageBank.from_arrays(keys, images, config)
    pairs = [Pair(keys[a], keys[b], int(a // 3 == b // 3), keys[a][:2], "genuine")
             for a, b in rng.integers(0, 9, (50, 2))]  # fmt: skip
    whole = scoring.score_pairs(model, bank, pairs, batch_size=8, reuse_images=False)
    reused = scoring.score_pairs(model, bank, pairs, batch_size=8)
    monkeypatch.setattr(scoring, "WINDOW_IMAGES", 3)  # many windows, each image cut short
    windowed = scoring.score_pairs(model, bank, pairs, batch_size=8)
    np.testing.assert_allclose(reused, whole, atol=1e-6)
    np.testing.assert_allclose(windowed, whole, atol=1e-6)
    assert isinstance(config, PreprocessConfig) and len(np.unique(whole)) > 10
    windows = list(scoring._windows(pairs, 3))
    assert sum(len(w) for _, w in windows) == len(pairs)
    assert all(len({p.reference for p in w} | {p.questioned for p in w}) <= 3 for _, w in windows)


def test_a_verdict_computes_each_image_once_and_reuses_the_references(tiny_verifier, files):
    import numpy as np

    from workbench.identification.gallery import verifier_scorer
    from workbench.verification.scoring import score_against

    bench = Workbench(tiny_verifier.weights)
    references, questioned = files[:3], files[3]
    first = bench.verify(references, questioned)
    assert (bench.feature_cache.hits, bench.feature_cache.misses) == (0, 4)
    second = bench.verify(references, files[4])  # a new questioned image, the same references
    assert (bench.feature_cache.hits, bench.feature_cache.misses) == (3, 5)
    fresh = Workbench(tiny_verifier.weights)
    fresh.feature_cache.max_items = 0  # nothing kept: every image computed again
    assert fresh.verify(references, files[4]).scores == second.scores
    # The pairs run whole give the same scores up to float rounding.
    refs, query = np.stack(first.references), first.questioned
    whole = verifier_scorer(bench.model)(refs, query)
    np.testing.assert_allclose(first.scores, whole, atol=1e-6)
    np.testing.assert_allclose(score_against(bench.model, refs, query), whole, atol=1e-6)
    assert len(set(first.scores)) == 3  # three different references, three scores


def test_images_shown_are_content_named_files_written_whole(tmp_path, monkeypatch):
    import threading

    import numpy as np

    from workbench.ui import inputs

    monkeypatch.setattr(inputs, "SHOWN", tmp_path / "shown")
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[..., 0] = 200  # red, as Gradio shows arrays
    path = inputs.shown_file(rgb)
    back = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
    assert np.array_equal(back, rgb)
    grey = np.arange(600, dtype=np.uint8).reshape(20, 30)
    assert inputs.shown_file(grey) == inputs.shown_file(grey.copy()) != path
    assert np.array_equal(cv2.imread(inputs.shown_file(grey), cv2.IMREAD_UNCHANGED), grey)
    # Many users showing the same image at once: every reader finds the whole file.
    image = np.random.default_rng(0).integers(0, 256, (300, 300), dtype=np.uint8)
    sizes, errors = [], []

    def show() -> None:
        try:
            sizes.append(Path(inputs.shown_file(image)).stat().st_size)
        except Exception as error:  # noqa: BLE001 - any failure fails the test
            errors.append(error)

    threads = [threading.Thread(target=show) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(set(sizes)) == 1 and sizes[0] > 0
    assert not [p for p in (tmp_path / "shown").iterdir() if p.name.startswith(".")]


def test_scoring_shares_the_model_and_an_attribution_takes_it_alone(tiny_verifier, files):
    import threading

    from workbench.verification.sharing import SharedLock

    lock, order = SharedLock(), []

    def run(kind: str, name: str) -> threading.Thread:
        def hold() -> None:
            with getattr(lock, kind)():
                order.append(name)

        thread = threading.Thread(target=hold)
        thread.start()
        return thread

    with lock.shared():
        run("shared", "second reader").join(timeout=10)
        assert order == ["second reader"]  # readers do not wait for each other
        writer = run("exclusive", "writer")
        writer.join(timeout=0.3)
        assert writer.is_alive() and order == ["second reader"]  # waits for the reader
        late = run("shared", "late reader")
        late.join(timeout=0.3)
        assert late.is_alive()  # a reader arriving after a waiting writer waits for it
    writer.join(timeout=10)
    late.join(timeout=10)
    assert order == ["second reader", "writer", "late reader"]

    # A verdict waits while an attribution holds the model, then answers as usual.
    bench = Workbench(tiny_verifier.weights)
    expected = bench.verify(files[:2], files[3]).scores
    found = []
    with bench.model_use.exclusive():
        verdict = threading.Thread(target=lambda: found.append(bench.verify(files[:2], files[3])))
        verdict.start()
        verdict.join(timeout=0.5)
        assert verdict.is_alive() and not found
    verdict.join(timeout=30)
    assert found and found[0].scores == expected
