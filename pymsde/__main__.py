"""``python -m pymsde`` (and ``torchrun ... -m pymsde``): the ``pymsde`` command."""
from pymsde.cli import main

raise SystemExit(main())
