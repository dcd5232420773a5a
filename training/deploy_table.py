"""The README's Deploy table: both bundled models to every target, with each file's size and
its parity against onnxruntime (latency: `cin-style bench runtimes`).  Writes JSON to
training/quality/deploy.json.  Usage: .venv/bin/python training/deploy_table.py [OUT_DIR]"""

import json
import sys
import tempfile
from pathlib import Path

from cin_style.deploy.export import export, file_size

TARGETS = [
    ("onnx", "{m}.onnx", {}),
    ("openvino", "{m}.xml", {}),
    ("openvino", "{m}_fp16.xml", {"precision": "fp16-weights"}),
    ("ort", "{m}.ort", {}),
    ("tflite", "{m}_256.tflite", {"size": (256, 256)}),
    ("tflite", "{m}_512.tflite", {"size": (512, 512)}),
    ("tflite", "{m}_512_int8.tflite", {"size": (512, 512), "precision": "int8"}),
    ("coreml", "{m}.mlpackage", {}),
]


out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="cin-style-deploy-"))
rows = []
for model in ("reference", "lite"):
    for fmt, name, options in TARGETS:
        summary = export(model, out / name.format(m=model), tiled_sibling=False, **options)
        files = summary.files or [summary.path]
        row = {
            "model": model,
            "format": fmt,
            "file": " + ".join(f.name for f in files),
            "precision": summary.precision,
            "bytes": sum(file_size(f) for f in files),
            "max_abs_diff": summary.parity.get("max_abs_diff"),
            "min_psnr_db": summary.parity.get("min_psnr_db"),
            "checked": "spec + MIL ops"
            if fmt == "coreml"
            else f"{summary.parity.get('runtime', 'onnxruntime')} vs "
            + ("PyTorch" if fmt == "onnx" else "onnxruntime fp32"),
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
Path("training/quality/deploy.json").write_text(json.dumps(rows, indent=1) + "\n")
