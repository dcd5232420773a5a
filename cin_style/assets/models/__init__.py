"""The bundled reference model (reference.pt) and its model card; data only."""
