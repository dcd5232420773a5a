"""The ``cin-style`` command line: parsing, one library call, printing (``cli.main``)."""
