"""Celery tasks of the model lab (found by autodiscovery here; each part keeps its own module)."""

from modellab.behaviour.tasks import *  # noqa: F403
from modellab.false_refusal.tasks import *  # noqa: F403
from modellab.pseudo_harmful.tasks import *  # noqa: F403
from modellab.query_scenarios.tasks import *  # noqa: F403
from modellab.rewards.tasks import *  # noqa: F403
