"""Researcher pages of the study builder: new study, design sections, spec, duplicate, plan.

Reading a page needs the VIEW role, every POST the EDIT role (duplicate: VIEW on the source,
see ``duplicate``). The pages are thin: forms turn input into spec values, the builder's
services validate and save through the spec loader, and each problem the loader reports is
shown next to the field it concerns (or in the summary at the top when no field has it).
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from studies import access, selectors
from studies.access import Action
from studies.builder import forms as bf
from studies.builder import selectors as builder_selectors
from studies.builder import services as builder_services
from studies.builder.sections import (
    SECTION_OF_KEY,
    SECTIONS,
    BlockSection,
    DesignSection,
    Section,
    top_key,
    with_added_row,
)
from studies.errors import StudyStateError
from studies.models import Study
from studies.services import EDITABLE_STATUSES
from studies.spec import SpecError, dump_spec, spec_dict
from studies.views.common import study_for_request

LOCKED_NOTE = "The design of a live study can't change: duplicate it to make a new version."
MAX_UPLOAD_BYTES = 2_000_000


def _is_locked(study: Study) -> bool:
    return study.status not in EDITABLE_STATUSES


def _problem_rows(study: Study, problems: list) -> list[dict]:
    """Summary rows: each problem with a link to the section page that edits its path."""
    rows = []
    for problem in problems:
        path, message = getattr(problem, "path", ""), getattr(problem, "message", str(problem))
        section = SECTION_OF_KEY.get(top_key(path)) if path else None
        url = None
        if section == "blocks":
            url = reverse("studies:design-blocks", args=[study.slug])
        elif section:
            url = reverse("studies:design-section", args=[study.slug, section])
        rows.append({"path": path, "message": message, "url": url, "section": section})
    return rows


# --------------------------------------------------------------------------- new study


@login_required
def new_study(request: HttpRequest) -> HttpResponse:
    """Create a draft study from a starting design, or from an uploaded spec file."""
    start_form = bf.StartForm(prefix="start")
    upload_form = bf.UploadForm(prefix="upload")
    if request.method == "POST":
        if request.POST.get("source") == "upload":
            upload_form = bf.UploadForm(request.POST, request.FILES, prefix="upload")
            study = _create_from_upload(request, upload_form)
        else:
            start_form = bf.StartForm(request.POST, prefix="start")
            study = _create_from_form(request, start_form)
        if study is not None:
            messages.success(request, f"Study “{study.title}” created as a draft.")
            return redirect("studies:design", slug=study.slug)
    return render(
        request,
        "studies/builder/new.html",
        {"nav": "studies", "start_form": start_form, "upload_form": upload_form},
        status=400 if start_form.errors or upload_form.errors else 200,
    )


def _create_from_form(request: HttpRequest, form: bf.StartForm) -> Study | None:
    if not form.is_valid():
        return None
    try:
        return builder_services.create_study_from_form(actor=request.user, **form.cleaned_data)
    except builder_services.SlugTaken as exc:
        form.add_error("slug", str(exc))
    except SpecError as exc:
        for problem in exc.problems:
            field = problem.path if problem.path in form.fields else None
            form.add_error(field, problem.message)
    return None


def _create_from_upload(request: HttpRequest, form: bf.UploadForm) -> Study | None:
    if not form.is_valid():
        return None
    upload = form.cleaned_data["spec_file"]
    if upload.size > MAX_UPLOAD_BYTES:
        form.add_error("spec_file", "the file is larger than 2 MB; a spec is far smaller")
        return None
    try:
        text = upload.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        form.add_error("spec_file", "the file is not UTF-8 text; save it as UTF-8 and retry")
        return None
    slug = form.cleaned_data["slug"]
    try:
        return builder_services.create_study_from_upload(
            text=text, filename=upload.name, slug=slug, actor=request.user
        )
    except builder_services.SlugTaken as exc:
        form.add_error("slug", str(exc))
    except SpecError as exc:
        for problem in exc.problems:
            # The slug typed in the form is checked after the file: its problems go there.
            field = "slug" if slug and problem.path == "slug" else "spec_file"
            form.add_error(field, str(problem))
    return None


# --------------------------------------------------------------------------- design pages


@login_required
def design(request: HttpRequest, slug: str) -> HttpResponse:
    """Every section of the study's design with its current values and an edit link."""
    study = study_for_request(request, slug, Action.VIEW)
    spec = spec_dict(selectors.study_spec(study))
    return render(
        request,
        "studies/builder/overview.html",
        {
            "nav": "studies",
            "study": study,
            "spec": spec,
            "blocks_supported": "blocks" in spec,
            **_edit_state(request, study),
        },
    )


def _edit_state(request: HttpRequest, study: Study) -> dict:
    locked = _is_locked(study)
    can_edit = access.can(request.user, Action.EDIT, study)
    return {"locked": locked, "can_edit": can_edit, "readonly": locked or not can_edit}


def _pressed(data: QueryDict, section: type[Section]) -> tuple[QueryDict, str]:
    """Which button was pressed: save, preview, refresh, or "add another" (data grown)."""
    for prefix in section.lists:
        if f"add_{prefix}" in data:
            return with_added_row(data, prefix), "add"
    for button in ("preview", "refresh"):
        if button in data:
            return data, button
    return data, "save"


def _section_page(
    request: HttpRequest,
    study: Study,
    make: Callable[[dict, QueryDict | None], Section],
    section_class: type[Section],
    *,
    template: str,
    context: dict | None = None,
    success_url: str | None = None,
) -> HttpResponse:
    spec = spec_dict(selectors.study_spec(study))
    state = _edit_state(request, study)
    summary: list[dict] = []
    preview = False
    status = 200
    section = make(spec, None)
    if request.method == "POST":
        access.require(request.user, Action.EDIT, study)
        if state["locked"]:
            summary = [{"message": LOCKED_NOTE}]
            status = 409
        else:
            data, button = _pressed(request.POST, section_class)
            if button == "refresh":
                data = DesignSection.refreshed(spec, data)
            section = make(spec, data)
            if button == "preview":
                preview = section.is_valid()
            elif button == "save":
                saved = _save(request, study, section, summary)
                if saved:
                    messages.success(request, f"{section.title} saved.")
                    return redirect(success_url or request.path)
                status = 400
    return render(
        request,
        template,
        {
            "nav": "studies",
            "study": study,
            "spec": spec,
            "section": section,
            "summary": summary,
            "preview": preview,
            "failed": status == 400,
            "locked_note": LOCKED_NOTE,
            **state,
            **(context or {}),
        },
        status=status,
    )


def _save(request: HttpRequest, study: Study, section: Section, summary: list[dict]) -> bool:
    """Validate the section's forms, then the whole spec; place every problem; save or not."""
    if not section.is_valid():
        return False
    try:
        builder_services.save_spec_changes(
            study=study, changes=section.changes(), actor=request.user
        )
    except SpecError as exc:
        unplaced = [p for p in exc.problems if not section.place(p.path, p.message)]
        summary += _problem_rows(study, unplaced)
        return False
    except StudyStateError as exc:
        summary.append({"message": str(exc)})
        return False
    return True


@login_required
def edit_section(request: HttpRequest, slug: str, section: str) -> HttpResponse:
    """One section of the design: its form(s), read-only when the study can't change."""
    section_class = SECTIONS.get(section)
    if section_class is None:
        raise Http404("No such section.")
    study = study_for_request(request, slug, Action.VIEW)
    return _section_page(
        request,
        study,
        section_class,
        section_class,
        template=f"studies/builder/section_{section}.html",
    )


@login_required
def blocks(request: HttpRequest, slug: str) -> HttpResponse:
    """The questionnaire blocks, with links to edit each, and move/delete buttons."""
    study = study_for_request(request, slug, Action.VIEW)
    spec = spec_dict(selectors.study_spec(study))
    return render(
        request,
        "studies/builder/blocks.html",
        {
            "nav": "studies",
            "study": study,
            "spec": spec,
            "blocks_supported": "blocks" in spec,
            "locked_note": LOCKED_NOTE,
            **_edit_state(request, study),
        },
    )


@login_required
def edit_block(request: HttpRequest, slug: str, key: str | None = None) -> HttpResponse:
    """One questionnaire block and its questions (``key`` None: a new block)."""
    study = study_for_request(request, slug, Action.VIEW)
    spec = spec_dict(selectors.study_spec(study))
    if "blocks" not in spec:
        raise Http404("This version of the spec format has no questionnaire blocks.")
    index = None
    if key is not None:
        keys = [b["key"] for b in spec["blocks"]]
        if key not in keys:
            raise Http404("No such block.")
        index = keys.index(key)

    def make(spec: dict, data: QueryDict | None) -> Section:
        return BlockSection(spec, data, index=index)

    return _section_page(
        request,
        study,
        make,
        BlockSection,
        template="studies/builder/section_block.html",
        context={"block_key": key},
        success_url=reverse("studies:design-blocks", args=[study.slug]),
    )


@login_required
@require_POST
def block_action(request: HttpRequest, slug: str, key: str) -> HttpResponse:
    """Move a block up or down, or delete it."""
    study = study_for_request(request, slug, Action.EDIT)
    action = request.POST.get("action")
    try:
        if action in ("up", "down"):
            builder_services.move_block(
                study=study, key=key, offset=-1 if action == "up" else 1, actor=request.user
            )
        elif action == "delete":
            builder_services.delete_block(study=study, key=key, actor=request.user)
            messages.success(request, f"Block {key} deleted.")
        else:
            return HttpResponseBadRequest("Unknown block action: choose up, down or delete.")
    except (SpecError, StudyStateError) as exc:
        text = "; ".join(p.message for p in exc.problems) if isinstance(exc, SpecError) else exc
        messages.error(request, f"Nothing changed: {text}")
    return redirect("studies:design-blocks", slug=slug)


# --------------------------------------------------------------------------- spec, copy, plan


@login_required
def download_spec(request: HttpRequest, slug: str) -> HttpResponse:
    """The study's spec as YAML, the format import_study and the upload read."""
    study = study_for_request(request, slug, Action.VIEW)
    response = HttpResponse(
        dump_spec(selectors.study_spec(study)), content_type="application/yaml; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{study.slug}.yaml"'
    return response


@login_required
def duplicate(request: HttpRequest, slug: str) -> HttpResponse:
    """Copy any study the user can read into a new draft they own (a "new version").

    VIEW on the source suffices: the copy holds only what a viewer can already read and
    download (the spec and the stimuli), the source does not change, and editing the copy
    needs no role in the source.
    """
    source = study_for_request(request, slug, Action.VIEW)
    form = bf.DuplicateForm(
        request.POST if request.method == "POST" else None,
        initial={"slug": builder_services.unique_slug(f"{source.slug}-copy")},
    )
    if request.method == "POST" and form.is_valid():
        try:
            study = builder_services.duplicate_study(
                study=source,
                slug=form.cleaned_data["slug"],
                title=form.cleaned_data["title"],
                actor=request.user,
            )
        except builder_services.SlugTaken as exc:
            form.add_error("slug", str(exc))
        except SpecError as exc:
            for problem in exc.problems:
                form.add_error("slug" if problem.path == "slug" else None, str(problem))
        else:
            messages.success(request, f"Draft “{study.slug}” created from “{source.slug}”.")
            return redirect("studies:design", slug=study.slug)
    return render(
        request,
        "studies/builder/duplicate.html",
        {"nav": "studies", "study": source, "form": form},
        status=400 if form.errors else 200,
    )


@login_required
def plan(request: HttpRequest, slug: str) -> HttpResponse:
    """The plan before launch: cells, slots per cell and one example participant."""
    study = study_for_request(request, slug, Action.VIEW)
    return render(
        request,
        "studies/builder/plan.html",
        {"nav": "studies", "study": study, "preview": builder_selectors.plan_preview(study)},
    )
