"""Corpus readers, deduplication, writer splits and pairs; real-data counts when available."""

from __future__ import annotations

import io
import json
import math

import pytest
from PIL import Image

from tests.conftest import real_data, synthetic_signature
from workbench.cli.data import main as data_main
from workbench.data import (
    dedupe,
    get_protocol,
    make_pairs,
    read_corpus,
    read_pairs_csv,
    split_writers,
    write_pairs_csv,
)


@pytest.fixture(scope="module")
def images() -> list[bytes]:
    """Eight distinct small synthetic signature PNGs."""
    out = []
    for seed in range(8):
        buffer = io.BytesIO()
        Image.fromarray(synthetic_signature(seed)[::4, ::4]).save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out


def write_tree(root, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def test_bhsig_layout(tmp_path, images):
    write_tree(
        tmp_path,
        {
            "1/B-S-1-G-01.png": images[0],
            "1/B-S-1-G-02.tif": images[1],
            "1/B-S-1-F-01.png": images[2],
            "12/H-S-12-G-01.jpg": images[3],
            "12/H-S-12-F-03.webp": images[4],
            "notes.txt": b"not an image, ignored",
        },
    )
    corpus = read_corpus(tmp_path)
    assert corpus.layout == "bhsig"
    assert corpus.writers == ["B-1", "H-12"]
    assert corpus.counts() == {"writers": 2, "genuine": 3, "forged": 2}
    forged = corpus.of_writer("H-12", "forged")
    assert [(r.path, r.index) for r in forged] == [("12/H-S-12-F-03.webp", 3)]


def test_writer_folders_layout(tmp_path, images):
    write_tree(
        tmp_path,
        {
            "writer_2/genuine/genuine_01.png": images[0],
            "writer_2/genuine/genuine_02.png": images[1],
            "writer_2/forged/forged_01.png": images[2],
            "writer_10/genuine/genuine_01.webp": images[3],
            "writer_10/forgeries/forged_01.bmp": images[4],
        },
    )
    corpus = read_corpus(tmp_path)
    assert corpus.layout == "writer-folders"
    assert corpus.writers == ["writer_2", "writer_10"]  # natural order
    assert corpus.counts() == {"writers": 2, "genuine": 3, "forged": 2}


@pytest.mark.parametrize("nested", [False, True])
def test_cedar_layout(tmp_path, images, nested):
    org, forg = ("full_org/", "full_forg/") if nested else ("", "")
    write_tree(
        tmp_path,
        {
            f"{org}original_1_1.png": images[0],
            f"{org}original_1_2.png": images[1],
            f"{org}original_55_1.png": images[2],
            f"{forg}forgeries_1_1.png": images[3],
            f"{forg}forgeries_55_7.png": images[4],
        },
    )
    corpus = read_corpus(tmp_path)
    assert corpus.layout == "cedar"
    assert corpus.writers == ["1", "55"]
    assert corpus.counts() == {"writers": 2, "genuine": 3, "forged": 2}


def test_genuine_only_layout_with_nested_groups(tmp_path, images):
    write_tree(
        tmp_path,
        {
            "experiment/rect/1/1.webp": images[0],
            "experiment/rect/1/2.webp": images[1],
            "experiment/rect/2/1.webp": images[2],
            "control/rect/1/1.webp": images[3],
        },
    )
    corpus = read_corpus(tmp_path)
    assert corpus.layout == "genuine-only"
    assert corpus.writers == ["control/rect/1", "experiment/rect/1", "experiment/rect/2"]
    assert corpus.counts() == {"writers": 3, "genuine": 4, "forged": 0}
    sub = read_corpus(tmp_path / "experiment" / "rect")
    assert sub.writers == ["1", "2"]


def test_sign_data_layout_reads_forg_folders_as_forgeries_of_their_writer(tmp_path, images):
    write_tree(
        tmp_path,
        {
            "001/001_01.webp": images[0],
            "001/02_001.webp": images[1],
            "001_forg/0119001_01.webp": images[2],
            "001_forg/02_0201001.webp": images[3],
            "012/012_01.webp": images[4],
            "012_forg/0103012_01.webp": images[5],
        },
    )
    corpus = read_corpus(tmp_path)
    assert corpus.layout == "sign-data" and not corpus.unmatched
    assert corpus.writers == ["001", "012"]
    assert corpus.counts() == {"writers": 2, "genuine": 3, "forged": 3}
    forged = [(r.path, r.index) for r in corpus.of_writer("001", "forged")]
    # Two forgers' first samples: the index tells them apart (forger x 100 + sample).
    assert forged == [("001_forg/0119001_01.webp", 11901), ("001_forg/02_0201001.webp", 20102)]
    # Without any *_forg folder the same writer folders are a genuine-only corpus.
    genuine_only = tmp_path / "only"
    write_tree(genuine_only, {"001/001_01.webp": images[0], "002/002_01.webp": images[1]})
    assert read_corpus(genuine_only).layout == "genuine-only"
    # Asked to read forgery folders as genuine writers, the reader refuses instead of guessing.
    with pytest.raises(ValueError, match="named like forgeries"):
        read_corpus(tmp_path, layout="genuine-only")


def test_unknown_layout_and_missing_folder(tmp_path, images):
    write_tree(tmp_path, {"a.png": images[0], "b.png": images[1]})
    with pytest.raises(ValueError, match="layout"):
        read_corpus(tmp_path)
    with pytest.raises(ValueError, match="not found"):
        read_corpus(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="No image files"):
        read_corpus(tmp_path / "empty")


def test_dedupe_keeps_first_copy_and_drops_conflicting_labels(tmp_path, images):
    write_tree(
        tmp_path,
        {
            "w1/genuine/g_01.png": images[0],
            "w1/genuine/g_02.png": images[0],  # copy, same label: keep g_01
            "w1/genuine/g_03.png": images[1],
            "w1/forged/f_01.png": images[2],
            "w2/genuine/g_01.png": images[3],
            "w2/forged/f_01.png": images[3],  # same picture as genuine and forged: drop both
        },
    )
    corpus = dedupe(read_corpus(tmp_path))
    assert [r.path for r in corpus.records] == [
        "w1/genuine/g_01.png",
        "w1/genuine/g_03.png",
        "w1/forged/f_01.png",
    ]
    assert sorted(r.path for r in corpus.duplicates) == [
        "w1/genuine/g_02.png",
        "w2/forged/f_01.png",
        "w2/genuine/g_01.png",
    ]


def test_splits_are_disjoint_seeded_and_sized():
    writers = [str(i) for i in range(1, 101)]
    split = split_writers(writers, get_protocol("bhsig-b"), seed=3)
    assert (len(split.train), len(split.val), len(split.test)) == (70, 10, 20)
    sides = [set(split.train), set(split.val), set(split.test)]
    assert set().union(*sides) == set(writers)
    assert sum(len(s) for s in sides) == 100
    assert split_writers(writers, get_protocol("bhsig-b"), seed=3) == split
    assert split_writers(writers, get_protocol("bhsig-b"), seed=4).test != split.test
    assert set(split.writers("trainval")) == sides[0] | sides[1]


def test_split_with_fewer_writers_than_the_protocol_names():
    writers = [f"writer_{i}" for i in range(101, 260)]  # BHSig-H circulates with 159 of 160
    split = split_writers(writers, get_protocol("bhsig-h"), seed=0)
    assert len(split.train) + len(split.val) == 100 and len(split.test) == 59


def test_custom_protocols():
    writers = [str(i) for i in range(20)]
    split = split_writers(writers, get_protocol("0.5/0.5/0.1"), seed=0)
    assert (len(split.train), len(split.val), len(split.test)) == (8, 2, 10)
    split = split_writers(writers, get_protocol("10/5", val=3), seed=0)
    assert (len(split.train), len(split.val), len(split.test)) == (7, 3, 5)
    with pytest.raises(ValueError, match="Unknown protocol"):
        get_protocol("bhsig-x")
    with pytest.raises(ValueError, match="writers"):
        split_writers(writers[:3], get_protocol("bhsig-b"))


def _corpus_tree(tmp_path, images, n_writers=3, n_genuine=4, n_forged=3):
    files = {}
    k = 0
    for w in range(1, n_writers + 1):
        for i in range(1, n_genuine + 1):
            files[f"{w}/genuine/genuine_{i:02d}.png"] = images[k % 8] + bytes([k])  # distinct bytes
            k += 1
        for i in range(1, n_forged + 1):
            files[f"{w}/forged/forged_{i:02d}.png"] = images[k % 8] + bytes([k])
            k += 1
    write_tree(tmp_path, files)
    return read_corpus(tmp_path)


def test_pairs_counts_and_labels(tmp_path, images):
    corpus = _corpus_tree(tmp_path, images)
    pairs = make_pairs(corpus, ["1", "2"])
    genuine = [p for p in pairs if p.label == 1]
    forged = [p for p in pairs if p.label == 0]
    assert len(genuine) == 2 * math.comb(4, 2) and len(forged) == 2 * 4 * 3
    assert all("genuine" in p.reference for p in pairs)
    assert all("forged" in p.questioned and p.kind == "skilled" for p in forged)
    assert all(p.reference.split("/")[0] == p.writer for p in pairs)

    extra = make_pairs(corpus, ["1", "2", "3"], random_forgeries=5, seed=1)
    random = [p for p in extra if p.kind == "random"]
    assert len(random) == 15
    assert all(p.label == 0 and p.questioned.split("/")[0] != p.writer for p in random)
    assert random == [
        p
        for p in make_pairs(corpus, ["1", "2", "3"], random_forgeries=5, seed=1)
        if p.kind == "random"
    ]

    write_pairs_csv(pairs, tmp_path / "pairs.csv")
    assert read_pairs_csv(tmp_path / "pairs.csv") == pairs


def test_pairs_command_writes_csv_and_split(tmp_path, images, capsys):
    corpus_dir = tmp_path / "corpus"
    _corpus_tree(corpus_dir, images, n_writers=10)
    out = tmp_path / "out" / "pairs.csv"
    assert (
        data_main(
            [
                "pairs",
                str(corpus_dir),
                "--protocol",
                "6/4/2",
                "--split",
                "test",
                "--out",
                str(out),
                "--seed",
                "5",
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_pairs"] == 4 * (6 + 12) and summary["n_genuine"] == 24
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["writer_split"]["seed"] == 5 and len(sidecar["writers"]) == 4
    assert set(sidecar["writers"]) == set(sidecar["writer_split"]["test"])
    assert len(read_pairs_csv(out)) == summary["n_pairs"]
    assert (
        data_main(
            ["pairs", str(corpus_dir), "--protocol", "nope", "--split", "test", "--out", str(out)]
        )
        == 2
    )


def test_synth_command_writes_a_corpus_the_readers_read(tmp_path, capsys):
    out = tmp_path / "synth"
    assert (
        data_main(
            [
                "synth",
                "--writers",
                "3",
                "--genuine",
                "4",
                "--forgeries",
                "2",
                "--seed",
                "1",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert data_main(["describe", str(out)]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["layout"] == "writer-folders"
    assert (
        described["writers"],
        described["genuine"],
        described["forged"],
        described["duplicates"],
    ) == (3, 12, 6, 0)


# --------------------------------------------------------------------------- real data


def describe_json(path, capsys) -> dict:
    assert data_main(["describe", str(path)]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.real_data
def test_describe_bhsig_bengali(capsys):
    d = describe_json(real_data("BHSig260-Bengali"), capsys)
    assert d["layout"] == "bhsig"
    assert (d["writers"], d["genuine"], d["forged"]) == (100, 2400, 3000)
    assert d["genuine_per_writer"] == [24, 24] and d["forged_per_writer"] == [30, 30]
    # The data README says 994 byte-identical duplicates; hashing every file finds 1004 copies
    # (939 groups, all within one writer and class), the figure we report.
    assert d["duplicates"] == 1004


@pytest.mark.real_data
def test_describe_bhsig_hindi(capsys):
    d = describe_json(real_data("BHSig260-Hindi"), capsys)
    assert d["layout"] == "writer-folders"
    assert (d["writers"], d["genuine"], d["forged"], d["duplicates"]) == (159, 3816, 4770, 34)
    assert d["genuine_per_writer"] == [24, 24] and d["forged_per_writer"] == [30, 30]


@pytest.mark.real_data
def test_describe_crossmedia(capsys):
    experiment = describe_json(real_data("CrossMedia-zh", "experiment", "rect"), capsys)
    assert experiment["layout"] == "genuine-only" and experiment["forged"] == 0
    # 100 writers x 40, except writers 94 and 100 whose files 37 and 33 are missing.
    assert (experiment["writers"], experiment["genuine"]) == (100, 3998)
    assert experiment["genuine_per_writer"] == [39, 40]
    control = describe_json(real_data("CrossMedia-zh", "control", "rect"), capsys)
    assert (control["writers"], control["genuine"], control["genuine_per_writer"]) == (
        11,
        220,
        [20, 20],
    )
    both = describe_json(real_data("CrossMedia-zh"), capsys)
    assert (both["writers"], both["genuine"]) == (111, 4218)


@pytest.mark.real_data
def test_describe_sigcomp2011_dutch(capsys):
    d = describe_json(real_data("SigComp2011-Dutch"), capsys)
    # The data README: 64 writers, 887 genuine and 762 forged; <W>_forg is not a writer.
    assert d["layout"] == "sign-data" and d["unmatched_files"] == 0
    assert (d["writers"], d["genuine"], d["forged"]) == (64, 887, 762)
    assert d["genuine_per_writer"] == [12, 24] and d["forged_per_writer"] == [8, 20]


@pytest.mark.real_data
def test_bhsig_b_pair_counts_match_the_paper(tmp_path, capsys):
    root = real_data("BHSig260-Bengali")
    counts = {}
    for split in ("trainval", "train", "val", "test"):
        out = tmp_path / f"{split}.csv"
        assert (
            data_main(
                [
                    "pairs",
                    str(root),
                    "--protocol",
                    "bhsig-b",
                    "--split",
                    split,
                    "--no-dedupe",
                    "--out",
                    str(out),
                ]
            )
            == 0
        )
        counts[split] = json.loads(capsys.readouterr().out)["n_pairs"]
    assert counts["trainval"] == 79_680 and counts["test"] == 19_920
    assert counts["train"] + counts["val"] == counts["trainval"]
