"""Landing page and the sign-in pages, in the platform's own style."""

from __future__ import annotations

import math

from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import path, reverse_lazy
from django.utils import timezone

from studies import access
from studies.accounts import lockout_ends


def home(request: HttpRequest) -> HttpResponse:
    studies = (
        access.studies_for(request.user).order_by("-updated_at")[:10]
        if request.user.is_authenticated
        else []
    )
    return render(request, "researcher/home.html", {"studies": studies})


def locked_out(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials=None
) -> HttpResponse:
    """What a locked-out sign-in gets (django-axes' AXES_LOCKOUT_CALLABLE): 429, when to come
    back, as our page or, on the API, as its usual JSON refusal."""
    ends = lockout_ends(request)
    seconds = max(math.ceil((ends - timezone.now()).total_seconds()), 1)
    minutes = math.ceil(seconds / 60)
    detail = (
        "Too many failed sign-ins for this account from your address. "
        f"Try again after {timezone.localtime(ends):%H:%M} UTC "
        f"(in {minutes} minute{'s' if minutes != 1 else ''})."
    )
    if request.path_info.startswith("/api/"):
        response = JsonResponse({"detail": detail}, status=429)
    else:
        response = render(
            request,
            "registration/locked_out.html",
            {"detail": detail, "ends": ends, "minutes": minutes},
            status=429,
        )
    response["Retry-After"] = str(seconds)
    return response


def _form_page(view, heading: str, submit_label: str, intro: str = "", **kwargs):
    return view.as_view(
        template_name="registration/simple_form.html",
        extra_context={"heading": heading, "submit_label": submit_label, "intro": intro},
        **kwargs,
    )


def _message_page(view, heading: str, text: str, next_url: str, next_label: str):
    return view.as_view(
        template_name="registration/message.html",
        extra_context={
            "heading": heading,
            "text": text,
            "next_url": next_url,
            "next_label": next_label,
        },
    )


urlpatterns = [
    path("", home, name="home"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password/change/",
        _form_page(auth_views.PasswordChangeView, "Change your password", "Change password"),
        name="password_change",
    ),
    path(
        "accounts/password/change/done/",
        _message_page(
            auth_views.PasswordChangeDoneView,
            "Password changed",
            "Your new password is in use.",
            reverse_lazy("home"),
            "Back to your studies",
        ),
        name="password_change_done",
    ),
    path(
        "accounts/password/reset/",
        _form_page(
            auth_views.PasswordResetView,
            "Reset your password",
            "Send the link",
            "Enter your account's e-mail; we send a link to choose a new password.",
            email_template_name="registration/password_reset_email.txt",
            subject_template_name="registration/password_reset_subject.txt",
        ),
        name="password_reset",
    ),
    path(
        "accounts/password/reset/sent/",
        _message_page(
            auth_views.PasswordResetDoneView,
            "Check your e-mail",
            "If an account has that e-mail, a link to choose a new password is on its way.",
            reverse_lazy("login"),
            "Back to log in",
        ),
        name="password_reset_done",
    ),
    path(
        "accounts/password/reset/<uidb64>/<token>/",
        _form_page(auth_views.PasswordResetConfirmView, "Choose a password", "Set password"),
        name="password_reset_confirm",
    ),
    path(
        "accounts/password/reset/done/",
        _message_page(
            auth_views.PasswordResetCompleteView,
            "Password set",
            "You can log in with your new password now.",
            reverse_lazy("login"),
            "Log in",
        ),
        name="password_reset_complete",
    ),
]
