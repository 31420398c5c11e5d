"""The model lab's tables, one module per question it answers (each owned by that part)."""

from modellab.models.behaviour import *  # noqa: F403
from modellab.models.false_refusal import *  # noqa: F403
from modellab.models.material import *  # noqa: F403
from modellab.models.rewards import *  # noqa: F403
