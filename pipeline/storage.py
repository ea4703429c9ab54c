"""The one storage layer: every read and write of the landing zone and outputs goes through fsspec here."""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import uuid

from fsspec.core import url_to_fs

_PARTIAL = re.compile(r"\.tmp-[0-9a-f]{32}$")  # what `temporary_name` names


def temporary_name(path: str) -> str:
    """The name a local write goes to before its rename into `path`."""
    return f"{path}.tmp-{uuid.uuid4().hex}"


class Store:
    """A root folder on any fsspec filesystem (local path or URL such as s3://bucket/prefix)."""

    def __init__(self, url: str):
        self.fs, self.root = url_to_fs(url)
        self.url = url

    def path(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts)

    def read_bytes(self, *parts: str) -> bytes:
        """The file's bytes. On local disk a path through a symbolic link is refused: a link planted in the
        landing zone or the outputs must not make the pipeline or the upload service read what it points at."""
        self._refuse_links(parts)
        return self.fs.cat_file(self.path(*parts))

    def _through_link(self, parts: tuple[str, ...]) -> str | None:
        """The first symbolic link on the way from the root to `parts`, on local disk."""
        if self.is_local:
            for i in range(1, len(parts) + 1):
                if os.path.islink(self.path(*parts[:i])):
                    return self.path(*parts[:i])
        return None

    def _refuse_links(self, parts: tuple[str, ...]) -> None:
        link = self._through_link(parts)
        if link:
            raise PermissionError(f"{link} is a symbolic link, which is never followed")

    def links(self, *parts: str) -> list[str]:
        """Names of the symbolic links directly under a folder (local disk; an object store has none)."""
        if not self.is_local or not self.exists(*parts):
            return []
        return sorted(n for n in os.listdir(self.path(*parts)) if os.path.islink(self.path(*parts, n)))

    def write_bytes(self, data: bytes, *parts: str) -> str:
        """Write whole: to a temporary name beside the target, then into place, so no reader sees half a file."""
        target = self.path(*parts)
        self.fs.makedirs(posixpath.dirname(target), exist_ok=True)
        if self.is_local:  # a rename is atomic
            tmp = temporary_name(target)
            self.fs.pipe_file(tmp, data)
            self.fs.mv(tmp, target)
        else:
            self.fs.pipe_file(target, data)  # an object PUT is atomic on S3
        return target

    def put_file(self, local_path: str, *parts: str) -> str:
        """Put a local file in place whole: local disk, a copy beside the target then a rename; else one PUT."""
        target = self.path(*parts)
        self.fs.makedirs(posixpath.dirname(target), exist_ok=True)
        if self.is_local:
            tmp = temporary_name(posixpath.join(posixpath.dirname(target), f".{posixpath.basename(target)}"))
            shutil.copyfile(local_path, tmp)
            os.replace(tmp, target)
        else:
            self.fs.put_file(local_path, target)
        return target

    def create_exclusive(self, data: bytes, *parts: str) -> bool:
        """Write a new file only if none is there (local: O_EXCL; S3: a conditional PUT); False if one was."""
        target = self.path(*parts)
        self.fs.makedirs(posixpath.dirname(target), exist_ok=True)
        try:
            if self.is_local:
                with open(target, "xb") as f:
                    f.write(data)
            else:
                self.fs.pipe_file(target, data, mode="create")
        except FileExistsError:
            return False
        return True

    def remove_partial(self, *parts: str) -> list[str]:
        """Remove the temporary files under a folder that writers killed mid-write left behind (local disk:
        a write goes to a temporary name, then is renamed; an object store has none); returns their paths."""
        if not self.is_local or not self.exists(*parts):
            return []
        left = [f for f in self.fs.find(self.path(*parts)) if _PARTIAL.search(f)]
        for f in left:
            self.fs.rm(f)
        return left

    def exists(self, *parts: str) -> bool:
        return self.fs.exists(self.path(*parts))

    def listdir(self, *parts: str) -> list[str]:
        """Names of entries directly under a folder ([] if it does not exist), symbolic links left out."""
        p = self.path(*parts)
        if not self.fs.exists(p):
            return []
        if self.is_local:
            if self._through_link(parts):  # a linked folder is not read: as if it were not there
                return []
            return sorted(n for n in os.listdir(p) if not os.path.islink(posixpath.join(p, n)))
        return sorted(posixpath.basename(e.rstrip("/")) for e in self.fs.ls(p, detail=False))

    def files(self, *parts: str) -> dict[str, int]:
        """The files directly under a folder and their sizes, as `listdir` sees the folder (no links, nothing
        through one; {} if it does not exist)."""
        names = set(self.listdir(*parts))
        if not names:
            return {}
        entries = self.fs.ls(self.path(*parts), detail=True)
        return {
            n: int(e.get("size") or 0)
            for e in entries
            if e.get("type") != "directory" and (n := posixpath.basename(e["name"].rstrip("/"))) in names
        }

    def size(self, *parts: str) -> int:
        """Bytes under a folder (0 if it does not exist)."""
        p = self.path(*parts)
        return int(self.fs.du(p)) if self.fs.exists(p) else 0

    def rm(self, *parts: str) -> None:
        p = self.path(*parts)
        if self.fs.exists(p):
            self.fs.rm(p, recursive=True)

    def move(self, src: tuple[str, ...], dst: tuple[str, ...]) -> None:
        """Local: one rename (atomic). Object stores: copy every object under src, then delete the originals."""
        a, b = self.path(*src), self.path(*dst)
        if self.is_local:
            self.fs.makedirs(posixpath.dirname(b), exist_ok=True)
            self.fs.mv(a, b, recursive=True)
            return
        self.copy(src, dst)
        self.fs.rm(a, recursive=True)

    def copy(self, src: tuple[str, ...], dst: tuple[str, ...]) -> None:
        """Copy every file under src to dst (local: hard links, so no bytes are copied; object stores: one
        batched call, which s3fs runs concurrently)."""
        a, b = self.path(*src), self.path(*dst)
        files = self.fs.find(a) if self.fs.isdir(a) else [a]
        targets = [b + f[len(a) :] for f in files]
        if not self.is_local:
            self.fs.copy(files, targets)
            return
        for f, target in zip(files, targets):
            os.makedirs(posixpath.dirname(target), exist_ok=True)
            os.link(f, target)

    @property
    def is_local(self) -> bool:
        return "file" in self.fs.protocol

    def url_of(self, *parts: str) -> str:
        """The full URL of a path under the root (protocol included off the local disk), as readers want it."""
        p = self.path(*parts)
        return p if self.is_local else self.fs.unstrip_protocol(p)
