"""``python -m lwcnn`` runs the command line."""

import sys

from lwcnn.cli import main

sys.exit(main())
