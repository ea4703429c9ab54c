"""A filesystem for failure tests: local files, except that a run's commit point cannot be written.

Imported by the test process and, as a Dask worker preload, by every worker however it was started (forked or
spawned), so the `failingmanifests://` protocol resolves everywhere."""

import fsspec
from fsspec.implementations.local import LocalFileSystem


class FailingManifests(LocalFileSystem):
    """Local files, except that writing a run's commit point fails as a full disk would."""

    protocol = "failingmanifests"
    root_marker = "/"

    @classmethod
    def _strip_protocol(cls, path):
        return super()._strip_protocol(path.replace("failingmanifests://", "", 1))

    def pipe_file(self, path, value, mode="overwrite", **kwargs):
        if "/published/_manifests/" in path:
            raise OSError(28, "No space left on device", path)
        return super().pipe_file(path, value, **kwargs)


fsspec.register_implementation("failingmanifests", FailingManifests, clobber=True)
