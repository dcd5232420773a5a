"""Video: round trips through PyAV (frames, rate, size, rotation, audio), parts,
PNG frames, bad input, flow consistency on a known translation, the training term."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from clips import panning_frames, write_clip
from conftest import make_tiny_model

from cin_style.cli.main import cli
from cin_style.io.video import frames as read_frames
from cin_style.io.video import probe
from cin_style.nn.checkpoint import atomic_torch_save, make_checkpoint
from cin_style.video.temporal import FlowBlender, warping_error

NAMES = ["alpha", "beta", "gamma"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("video")
    atomic_torch_save(make_checkpoint(make_tiny_model(), NAMES), root / "m.pt")
    write_clip(root / "pan.mp4", panning_frames(10, 64, 80))
    write_clip(root / "odd.mp4", panning_frames(6, 63, 81), audio=False, rotation=90)
    return root


def video(*args):
    return CliRunner().invoke(cli, ["video", *map(str, args)])


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


def test_round_trip_keeps_frames_rate_size_and_audio(setup):
    result = video(setup / "m.pt", setup / "pan.mp4", "-o", setup / "out.mp4", "--style", "beta")
    assert result.exit_code == 0, result.output
    src, out = probe(setup / "pan.mp4"), probe(setup / "out.mp4")
    assert (out.width, out.height, out.fps, out.frames) == (80, 64, src.fps, 10) and out.audio
    assert abs(out.duration - src.duration) < 0.1
    frames = list(read_frames(setup / "out.mp4"))
    assert len(frames) == 10 and frames[0].shape == (64, 80, 3)
    assert leftovers(setup) == []


def test_max_size_scales_the_video_down(setup):
    result = video(setup / "m.pt", setup / "pan.mp4", "-o", setup / "small.mkv", "--max-size", "40")
    assert result.exit_code == 0, result.output
    out = probe(setup / "small.mkv")
    assert (out.width, out.height, out.frames) == (40, 32, 10) and out.audio


def test_odd_sizes_rotation_and_vp9(setup):
    result = video(setup / "m.pt", setup / "odd.mp4", "-o", setup / "odd.webm", "--consistency", "none")
    assert result.exit_code == 0, result.output
    out = probe(setup / "odd.webm")
    assert (out.width, out.height, out.frames, out.rotation) == (81, 63, 6, 90) and not out.audio


def test_a_part_and_png_frames(setup):
    result = video(setup / "m.pt", setup / "pan.mp4", "--frames", setup / "frames", "--start", "0.25",
                   "--duration", "0.25")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (setup / "frames").iterdir()) == [f"frame_{i:06d}.png" for i in (1, 2, 3)]
    part = video(setup / "m.pt", setup / "pan.mp4", "-o", setup / "part.mp4", "--start", "0.5")
    assert part.exit_code == 0, part.output
    info = probe(setup / "part.mp4")
    assert info.frames == 4 and info.audio and info.duration < 0.5


def test_bad_input_is_one_line_and_leaves_nothing(setup, tmp_path):
    (tmp_path / "notes.mp4").write_text("not a video")
    truncated = tmp_path / "broken.mp4"
    truncated.write_bytes((setup / "pan.mp4").read_bytes()[:1500])
    audio_only = tmp_path / "sound.m4a"
    subprocess.run([sys.executable, "-c", f"""
import av, numpy as np
from fractions import Fraction
with av.open({str(audio_only)!r}, "w", format="mp4") as c:
    s = c.add_stream("aac", rate=8000); s.layout = "mono"
    f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
    f.sample_rate, f.pts, f.time_base = 8000, 0, Fraction(1, 8000)
    for p in list(s.encode(f)) + list(s.encode(None)): c.mux(p)
"""], check=True)
    cases = [([tmp_path / "notes.mp4"], "not a video"), ([truncated], ""), ([audio_only], "audio-only"),
             ([setup / "pan.mp4", "--max-pixels", "1000"], "exceed the limit"),
             ([setup / "pan.mp4", "--start", "5"], "no video frames after 5 s")]
    for args, message in cases:
        result = video(setup / "m.pt", *args, "-o", tmp_path / "out.mp4")
        assert result.exit_code == 1, (args, result.output)
        assert message in result.output and "Traceback" not in result.output
        assert [line.startswith("Error:") for line in result.output.splitlines()].count(True) == 1
        assert not (tmp_path / "out.mp4").exists() and leftovers(tmp_path) == []
    wrong = video(setup / "m.pt", setup / "pan.mp4", "-o", tmp_path / "out.gif")
    assert wrong.exit_code == 2 and "unsupported video type" in wrong.output
    both = video(setup / "m.pt", setup / "pan.mp4")
    assert both.exit_code == 2 and "-o OUTPUT or --frames" in both.output


def test_flow_consistency_removes_flicker_on_a_known_translation():
    """A pan whose 'stylization' flickers (independent noise per frame): blending
    along the flow must remove most of the frame-to-frame error, and nothing where
    there is nothing to remove (a clip that does not flicker stays as it was)."""
    frames = panning_frames(12, 96, 128, step=3)
    rng = np.random.default_rng(0)
    flicker = [np.clip(f / 255 + rng.normal(0, 0.06, f.shape), 0, 1).astype(np.float32) for f in frames]
    blender = FlowBlender(0.7)
    blended = [blender(f, s) for f, s in zip(frames, flicker)]
    raw, after = warping_error(frames, flicker), warping_error(frames, blended)
    assert after < 0.5 * raw, (raw, after)
    steady = [(f / 255).astype(np.float32) for f in frames]
    blender = FlowBlender(0.7)
    kept = [blender(f, s) for f, s in zip(frames, steady)]
    assert np.abs(kept[-1] - steady[-1])[8:-8, 8:-40].mean() < 0.02  # away from the entering edge


def test_picture_a_pan_brings_in_keeps_the_current_frames_texture():
    """Issue 29: on a pan, the strip of new picture took history it does not have (the
    softened mask reached past the reliable area, where the warp only repeats the frame's
    last columns) and carried the look of the frame's border inwards: its texture fell to
    0.76 of per-frame stylization's.  It must stay within 5 %, the new columns must be the
    current frame's stylization, and the flicker must still fall."""
    from cin_style.bench.video import texture
    from cin_style.infer.torch_stylizer import TorchStylizer

    step, width, count = 4, 128, 24
    frames = panning_frames(count, 96, width, step=step, seed=1)
    stylizer = TorchStylizer.from_model(make_tiny_model().eval())
    blend = np.array([[1, 0, 0]], np.float32)
    raw = [stylizer.run(f[None].astype(np.float32) / 255, blend)[0] for f in frames]
    blender = FlowBlender()
    flowed = [blender(f, r) for f, r in zip(frames, raw)]
    entered = np.zeros(frames[0].shape[:2], bool)
    entered[:, width - step * (count - 1):] = True  # the picture that came in during the clip
    assert texture(flowed[-1], entered) >= 0.95 * texture(raw[-1], entered)
    for out, now in zip(flowed[1:], raw[1:]):  # the columns that are new in each frame
        assert np.abs(out[:, width - step:] - now[:, width - step:]).max() < 1e-6
    assert warping_error(frames, flowed) < 0.5 * warping_error(frames, raw)


def test_python_api_for_frame_iterators(setup):
    from cin_style.infer.loader import load_stylizer
    from cin_style.video.stylize import stylize_frames

    stylizer = load_stylizer(setup / "m.pt", device="cpu")
    frames = panning_frames(5, 48, 64)
    out = list(stylize_frames(stylizer, iter(frames), np.array([0, 0, 1], np.float32), batch_size=2))
    assert len(out) == 5 and all(o.shape == (48, 64, 3) and o.dtype == np.uint8 for o in out)
    plain = list(stylize_frames(stylizer, frames, np.array([0, 0, 1], np.float32), consistency="none"))
    assert np.array_equal(plain[0], out[0]) and not np.array_equal(plain[-1], out[-1])


def test_stability_term_trains_and_is_recorded(style_dir, content_dir, tmp_path):
    import torch
    from conftest import random_encoder, tiny_train_config

    from cin_style.train.recipes import train

    result = train([style_dir], content_dir, tmp_path / "s.pt", tiny_train_config(stability_weight=100.0),
                   encoder=random_encoder(), device="cpu", samples=False)
    assert all("stability" in h and h["stability"] > 0 for h in result.history)
    saved = torch.load(tmp_path / "s.pt", weights_only=True)
    assert saved["train_config"]["stability_weight"] == 100.0
    plain = train([style_dir], content_dir, tmp_path / "p.pt", tiny_train_config(), encoder=random_encoder(),
                  device="cpu", samples=False)
    assert all("stability" not in h for h in plain.history)


def test_variable_frame_rate_keeps_its_timestamps(setup, tmp_path):
    from fractions import Fraction

    import av

    stamps = [0, 1, 3, 4, 7, 8]
    source = tmp_path / "vfr.mkv"
    with av.open(str(source), "w") as container:
        stream = container.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv420p"
        stream.time_base = Fraction(1, 12)
        for pts, frame in zip(stamps, panning_frames(len(stamps), 32, 48)):
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
            picture.pts, picture.time_base = pts, Fraction(1, 12)
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)

    def seconds(path):
        with av.open(str(path)) as container:
            video = container.streams.video[0]
            return [round(float(f.pts * video.time_base), 3) for f in container.decode(video)]

    result = video(setup / "m.pt", source, "-o", tmp_path / "out.mkv")
    assert result.exit_code == 0, result.output
    assert seconds(tmp_path / "out.mkv") == seconds(source) == [round(t / 12, 3) for t in stamps]


def test_large_frames_go_through_the_tiles_and_a_limit(setup, monkeypatch):
    """Frames above AUTO_TILE_PIXELS run one at a time in tiles (bounded memory), as
    `stylize` does; a graph that cannot tile refuses them; frames above the video limit
    (DCI 4K by default) are refused before any work."""
    from cin_style.deploy.export import export
    from cin_style.infer import tiles
    from cin_style.infer.grain import DEFAULT_GRAIN
    from cin_style.infer.loader import load_stylizer
    from cin_style.io.image import ImageError
    from cin_style.io.video import VideoError
    from cin_style.video import stylize as video_stylize
    from cin_style.video.stylize import stylize_frames

    weights = np.array([0.2, 0.3, 0.5], np.float32)
    frames = panning_frames(3, 48, 64)
    stylizer = load_stylizer(setup / "m.pt", device="cpu")
    whole = list(stylize_frames(stylizer, frames, weights, consistency="none"))
    monkeypatch.setattr(tiles, "AUTO_TILE_PIXELS", 40 * 40)
    tiled = list(stylize_frames(stylizer, frames, weights, consistency="none"))
    assert all(np.array_equal(t, stylizer.run_tiled(f, weights, grain=DEFAULT_GRAIN)) for t, f in zip(tiled, frames))
    assert max(np.abs(t.astype(int) - w).max() for t, w in zip(tiled, whole)) <= 2
    export(setup / "m.pt", setup / "alone.onnx", tiled_sibling=False, verify=False)
    with pytest.raises(ImageError, match="no tiled sibling"):
        list(stylize_frames(load_stylizer(setup / "alone.onnx", device="cpu"), frames, weights))
    assert video_stylize.DEFAULT_MAX_VIDEO_PIXELS == 4096 * 2160
    monkeypatch.setattr(video_stylize, "DEFAULT_MAX_VIDEO_PIXELS", 64 * 80 - 1)
    with pytest.raises(VideoError, match="exceed the limit of 5,119 pixels"):
        video_stylize.stylize_video(stylizer, setup / "pan.mp4", setup / "never.mp4", weights)
    assert not (setup / "never.mp4").exists()
