from django.apps import AppConfig


class ModellabConfig(AppConfig):
    """Models measured: response classifiers, model behaviour, reward scoring, false refusal."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "modellab"
    verbose_name = "Model lab"
