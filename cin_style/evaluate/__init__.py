"""Scoring models (``evaluate.scores``), contact sheets (``evaluate.sheet``) and the demo
that shows the bundled model (``evaluate.demo``)."""
