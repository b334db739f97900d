"""`python -m <package> STEP ...`"""

from .cli import main

raise SystemExit(main())
