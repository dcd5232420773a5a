"""The browser side: `cin-style web` writes a static page that runs a model with
onnxruntime-web (site.py), `cin-style serve` serves it with the headers wasm
threads need (server.py), and browser.py drives it in headless Chromium for the
tests and `cin-style bench browser`.  The page itself lives in page/."""
