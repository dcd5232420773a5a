"""The bundled public-domain style paintings (see CREDITS.md); data only."""
