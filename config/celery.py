import os

from celery import Celery
from celery.signals import beat_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("tuneboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@beat_init.connect
def _heartbeat_on_start(sender: object, **kwargs: object) -> None:
    # Without this the first heartbeat would wait a whole interval and /healthz would
    # report a freshly started beat as missing.
    app.send_task("core.tasks.beat_heartbeat")
