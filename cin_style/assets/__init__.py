"""Files that ship inside the package (the bundled models, the style paintings, the sample
photos) and where to find them: ``assets.bundled``.  Torch-free."""
