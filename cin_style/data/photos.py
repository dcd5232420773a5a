"""Photos as tensors: random training crops from a folder of photos, fixed centre crops, and
the array/tensor conversions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cin_style.errors import DataError
from cin_style.io.image import (
    DEFAULT_MAX_PIXELS,
    MIN_SIDE,
    ImageError,
    chw_to_hwc,
    hwc_to_chw,
    is_image_source,
    list_images,
    load_image,
    resize_short_side,
)


def to_tensor(array: np.ndarray) -> torch.Tensor:
    """float [..., H, W, 3] → float tensor [..., 3, H, W]."""
    return torch.from_numpy(hwc_to_chw(array))


def to_array(tensor: torch.Tensor) -> np.ndarray:
    """float tensor [..., 3, H, W] → float [..., H, W, 3]."""
    return chw_to_hwc(tensor.detach().float().cpu().numpy())


class ContentImages:
    """Random square crops from every photo under a folder (recursive) or in a
    ``.txt`` image list.

    Unreadable files are skipped and counted (see ``skipped``), never fatal
    unless no file is readable.  Photos are decoded once and kept, resized,
    in memory up to ``cache_bytes``.  All randomness comes from the generator
    passed to ``sample``, so a resumed run draws the same crops.
    """

    def __init__(
        self,
        root: str | Path,
        image_size: int,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        cache_bytes: int = 1 << 30,
        photo_size: int | None = None,
    ):
        root = Path(root)
        if not is_image_source(root):
            raise DataError(f"content folder (or .txt image list) not found: {root}")
        self.files = list_images(root)
        if not self.files:
            raise DataError(f"no .jpg/.png/.webp images in {root}")
        if image_size < MIN_SIDE:
            raise DataError(f"--image-size must be at least {MIN_SIDE}, got {image_size}")
        if photo_size is not None and photo_size < image_size:
            raise DataError(f"--photo-size ({photo_size}) must be at least --image-size ({image_size})")
        self.image_size = image_size
        # Crops come from photos scaled to this short side: a crop smaller than the
        # photo keeps objects at the scale the network will meet them at.
        self.photo_size = photo_size or image_size
        self.max_pixels = max_pixels
        self.cache_bytes = cache_bytes
        self._cache: dict[int, np.ndarray] = {}
        self._cached_bytes = 0
        self.skipped: dict[Path, str] = {}

    def __len__(self) -> int:
        return len(self.files)

    def _load(self, index: int) -> np.ndarray | None:
        if index in self._cache:
            return self._cache[index]
        path = self.files[index]
        if path in self.skipped:
            return None
        try:
            array = resize_short_side(load_image(path, self.max_pixels), self.photo_size)
        except ImageError as exc:
            self.skipped[path] = str(exc)
            return None
        if self._cached_bytes + array.nbytes <= self.cache_bytes:
            self._cache[index] = array
            self._cached_bytes += array.nbytes
        return array

    def sample(self, batch_size: int, generator: torch.Generator, keep: slice | None = None) -> torch.Tensor:
        """[batch_size, 3, S, S] random crops (with random horizontal flips).

        ``keep`` returns only those samples of the batch (one process's share under
        DDP) after drawing all of them, so the generator, and so the next batches,
        do not depend on how many processes share the work.
        """
        s, crops, drawn = self.image_size, [], 0
        wanted = range(batch_size)[keep] if keep is not None else range(batch_size)
        while drawn < batch_size:
            if len(self.skipped) == len(self.files):
                raise DataError(
                    f"none of the {len(self.files)} content images could be read "
                    f"(first: {next(iter(self.skipped.values()))})"
                )
            index = int(torch.randint(len(self.files), (1,), generator=generator))
            array = self._load(index)
            if array is None:
                continue
            h, w = array.shape[:2]
            top = int(torch.randint(h - s + 1, (1,), generator=generator))
            left = int(torch.randint(w - s + 1, (1,), generator=generator))
            flip = bool(torch.rand((), generator=generator) < 0.5)
            if drawn in wanted:
                crop = to_tensor(array[top : top + s, left : left + s])
                crops.append(crop.flip(-1) if flip else crop)
            drawn += 1
        return torch.stack(crops)

    def skipped_report(self) -> str | None:
        if not self.skipped:
            return None
        first = next(iter(self.skipped.values()))
        return f"skipped {len(self.skipped)} unreadable content image(s) of {len(self.files)}; first: {first}"


def center_crops(
    source: str | Path, size: int, photo_size: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS
) -> torch.Tensor:
    """[N, 3, size, size]: every photo of ``source`` (folder or .txt list), short
    side scaled to ``photo_size`` (default ``size``), centre-cropped — a fixed
    validation batch."""
    if not is_image_source(source):
        raise DataError(f"validation photos not found: {source} (a folder or a .txt image list)")
    crops = []
    for path in list_images(source):
        try:
            array = resize_short_side(load_image(path, max_pixels), photo_size or size)
        except ImageError as exc:
            raise DataError(f"validation photo unreadable: {exc}") from None
        h, w = array.shape[:2]
        top, left = (h - size) // 2, (w - size) // 2
        crops.append(to_tensor(array[top : top + size, left : left + size]))
    if not crops:
        raise DataError(f"no .jpg/.png/.webp images in {source}")
    return torch.stack(crops)
