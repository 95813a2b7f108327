"""Preprocessed images of a corpus, computed once per run and optionally cached on disk.

Training reads each image thousands of times; decoding and normalizing it every time would make
throughput depend on the disk and PIL, not on the model.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from workbench.config import PreprocessConfig
from workbench.errors import SignatureInputError
from workbench.preprocess import preprocess

log = logging.getLogger(__name__)


def _cache_key(paths: list[str], config: PreprocessConfig) -> str:
    digest = hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True).encode())
    for p in paths:
        stat = Path(p).stat()
        digest.update(f"{p}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


class ImageBank:
    """Normalized ``uint8`` (H, W) images keyed by file path.

    Args:
        paths: image files (absolute or relative to the working directory).
        config: preprocessing settings.
        cache_dir: where to keep an ``.npz`` of the result (re-used when the files, their sizes
            and modification times and the settings are unchanged); None = no disk cache.
        progress: show a tqdm bar while preprocessing.
        on_image: called as ``on_image(done, total)`` after each file is preprocessed (not when
            the result comes from the cache), for progress bars other than tqdm's.

    Files that preprocessing refuses are left out and listed in ``failed``.
    """

    def __init__(
        self,
        paths,
        *,
        config: PreprocessConfig = PreprocessConfig(),
        cache_dir: str | Path | None = None,
        progress: bool = True,
        on_image: Callable[[int, int], None] | None = None,
    ) -> None:
        unique = list(dict.fromkeys(str(p) for p in paths))
        self.config = config
        self.failed: dict[str, str] = {}
        cache = Path(cache_dir) / f"images_{_cache_key(unique, config)}.npz" if cache_dir else None
        if cache is not None and cache.exists():
            stored = np.load(cache, allow_pickle=False)
            kept, self.images = list(stored["paths"]), stored["images"]
            self.failed = dict(zip(stored["failed"], stored["reasons"]))
        else:
            kept, images = [], []
            for done, p in enumerate(
                tqdm(unique, desc="preprocessing", unit="img", disable=not progress), start=1
            ):
                try:
                    images.append(preprocess(p, config=config)[0])
                    kept.append(p)
                except SignatureInputError as error:
                    self.failed[p] = str(error)
                if on_image is not None:
                    on_image(done, len(unique))
            shape = (0, config.height, config.width)
            self.images = np.stack(images) if images else np.zeros(shape, np.uint8)
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                np.savez(
                    cache,
                    paths=np.array(kept),
                    images=self.images,
                    failed=np.array(list(self.failed)),
                    reasons=np.array(list(self.failed.values())),
                )
        for p, reason in self.failed.items():
            log.warning("left out %s: %s", p, reason)
        self.index = {p: i for i, p in enumerate(kept)}

    @classmethod
    def from_arrays(
        cls,
        keys,
        images: np.ndarray,
        config: PreprocessConfig,
        *,
        failed: dict[str, str] | None = None,
    ) -> ImageBank:
        """A bank over images preprocessed elsewhere (e.g. read from a data pack), by ``keys``.

        Args:
            keys: one distinct key per image (a path, or a pack's ``corpus/relative/path``).
            images: (N, H, W) uint8 normalized images, (H, W) = (config.height, config.width).
            config: the preprocessing settings that produced ``images``.
            failed: key -> reason of the images that preprocessing refused.

        Raises:
            ValueError: keys and images disagree in number, keys repeat, or the images are not
                uint8 of the configured size.
        """
        keys = [str(k) for k in keys]
        shape = (len(keys), config.height, config.width)
        if images.dtype != np.uint8 or images.shape != shape:
            raise ValueError(
                f"ImageBank.from_arrays needs uint8 images of shape {shape} (one per key), "
                f"got {images.dtype} {images.shape}."
            )
        if len(set(keys)) != len(keys):
            raise ValueError("ImageBank.from_arrays: keys must be distinct (one per image).")
        bank = cls.__new__(cls)
        bank.config = config
        bank.images = images
        bank.failed = dict(failed or {})
        bank.index = {k: i for i, k in enumerate(keys)}
        return bank

    def __contains__(self, path) -> bool:
        return str(path) in self.index

    def __len__(self) -> int:
        return len(self.index)

    def get(self, paths) -> np.ndarray:
        """(N, H, W) uint8 images of the given paths, in order."""
        return self.images[[self.index[str(p)] for p in paths]]
