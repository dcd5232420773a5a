"""Benchmarks that print numbers, never assert them: inference latency and memory
(``bench.infer``), training steps (``bench.train``), large images (``bench.big``), video
(``bench.video``) and the browser page (``bench.browser``); ``bench.run`` picks one."""
