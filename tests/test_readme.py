import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command_verbatim():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, flags=re.S)
    commands = [b for b in blocks[:2]]
    assert len(commands) == 2 and all("\n" not in c for c in commands)
    assert "cin-style demo" in commands[0] and "pytest" in commands[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert f'TEST_COMMAND="{commands[1]}"' in ci


def _python_blocks_after(heading: str) -> list[str]:
    """The Python blocks after ``heading`` in the README or the docs page that holds it."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    readme = next(text for text in (page.read_text() for page in pages) if heading in text)
    section = readme.split(heading, 1)[1]
    return re.findall(r"```python\n(.*?)\n```", section, flags=re.S)


def test_readme_python_api_snippet_runs(tmp_path, monkeypatch):
    import numpy as np
    import torch
    from conftest import make_tiny_model, write_image
    from PIL import Image

    from cin_style.assets import bundled
    from cin_style.nn.checkpoint import make_checkpoint

    model_file = tmp_path / "model.pt"
    torch.save(make_checkpoint(make_tiny_model(), ["starry_night", "great_wave", "poppies"]), model_file)
    monkeypatch.setattr(bundled, "reference_model", lambda: model_file)
    monkeypatch.chdir(tmp_path)
    write_image(tmp_path / "photo.jpg", seed=3, size=(40, 28))
    namespace = {"tensor_batch": torch.rand(2, 3, 24, 20),
                 "weights_matrix": np.array([[1, 0, 0], [0, 0.5, 0.5]], np.float32)}
    exec(_python_blocks_after("## Python API")[0], namespace)
    with Image.open(tmp_path / "out.png") as out:
        assert out.size == (40, 28)
    assert namespace["batch"].shape == (2, 3, 24, 20)


@pytest.mark.slow
def test_readme_runner_snippet_runs(tmp_path, monkeypatch):
    import numpy as np
    from conftest import make_tiny_model
    from PIL import Image

    from cin_style.deploy.onnx_export import export_onnx

    export_onnx(make_tiny_model(), ["starry_night", "great_wave", "poppies"], tmp_path / "model.onnx",
                verify=False)
    monkeypatch.chdir(tmp_path)
    namespace = {"pil_image": Image.new("RGB", (30, 20), (200, 40, 10)),
                 "uint8_array": np.full((18, 26, 3), 90, np.uint8)}
    exec(_python_blocks_after("From Python, without torch:")[0], namespace)
    outs = namespace["outs"]
    assert isinstance(outs[0], Image.Image) and outs[0].size == (30, 20)
    assert outs[1].dtype == np.uint8 and outs[1].shape == (18, 26, 3)


def test_importing_the_packages_loads_neither_torch_nor_onnxruntime():
    import subprocess
    import sys

    script = ("import sys, cin_style, cin_style.infer, cin_style.deploy; "
              "assert callable(cin_style.__getattr__); "
              "print(sorted(m for m in ('torch', 'onnxruntime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
