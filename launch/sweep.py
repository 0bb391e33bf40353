"""Thin wrapper so `python3 launch/sweep.py ...` works like `jaxstyle sweep ...` (see jaxstyle/tools/sweep.py)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jaxstyle.tools import sweep  # noqa: E402

if __name__ == '__main__':
  sys.exit(sweep.main())
