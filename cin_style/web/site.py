"""`cin-style web`: a self-contained static folder that runs a model in the browser.

    index.html, app.js, tensor.js, camera.js, style.css   the page (plain ES modules, no build step)
    model.onnx                                 the graph, as exported
    site.json                                  style names, model facts, preferred input size
    ort/                                       onnxruntime-web, only with --ort-dist

Without ``ort_dist`` the page imports onnxruntime-web from a public CDN at a pinned
version, every file checked by a subresource-integrity hash (scripts through the
import map, the wasm binary through fetch).  torch is needed only to export a .pt.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from cin_style.assets.bundled import bundled_graph, models_folder, names_bundled_model, resolve_model
from cin_style.errors import CinStyleError, UsageError
from cin_style.infer.grain import DEFAULT_GRAIN
from cin_style.io.atomic import atomic_folder

ORT_WEB_VERSION = "1.30.0"
CDN_BASE = f"https://cdn.jsdelivr.net/npm/onnxruntime-web@{ORT_WEB_VERSION}/dist/"
# What the page loads per backend: the ES module, the wasm glue module it imports, the binary.
# The WebGPU build also runs the wasm provider, but the plain wasm build is half the download.
RUNTIME_FILES = {
    "wasm": ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"),
    "webgpu": ("ort.webgpu.min.mjs", "ort-wasm-simd-threaded.asyncify.mjs", "ort-wasm-simd-threaded.asyncify.wasm"),
}
# sha384 of those files in the npm package at ORT_WEB_VERSION (tests check them against
# a local copy of the package, so the two cannot drift apart).
RUNTIME_INTEGRITY = {
    "ort.wasm.min.mjs": "sha384-SfFfy/pvthiOsgaw3KX0bV5TfQ6Iq+oY9KutMe4SxIuHH4cl+DCSD4rTsYOoG1tJ",
    "ort-wasm-simd-threaded.mjs": "sha384-XcXA/MtAf0WpB8e023xQH9CM7RIjiugakT7x99DIwpFf7k56BIFFcAPerIF7FDad",
    "ort-wasm-simd-threaded.wasm": "sha384-vjBJ1z7qrhkTyYsNqKeF6c7N+nOJSU94czEo+tvZcu8G75JparGq9kB+kTnEUNVM",
    "ort.webgpu.min.mjs": "sha384-FPQBMbud8ICuP0Ii+Gr95KWEX9pKHtUC3lacIp0aPI8WYluKvTsEGQ3AE2Ze3QlL",
    "ort-wasm-simd-threaded.asyncify.mjs": "sha384-qViEcCGzsR/m8nlQwIsbYh7afN4thuraqFYDQY6huvmoLVoZq/eYawQ1wrv8nnhA",
    "ort-wasm-simd-threaded.asyncify.wasm": "sha384-EPVDLTxuO663dkZO/pcKJF6vOyyfq/5z9FY1oksN0UWFX2ABH4wDDZQHeNoUleWR",
}
PAGE_FILES = ("index.html", "app.js", "tensor.js", "camera.js", "style.css")
GRAPH_NAME = "model.onnx"
MANIFEST_NAME = "site.json"
RUNTIME_FOLDER = "ort"
# The page scales photos down to this long side: the bundled model was trained on 256-px
# photos, and 512² takes about a second in a browser's wasm backend.
DEFAULT_MAX_SIDE = 512


class SiteError(CinStyleError):
    """A site that cannot be written as asked; the message is meant for users."""


@dataclass(frozen=True)
class SiteResult:
    path: Path
    graph_bytes: int
    runtime: str  # "local copy of onnxruntime-web X" or "CDN ..."
    style_names: list[str]
    baked_blend: str


def sri_hash(path: Path) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(path.read_bytes()).digest()).decode()


def runtime_files() -> list[str]:
    return [name for files in RUNTIME_FILES.values() for name in files]


def ort_dist_version(dist: Path) -> str:
    """The version of an onnxruntime-web ``dist`` folder (from its package.json)."""
    try:
        return json.loads((dist.parent / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return "unknown version"


def check_ort_dist(dist: Path) -> None:
    missing = [name for name in runtime_files() if not (dist / name).is_file()]
    if missing:
        raise SiteError(
            f"{dist}: not an onnxruntime-web dist folder (missing {', '.join(missing)}); "
            f"pass node_modules/onnxruntime-web/dist"
        )


def import_map(base: str, integrity: bool) -> dict:
    """Where the page's `import('onnxruntime-web/<backend>')` goes; SRI hashes for a CDN."""
    imports = {f"onnxruntime-web/{backend}": base + files[0] for backend, files in RUNTIME_FILES.items()}
    result: dict = {"imports": imports}
    if integrity:
        result["integrity"] = {
            base + name: RUNTIME_INTEGRITY[name]
            for files in RUNTIME_FILES.values()
            for name in files
            if name.endswith(".mjs")
        }
    return result


def _graph_source(model: str | os.PathLike | None) -> tuple[Path, str]:
    """The graph or checkpoint to publish and the page's title for it."""
    if model is None or names_bundled_model(str(model)):
        # The page's default is the lite model: the browser runs it several times faster.
        name = "lite" if model is None and bundled_graph("lite").is_file() else str(model or "reference")
        source = resolve_model(name, graph=True)
        if not source.is_file():
            raise SiteError(f"this installation has no bundled graph ({source}); pass a MODEL file")
        return source, f"{name} model"
    source = resolve_model(model)
    if not source.is_file():
        raise SiteError(f"{source}: no such file")
    if source.suffix.lower() not in (".onnx", ".pt"):
        raise UsageError(f"{source}: MODEL must be an exported .onnx graph or a .pt checkpoint")
    return source, source.stem


def _export(checkpoint: Path, target: Path, precision: str) -> None:
    from cin_style.deploy.onnx_export import export_onnx
    from cin_style.nn.checkpoint import load_model

    net, names = load_model(checkpoint)
    export_onnx(net, names, target, precision=precision, model_source=checkpoint.name)


def _json_metadata(metadata: dict[str, str], key: str, graph: Path) -> dict:
    try:
        value = json.loads(metadata.get(key, "{}") or "{}")
    except ValueError:
        raise SiteError(f"{graph}: its {key} metadata is not JSON; re-export the graph") from None
    if not isinstance(value, dict):
        raise SiteError(f"{graph}: its {key} metadata is not a JSON object; re-export the graph")
    return value


def _facts(metadata: dict[str, str], graph: Path, runtime: str) -> dict[str, str]:
    facts = {}
    config = _json_metadata(metadata, "model_config", graph)
    if config:
        facts["network"] = f"width {config.get('base_width')}, {config.get('num_residual_blocks')} residual blocks"
    facts["precision"] = metadata.get("precision", "fp32")
    parity = _json_metadata(metadata, "parity", graph)
    if parity:
        facts["parity vs PyTorch"] = (
            f"max |diff| {parity.get('max_abs_diff', 0):.2g}, min PSNR {parity.get('min_psnr_db', 0):.1f} dB"
        )
    if metadata.get("source"):
        facts["exported from"] = metadata["source"]
    facts["graph"] = f"{GRAPH_NAME}, {graph.stat().st_size / 1e6:.1f} MB"
    facts["runtime"] = runtime
    return facts


def write_site(
    out: str | os.PathLike,
    model: str | os.PathLike | None = None,
    *,
    ort_dist: str | os.PathLike | None = None,
    max_side: int = DEFAULT_MAX_SIDE,
    precision: str = "fp16-weights",
    force: bool = False,
) -> SiteResult:
    """Write the static site for ``model`` (None: the bundled lite model) into ``out``.

    The site is built beside ``out`` first; nothing changes there unless it all
    succeeded.  An existing ``out`` must be empty or an earlier site; files there that
    an earlier site did not write (its manifest lists them) refuse the write unless
    ``force``, and are never deleted: only our own files are replaced.
    """
    from cin_style.infer.onnx_runner import StyleRunner
    from cin_style.infer.runtimes import DEFAULT_RUNTIME

    out = Path(out).resolve()  # "." has no name to build a temp folder beside
    if out == Path(out.anchor):
        raise SiteError(f"{out} is the file system's root: name a folder for the site")
    foreign = _foreign_files(out, first=4)
    if foreign and not force:
        shown = ", ".join(str(p.relative_to(out)) for p in foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise SiteError(
            f"{out} holds files `cin-style web` did not write ({shown}); choose a new or empty "
            f"folder, or pass --force to replace only the site's own files"
        )
    if max_side < 16:
        raise UsageError(f"--max-side must be at least 16 pixels, got {max_side}")
    dist = Path(ort_dist) if ort_dist is not None else None
    if dist is not None:
        check_ort_dist(dist)
    source, title = _graph_source(model)
    if source.suffix.lower() == ".onnx":
        runner = StyleRunner(source, device="cpu", threads=1, runtime=DEFAULT_RUNTIME)  # ours, and sound?
        if runner.capabilities.tiles_only or runner.capabilities.masks:
            raise SiteError(
                f"{source} is the {runner.metadata['variant']} variant; the page runs a plain "
                f"graph (`cin-style export MODEL -o model.onnx`, --bake and fp16 work)"
            )
    result: dict = {}

    def build(folder: Path) -> None:
        page = resources.files("cin_style.web") / "page"
        for name in PAGE_FILES:
            (folder / name).write_bytes((page / name).read_bytes())
        graph = folder / GRAPH_NAME
        if source.suffix.lower() == ".onnx":
            shutil.copyfile(source, graph)
        else:
            _export(source, graph, precision)
        runner = StyleRunner(graph, device="cpu", threads=1, runtime=DEFAULT_RUNTIME)
        if dist is not None:
            (folder / RUNTIME_FOLDER).mkdir()
            for name in runtime_files():
                shutil.copyfile(dist / name, folder / RUNTIME_FOLDER / name)
            base, runtime = f"./{RUNTIME_FOLDER}/", f"onnxruntime-web {ort_dist_version(dist)} (local copy)"
            integrity = {}
        else:
            base, runtime = CDN_BASE, f"onnxruntime-web {ORT_WEB_VERSION} from {CDN_BASE}"
            integrity = {name: RUNTIME_INTEGRITY[name] for name in runtime_files()}
        html = (folder / "index.html").read_text(encoding="utf-8")
        (folder / "index.html").write_text(
            html.replace("{{IMPORTMAP}}", json.dumps(import_map(base, bool(integrity)), indent=1)), encoding="utf-8"
        )
        manifest = {
            "format": 1,
            "title": title,
            "graph": GRAPH_NAME,
            "style_names": runner.style_names,
            "baked_blend": runner.metadata.get("baked_blend", "") if runner.capabilities.baked else "",
            "max_side": max_side,
            "grain": DEFAULT_GRAIN,
            "facts": _facts(runner.metadata, graph, runtime),
            "card": "",
            "runtime": {
                "base": base,
                "integrity": integrity,
                "wasm": {backend: files[2] for backend, files in RUNTIME_FILES.items()},
            },
        }
        if (model is None or names_bundled_model(str(model))) and (models_folder() / "MODEL_CARD.md").is_file():
            shutil.copyfile(models_folder() / "MODEL_CARD.md", folder / "MODEL_CARD.md")
            manifest["card"] = "MODEL_CARD.md"
        manifest["files"] = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        manifest["files"].append(MANIFEST_NAME)
        (folder / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        result.update(
            graph_bytes=graph.stat().st_size,
            runtime=runtime,
            style_names=runner.style_names,
            baked_blend=manifest["baked_blend"],
        )

    _install(out, build)
    return SiteResult(out, **result)


def _own_files(out: Path) -> set[str]:
    """The files an earlier site in ``out`` wrote, by its manifest (sites from before
    manifests listed them: the page, the graph, the card and the runtime copy)."""
    try:
        manifest = json.loads((out / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    if isinstance(manifest.get("files"), list):
        # only plain relative names inside the folder: a crafted manifest must not reach out
        return {str(f) for f in manifest["files"] if isinstance(f, str) and _plain_relative(f)}
    return {
        *PAGE_FILES,
        GRAPH_NAME,
        MANIFEST_NAME,
        "MODEL_CARD.md",
        *(f"{RUNTIME_FOLDER}/{n}" for n in runtime_files()),
    }


def _plain_relative(name: str) -> bool:
    """A name inside a folder: relative, with no ``..``."""
    relative = Path(name)
    return not relative.is_absolute() and ".." not in relative.parts and bool(relative.parts)


def _foreign_files(out: Path, first: int) -> list[Path]:
    """The first few files ``out`` holds that no earlier site of ours wrote (not a folder:
    itself); the walk stops there, so a huge folder is not read whole."""
    if not out.exists():
        return []
    if not out.is_dir():
        return [out]
    own = _own_files(out)
    found = (p for p in out.rglob("*") if p.is_file() and p.relative_to(out).as_posix() not in own)
    return sorted(itertools.islice(found, first))


def _install(out: Path, build) -> None:
    """Build the site in a temp folder beside ``out``, then move it in: a new or empty
    ``out`` becomes the folder; in an existing site each of our files is replaced (and
    our old files the new site lacks removed), and nothing else is touched."""
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        if out.exists():
            out.rmdir()
        atomic_folder(out, build)
        return
    old = _own_files(out)
    staged = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))  # a new name
    try:
        build(staged)
        new = {p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()}
        clash = sorted(n for n in new - old if (out / n).exists() or (out / n).is_symlink())
        if clash:  # --force keeps other files: one the site needs is in the way
            raise SiteError(
                f"{out} holds {', '.join(clash[:3])}, which an earlier site did not write and this one "
                f"needs: move it away or choose another folder (nothing was changed)"
            )
        for name in sorted(new, key=lambda n: n == MANIFEST_NAME):  # the manifest last
            target = out / name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged / name, target)
        for name in old - new:
            (out / name).unlink(missing_ok=True)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
