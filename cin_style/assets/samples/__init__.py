"""CC0 / public-domain sample photos for the demo (see CREDITS.md); data only."""
