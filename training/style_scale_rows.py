"""Style scale, method 2 (issue 26), measured on one style: a γ/β row trained on the painting
read at twice the model's style size (`cin-style add-style --style-size 512`), against
method 1 (`--style-scale 2`, the network on the photo shrunk by 2) on the photos of
`cin-style bench style-scale`, scored the same way (style loss against the painting's
Grams at 512 px, content loss and SSIM at 512, SSIM at full size).

    cin-style add-style cin_style/assets/models/reference.pt \\
        starry_night_x2=styles/starry_night.jpg --style-size 512 \\
        --content ../shared/data/content/train -o /tmp/ref_x2.pt --steps 600
    python training/style_scale_rows.py /tmp/ref_x2.pt
"""

import sys
import time

import numpy as np
import torch
from PIL import Image

from cin_style.assets.bundled import bundled_style_image
from cin_style.bench.style_scale import EVAL_SIDE, default_photos
from cin_style.data.photos import to_tensor
from cin_style.data.styles import load_style_image
from cin_style.evaluate.scores import EVAL_LOSS, Evaluator, luminance, ssim
from cin_style.infer.loader import load_stylizer
from cin_style.infer.stylizer import blend_for, stylize_photo
from cin_style.io.image import resize_long_side
from cin_style.nn.vgg import build_encoder

stylizer = load_stylizer(sys.argv[1], device="cpu")
photos = []
for path in default_photos()[:6]:
    image = Image.open(path).convert("RGB")
    factor = 2048 / max(image.size)
    photos.append(np.asarray(image.resize((round(image.width * factor), round(image.height * factor)), Image.LANCZOS)))


def small(a):
    return resize_long_side(a, EVAL_SIDE)


evaluator = Evaluator(build_encoder(EVAL_LOSS.encoder, EVAL_LOSS.layers), [to_tensor(small(p / 255.0)) for p in photos])
grams = evaluator.grams(load_style_image(bundled_style_image("starry_night"), EVAL_SIDE))
cases = {
    "S=1, the 256-px row": ("starry_night", 1.0),
    "S=2 (method 1)": ("starry_night", 2.0),
    "the 512-px row at S=1 (method 2)": ("starry_night_x2", 1.0),
}
for label, (row, scale) in cases.items():
    weights, _ = blend_for(stylizer, [row])
    started = time.perf_counter()
    outs = [stylize_photo(stylizer, p, weights, style_scale=scale) for p in photos]
    seconds = (time.perf_counter() - started) / len(photos)
    metrics = evaluator.score([to_tensor(small(o)) for o in outs], grams)
    with torch.no_grad():
        full = np.mean(
            [
                float(ssim(luminance(to_tensor(o)[None]), luminance(to_tensor(p / 255.0)[None].float())))
                for o, p in zip(outs, photos)
            ]
        )
    print(
        f"| {label} | {metrics.style:.4g} | {metrics.content:.4g} | {metrics.ssim:.3f} | {full:.3f} | {seconds:.2f} |"
    )
