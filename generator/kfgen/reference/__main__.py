"""`python -m kfgen.reference`: write the reference pages in docs/ (`make docs`)."""

import sys

from . import main

sys.exit(main())
