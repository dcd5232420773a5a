"""`cin-style batch` on a real local Ray cluster (2 CPUs, started here): outputs equal
`stylize`'s, corrupt files are error rows, reruns skip what is done, and killing the
driver or a worker loses nothing and duplicates nothing."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import TINY_NAMES, make_tiny_model
from PIL import Image

from cin_style.cli.main import cli
from cin_style.deploy.export import export
from cin_style.io.synthetic import textured
from cin_style.nn.checkpoint import atomic_torch_save, make_checkpoint

ray = pytest.importorskip("ray", reason="the batch extra is not installed (pip install -e '.[batch]')")
pq = pytest.importorskip("pyarrow.parquet")

from cin_style.batch.job import BatchJob, run_batch  # noqa: E402

CORRUPT = {"truncated.png": lambda good: good[: len(good) // 3], "text.jpg": lambda good: b"not an image at all",
           "empty.png": lambda good: b""}


def photo_folder(root: Path, count: int, sizes=((48, 64), (64, 48), (40, 40))) -> Path:
    folder = root / "photos"
    (folder / "sub").mkdir(parents=True)
    for i in range(count):
        h, w = sizes[i % len(sizes)]
        Image.fromarray(textured(h, w, seed=i, noise=20)).save(folder / ("sub" if i % 4 == 0 else "") / f"p{i:03d}.png")
    good = (folder / "p001.png").read_bytes()
    for name, make in CORRUPT.items():
        (folder / name).write_bytes(make(good))
    return folder


def actor_pids() -> set[int]:
    """The processes of this machine running our Ray actor, found from outside: Ray names
    each actor process after its class (ray::...StylizeActor...)."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"StylizeActor" in command and entry.name != str(os.getpid()):
                pids.add(int(entry.name))
    return pids


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch")
    atomic_torch_save(make_checkpoint(make_tiny_model(), TINY_NAMES), root / "m.pt")
    export(root / "m.pt", root / "m.onnx", verify=False)
    return root, photo_folder(root, 200)


def manifest_rows(out: Path) -> list[dict]:
    return pq.read_table(out / "manifest").to_pylist()


def test_outputs_equal_stylize_and_bad_files_are_error_rows(cluster, setup, tmp_path):
    root, photos = setup
    job = BatchJob(str(photos), str(tmp_path / "out"), str(root / "m.onnx"), ("beta=0.3,gamma=0.7",),
                   strength=0.8, preserve_color=True, batch_size=8, actors=(1, 2))
    summary = run_batch(job, show_progress=False)
    assert (summary.total, summary.done, summary.errors, summary.skipped) == (203, 200, 3, 0)
    rows = manifest_rows(tmp_path / "out")
    assert len(rows) == 203 and len({r["input"] for r in rows}) == 203
    assert len(list((tmp_path / "out" / "manifest").iterdir())) == 1  # compacted
    errors = {Path(r["input"]).name: r["error"] for r in rows if r["status"] == "error"}
    assert set(errors) == set(CORRUPT) and all("\n" not in e and str(photos) in e for e in errors.values())
    done = [r for r in rows if r["status"] == "done"]
    assert all(r["blend"] == "beta=0.3,gamma=0.7" and len(r["model_sha256"]) == 64 for r in done)
    assert (tmp_path / "out" / "sub" / "p000.png").is_file()  # relative paths kept
    for name in ("p001.png", "sub/p004.png", "p002.png"):
        expected = tmp_path / "cli" / name
        result = CliRunner().invoke(cli, ["stylize", str(root / "m.onnx"), str(photos / name), "-o", str(expected),
                                          "--style", "beta=0.3,gamma=0.7", "--strength", "0.8", "--preserve-color"])
        assert result.exit_code == 0, result.output
        assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / name)), np.asarray(Image.open(expected)))
    # A rerun skips what is done (the bad files are tried again, and fail again).
    before = (tmp_path / "out" / "p001.png").stat().st_mtime_ns
    again = run_batch(job, show_progress=False)
    assert (again.skipped, again.done, again.errors) == (200, 0, 3)
    assert (tmp_path / "out" / "p001.png").stat().st_mtime_ns == before
    assert len(manifest_rows(tmp_path / "out")) == 203


def test_inputs_from_lists_and_globs(cluster, setup, tmp_path):
    import pyarrow as pa

    root, photos = setup
    names = ["p010.png", "p011.png", "sub/p012.png"]
    pq.write_table(pa.table({"path": [str(photos / n) for n in names]}), tmp_path / "list.parquet")
    (tmp_path / "list.csv").write_text("id,path\n" + "".join(f"{i},{photos / n}\n" for i, n in enumerate(names)))
    (tmp_path / "list.txt").write_text("# photos\n" + "".join(f"{photos / n}\n" for n in names))
    for source in ("list.parquet", "list.csv", "list.txt"):
        out = tmp_path / f"out-{source}"
        summary = run_batch(BatchJob(str(tmp_path / source), str(out), str(root / "m.onnx")), show_progress=False)
        assert (summary.done, summary.errors) == (3, 0), source
        assert sorted(p.name.rsplit("-", 1)[0] for p in out.glob("*.png")) == ["p010", "p011", "p012"]
    summary = run_batch(BatchJob(str(photos / "p00*.png"), str(tmp_path / "glob"), str(root / "m.onnx")),
                        show_progress=False)
    assert summary.done == 7  # p000..p009 but p000, p004, p008 (under sub/)


def test_bad_arguments_are_one_line(setup, tmp_path):
    root, photos = setup
    for args, words in [([str(tmp_path / "none"), "-o", str(tmp_path / "o")], "input not found"),
                        ([str(photos), str(root / "m.pt"), "-o", str(tmp_path / "o")], "export"),
                        ([str(photos), "-o", str(tmp_path / "o"), "--actors", "3,1"], "--actors"),
                        ([str(photos), "-o", str(tmp_path / "o"), "--style", "nope"], "unknown style")]:
        result = CliRunner().invoke(cli, ["batch", *args])
        assert result.exit_code != 0 and words in result.output and "Traceback" not in result.output, result.output


def test_a_worker_killed_mid_run_is_replaced_and_its_batch_rerun(cluster, setup, tmp_path):
    root, photos = setup
    out = tmp_path / "out"
    job = BatchJob(str(photos), str(out), str(root / "m.onnx"), batch_size=2, actors=(1, 1))
    result: dict = {}
    before = actor_pids()  # actors of earlier tests' jobs, if any are still alive
    runner = threading.Thread(target=lambda: result.update(summary=run_batch(job, show_progress=False)))
    runner.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out / "manifest").is_dir():
        time.sleep(0.05)
    (victim,) = actor_pids() - before
    os.kill(victim, signal.SIGKILL)
    seen = {victim}
    while runner.is_alive():  # the actors this job starts, watched from outside
        seen |= actor_pids() - before
        runner.join(timeout=0.05)
    summary = result["summary"]
    assert len(seen) >= 2  # a second actor was started
    assert (summary.done, summary.errors) == (200, 3)
    rows = manifest_rows(out)
    assert len(rows) == 203 and len({r["input"] for r in rows}) == 203


def cli_batch(photos, out, *extra):
    return subprocess.Popen([sys.executable, "-m", "cin_style.cli.main", "batch", str(photos), "lite", "-o", str(out),
                             "--batch-size", "4", "--actors", "1,1", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_a_killed_driver_then_a_rerun_does_every_image_once(tmp_path):
    """SIGKILL the driver (and with it its local cluster) mid-run, run again: every image
    done exactly once in the manifest, each output whole, no temp files left."""
    photos = photo_folder(tmp_path, 120, sizes=((192, 256), (256, 192)))  # the lite model: ~20 ms an image
    out = tmp_path / "out"
    first = cli_batch(photos, out)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list((out / "manifest").glob("part-*"))) < 2:
        time.sleep(0.02)
    from cin_style.batch.reaper import descendants

    cluster = {pid: cmd for pid, cmd in descendants(first.pid).items() if b"cin_style.batch.reaper" not in cmd}
    assert any(b"raylet" in cmd for cmd in cluster.values()), cluster  # its own local cluster
    first.send_signal(signal.SIGKILL)
    first.wait()
    partial = {r["input"] for r in manifest_rows(out)}
    assert 0 < len(partial) < 123, len(partial)  # killed mid-run
    deadline = time.monotonic() + 20  # Ray's agents once outlived the driver by minutes
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in cluster):
        time.sleep(0.2)
    left = {pid: cmd[:60] for pid, cmd in cluster.items() if Path(f"/proc/{pid}").exists()}
    assert not left, left
    time.sleep(2)  # Ray's session files and ports settle before a new local cluster starts
    second = cli_batch(photos, out)
    _, err = second.communicate(timeout=600)
    assert second.returncode == 1, err  # the three bad files
    rows = manifest_rows(out)
    assert len(rows) == 123 and len({r["input"] for r in rows}) == 123
    assert sum(r["status"] == "done" for r in rows) == 120
    for row in rows:
        if row["status"] == "done":
            with Image.open(row["output"]) as image:
                image.load()
                assert image.size == (row["width"], row["height"])
    assert not [p for p in out.rglob("*.tmp")] and not [p for p in out.rglob(".*")]


def test_an_output_folder_inside_the_input_is_not_read_as_input(tmp_path):
    """`batch in -o in/styled` once took its own outputs for inputs on a rerun."""
    from cin_style.batch.inputs import resolve_items

    photos = tmp_path / "in"
    (photos / "styled").mkdir(parents=True)
    for name in ("a.png", "styled/a.png", "styled/b.png"):
        Image.fromarray(textured(20, 20, seed=1)).save(photos / name)
    items = resolve_items(str(photos), str(photos / "styled"))
    assert [Path(i.input).name for i in items] == ["a.png"]
    assert Path(items[0].output) == photos / "styled" / "a.png"
