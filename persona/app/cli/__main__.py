import sys

from persona.app.cli import main

sys.exit(main())
