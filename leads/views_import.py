"""Pages of the CSV import: upload, preview and mapping, progress, result, rejected rows.

Every job comes from the scoped selector (leads.selectors.imports_for_user): an
import is seen by whoever uploaded it and by admins; anyone else gets a 404.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import F, Func, JSONField, QuerySet, Value
from django.db.models.functions import Substr
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.access import get_or_404
from leads import importing
from leads.forms_import import (
    ImportConfirmForm,
    ImportMappingForm,
    ImportUploadForm,
    add_service_error,
)
from leads.models import ImportJob, ImportStatus
from leads.selectors import import_get_for_user, imports_for_user

RECENT_IMPORTS = 20
# Enough of the file for the preview rows, without reading a 20 MB text per page.
PREVIEW_CHARS = 64 * 1024


def _jobs_for_page(request: HttpRequest) -> QuerySet[ImportJob]:
    """The user's imports, with the file's head and the first errors instead of the whole."""
    return (
        imports_for_user(user=request.user)
        .select_related("uploaded_by")
        .defer("content", "errors")
        .annotate(
            content_head=Substr("content", 1, PREVIEW_CHARS),
            first_errors=Func(
                F("errors"),
                Value(f"$[0 to {importing.ERRORS_SHOWN - 1}]"),
                function="jsonb_path_query_array",
                output_field=JSONField(),
            ),
        )
    )


@login_required
def import_upload(request: HttpRequest) -> HttpResponse:
    form = ImportUploadForm(request.POST or None, request.FILES or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            job = importing.import_job_create(
                actor=request.user,
                kind=form.cleaned_data["kind"],
                file_name=PurePath(upload.name).name,
                data=upload.read(),
            )
        except ValidationError as error:
            add_service_error(form, error)
        else:
            return redirect("leads:import_detail", pk=job.pk)
    recent = (
        imports_for_user(user=request.user)
        .select_related("uploaded_by")
        .defer("content", "errors", "header", "mapping")[:RECENT_IMPORTS]
    )
    return render(request, "leads/import_upload.html", {"form": form, "recent": recent})


@login_required
def import_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_or_404(_jobs_for_page(request), pk=pk)
    file_info = (job.mapping or {}).get("file", {})
    delimiter = file_info.get("delimiter", ",")
    samples = importing.preview_rows(job.content_head, delimiter=delimiter)
    mapping_form = None
    if job.status in importing.REMAPPABLE:
        # The uploader's rules (fields they may fill), also when an admin looks.
        mapping_form = ImportMappingForm(
            request.POST or None, job=job, user=job.uploaded_by, samples=samples
        )
        if request.method == "POST" and mapping_form.is_valid():
            try:
                importing.import_job_map(
                    job=job,
                    actor=request.user,
                    columns=mapping_form.columns,
                    default_source=mapping_form.cleaned_data.get("default_source", ""),
                    route=mapping_form.cleaned_data.get("route", True),
                )
            except ValidationError as error:
                add_service_error(mapping_form, error)
            else:
                return redirect("leads:import_detail", pk=job.pk)
    elif request.method == "POST":
        messages.error(request, _("This import is being checked or imported already."))
        return redirect("leads:import_detail", pk=job.pk)
    context: dict[str, Any] = {
        "job": job,
        "samples": samples,
        "mapping_form": mapping_form,
        "confirm_form": ImportConfirmForm() if job.status == ImportStatus.VALIDATED else None,
        "encoding_note": importing.encoding_note(file_info.get("encoding", "utf-8")),
        "delimiter_name": importing.DELIMITER_NAMES.get(delimiter, delimiter),
        "errors_shown": job.first_errors or [],
        "error_rows": job.total_rows - job.valid_rows,
        "importable": importing.importable_rows(job),
        "importable_with_duplicates": importing.importable_rows(job, import_duplicates=True),
        "running": job.status in (ImportStatus.VALIDATING, ImportStatus.IMPORTING),
        "status": importing.status_payload(job),
    }
    return render(request, "leads/import_detail.html", context)


@login_required
@require_GET
def import_status(request: HttpRequest, pk: int) -> JsonResponse:
    """The small JSON the page polls while a job runs."""
    job = get_or_404(
        imports_for_user(user=request.user).defer("content", "errors", "header"), pk=pk
    )
    return JsonResponse(importing.status_payload(job))


@login_required
@require_POST
def import_confirm(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_or_404(imports_for_user(user=request.user).defer("content", "errors"), pk=pk)
    form = ImportConfirmForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose what to do with the duplicates."))
        return redirect("leads:import_detail", pk=job.pk)
    try:
        importing.import_job_confirm(
            job=job, actor=request.user, import_duplicates=form.import_duplicates
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("leads:import_detail", pk=job.pk)


@login_required
@require_GET
def import_rejected(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    """The rows not imported, with their line and reason, as a CSV to fix and upload again."""
    job = import_get_for_user(user=request.user, pk=pk)
    stem = PurePath(job.file_name).stem or "import"
    response = StreamingHttpResponse(
        importing.rejected_rows_csv(job), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=True, filename=f"{stem}-rejected.csv"
    )
    return response
