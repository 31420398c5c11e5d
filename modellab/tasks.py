"""Celery tasks of the model lab (found by autodiscovery here; each part keeps its own module)."""

from modellab.behaviour.tasks import *  # noqa: F403
from modellab.false_refusal.tasks import *  # noqa: F403

# --- issue 11: pseudo-harmful ---
from modellab.pseudo_harmful.tasks import *  # noqa: F403

# --- end pseudo-harmful ---
# --- issue 11: query-scenarios ---
from modellab.query_scenarios.tasks import *  # noqa: F403

# --- end query-scenarios ---
from modellab.rewards.tasks import *  # noqa: F403
