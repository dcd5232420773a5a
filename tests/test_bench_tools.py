"""The measuring tools' own parts: the synthetic video clips' known motion, the
big-image mosaic, and the tiled-vs-untiled comparison."""

import numpy as np

from cin_style.bench.big import compare, mosaic
from cin_style.bench.video import MOTIONS, format_video_table, synthetic_clip


def test_synthetic_clips_move_as_stated():
    for motion in MOTIONS:
        clip = synthetic_clip(motion, frames=3, size=(120, 80))
        assert len(clip) == 3 and all(f.shape == (80, 120, 3) and f.dtype == np.uint8 for f in clip)
        assert not np.array_equal(clip[0], clip[2]), motion
    pan = synthetic_clip("pan", frames=2, size=(120, 80))
    assert np.array_equal(pan[1][:, :-3], pan[0][:, 3:])  # 3 px per frame to the left


def test_mosaic_is_real_photos_at_their_own_size():
    image = mosaic(300, 200)
    assert image.shape == (200, 300, 3) and image.std() > 20


def test_compare_finds_differences_at_tile_borders():
    whole = np.zeros((64, 64, 3), np.uint8)
    seams = whole.copy()
    seams[30:34] = 10  # a seam along the tile border at row 32
    result = compare(seams, whole, tile=32)
    assert result["mean_diff_near_borders"] > 0 and result["mean_diff_elsewhere"] == 0
    assert result["max_abs_diff"] == 10 and np.isfinite(result["psnr_db"])


def test_video_table_relates_every_mode_to_per_frame():
    rows = [{"clip": "pan", "mode": "per-frame", "warping_error": 0.1, "style_loss": 2e-5, "fps": 1.0,
             "new_content_texture": 20.0},
            {"clip": "pan", "mode": "flow blending", "warping_error": 0.02, "style_loss": 2.2e-5, "fps": 0.9,
             "new_content_texture": 19.0},
            {"clip": "noise", "mode": "per-frame", "warping_error": 0.1, "style_loss": 2e-5, "fps": 1.0,
             "new_content_texture": None}]
    table = format_video_table({"model": "m", "style": "s", "frames": 2, "size": [8, 8],
                                "consistency_strength": 0.95, "rows": rows})
    assert "| pan | flow blending | 0.0200 | 0.20x | 2.2e-05 | 1.10x | 19.00 | 0.95x | 0.90 |" in table
    assert "| noise | per-frame | 0.1000 | 1.00x | 2e-05 | 1.00x | - | - | 1.00 |" in table


def test_new_content_masks_cover_what_each_clip_brings_in():
    from cin_style.bench.video import new_content

    pan = new_content("pan", 12, size=(100, 60))
    assert pan[:, -33:].all() and not pan[:, :-33].any()  # 3 px a frame for 11 frames
    zoom_out = new_content("zoom out", 12, size=(100, 60))
    assert zoom_out[0].all() and zoom_out[:, 0].all() and not zoom_out[30, 50]
    uncovered = new_content("moving object", 12, size=(854, 480))
    assert uncovered.any() and not uncovered[480 * 5 // 16 + 33, 40 + 88 + 20]  # under the object now
    assert new_content("noise", 12) is None
