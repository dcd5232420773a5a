"""The page in a real headless Chromium (onnxruntime-web, wasm backend) against
onnxruntime in Python on the same graph and pixels.

Needs Node, Chromium (Debian's chromium-headless-shell) and `npm ci --prefix
tests/browser`; .ci/run installs them.  Elsewhere these tests skip with the
reason; under CI=true a missing browser is a failure, not a skip.
"""

import os
from pathlib import Path

import numpy as np
import pytest
from conftest import make_tiny_model
from PIL import Image
from test_web import foreign_graph

from cin_style.deploy.onnx_export import export_onnx
from cin_style.infer.grain import DEFAULT_GRAIN, with_grain
from cin_style.infer.onnx_runner import StyleRunner
from cin_style.io.synthetic import textured
from cin_style.web.browser import (
    BrowserMissing,
    drive,
    find_chromium,
    find_node,
    find_node_modules,
    ort_web_dist,
    serving,
)
from cin_style.web.site import write_site

pytestmark = pytest.mark.browser

NAMES = ["alpha", "beta", "gamma"]
REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("CIN_STYLE_TEST_ARTIFACTS", REPO / "test-artifacts"))


@pytest.fixture(scope="module")
def tools():
    try:
        find_node()
        return {"chromium": find_chromium(), "node_modules": find_node_modules(REPO / "tests/browser/node_modules")}
    except BrowserMissing as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true, so the browser tests must run: {exc}")
        pytest.skip(f"browser tests need a browser: {exc}")


@pytest.fixture(scope="module")
def sites(tools, tmp_path_factory):
    folder = tmp_path_factory.mktemp("web")
    model = make_tiny_model()
    export_onnx(model, NAMES, folder / "tiny.onnx")
    # The baked graph also stores its weights in fp16 (the bundled graphs' form): the page
    # must run the casts onnxruntime folds into float32 weights.
    export_onnx(model, NAMES, folder / "baked.onnx", bake=np.array([0.25, 0.0, 0.75]),
                precision="fp16-weights")
    dist = ort_web_dist(tools["node_modules"])
    sites = {name: write_site(folder / name, folder / f"{name}.onnx", ort_dist=dist).path
             for name in ("tiny", "baked")}
    # A site whose graph was swapped for one that is not ours after it was written.
    sites["foreign"] = write_site(folder / "foreign", folder / "tiny.onnx", ort_dist=dist).path
    foreign_graph(sites["foreign"] / "model.onnx")
    return folder, sites


def textured_png(path: Path, width=72, height=56) -> tuple[Path, np.ndarray]:
    """Deterministic texture: a flat image would amplify instance-norm rounding."""
    rgb = textured(height, width)
    Image.fromarray(rgb).save(path)  # no gamma or colour profile: the browser keeps the bytes
    return path, rgb.astype(np.float32)[None].transpose(0, 3, 1, 2) / 255


def with_page_grain(image: np.ndarray) -> np.ndarray:
    """float [1, 3, H, W] photo pixels with the grain the page adds by default (infer/grain.py)."""
    pixels = np.rint(image[0].transpose(1, 2, 0) * 255).astype(np.uint8)
    return with_grain(pixels, DEFAULT_GRAIN).transpose(2, 0, 1)[None].astype(np.float32) / 255


def python_result(graph: Path, image: np.ndarray, weights) -> np.ndarray:
    """What `stylize` feeds the network for these pixels (with the default grain), run by onnxruntime."""
    runner = StyleRunner(graph, device="cpu", warmup=False)
    return runner.run_nchw(with_page_grain(image), np.array([weights], np.float32))


def test_page_matches_onnxruntime_and_follows_the_sliders(tools, sites):
    folder, site = sites
    png, image = textured_png(folder / "textured.png")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with serving(site["tiny"]) as url:
        opened, uploaded, photo_input, blended, blend_out, moved, moved_out, shot = drive([
            {"op": "open", "url": url + "?backend=wasm&threads=2"},
            {"op": "upload", "file": str(png)},
            {"op": "input"},
            {"op": "slider", "id": "style-1", "value": 0.5},   # alpha 1, beta 0.5: a two-style blend
            {"op": "output"},
            {"op": "slider", "id": "style-2", "value": 1.0},   # then gamma joins
            {"op": "output"},
            {"op": "screenshot", "file": str(ARTIFACTS / "browser-page.png")},
        ], **tools)
    assert opened["ready"] == {"ok": True}, opened
    state = opened["state"]
    assert state["backend"] == "wasm" and state["isolated"] and state["threads"] == 2
    assert uploaded["error"] == "" and (uploaded["width"], uploaded["height"]) == (72, 56)
    # The page feeds the graph exactly the photo's pixels.
    assert np.array_equal(np.array(photo_input, np.float32).reshape(image.shape), image)
    graph = folder / "tiny.onnx"
    two = python_result(graph, image, [2 / 3, 1 / 3, 0])
    got = np.array(blend_out, np.float32).reshape(two.shape)
    assert np.allclose(blended["weights"], [2 / 3, 1 / 3, 0]) and np.abs(got - two).max() <= 1e-4
    # Moving a slider re-renders with the new blend's result, which differs from the old one.
    assert moved["renders"] == 3 and np.allclose(moved["weights"], [0.4, 0.2, 0.4])
    three = python_result(graph, image, [0.4, 0.2, 0.4])
    got_moved = np.array(moved_out, np.float32).reshape(three.shape)
    assert np.abs(got_moved - three).max() <= 1e-4
    assert np.abs(got_moved - got).max() > 0.05
    assert Path(shot).stat().st_size > 10_000


def test_baked_graph_page_renders_without_sliders(tools, sites):
    folder, site = sites
    png, image = textured_png(folder / "small.png", 40, 32)
    with serving(site["baked"]) as url:
        opened, uploaded, output, styles_text = drive([
            {"op": "open", "url": url + "?backend=wasm&threads=1"},
            {"op": "upload", "file": str(png)},
            {"op": "output"},
            {"op": "text", "selector": "#styles"},
        ], **tools)
    assert opened["ready"] == {"ok": True} and uploaded["error"] == "" and uploaded["weights"] is None
    expected = python_result(folder / "baked.onnx", image, [])
    assert np.abs(np.array(output, np.float32).reshape(expected.shape) - expected).max() <= 1e-4
    assert "baked into the graph: alpha=0.25, gamma=0.75" in styles_text


def test_page_shows_errors_in_the_page(tools, sites):
    folder, site = sites
    note = folder / "notes.txt"
    note.write_text("not a photo")
    with serving(site["tiny"]) as url:
        _, wrong_type, error_text = drive([
            {"op": "open", "url": url + "?backend=wasm"},
            {"op": "upload", "file": str(note)},
            {"op": "text", "selector": "#error"},
        ], **tools)
    assert "notes.txt is not an image" in wrong_type["error"] and wrong_type["renders"] == 0
    assert error_text == wrong_type["error"]
    with serving(site["foreign"]) as url:
        opened, error_text = drive([{"op": "open", "url": url + "?backend=wasm"},
                                    {"op": "text", "selector": "#error"}], **tools)
    assert opened["ready"]["ok"] is False
    assert "model.onnx is not a cin-style graph" in error_text and "x" in error_text


def test_bench_browser_measures_both_sides(tools, sites):
    from click.testing import CliRunner

    from cin_style.cli.main import cli

    folder, _ = sites
    result = CliRunner().invoke(cli, ["bench", "--browser", "--model", str(folder / "tiny.onnx"),
                                      "--sizes", "32,48", "--threads", "1,2", "--repeats", "2",
                                      "--node-modules", str(tools["node_modules"]), "--json"])
    assert result.exit_code == 0, result.output
    import json

    report = json.loads(result.output)
    assert [(r["threads"], r["side"]) for r in report["rows"]] == [(1, 32), (1, 48), (2, 32), (2, 48)]
    assert all(r[k] > 0 for r in report["rows"] for k in r if k.endswith("_ms"))
    assert report["styles"] == 3 and report["ort_web"] == "1.30.0"


def test_the_stroke_size_slider_runs_the_python_style_scale(tools, sites):
    """The page's style scale (tensor.js) against infer/scale.py on the same graph and
    pixels: the same output size, a different look from S = 1, the same numbers."""
    from cin_style.infer.scale import stylize_at_scale

    folder, site = sites
    png, image = textured_png(folder / "scaled.png", width=96, height=72)
    with serving(site["tiny"]) as url:
        _, _, plain, scaled, scaled_out = drive([
            {"op": "open", "url": url + "?backend=wasm&threads=2"},
            {"op": "upload", "file": str(png)},
            {"op": "output"},
            {"op": "slider", "id": "style-scale", "value": 2},
            {"op": "output"},
        ], **tools)
    assert scaled["error"] == "" and scaled["styleScale"] == 2 and (scaled["width"], scaled["height"]) == (96, 72)
    runner = StyleRunner(folder / "tiny.onnx", device="cpu", warmup=False)
    weights = np.array([1, 0, 0], np.float32)
    photo = np.asarray(Image.open(png).convert("RGB"))
    expected = stylize_at_scale(
        lambda small: runner.run(with_grain(small, DEFAULT_GRAIN)[None].astype(np.float32) / 255, weights[None])[0],
        photo, 2).transpose(2, 0, 1)
    got = np.array(scaled_out, np.float32).reshape(expected.shape)
    assert np.abs(got - expected).max() <= 2e-3
    assert np.abs(got - np.array(plain, np.float32).reshape(expected.shape)).max() > 0.05


def y4m_clip(path: Path, width=96, height=72, frames=12) -> Path:
    """A small moving clip for Chromium's fake camera (--use-file-for-fake-video-capture)."""
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for i in range(frames):
            rgb = textured(height, width, seed=i, noise=10)
            y = (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]).astype(np.uint8)
            u = np.full((height // 2, width // 2), 110 + 3 * i, np.uint8)
            v = np.full((height // 2, width // 2), 150 - 3 * i, np.uint8)
            out.write(b"FRAME\n" + y.tobytes() + u.tobytes() + v.tobytes())
    return path


def fake_camera(clip: Path) -> list[str]:
    return ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={clip}"]


def test_the_camera_is_stylized_live_and_follows_the_sliders(tools, sites):
    folder, site = sites
    clip = y4m_clip(folder / "camera.y4m")
    with serving(site["tiny"]) as url:
        results = drive([
            {"op": "open", "url": url + "?backend=wasm&threads=2"},
            {"op": "slider", "id": "camera-smoothing", "value": 0, "wait": False},  # each frame on its own
            {"op": "click", "selector": "#camera-start"},
            {"op": "waitFor", "expression": "cam && cam.processed >= 3"},
            {"op": "camera", "fn": "latest"},
            {"op": "slider", "id": "style-2", "value": 1.0, "wait": False},  # gamma joins the blend
            {"op": "sleep", "ms": 1000},  # later frames: many, even on a loaded machine
            {"op": "camera", "fn": "pause", "args": [True]},
            {"op": "sleep", "ms": 300},
            {"op": "camera", "fn": "latest"},
            {"op": "camera", "fn": "snapshot"},
            {"op": "camera", "fn": "pause", "args": [False]},
            {"op": "camera", "fn": "record", "args": [800]},
            {"op": "camera", "fn": "state"},
            {"op": "text", "selector": "#camera-status"},
        ], chromium_args=fake_camera(clip), **tools)
    _, _, _, running, first, _, _, _, _, second, snapshot, _, recording, state, status = results
    frame, output, frame2, output2 = first["frame"], first["output"], second["frame"], second["output"]
    assert running["page"]["error"] == "" and running["camera"]["running"], running
    width, height = running["camera"]["width"], running["camera"]["height"]
    assert (width, height) == (96, 72)  # the clip's size: under the 256-px processing size
    planes = np.array(frame, np.float32).reshape(1, 3, height, width)
    expected = python_result(folder / "tiny.onnx", planes, [1, 0, 0])
    got = np.array(output, np.float32).reshape(expected.shape)
    assert np.abs(got - expected).max() <= 1e-4  # the camera frame, stylized with the sliders' blend
    assert np.abs(got - planes).max() > 0.1  # and not the camera frame itself
    after = python_result(folder / "tiny.onnx", np.array(frame2, np.float32).reshape(planes.shape), [0.5, 0, 0.5])
    assert np.abs(np.array(output2, np.float32).reshape(after.shape) - after).max() <= 1e-4
    assert snapshot["type"] == "image/png" and snapshot["size"] > 1000 and snapshot["head"][:4] == [137, 80, 78, 71]
    assert recording["type"].startswith("video/webm") and recording["size"] > 1000
    assert recording["head"][:4] == [0x1A, 0x45, 0xDF, 0xA3]  # a WebM (EBML) file
    assert state["processed"] > 3 and 0 <= state["dropped"] < 1
    assert "frames/s" in status and "ms/frame" in status


@pytest.mark.parametrize("name,words", [("NotAllowedError", "camera permission was denied"),
                                        ("NotFoundError", "no camera found")])
def test_a_denied_or_missing_camera_says_so_in_the_page(tools, sites, name, words):
    folder, site = sites
    with serving(site["tiny"]) as url:
        *_, console, message = drive([
            {"op": "open", "url": url + "?backend=wasm"},
            {"op": "refuseCamera", "name": name, "message": "Permission denied"},
            {"op": "click", "selector": "#camera-start"},
            {"op": "waitFor", "expression": "s.error !== ''"},
            {"op": "state"},
            {"op": "text", "selector": "#error"},
        ], **tools)
    assert words in message and console["error"] == message, message
