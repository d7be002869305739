import sys

from pymsde.cli import main

sys.exit(main())
