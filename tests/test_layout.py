"""The house rules of the package layout that CI's linters do not check themselves:
every package folder ships, modules stay small, the light core imports no torch.
(The layers and the absence of cycles are import-linter's job in .ci/run.)"""

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "cin_style"
MAX_MODULE_LINES = 500
MAX_CLI_MODULE_LINES = 300


def test_every_package_folder_is_listed_for_the_wheel():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in PACKAGE.rglob("__init__.py")}
    found.add("cin_style.assets.styles")  # the top-level styles/ folder, mapped by package-dir
    assert found == listed


def test_modules_stay_small():
    sizes = {p.relative_to(ROOT).as_posix(): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert {m: n for m, n in sizes.items() if n > MAX_MODULE_LINES} == {}
    assert {m: n for m, n in sizes.items() if m.startswith("cin_style/cli/") and n > MAX_CLI_MODULE_LINES} == {}


@pytest.mark.parametrize("module", ["cin_style.infer.onnx_runner", "cin_style.infer.loader", "cin_style.infer.files",
                                    "cin_style.blend.masks", "cin_style.io.image", "cin_style.config",
                                    "cin_style.assets.bundled", "cin_style.cli.main"])
def test_the_light_core_imports_no_torch(module):
    script = (f"import sys, {module}; "
              "print(sorted(m for m in ('torch', 'torchvision', 'onnx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_package_docstring_states_the_enforced_layers():
    import cin_style

    layers = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]["layers"]
    enforced = " → ".join(layer.replace("cin_style.", "") for layer in layers)
    assert enforced in " ".join(cin_style.__doc__.split())


def git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)


def test_every_file_of_the_bundled_models_is_tracked_and_packaged():
    """Ship whole: a file the runtime expects of a bundled model exists in a clone and the
    wheel only if git tracks it and the package data takes it."""
    from fnmatch import fnmatch

    from cin_style.assets.bundled import BUNDLED_MODELS
    from cin_style.infer.contract import tiled_sibling_path

    if git("rev-parse", "--is-inside-work-tree").returncode != 0:
        pytest.skip("not a git checkout: nothing to compare with what git tracks")
    folder = "cin_style/assets/models"
    tracked = set(git("ls-files", folder).stdout.split())
    expected = {f"{folder}/{file}" for model in BUNDLED_MODELS.values() for file in model.files}
    assert expected - tracked == set()
    for model in BUNDLED_MODELS.values():  # the runner's naming rule finds what is listed
        assert tiled_sibling_path(model.graph).name == model.tiled_graph
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert all(any(fnmatch(Path(f).name, g) for g in globs["cin_style.assets.models"]) for f in expected)
    # A graph added to the folder later is not silently ignored either.
    assert git("check-ignore", "-q", f"{folder}/new.onnx").returncode == 1
