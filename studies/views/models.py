"""Researcher pages of the model registry: the models one may use, registering and editing."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from studies import access
from studies.forms import LanguageModelForm
from studies.generation import services as generation_services
from studies.models import LanguageModel


def _save(request: HttpRequest, form: LanguageModelForm) -> LanguageModel | None:
    """Register or change the model through the registry's service; errors land on the form."""
    try:
        return generation_services.register_model(actor=request.user, **form.cleaned_data)
    except ValueError as exc:
        form.add_error("backend_settings", str(exc))
    except PermissionDenied as exc:
        form.add_error(None, str(exc))
    return None


@login_required
def model_list(request: HttpRequest) -> HttpResponse:
    form = LanguageModelForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if LanguageModel.objects.filter(name=form.cleaned_data["name"]).exists():
            form.add_error("name", "A model with this name exists already; choose another name.")
        elif (model := _save(request, form)) is not None:
            messages.success(request, f"Model {model.name} saved.")
            return redirect("studies:models")
    models = access.models_for(request.user).select_related("owner")
    rows = [{"model": m, "can_change": access.can_change_model(request.user, m)} for m in models]
    return render(
        request,
        "studies/model_list.html",
        {"rows": rows, "form": form, "nav": "models"},
        status=400 if form.errors else 200,
    )


@login_required
def model_edit(request: HttpRequest, name: str) -> HttpResponse:
    model = access.models_for(request.user).filter(name=name).first()
    if model is None:
        raise Http404("No such model.")
    if not access.can_change_model(request.user, model):
        raise PermissionDenied("Only the model's owner or a superuser may change it.")
    if request.method == "POST":
        form = LanguageModelForm({**request.POST.dict(), "name": model.name})
        if form.is_valid() and _save(request, form) is not None:
            messages.success(request, f"Model {model.name} saved.")
            return redirect("studies:models")
    else:
        form = LanguageModelForm.for_model(model)
    form.fields["name"].disabled = True
    return render(
        request,
        "studies/model_edit.html",
        {
            "model": model,
            "form": form,
            "nav": "models",
            "endpoint_locked": not access.can_change_model_endpoint(request.user),
        },
        status=400 if form.errors else 200,
    )
