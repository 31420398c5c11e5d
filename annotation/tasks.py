"""Celery tasks of the participant side: housekeeping the participant path never waits on."""

from celery import shared_task

from annotation import services


@shared_task(acks_late=True)
def release_expired_slots() -> int:
    return services.release_expired_slots()


@shared_task(acks_late=True)
def erase_expired_recruitment_ids() -> int:
    return services.erase_expired_recruitment_ids()


@shared_task(acks_late=True)
def screen_finished_participants() -> int:
    """Quality rules on the participants who finished since the last sweep."""
    return services.screen_finished_participants()
