"""A data pack: the preprocessed images and the pairs of chosen splits, in one portable file.

A machine without the corpora (a rented GPU) trains from the pack alone. The file is an ``.npz``
(a zip of numpy arrays, read with ``allow_pickle=False``) holding:

- ``meta``: UTF-8 JSON as uint8 bytes: format name and version, the ``PreprocessConfig``, the
  seed, the validation writers asked for, the splits, ``sources`` (per corpus: layout, protocol,
  writer lists), ``keys`` (one per stored image), ``left_out`` (key -> why preprocessing
  refused it), ``writers`` and ``kinds`` (the values pair tables index).
- ``images``: (N, H, W) uint8 normalized images, row i under ``keys[i]``.
- ``pairs_<split>``: (P, 5) int32: reference, questioned (indices into ``keys + left_out``),
  label, writer (index into ``writers``), kind (index into ``kinds``), in ``split_pairs`` order.

Images are keyed ``<corpus folder name>/<path relative to it>`` (POSIX separators), never by a
path of the machine that wrote the pack; a corpus's ``path`` in ``sources`` is that folder name.

Encoding, chosen by measurement at 224 x 224 (normalized images are 96% pure white):
``np.savez_compressed`` of the stacked (N, 224, 224) array, about 2.1 KB an image for BHSig
and 3.8 KB for SigComp2011-Dutch. On a sample of 1,000 images, per-image PNG cost 2.7 KB,
lossless WebP 2.1 KB, the ink bounding box + zlib 2.1 KB and + lzma 1.9 KB: at most 20% less
than the plain stack, for a codec or a custom layout, while the stack is read by numpy alone.
Measured (seed 0, default protocols, deduplicated, 2-core shared development machine):

- BHSig260-Bengali (``bhsig-b``) + BHSig260-Hindi (``bhsig-h``), train/val/test: 12,948
  images, 224,709 pairs, 27,721,966 bytes (26.4 MiB; the images 27.1 MB, the pair tables
  0.6 MB, meta 0.04 MB); written in 83 s with 1.5 GB peak memory.
- The same + SigComp2011-Dutch (its 1,649 images, 6.2 MB): 33,951,622 bytes (32.4 MiB),
  against 60 MiB allowed. (``read_corpus`` reads Dutch as ``genuine-only``, taking each
  ``<W>_forg`` folder for a writer, so that pack's Dutch pairs are wrong; a reader of that
  layout keeps the same images, and its ~16,000 pairs would add well under 0.1 MB.)
- ``DataPack.load`` took 2.0-3.4 s (decompressing 650-730 MB of images) and ``pairs()`` of
  all three splits 0.3-0.5 s more.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import fields
from pathlib import Path

import numpy as np

from workbench.config import INPUT_SIZE, PreprocessConfig
from workbench.data.image_bank import ImageBank
from workbench.data.pairs import Pair
from workbench.data.sources import corpus_names, split_pairs

FORMAT = "workbench-data-pack"
FORMAT_VERSION = 1
SPLITS = ("train", "val", "test", "trainval")
_PAIR_COLUMNS = 5


class _Keys:
    """Maps the absolute paths of ``split_pairs`` to portable keys, in order of first use."""

    def __init__(self, data: list[str]) -> None:
        roots = [Path(p).resolve() for p in data]
        self.names = corpus_names(roots)
        self.roots = sorted(zip(roots, self.names), key=lambda r: -len(str(r[0])))
        self.paths: dict[str, str] = {}  # absolute path -> key

    def key(self, path: str) -> str:
        if path not in self.paths:
            for root, name in self.roots:  # the deepest root first, should corpora nest
                if path.startswith(str(root) + os.sep):
                    self.paths[path] = f"{name}/{Path(path).relative_to(root).as_posix()}"
                    break
            else:
                raise AssertionError(f"{path} lies in none of the corpus folders")
        return self.paths[path]

    def portable(self, text: str) -> str:
        """``text`` with every corpus folder's absolute path replaced by its portable name."""
        for root, name in self.roots:
            text = text.replace(str(root), name)
        return text


def _check_splits(splits) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(s.strip() for s in splits if s.strip()))
    unknown = [s for s in chosen if s not in SPLITS]
    if not chosen or unknown:
        raise ValueError(
            f"Unknown split(s) {', '.join(unknown) or '(none given)'}: choose among "
            f"{', '.join(SPLITS)}."
        )
    return chosen


def write_pack(
    out: str | os.PathLike,
    data: list[str],
    protocols: list[str],
    *,
    input_size: int | tuple[int, int] | PreprocessConfig = (INPUT_SIZE, INPUT_SIZE),
    seed: int = 0,
    val_writers: float | None = None,
    splits=("train", "val", "test"),
    random_forgeries: int | list[int] = 0,
    progress: bool = True,
) -> dict:
    """Preprocess the images of the chosen splits' pairs and write them with the pairs to ``out``.

    Args:
        out: the pack file (written whole to a temporary file first, then renamed).
        data: corpus folders; protocols: one per corpus or one for all (see ``split_pairs``).
        input_size: S, (H, W) or a full ``PreprocessConfig``.
        seed, val_writers: of the writer splits (``split_pairs``).
        splits: among ``train``, ``val``, ``test``, ``trainval``.
        random_forgeries: per writer, negatives from other writers of the same split, one count
            for all corpora or one per corpus (``split_pairs``): the only negatives of a
            genuine-only corpus, and for CrossMedia-zh (one name, many hands) hard ones.
        progress: a tqdm bar while preprocessing.

    Returns:
        {"file", "bytes", "images", "left_out", "pairs": {split: count}, "input_size": [H, W],
        "seed"}.

    Raises:
        ValueError: no corpus, an unknown split, or anything ``split_pairs`` refuses.
    """
    if not data:
        raise ValueError("Give at least one corpus folder (--data).")
    chosen = _check_splits(splits)
    if isinstance(input_size, PreprocessConfig):
        config = input_size
    else:
        height, width = (input_size, input_size) if isinstance(input_size, int) else input_size
        config = PreprocessConfig(height=int(height), width=int(width))
    keys = _Keys(data)
    by_split, sources = {}, None
    for split in chosen:
        pairs, found = split_pairs(
            data,
            protocols,
            split,
            seed=seed,
            val_writers=val_writers,
            random_forgeries=random_forgeries,
        )
        by_split[split] = pairs
        sources = sources or found
    paths = list(
        dict.fromkeys(
            q for ps in by_split.values() for p in ps for q in (p.reference, p.questioned)
        )
    )
    bank = ImageBank(paths, config=config, progress=progress)
    kept = [p for p in paths if p in bank]
    if [bank.index[p] for p in kept] != list(range(len(kept))):
        raise AssertionError("ImageBank keeps its images in the order of its paths")
    left_out = {keys.key(p): keys.portable(reason) for p, reason in bank.failed.items()}
    table = [keys.key(p) for p in kept] + list(left_out)
    column = {k: i for i, k in enumerate(table)}
    writers = sorted({p.writer for ps in by_split.values() for p in ps})
    kinds = sorted({p.kind for ps in by_split.values() for p in ps})
    writer_of, kind_of = {w: i for i, w in enumerate(writers)}, {k: i for i, k in enumerate(kinds)}
    arrays = {}
    for split, pairs in by_split.items():
        rows = [
            (
                column[keys.key(p.reference)],
                column[keys.key(p.questioned)],
                p.label,
                writer_of[p.writer],
                kind_of[p.kind],
            )
            for p in pairs
        ]
        arrays[f"pairs_{split}"] = np.array(rows, np.int32).reshape(-1, _PAIR_COLUMNS)
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "config": config.to_dict(),
        "seed": seed,
        "val_writers": val_writers,
        "splits": list(chosen),
        "sources": [{**s, "path": name} for s, name in zip(sources, keys.names)],
        "keys": table[: len(kept)],
        "left_out": left_out,
        "writers": writers,
        "kinds": kinds,
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Written whole under a temporary name, then renamed: a reader never sees half a pack.
    temporary = out.with_name(f".{out.name}.{os.getpid()}.partial")
    try:
        # A file object, not a name: savez would append ".npz" to a name that lacks it.
        with open(temporary, "wb") as stream:
            np.savez_compressed(
                stream,
                meta=np.frombuffer(json.dumps(meta).encode("utf-8"), np.uint8),
                images=bank.images,
                **arrays,
            )
        os.replace(temporary, out)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return {
        "file": str(out),
        "bytes": out.stat().st_size,
        "images": len(kept),
        "left_out": len(left_out),
        "pairs": {split: len(pairs) for split, pairs in by_split.items()},
        "input_size": [config.height, config.width],
        "seed": seed,
    }


class DataPack:
    """A data pack read back: ``config``, ``sources``, ``seed``, ``bank`` and ``pairs(split)``.

    Attributes:
        config: the ``PreprocessConfig`` the images were made with.
        sources: per corpus its portable name (``path``), layout, protocol and writer split.
        seed: the seed of the writer splits; val_writers: the validation writers asked for.
        splits: the splits the pack holds.
        bank: an ``ImageBank`` of (N, H, W) uint8 images keyed ``<corpus>/<relative path>``;
            images preprocessing refused are in ``bank.failed`` (key -> reason), not in the bank.
    """

    def __init__(self, meta: dict, images: np.ndarray, pairs: dict[str, np.ndarray]) -> None:
        names = {f.name for f in fields(PreprocessConfig)}
        self.config = PreprocessConfig(**{k: v for k, v in meta["config"].items() if k in names})
        self.sources: list[dict] = meta["sources"]
        self.seed: int = meta["seed"]
        self.val_writers: float | None = meta.get("val_writers")
        self.splits: tuple[str, ...] = tuple(meta["splits"])
        self.bank = ImageBank.from_arrays(
            meta["keys"], images, self.config, failed=meta["left_out"]
        )
        self._table = list(meta["keys"]) + list(meta["left_out"])
        self._writers, self._kinds = meta["writers"], meta["kinds"]
        self._pairs = pairs

    @classmethod
    def load(cls, path: str | os.PathLike) -> DataPack:
        """Read a pack written by ``write_pack``.

        Raises:
            ValueError: the file is missing, is not a data pack, or is of another format version.
        """
        path = Path(path)
        if not path.is_file():
            raise ValueError(
                f"No data pack at {path}: build one with `python -m workbench.data pack`."
            )
        rebuild = "build one with `python -m workbench.data pack`"
        try:
            stored = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as error:
            raise ValueError(f"{path} is not a data pack ({error}); {rebuild}.") from None
        if not isinstance(stored, np.lib.npyio.NpzFile):
            raise ValueError(f"{path} is a plain numpy array, not a data pack; {rebuild}.")
        with stored:
            try:
                meta = json.loads(stored["meta"].tobytes().decode("utf-8"))
            except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile):
                meta = None
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise ValueError(f"{path} is a numpy archive but not a data pack; {rebuild}.")
            if meta.get("version") != FORMAT_VERSION:
                raise ValueError(
                    f"{path} is a data pack of format version {meta.get('version')}; this "
                    f"workbench reads version {FORMAT_VERSION}. Rebuild it with "
                    "`python -m workbench.data pack`."
                )
            try:
                images = stored["images"]
                pairs = {s: stored[f"pairs_{s}"] for s in meta["splits"]}
                return cls(meta, images, pairs)
            except (KeyError, TypeError, ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
                raise ValueError(f"{path} is a damaged data pack ({e!r}); rebuild it.") from None

    def pairs(self, split: str) -> list[Pair]:
        """The pairs of ``split`` with keys as reference / questioned, in ``split_pairs`` order.

        Pairs whose image was left out stay in the list (as ``split_pairs`` gives them); keep
        those with ``p.reference in pack.bank and p.questioned in pack.bank``.

        Raises:
            ValueError: the pack does not hold ``split``.
        """
        if split not in self._pairs:
            raise ValueError(
                f"This data pack holds the split(s) {', '.join(self.splits)}, not {split!r}: "
                "rebuild it with --splits naming it."
            )
        table, writers, kinds = self._table, self._writers, self._kinds
        return [
            Pair(table[r], table[q], int(label), writers[w], kinds[k])
            for r, q, label, w, k in self._pairs[split].tolist()
        ]


def load_pack(path: str | os.PathLike) -> DataPack:
    """``DataPack.load(path)``."""
    return DataPack.load(path)
