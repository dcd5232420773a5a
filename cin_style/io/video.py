"""Video files in and out with PyAV (its wheels bundle ffmpeg with x264, VP9 and AV1).

One demux pass: video frames are decoded, handed to ``process`` in batches and the
results encoded; the audio stream is copied through packet by packet, unchanged.
Frame timestamps are kept (a variable frame rate stays variable), and so are the
size, the rotation metadata and the pixel aspect ratio.  The output is written
under a temporary name beside the target and renamed at the end, so a failure
leaves no half-written file under the final name.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from cin_style.errors import CinStyleError, UsageError, missing_extra
from cin_style.io.atomic import default_file_mode, remove_stale_temps

# Output container and codec by extension.
FORMATS = {
    ".mp4": ("mp4", "libx264"),
    ".mov": ("mov", "libx264"),
    ".mkv": ("matroska", "libx264"),
    ".webm": ("webm", "libvpx-vp9"),
}
DEFAULT_CRF = {"libx264": 18, "libvpx-vp9": 31}


class VideoError(CinStyleError, ValueError):
    """A video that cannot be read or written; the message is meant for users."""


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: Fraction  # average frame rate
    frames: int  # 0 when the container does not say
    duration: float  # seconds, 0 when unknown
    rotation: int  # degrees of the display matrix (metadata; pixels are not turned)
    sample_aspect_ratio: Fraction | None
    audio: bool


def _av():
    try:
        import av
    except ModuleNotFoundError:
        raise missing_extra("video", "video", "PyAV") from None
    return av


def probe(path: str | os.PathLike) -> VideoInfo:
    av = _av()
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"{path}: no such file")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                kind = "audio-only" if container.streams.audio else "no video stream"
                raise VideoError(f"{path}: {kind}; nothing to stylize")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or Fraction(0)
            duration = (
                float(stream.duration * stream.time_base)
                if stream.duration
                else (container.duration / 1e6 if container.duration else 0.0)
            )
            frames = stream.frames or (round(duration * rate) if duration and rate else 0)
            rotation = 0
            for frame in container.decode(stream):
                rotation = int(round(frame.rotation or 0))
                break
            sar = stream.sample_aspect_ratio
            return VideoInfo(
                stream.codec_context.width,
                stream.codec_context.height,
                Fraction(rate),
                int(frames),
                duration,
                rotation,
                Fraction(sar) if sar else None,
                bool(container.streams.audio),
            )
    except VideoError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise VideoError(f"{path}: not a video ffmpeg can read ({str(exc).splitlines()[0][:160]})") from None


def _temp_beside(target: Path) -> Path:
    remove_stale_temps(target)
    fd, name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent)
    os.close(fd)
    return Path(name)


def transcode(
    source: str | os.PathLike,
    target: str | os.PathLike,
    process: Callable[[list[np.ndarray]], Sequence[np.ndarray]],
    *,
    batch_size: int = 4,
    start: float = 0.0,
    duration: float | None = None,
    crf: int | None = None,
    frames_dir: str | os.PathLike | None = None,
    size: tuple[int, int] | None = None,
    on_frames: Callable[[int], None] = lambda n: None,
) -> int:
    """Decode ``source``, run ``process`` on batches of uint8 [H, W, 3] frames (in order),
    encode the results into ``target`` (or PNG files in ``frames_dir``); returns the
    number of frames written.  ``start``/``duration`` (seconds) cut a part; ``size``
    (width, height) is the size ``process`` returns when it scales frames."""
    av = _av()
    source, info = Path(source), probe(source)
    if size is not None:
        info = replace(info, width=size[0], height=size[1])
    writer = _PngWriter(Path(frames_dir)) if frames_dir is not None else _VideoWriter(Path(target), info, crf)
    end = start + duration if duration is not None else None
    written = 0
    batch: list[np.ndarray] = []
    pts: list[int | None] = []

    def flush():
        nonlocal written
        if not batch:
            return
        results = process(batch)
        for image, stamp in zip(results, pts):
            writer.write(image, stamp)
        written += len(batch)
        on_frames(len(batch))
        batch.clear()
        pts.clear()

    try:
        with av.open(str(source)) as container:
            video = container.streams.video[0]
            video.thread_type = "AUTO"
            audio = container.streams.audio[0] if container.streams.audio and frames_dir is None else None
            writer.open(video, audio)
            streams = [video] + ([audio] if audio is not None else [])
            done = False
            for packet in container.demux(*streams):
                if packet.stream.type == "audio":
                    writer.copy_audio(packet, start, end)
                    continue
                if done:
                    continue
                for frame in packet.decode():
                    seconds = (
                        float(frame.pts * video.time_base) if frame.pts is not None else written / float(info.fps or 1)
                    )
                    if seconds < start - 1e-6:
                        continue
                    if end is not None and seconds >= end - 1e-6:
                        done = True
                        break
                    batch.append(frame.to_ndarray(format="rgb24"))
                    pts.append(None if frame.pts is None else frame.pts - round(start / video.time_base))
                    if len(batch) >= batch_size:
                        flush()
            flush()
            if written == 0:
                raise VideoError(f"{source}: no video frames" + (f" after {start:g} s" if start else ""))
            writer.close()
    except av.error.FFmpegError as exc:
        writer.abort()
        raise VideoError(
            f"{source}: the stream breaks after {written} frames ({str(exc).splitlines()[0][:160]})"
        ) from None
    except BaseException:
        writer.abort()
        raise
    return written


class _VideoWriter:
    def __init__(self, target: Path, info: VideoInfo, crf: int | None):
        if target.suffix.lower() not in FORMATS:
            raise UsageError(
                f"{target}: unsupported video type {target.suffix or '(none)'}; use "
                f"{', '.join(FORMATS)} (or --frames DIR for PNG frames)"
            )
        self.target, self.info = target, info
        self.format, self.codec = FORMATS[target.suffix.lower()]
        self.crf = DEFAULT_CRF[self.codec] if crf is None else crf
        self.tmp: Path | None = None
        self.container: Any = None
        self.stream: Any = None
        self.audio: Any = None

    def open(self, video, audio) -> None:
        av = _av()
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = _temp_beside(self.target)
        self.container = av.open(str(self.tmp), "w", format=self.format)
        rate = self.info.fps if self.info.fps else Fraction(25)
        stream = self.container.add_stream(self.codec, rate=rate)
        stream.width, stream.height = self.info.width, self.info.height
        # 4:2:0 halves the chroma planes, which needs even sides; odd sizes keep full chroma.
        even = self.info.width % 2 == 0 and self.info.height % 2 == 0
        stream.pix_fmt = "yuv420p" if even else "yuv444p"
        stream.time_base = video.time_base
        options = {"crf": str(self.crf)}
        if self.codec == "libvpx-vp9":
            options.update({"b": "0", "row-mt": "1", "deadline": "good", "cpu-used": "4"})
        stream.options = options
        if self.info.sample_aspect_ratio:
            stream.codec_context.sample_aspect_ratio = self.info.sample_aspect_ratio
        if self.info.rotation:
            stream.set_display_rotation(self.info.rotation)
        self.stream, self.video_in = stream, video
        if audio is not None:
            self.audio = self.container.add_stream_from_template(audio)
            self.audio_in = audio

    def write(self, image: np.ndarray, pts: int | None) -> None:
        av = _av()
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        frame.pts, frame.time_base = pts, self.video_in.time_base
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def copy_audio(self, packet, start: float, end: float | None) -> None:
        if self.audio is None or packet.pts is None:
            return
        seconds = float(packet.pts * packet.time_base)
        if seconds < start - 1e-6 or (end is not None and seconds >= end):
            return
        shift = round(start / packet.time_base)
        packet.pts -= shift
        if packet.dts is not None:
            packet.dts -= shift
        packet.stream = self.audio
        self.container.mux(packet)

    def close(self) -> None:
        for packet in self.stream.encode(None):
            self.container.mux(packet)
        self.container.close()
        assert self.tmp is not None  # open() ran
        os.chmod(self.tmp, default_file_mode())  # mkstemp makes 0600 files
        os.replace(self.tmp, self.target)

    def abort(self) -> None:
        try:
            if self.container is not None:
                self.container.close()
        except Exception:  # already failing: the temp file goes either way
            pass
        if self.tmp is not None and self.tmp.exists():
            self.tmp.unlink()


class _PngWriter:
    """--frames DIR: one PNG per frame (each written atomically)."""

    def __init__(self, folder: Path):
        self.folder, self.count = folder, 0

    def open(self, video, audio) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)

    def write(self, image: np.ndarray, pts) -> None:
        from PIL import Image

        from cin_style.io.image import save_image

        self.count += 1
        save_image(self.folder / f"frame_{self.count:06d}.png", Image.fromarray(image))

    def copy_audio(self, packet, start, end) -> None:
        pass

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


def frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """Every frame of a video as uint8 [H, W, 3] (for tests and measurements)."""
    av = _av()
    with av.open(str(path)) as container:
        for frame in container.decode(container.streams.video[0]):
            yield frame.to_ndarray(format="rgb24")
