"""CI, in the wheel's venv (the light install): every file of the bundled models is in the
wheel, and `cin-style stylize` takes a 3000x2250 photo with the bundled lite model under the
1.5 GiB cap: by default (the stroke size follows the photo's size) and at --style-scale 1 (the
network at full size, through the shipped tiled graph).
Exits non-zero and says why otherwise."""

import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from cin_style.assets.bundled import BUNDLED_MODELS, models_folder

CAP_MIB = 1536  # the README's cap: 1.5 GiB

missing = [f for model in BUNDLED_MODELS.values() for f in model.files if not (models_folder() / f).is_file()]
if missing:
    sys.exit(f"the wheel lacks the bundled model files {missing}")
with tempfile.TemporaryDirectory() as tmp:
    rng = np.random.default_rng(0)
    gradient = np.linspace(0, 255, 3000, dtype=np.float32)[None, :, None]
    photo = np.clip(gradient + rng.normal(0, 20, (2250, 3000, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(photo).save(Path(tmp) / "photo.jpg", quality=90)
    cli = str(Path(sys.executable).with_name("cin-style"))
    for extra in ((), ("--style-scale", "1")):
        command = [cli, "stylize", "lite", "photo.jpg", "-o", "out.jpg", "--style", "starry_night", "--json", "-q"]
        done = subprocess.run([*command, *extra], cwd=tmp, capture_output=True, text=True)
        peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest child so far
        print(done.stdout.strip(), done.stderr.strip(), f"peak RSS {peak_mib:.0f} MiB (cap {CAP_MIB:.0f})", sep="\n")
        if done.returncode != 0:
            sys.exit(f"stylize exited {done.returncode}")
        with Image.open(Path(tmp) / "out.jpg") as out:
            if out.size != (3000, 2250):
                sys.exit(f"the output is {out.size}, not 3000x2250")
        if peak_mib > CAP_MIB:
            sys.exit(f"peak RSS {peak_mib:.0f} MiB is above the cap")
