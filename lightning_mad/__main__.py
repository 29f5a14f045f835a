import sys

from lightning_mad.cli import main

sys.exit(main())
