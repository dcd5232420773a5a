"""`python -m cin_style ...` is `cin-style ...` (what torchrun launches: `torchrun ... -m cin_style train ...`)."""

from .cli import main

main()
