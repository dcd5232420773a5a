"""`cin-style batch`: stylize catalogues on Ray Data, resumable, from one machine to a cluster."""
