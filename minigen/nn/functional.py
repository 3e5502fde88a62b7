"""`minigen.nn.functional` is `minigen.functional`, under the name PyTorch users expect."""

from minigen.functional import *  # noqa: F401,F403
from minigen.functional import __all__  # noqa: F401
