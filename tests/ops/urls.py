"""The platform's URLs plus views that fail the way an outage makes them fail."""

import kombu.exceptions
import redis.exceptions
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.urls import path

from config.urls import handler500
from config.urls import urlpatterns as platform_urls

__all__ = ["handler500", "urlpatterns"]


def database_down(request):
    raise OperationalError('connection to server at "127.0.0.1", port 8209 failed')


def database_gone(request):
    raise InterfaceError("connection already closed")


def broker_down(request):
    raise kombu.exceptions.OperationalError("Error 111 connecting to 127.0.0.1:8209.")


def redis_down(request):
    raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:8209.")


def plain_bug(request):
    raise ValueError("a plain bug, not an outage")


def fine(request):
    return HttpResponse("fine")


urlpatterns = [
    path("ops-test/database-down/", database_down),
    path("ops-test/database-gone/", database_gone),
    path("ops-test/broker-down/", broker_down),
    path("ops-test/redis-down/", redis_down),
    path("ops-test/bug/", plain_bug),
    path("ops-test/fine/", fine, name="ops-fine"),
    path("api/ops-test/database-down/", database_down),
    *platform_urls,
]


class SessionSaveFails:
    """Middleware that fails like SessionMiddleware saving to a database that just went away."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.path == "/ops-test/fine/":
            raise OperationalError("server closed the connection unexpectedly")
        return response
