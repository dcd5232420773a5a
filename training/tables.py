"""Markdown tables for the model card from `cin-style evaluate --json` reports.

python training/tables.py styles  REPORT.json            # per-style validation table
python training/tables.py gatys   REPORT.json [NET.json] # network vs optimiser (--with-optimize)
python training/tables.py compare A.json B.json          # style/content ratios A/B on shared styles
python training/tables.py dumoulin runs/dumoulin         # multi-style vs single-style models
python training/tables.py curve training/reference.pt [FIRST_STEP]  # validation loss per checkpoint
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from statistics import mean


def load(path) -> dict:
    return json.loads(Path(path).read_text())


def styles_table(report: dict) -> str:
    rows = ["| style | content | style | TV | SSIM |", "|---|---|---|---|---|"]
    for name, m in report["styles"].items():
        rows.append(f"| {name} | {m['content']:.3f} | {m['style']:.3g} | {m['tv']:.3f} | {m['ssim']:.3f} |")
    ms = report["styles"].values()
    rows.append(
        f"| **mean** | {mean(m['content'] for m in ms):.3f} | {mean(m['style'] for m in ms):.3g} | "
        f"{mean(m['tv'] for m in ms):.3f} | {mean(m['ssim'] for m in ms):.3f} |"
    )
    return "\n".join(rows)


def gatys_table(report: dict, network: dict | None = None) -> str:
    """``report`` from ``evaluate --with-optimize``; the network's side from
    ``network`` when given (the same photos and styles, a newer model)."""
    net, opt = (network or report)["styles"], report["optimize_reference"]
    if network is not None and network["photos"] != report["photos"]:
        raise SystemExit("the two reports are on different photos")
    rows = [
        "| style | network style | optimiser style | ratio | network content | optimiser content |",
        "|---|---|---|---|---|---|",
    ]
    ratios = []
    for name in opt:
        ratio = net[name]["style"] / opt[name]["style"]
        ratios.append(ratio)
        rows.append(
            f"| {name} | {net[name]['style']:.3g} | {opt[name]['style']:.3g} | {ratio:.2f}× | "
            f"{net[name]['content']:.3f} | {opt[name]['content']:.3f} |"
        )
    rows.append(
        f"| **mean** | | | **{mean(ratios):.2f}×** | "
        f"{mean(net[n]['content'] for n in opt):.3f} | {mean(opt[n]['content'] for n in opt):.3f} |"
    )
    return "\n".join(rows)


def compare_table(a: dict, b: dict, label_a: str = "A", label_b: str = "B") -> str:
    shared = [n for n in a["styles"] if n in b["styles"]]
    rows = [
        f"| style | style {label_a} | style {label_b} | ratio | content {label_a} | content {label_b} "
        f"| SSIM {label_a} | SSIM {label_b} |",
        "|---|---|---|---|---|---|---|---|",
    ]
    ratios = []
    for n in shared:
        ma, mb = a["styles"][n], b["styles"][n]
        ratios.append(ma["style"] / mb["style"])
        rows.append(
            f"| {n} | {ma['style']:.3g} | {mb['style']:.3g} | {ratios[-1]:.2f}× | "
            f"{ma['content']:.3f} | {mb['content']:.3f} | {ma['ssim']:.3f} | {mb['ssim']:.3f} |"
        )
    rows.append(
        f"| **mean** | | | **{mean(ratios):.2f}×** | "
        f"{mean(a['styles'][n]['content'] for n in shared):.3f} | "
        f"{mean(b['styles'][n]['content'] for n in shared):.3f} | "
        f"{mean(a['styles'][n]['ssim'] for n in shared):.3f} | "
        f"{mean(b['styles'][n]['ssim'] for n in shared):.3f} |"
    )
    return "\n".join(rows)


def dumoulin_table(folder: Path) -> str:
    multi = load(folder / "multi_eval.json")
    singles = {}
    for path in sorted(folder.glob("single_*_eval.json")):
        report = load(path)
        singles.update(report["styles"])
    return compare_table(multi, {"styles": singles}, "4-style model", "single-style models")


def curve_table(checkpoint: str, first_step: int = 0, per_row: int = 12) -> str:
    """The validation scores stored in a training checkpoint, ``per_row`` checkpoints a table."""
    import torch

    scores = [v for v in torch.load(checkpoint, weights_only=True)["validation"] if v["step"] >= first_step]
    tables = []
    for start in range(0, len(scores), per_row):
        chunk = scores[start : start + per_row]
        tables.append(
            "\n".join(
                [
                    "| step | " + " | ".join(str(v["step"]) for v in chunk) + " |",
                    "|---|" + "---|" * len(chunk),
                    "| loss | " + " | ".join(f"{v['loss']:.2f}" for v in chunk) + " |",
                    "| style part | " + " | ".join(f"{v['style']:.2f}" for v in chunk) + " |",
                ]
            )
        )
    return "\n\n".join(tables)


def main(argv: list[str]) -> None:
    kind, *paths = argv
    if kind == "styles":
        print(styles_table(load(paths[0])))
    elif kind == "gatys":
        print(gatys_table(load(paths[0]), load(paths[1]) if len(paths) > 1 else None))
    elif kind == "compare":
        print(compare_table(load(paths[0]), load(paths[1]), *paths[2:4]))
    elif kind == "dumoulin":
        print(dumoulin_table(Path(paths[0])))
    elif kind == "curve":
        print(curve_table(paths[0], int(paths[1]) if len(paths) > 1 else 0))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
