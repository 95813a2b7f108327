"""Safe extraction of an uploaded corpus archive (.zip).

An uploaded archive is untrusted: member names may point outside the target folder
(``../x``, ``/etc/x``, ``C:\\x``: "zip slip"), headers may understate sizes (zip bombs), and
there may be far more members than any signature corpus holds. Each is refused with a message.
"""

from __future__ import annotations

import os
import re
import stat
import zipfile
from pathlib import Path, PurePosixPath

from workbench.errors import SignatureInputError

MAX_MEMBERS = 20_000
MAX_UNCOMPRESSED_BYTES = 2 * 1024**3
_SKIPPED_FOLDERS = ("__MACOSX",)
_DRIVE = re.compile(r"^[A-Za-z]:")


def _member_path(name: str, archive: str = "The zip") -> PurePosixPath:
    """The member's relative POSIX path; raises for absolute paths and ``..`` components
    (the message names ``archive``, the zip's own file name)."""
    posix = name.replace("\\", "/")
    if posix.startswith("/") or _DRIVE.match(posix):
        raise SignatureInputError(
            f"{archive} holds an absolute path ({name!r}); zip the corpus folder with relative "
            "paths."
        )
    parts = [p for p in posix.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise SignatureInputError(
            f"{archive} holds a path that leaves its folder ({name!r}); it was refused."
        )
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def safe_extract(
    archive: str | os.PathLike,
    dest: str | os.PathLike,
    *,
    max_members: int = MAX_MEMBERS,
    max_bytes: int = MAX_UNCOMPRESSED_BYTES,
) -> int:
    """Extract the regular files of ``archive`` under ``dest``.

    Directory entries, symbolic links, hidden files and ``__MACOSX`` folders are skipped. The
    byte limit is enforced on the bytes actually written, not on the (forgeable) header sizes.

    Returns:
        The number of files written.

    Raises:
        SignatureInputError: not a zip file, a damaged or encrypted one, an unsafe member name,
            more than ``max_members`` members, more than ``max_bytes`` uncompressed, or no files.
    """
    path = Path(archive)
    if not path.is_file():
        raise SignatureInputError(f"Archive not found: {path}")
    if not zipfile.is_zipfile(path):
        raise SignatureInputError(
            f"{path.name} is not a zip archive. Upload the corpus folder compressed as .zip."
        )
    root = Path(dest).resolve()
    written = total = 0
    try:
        with zipfile.ZipFile(path) as handle:
            members = handle.infolist()
            if len(members) > max_members:
                raise SignatureInputError(
                    f"{path.name} holds {len(members)} entries, more than the {max_members} "
                    "allowed; evaluate a subset of writers or use "
                    "`python -m workbench.cli.evaluate` on a folder."
                )
            if sum(m.file_size for m in members) > max_bytes:
                raise SignatureInputError(
                    f"{path.name} expands to more than {max_bytes / 1024**3:.1f} GB; "
                    "upload a smaller corpus."
                )
            for member in members:
                relative = _member_path(member.filename, path.name)
                if member.is_dir() or relative == PurePosixPath("."):
                    continue
                if stat.S_ISLNK(member.external_attr >> 16):
                    continue
                if any(p.startswith(".") or p in _SKIPPED_FOLDERS for p in relative.parts):
                    continue
                if member.flag_bits & 0x1:
                    raise SignatureInputError(
                        f"{member.filename} is encrypted; upload a zip without a password."
                    )
                target = root.joinpath(*relative.parts)
                if root not in target.resolve().parents:
                    raise SignatureInputError(
                        f"{path.name} holds a path that leaves its folder ({member.filename!r}); "
                        "it was refused."
                    )
                try:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    out = open(target, "wb")
                except (FileExistsError, IsADirectoryError, NotADirectoryError):
                    raise SignatureInputError(
                        f"{path.name} holds a file and a folder of the same name "
                        f"({member.filename!r}); compress the corpus folder again."
                    ) from None
                with handle.open(member) as source, out:
                    for block in iter(lambda: source.read(1 << 20), b""):
                        total += len(block)
                        if total > max_bytes:
                            raise SignatureInputError(
                                f"{path.name} expands to more than {max_bytes / 1024**3:.1f} GB; "
                                "upload a smaller corpus."
                            )
                        out.write(block)
                written += 1
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as error:
        raise SignatureInputError(
            f"{path.name} is a damaged zip archive ({error}); compress the corpus again."
        ) from None
    if written == 0:
        raise SignatureInputError(f"{path.name} is empty: it holds no files.")
    return written


def single_top_folder(root: str | os.PathLike) -> Path | None:
    """The only entry of ``root`` when it is a folder (hidden entries ignored), else None."""
    entries = [
        e
        for e in Path(root).iterdir()
        if not e.name.startswith(".") and e.name not in _SKIPPED_FOLDERS
    ]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else None
