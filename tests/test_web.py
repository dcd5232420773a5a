"""`cin-style web` and `cin-style serve` without a browser: the site's files and
manifest, the pinned runtime, the server's headers, the page's maths (in Node)."""

import json
import os
import shutil
import subprocess
import threading
import urllib.request
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from conftest import make_tiny_model
from onnx import TensorProto, helper

from cin_style.cli.main import cli
from cin_style.deploy.onnx_export import export_onnx
from cin_style.infer.finish import mix_strength, preserve_color
from cin_style.infer.onnx_runner import RunnerError
from cin_style.web import site as site_mod
from cin_style.web.server import ISOLATION_HEADERS, make_server, site_url
from cin_style.web.site import RUNTIME_INTEGRITY, SiteError, runtime_files, sri_hash, write_site

NAMES = ["alpha", "beta", "gamma"]
REPO = Path(__file__).resolve().parent.parent
NPM_DIST = REPO / "tests" / "browser" / "node_modules" / "onnxruntime-web" / "dist"


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("graphs")
    model = make_tiny_model()
    export_onnx(model, NAMES, folder / "tiny.onnx")
    export_onnx(model, NAMES, folder / "baked.onnx", bake=np.array([0.5, 0.5, 0.0]))
    return folder


def foreign_graph(path: Path) -> Path:
    """A valid ONNX graph that is not ours (Identity, no cin-style metadata)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "foreign", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9), path)
    return path


def fake_dist(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name in runtime_files():
        (folder / name).write_text(f"// {name}\n")
    (folder.parent / "package.json").write_text('{"version": "9.9.9"}')
    return folder


@pytest.mark.slow
def test_site_from_cdn_pins_every_runtime_file(graphs, tmp_path):
    result = write_site(tmp_path / "site", graphs / "tiny.onnx", max_side=320)
    site = result.path
    assert sorted(p.name for p in site.iterdir()) == sorted(
        ["index.html", "app.js", "tensor.js", "camera.js", "style.css", "model.onnx", "site.json"])
    assert (site / "model.onnx").read_bytes() == (graphs / "tiny.onnx").read_bytes()
    manifest = json.loads((site / "site.json").read_text())
    assert manifest["style_names"] == NAMES and manifest["baked_blend"] == ""
    assert manifest["max_side"] == 320 and manifest["graph"] == "model.onnx"
    assert manifest["facts"]["network"] == "width 4, 1 residual blocks"
    assert manifest["runtime"]["base"] == site_mod.CDN_BASE
    # The wasm binaries are fetched by the page with these hashes; the modules via the import map.
    assert set(manifest["runtime"]["integrity"]) == set(runtime_files())
    html = (site / "index.html").read_text()
    assert "{{IMPORTMAP}}" not in html
    importmap = json.loads(html.split('<script type="importmap">')[1].split("</script>")[0])
    assert importmap["imports"]["onnxruntime-web/wasm"] == site_mod.CDN_BASE + "ort.wasm.min.mjs"
    modules = [n for n in runtime_files() if n.endswith(".mjs")]
    assert importmap["integrity"] == {site_mod.CDN_BASE + n: RUNTIME_INTEGRITY[n] for n in modules}
    assert f"onnxruntime-web@{site_mod.ORT_WEB_VERSION}/" in site_mod.CDN_BASE


def test_site_with_local_runtime_copies_only_what_the_page_loads(graphs, tmp_path):
    dist = fake_dist(tmp_path / "pkg" / "dist")
    (dist / "ort.all.min.js").write_text("// not needed")
    site = write_site(tmp_path / "site", graphs / "tiny.onnx", ort_dist=dist).path
    assert sorted(p.name for p in (site / "ort").iterdir()) == sorted(runtime_files())
    manifest = json.loads((site / "site.json").read_text())
    assert manifest["runtime"] == {"base": "./ort/", "integrity": {},
                                   "wasm": {"wasm": "ort-wasm-simd-threaded.wasm",
                                            "webgpu": "ort-wasm-simd-threaded.asyncify.wasm"}}
    assert "9.9.9 (local copy)" in manifest["facts"]["runtime"]
    assert "integrity" not in (site / "index.html").read_text().split("</script>")[0]
    shutil.rmtree(dist)
    with pytest.raises(SiteError, match="not an onnxruntime-web dist folder"):
        write_site(tmp_path / "other", graphs / "tiny.onnx", ort_dist=tmp_path / "pkg")


def test_baked_graph_site_has_no_sliders_to_build(graphs, tmp_path):
    manifest = json.loads((write_site(tmp_path / "s", graphs / "baked.onnx").path / "site.json").read_text())
    assert manifest["baked_blend"] == "alpha=0.5,beta=0.5"


def test_a_site_rewrite_replaces_only_its_own_files(graphs, tmp_path):
    """Issue 22: rewriting a site deleted what the user had added to its folder and
    rmtree'd a sibling `.site.old/` it did not create."""
    target = tmp_path / "site"
    write_site(target, graphs / "tiny.onnx")
    before = (target / "site.json").read_bytes()
    with pytest.raises(RunnerError, match="not a cin-style graph"):
        write_site(target, foreign_graph(tmp_path / "foreign.onnx"))
    assert (target / "site.json").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp folders left
    write_site(target, graphs / "baked.onnx")  # only our own files there: replaced
    assert json.loads((target / "site.json").read_text())["baked_blend"]
    (target / "my_notes.txt").write_text("mine")
    (target / "photos").mkdir()
    (target / "photos" / "a.jpg").write_bytes(b"jpeg")
    (tmp_path / ".site.old").mkdir()
    (tmp_path / ".site.old" / "keep.txt").write_text("not the tool's")
    with pytest.raises(SiteError, match="did not write.*my_notes.txt.*--force"):
        write_site(target, graphs / "tiny.onnx")
    assert json.loads((target / "site.json").read_text())["baked_blend"]  # unchanged
    write_site(target, graphs / "tiny.onnx", force=True)
    assert not json.loads((target / "site.json").read_text())["baked_blend"]  # our files replaced
    assert (target / "my_notes.txt").read_text() == "mine" and (target / "photos" / "a.jpg").exists()
    assert (tmp_path / ".site.old" / "keep.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [".site.old"]


def test_web_into_the_current_folder_and_a_bad_metadata_graph_are_one_line(graphs, tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    result = CliRunner().invoke(cli, ["web", str(graphs / "tiny.onnx"), "-o", "."])
    assert result.exit_code == 0, result.output
    assert (empty / "index.html").is_file()
    proto = onnx.load(str(graphs / "tiny.onnx"))
    for prop in proto.metadata_props:
        if prop.key == "cin_style.model_config":
            prop.value = "{not json"
    onnx.save(proto, str(tmp_path / "odd.onnx"))
    result = CliRunner().invoke(cli, ["web", str(tmp_path / "odd.onnx"), "-o", str(tmp_path / "odd_site")])
    assert result.exit_code == 1 and "model_config metadata is not JSON" in result.output
    assert result.output.count("\n") == 1


@pytest.mark.slow
def test_site_refuses_graph_variants_the_page_cannot_run(tmp_path):
    model = make_tiny_model()
    export_onnx(model, NAMES, tmp_path / "masks.onnx", masks=True)
    with pytest.raises(SiteError, match="masks variant"):
        write_site(tmp_path / "site", tmp_path / "masks.onnx")
    assert not (tmp_path / "site").exists()


def test_site_refuses_a_folder_it_did_not_write(graphs, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(SiteError, match=r"did not write \(notes.txt\)"):
        write_site(tmp_path / "mine", graphs / "tiny.onnx")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_site_for_the_bundled_model_links_its_card(tmp_path):
    site = write_site(tmp_path / "s").path
    manifest = json.loads((site / "site.json").read_text())
    assert len(manifest["style_names"]) == 16 and manifest["card"] == "MODEL_CARD.md"
    assert (site / "MODEL_CARD.md").is_file() and manifest["facts"]["precision"] == "fp16-weights"


def test_web_cli_writes_a_site_and_rejects_bad_models(graphs, tmp_path):
    runner = CliRunner()
    ok = runner.invoke(cli, ["web", str(graphs / "tiny.onnx"), "-o", str(tmp_path / "site")])
    assert ok.exit_code == 0, ok.output
    assert "3 styles" in ok.output and "cin-style serve" in ok.output
    bad = runner.invoke(cli, ["web", str(foreign_graph(tmp_path / "f.onnx")), "-o", str(tmp_path / "x")])
    assert bad.exit_code == 1 and "not a cin-style graph" in bad.output and "Traceback" not in bad.output
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    wrong = runner.invoke(cli, ["web", str(text), "-o", str(tmp_path / "y")])
    assert wrong.exit_code == 2 and "must be an exported .onnx graph" in wrong.output
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


@pytest.mark.slow
def test_web_cli_exports_a_checkpoint(tmp_path):
    from cin_style.nn.checkpoint import atomic_torch_save, make_checkpoint

    model = make_tiny_model()
    checkpoint = tmp_path / "m.pt"
    atomic_torch_save(make_checkpoint(model, NAMES), checkpoint)
    result = CliRunner().invoke(cli, ["web", str(checkpoint), "-o", str(tmp_path / "site")])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "site" / "site.json").read_text())
    assert manifest["style_names"] == NAMES and manifest["facts"]["exported from"] == "m.pt"


def test_server_sends_isolation_headers_and_wasm_types(graphs, tmp_path):
    site = write_site(tmp_path / "site", graphs / "tiny.onnx", ort_dist=fake_dist(tmp_path / "p" / "dist")).path
    server = make_server(site, port=0)
    assert server.server_address[0] == "127.0.0.1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = site_url(server)
        for path, mime in [("", "text/html"), ("app.js", "text/javascript"),
                           ("ort/ort.wasm.min.mjs", "text/javascript"),
                           ("ort/ort-wasm-simd-threaded.wasm", "application/wasm"),
                           ("site.json", "application/json")]:
            with urllib.request.urlopen(url + path) as response:
                assert response.headers["Content-Type"].startswith(mime), path
                for key, value in ISOLATION_HEADERS.items():
                    assert response.headers[key] == value
    finally:
        server.shutdown()
        server.server_close()


def test_serve_keeps_to_its_folder_and_lets_go_of_idle_clients(graphs, tmp_path, capsys):
    """Issue 22: `serve` followed symlinks out of the site, listed folders, printed a
    traceback for a NUL in a path and for every client that went away, kept idle
    connections forever and queued only 5."""
    import socket
    import time
    import urllib.error

    site = write_site(tmp_path / "site", graphs / "tiny.onnx", ort_dist=fake_dist(tmp_path / "p" / "dist")).path
    secret = tmp_path / "outside" / "passwd"
    secret.parent.mkdir()
    secret.write_text("root:x:0:0")
    (site / "etcdir").symlink_to(secret.parent, target_is_directory=True)
    (site / "leak.txt").symlink_to(secret)
    server = make_server(site, port=0, timeout=1.0)
    assert server.request_queue_size >= 64
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = site_url(server)
    host, port = server.server_address[:2]
    try:
        os.mkfifo(site / "pipe.txt")  # opening a FIFO blocks until a writer comes: never
        for path in ("etcdir/passwd", "leak.txt", "ort/", "%00", "a%00b.txt", "pipe.txt"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(url + path)
            assert refused.value.code == 404, path
        idle = socket.create_connection((host, port))
        idle.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # half a request, then silence
        idle.settimeout(5)
        started = time.monotonic()
        assert idle.recv(1024) == b""  # closed by the server ...
        assert time.monotonic() - started < 4  # ... after its 1 s timeout, not held
        idle.close()
        for _ in range(20):  # clients that leave before the answer
            gone = socket.create_connection((host, port))
            gone.sendall(b"GET /model.onnx HTTP/1.1\r\nHost: x\r\n\r\n")
            gone.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            gone.close()
        with urllib.request.urlopen(url) as response:  # still serving
            assert response.status == 200
    finally:
        server.shutdown()
        server.server_close()
    assert "Traceback" not in capsys.readouterr().err


def test_serve_refuses_a_folder_without_a_page(tmp_path):
    result = CliRunner().invoke(cli, ["serve", str(tmp_path), "--port", "0"])
    assert result.exit_code == 1 and "no index.html" in result.output


def test_page_maths_match_the_python_postprocessing(tmp_path):
    """tensor.js's preserve-colour, strength and weight normalisation, run in Node,
    against cin_style.infer.finish and the runner's rules."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed")
    rng = np.random.default_rng(0)
    h, w = 5, 7
    stylized, content = rng.random((2, h, w, 3), dtype=np.float32)
    tensor_js = (Path(site_mod.__file__).parent / "page" / "tensor.js").as_uri()
    script = f"""
import * as t from {json.dumps(tensor_js)};
const s = Float32Array.from({json.dumps(stylized.transpose(2, 0, 1).ravel().tolist())});
const c = Float32Array.from({json.dumps(content.transpose(2, 0, 1).ravel().tolist())});
const rgba = new Uint8ClampedArray([0, 128, 255, 255, 10, 20, 30, 255]);
console.log(JSON.stringify({{
  preserve: Array.from(t.preserveColor(s, c, {h * w})),
  strength: Array.from(t.mixStrength(s, c, 0.3)),
  weights: Array.from(t.normalizeWeights([1, 0, 3])), zero: t.normalizeWeights([0, 0]),
  planes: Array.from(t.rgbaToPlanes(rgba, 2, 1)),
  back: Array.from(t.planesToRgba(t.rgbaToPlanes(rgba, 2, 1), 2, 1)),
  fit: [t.fitSize(1000, 500, 512), t.fitSize(300, 200, 512)],
}}));
"""
    (tmp_path / "check.mjs").write_text(script)
    out = json.loads(subprocess.run([node, str(tmp_path / "check.mjs")], capture_output=True, text=True,
                                    check=True).stdout)
    def chw(a):
        return np.array(a, np.float32).reshape(3, h, w).transpose(1, 2, 0)
    assert np.abs(chw(out["preserve"]) - preserve_color(stylized, content)).max() < 1e-5
    assert np.abs(chw(out["strength"]) - mix_strength(stylized, content, 0.3)).max() < 1e-6
    assert out["weights"] == [0.25, 0, 0.75] and out["zero"] is None
    assert np.allclose(out["planes"], np.array([0, 10, 128, 20, 255, 30]) / 255)
    assert out["back"] == [0, 128, 255, 255, 10, 20, 30, 255]
    assert out["fit"] == [[512, 256], [300, 200]]


@pytest.mark.browser
def test_pinned_hashes_match_the_npm_package():
    """RUNTIME_INTEGRITY and ORT_WEB_VERSION against the onnxruntime-web that
    tests/browser/package.json pins (installed by `npm ci --prefix tests/browser`)."""
    if not NPM_DIST.is_dir():
        pytest.skip("onnxruntime-web is not installed (npm ci --prefix tests/browser)")
    pinned = json.loads((REPO / "tests" / "browser" / "package.json").read_text())
    assert pinned["dependencies"]["onnxruntime-web"] == site_mod.ORT_WEB_VERSION
    assert site_mod.ort_dist_version(NPM_DIST) == site_mod.ORT_WEB_VERSION
    assert {name: sri_hash(NPM_DIST / name) for name in runtime_files()} == RUNTIME_INTEGRITY


def test_the_docs_give_the_npm_line_of_the_pinned_runtime():
    """The offline page needs onnxruntime-web at exactly the pinned version (issue 29)."""
    deploy = (REPO / "docs" / "deploy.md").read_text()
    assert f"npm install onnxruntime-web@{site_mod.ORT_WEB_VERSION}" in deploy


def test_a_crafted_site_manifest_cannot_make_web_delete_outside_its_folder(graphs, tmp_path):
    target = write_site(tmp_path / "site", graphs / "tiny.onnx").path
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    manifest = json.loads((target / "site.json").read_text())
    manifest["files"] += ["../victim.txt", str(victim)]
    (target / "site.json").write_text(json.dumps(manifest))
    write_site(target, graphs / "baked.onnx")
    assert victim.read_text() == "keep"
    assert json.loads((target / "site.json").read_text())["baked_blend"]


def test_web_force_never_replaces_a_users_own_files(graphs, tmp_path):
    """`web -o DIR --force` once replaced the user's index.html and model.onnx in a folder
    the site did not write; and `web -o /` walked the whole file system."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "index.html").write_text("my page")
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(SiteError, match="index.html.*nothing was changed"):
        write_site(mine, graphs / "tiny.onnx", force=True)
    assert (mine / "index.html").read_text() == "my page" and sorted(p.name for p in mine.iterdir()) == [
        "index.html", "notes.txt"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging folder left
    with pytest.raises(SiteError, match="root"):
        write_site("/", graphs / "tiny.onnx", force=True)


def test_the_page_grain_is_the_python_grain(tmp_path):
    """tensor.js's grainPlanes, run in Node, feeds the network exactly the pixels
    cin_style.infer.grain.with_grain gives (the page and the camera match `stylize`)."""
    from cin_style.infer.grain import with_grain

    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed")
    rgb = np.random.default_rng(1).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    rgb[:4] = 0
    rgb[-4:] = 255  # the clip at both ends
    tensor_js = (Path(site_mod.__file__).parent / "page" / "tensor.js").as_uri()
    planes = (rgb.transpose(2, 0, 1).astype(np.float32) / 255).ravel().tolist()
    script = f"""
import * as t from {json.dumps(tensor_js)};
const planes = Float32Array.from({json.dumps(planes)});
console.log(JSON.stringify({{
  three: Array.from(t.grainPlanes(planes, 53, 37, 3)),
  eight: Array.from(t.grainPlanes(planes, 53, 37, 8)),
  off: t.grainPlanes(planes, 53, 37, 0) === planes,
}}));
"""
    (tmp_path / "grain.mjs").write_text(script)
    out = json.loads(subprocess.run([node, str(tmp_path / "grain.mjs")], capture_output=True, text=True,
                                    check=True).stdout)
    for amplitude in (3, 8):
        page = np.rint(np.array(out["three" if amplitude == 3 else "eight"]).reshape(3, 37, 53) * 255)
        assert np.array_equal(page.transpose(1, 2, 0).astype(np.uint8), with_grain(rgb, amplitude))
    assert out["off"]
