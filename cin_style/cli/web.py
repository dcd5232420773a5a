"""`cin-style web` (a static page that stylizes in the browser) and `cin-style serve`."""

from __future__ import annotations

import click

from cin_style.cli.options import quiet_option


@click.command()
@click.argument("model", type=click.Path(), required=False)
@click.option(
    "-o",
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder to write: new, empty, or an earlier site (whose own files are replaced).",
)
@click.option(
    "--ort-dist",
    type=click.Path(file_okay=False, exists=True),
    default=None,
    help="Copy onnxruntime-web from this local dist folder (node_modules/onnxruntime-web/"
    "dist) instead of loading it from the CDN: a site that works offline.",
)
@click.option(
    "--max-side",
    type=click.IntRange(min=16),
    default=None,
    help="The page scales photos down to this long side  [default: 512].",
)
@click.option(
    "--precision",
    type=click.Choice(["fp32", "fp16", "fp16-weights"]),
    default="fp16-weights",
    show_default=True,
    help="For a .pt MODEL: the precision of the graph it is exported to (fp16-weights: "
    "half fp32's download, fp32 arithmetic; see `export --help`).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Write into a folder that holds other files too (they are kept; only the site's own files are replaced).",
)
@quiet_option
def web(model, out, ort_dist, max_side, precision, force):
    """Write a static web page that stylizes photos in the browser:
    onnxruntime-web runs the graph on the visitor's machine (WebGPU where the
    browser offers a GPU, else multi-threaded wasm).  Network: by default the
    page loads onnxruntime-web from a CDN (jsDelivr, pinned by hash); with
    --ort-dist it is copied into the site, which then works offline.

    \b
    MODEL: an exported .onnx graph (also a --bake'd one: no sliders then), a
    .pt checkpoint (exported here), or a bundled model's name (lite,
    reference); without it, the bundled lite model (fastest in a browser).
    Host everything in the folder; wasm threads need the COOP/COEP headers
    that `cin-style serve` sends.
    Example:
      cin-style web -o site/ && cin-style serve site/
      npm install onnxruntime-web@VERSION     # the version `cin-style web` pins (README)
      cin-style web model.onnx -o site/ --ort-dist node_modules/onnxruntime-web/dist
    """
    from cin_style.web.site import DEFAULT_MAX_SIDE, write_site

    result = write_site(
        out, model, ort_dist=ort_dist, max_side=max_side or DEFAULT_MAX_SIDE, precision=precision, force=force
    )
    blend = f"baked {result.baked_blend}" if result.baked_blend else f"{len(result.style_names)} styles"
    click.echo(f"wrote {result.path}/ ({blend}, graph {result.graph_bytes / 1e6:.1f} MB, {result.runtime})")
    click.echo(f"try it: cin-style serve {result.path}")


@click.command()
@click.argument("folder", type=click.Path(file_okay=False, exists=True), default="site", required=False)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port on 127.0.0.1 (0 picks a free one).",
)
def serve(folder, port):
    """Serve a site folder from `cin-style web` on 127.0.0.1 (this machine only).

    Sends the cross-origin-isolation headers (COOP/COEP) that let the wasm
    backend use threads.  Stop with Ctrl-C.
    """
    from cin_style.web.server import make_server, site_url

    server = make_server(folder, port=port)
    click.echo(f"serving {folder} at {site_url(server)} (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
    finally:
        server.server_close()
