"""`python -m nin_course.runs list | status NAME | train NAME | report`: see `store.main`."""
import sys

from .store import main

sys.exit(main())
