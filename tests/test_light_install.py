"""The light install: with torch (and the rest of the `train` extra) unimportable,
the CLI still lists and runs the bundled model's ONNX copy, --help works for every
command, and torch-only commands say in one line which extra to install."""

import json
import subprocess
import sys
import textwrap

import pytest
from conftest import write_image

# Runs the CLI as a light install would: the train extra's modules cannot be imported.
LIGHT = textwrap.dedent("""
    import sys
    for name in ("torch", "torchvision", "onnx", "onnxscript", "pytorch_msssim"):
        sys.modules[name] = None  # `import torch` now raises ModuleNotFoundError
    from cin_style.cli.main import main
    sys.argv = ["cin-style", *sys.argv[1:]]
    main()
""")


def light(*args, cwd=None):
    return subprocess.run([sys.executable, "-c", LIGHT, *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


@pytest.mark.slow
def test_light_install_runs_the_bundled_graph(tmp_path):
    listed = light("styles", "--json")
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == 16
    photo = write_image(tmp_path / "photo.png", seed=4, size=(48, 36))
    done = light("stylize", photo, "-o", tmp_path / "out.png", "--style", "starry_night=0.5,poppies=0.5",
                 "--json")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout.strip().splitlines()[-1])
    assert record["size"] == [48, 36] and (tmp_path / "out.png").is_file()
    demo = light("demo", "-o", tmp_path / "demo", "--cell", "48")
    assert demo.returncode == 0, demo.stderr
    assert (tmp_path / "demo" / "contact_sheet.jpg").is_file()
    from clips import panning_frames, write_clip

    clip = write_clip(tmp_path / "clip.mp4", panning_frames(3, 32, 48))
    moving = light("video", clip, "-o", tmp_path / "painted.mp4", "--style", "poppies")
    assert moving.returncode == 0, moving.stderr  # video with the ONNX copy: PyAV + OpenCV, no torch
    assert (tmp_path / "painted.mp4").is_file()
    site = light("web", "-o", tmp_path / "site")  # the page ships the bundled graph: no torch needed
    assert site.returncode == 0, site.stderr
    assert len(json.loads((tmp_path / "site" / "site.json").read_text())["style_names"]) == 16


@pytest.mark.slow
def test_light_install_help_works_and_torch_commands_explain_the_extra(tmp_path):
    from cin_style.cli.main import cli

    for command in ["train", "optimize", "evaluate", "export", "bench", "add-style", "demo", "batch",
                    "stylize", "styles", "weights", "web", "serve", "video", "api"]:
        result = light(command, "--help")
        assert result.returncode == 0 and "Usage:" in result.stdout, (command, result.stderr)
    assert set(cli.commands) <= {"train", "optimize", "evaluate", "export", "bench", "add-style",
                                 "demo", "stylize", "styles", "weights", "web", "serve", "video", "api", "batch"}
    model = tmp_path / "m.pt"
    model.write_bytes(b"not needed: torch is missing first")
    for args in (["train", "--styles", tmp_path, "--content", tmp_path, "--out", model],
                 ["export", "-o", tmp_path / "x.onnx"],
                 ["stylize", model, tmp_path / "p.png", "-o", tmp_path / "o.png"]):
        if args[0] == "stylize":
            write_image(tmp_path / "p.png", seed=1)
        result = light(*args)
        assert result.returncode == 1, (args, result.stderr)
        assert "pip install -e '.[train]'" in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def without(modules, code: str) -> subprocess.CompletedProcess:
    """Python ``code`` run with ``modules`` unimportable."""
    script = f"import sys\nfor name in {tuple(modules)!r}:\n    sys.modules[name] = None\n" + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)


TRAIN = ("torch", "torchvision", "onnx", "onnxscript", "pytorch_msssim")
CLI = """
    from cin_style.cli.main import main
    sys.argv = ["cin-style", *{args!r}]
    main()
"""


def test_the_python_api_names_the_install_it_needs():
    done = without(TRAIN, """
        import cin_style
        try:
            cin_style.load_model()
        except cin_style.CinStyleError as exc:
            print(type(exc).__name__, exc)
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("MissingExtra cin_style.load_model needs the training install (torch is missing)")
    assert "pip install -e '.[train]'" in done.stdout and len(done.stdout.strip().splitlines()) == 1


def test_weights_path_needs_no_torch(tmp_path):
    cache = f"import os\nos.environ['CIN_STYLE_CACHE'] = {str(tmp_path)!r}\n"
    done = without(TRAIN, cache + textwrap.dedent(CLI.format(args=["weights", "path"])))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"none yet (would be {tmp_path / 'vgg16.pt'})")
    (tmp_path / "vgg16.pt").write_bytes(b"x")
    done = without(TRAIN, cache + textwrap.dedent(CLI.format(args=["weights", "path"])))
    assert done.returncode == 0 and done.stdout.strip() == str(tmp_path / "vgg16.pt")


def test_a_missing_extra_is_one_line_exit_1_and_nothing_before_it(tmp_path):
    from clips import panning_frames, write_clip

    clip = write_clip(tmp_path / "clip.mp4", panning_frames(3, 32, 48))
    done = without(("av",), CLI.format(args=["video", str(clip), "-o", str(tmp_path / "out.mp4")]))
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip() == ("Error: video needs the video install (PyAV is missing): "
                                   "in your cin-style clone, pip install -e '.[video]'")


def test_the_api_without_the_serve_extra_is_one_line():
    done = without(("uvicorn",), CLI.format(args=["api", "lite"]))
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip() == ("Error: `cin-style api` needs the serve install (uvicorn is missing): "
                                   "in your cin-style clone, pip install -e '.[serve]'")
