"""A COLMAP binary model's structure (`rigs`, `cameras`, `frames`, `images`, `points3D` .bin),
walked record by record before pycolmap reads it: pycolmap trusts every count in the file (a
583-byte points3D.bin declaring 10^7 points took 17 GB and 5 minutes to refuse) and loops for
ever on a name cut short by the end of the file. Each count is bounded, and each record must
lie inside the file, so pycolmap only ever sees a model whose sizes the file really holds.

The layout is COLMAP's documented binary format (little-endian)."""

from __future__ import annotations

import mmap
import struct
from functools import cache
from pathlib import Path

from ..errors import InputError
from .capture_images import MAX_VIEWS

MAX_POINTS = 5_000_000
MAX_SENSORS = 64  # per rig, and data ids per frame
MAX_NAME = 4096  # bytes of an image's name


@cache
def parameter_counts() -> dict[int, int]:
    """COLMAP camera model id -> its number of parameters (from pycolmap's own table)."""
    import pycolmap

    counts = {}
    for model in pycolmap.CameraModelId.__members__.values():
        if int(model) >= 0:
            camera = pycolmap.Camera.create_from_model_id(1, model, 1.0, 1, 1)
            counts[int(model)] = len(camera.params)
    return counts


class Records:
    """A cursor over one file's bytes that refuses to read past the end."""

    def __init__(self, data, name: str):
        self.data, self.name, self.offset = data, name, 0

    def take(self, layout: str) -> tuple:
        size = struct.calcsize("<" + layout)
        self._need(size)
        values = struct.unpack_from("<" + layout, self.data, self.offset)
        self.offset += size
        return values

    def skip(self, count: int, size: int) -> None:
        self._need(count * size)
        self.offset += count * size

    def skip_name(self) -> None:
        end = self.data.find(b"\0", self.offset, self.offset + MAX_NAME)
        if end < 0:
            self._need(MAX_NAME + 1)
            raise InputError(f"{self.name}: an image name is over {MAX_NAME} bytes")
        self.offset = end + 1

    def count(self, layout: str, limit: int, what: str) -> int:
        (number,) = self.take(layout)
        if number > limit:
            raise InputError(f"{self.name} declares {number} {what}; at most {limit} are read")
        return number

    def _need(self, size: int) -> None:
        if self.offset + size > len(self.data):
            self.truncated()

    def truncated(self) -> None:
        raise InputError(f"{self.name} is truncated: a record runs past the end of the file")

    def finish(self) -> None:
        if self.offset != len(self.data):
            raise InputError(f"{self.name} has {len(self.data) - self.offset} bytes past its end")


def walk_rigs(records: Records) -> None:
    for _ in range(records.count("Q", MAX_VIEWS, "rigs")):
        records.take("I")
        sensors = records.count("I", MAX_SENSORS, "sensors in a rig")
        if sensors:
            records.take("iI")
        for _ in range(max(sensors - 1, 0)):
            (_, _, has_pose) = records.take("iIB")
            if has_pose:
                records.skip(7, 8)


def walk_cameras(records: Records) -> None:
    counts = parameter_counts()
    for _ in range(records.count("Q", MAX_VIEWS, "cameras")):
        _, model, _, _ = records.take("IiQQ")
        if model not in counts:
            raise InputError(f"{records.name}: camera model id {model} is not a COLMAP model")
        records.skip(counts[model], 8)


def walk_frames(records: Records) -> None:
    for _ in range(records.count("Q", MAX_VIEWS, "frames")):
        records.take("II7d")
        records.skip(records.count("I", MAX_SENSORS, "data ids in a frame"), 16)


def walk_images(records: Records) -> None:
    for _ in range(records.count("Q", MAX_VIEWS, "images")):
        records.take("I7dI")
        records.skip_name()
        (points,) = records.take("Q")
        records.skip(points, 24)  # x, y, point3D_id


POINT = struct.Struct("<Q3d3BdQ")  # id, xyz, rgb, error, track length


def walk_points(records: Records) -> None:
    count = records.count("Q", MAX_POINTS, "points")
    data, offset, end = records.data, records.offset, len(records.data)
    for _ in range(count):  # the hot loop of the walk: no method calls
        if offset + POINT.size > end:
            records.truncated()
        track = POINT.unpack_from(data, offset)[-1]
        offset += POINT.size + 8 * track  # image_id, point2D_idx per element
    if offset > end:
        records.truncated()
    records.offset = offset


WALKS = {
    "rigs": walk_rigs,
    "cameras": walk_cameras,
    "frames": walk_frames,
    "images": walk_images,
    "points3D": walk_points,
}


def check_binary_model(folder: Path, where: str) -> None:
    """Walk every .bin file of the model in `folder`; InputError at the first inconsistency."""
    for stem, walk in WALKS.items():
        path = folder / f"{stem}.bin"
        if not path.is_file():
            continue
        try:
            with open(path, "rb") as handle:
                if path.stat().st_size == 0:
                    raise InputError(f"{path.name} is empty")
                with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                    records = Records(data, path.name)
                    walk(records)
                    records.finish()
        except OSError as err:
            raise InputError(f"{where}/{path.name} cannot be read: {err.strerror or err}.") from err
        except InputError as err:
            detail = str(err).rstrip(".")
            raise InputError(f"{where}: not a readable COLMAP model ({detail}).") from None
