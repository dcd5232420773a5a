"""Reading and writing files: images (``io.image``), videos (``io.video``), atomic writes
(``io.atomic``) and peak-memory readings (``io.memory``).  Torch-free."""
