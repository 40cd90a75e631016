"""Forms of the CSV import: the upload, the column mapping, the confirmation."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from leads.importing import (
    MAX_FILE_BYTES,
    MAX_ROWS,
    ROUTE_AT_MOST,
    fields_for,
    kinds_for_user,
)
from leads.models import ImportJob, ImportKind, LeadSource


def add_service_error(form: forms.Form, error: ValidationError) -> None:
    """Show a service's ValidationError on the form: by field where the form has it."""
    if hasattr(error, "error_dict"):
        for name, errors in error.error_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, error)


class ImportUploadForm(forms.Form):
    kind = forms.ChoiceField(label=_("The file holds"), widget=forms.RadioSelect)
    file = forms.FileField(
        label=_("CSV file"),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.txt,.tsv,text/csv"}),
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Here, not in the class: translated into the language of the request.
        self.fields["file"].help_text = _(
            "A .csv file with a header line naming the columns; comma, semicolon or tab "
            "separated; at most %(size)s and %(rows)s rows."
        ) % {"size": filesizeformat(MAX_FILE_BYTES), "rows": f"{MAX_ROWS:,}"}
        kinds = kinds_for_user(user)
        self.fields["kind"].choices = [
            (value, label) for value, label in ImportKind.choices if value in kinds
        ]
        self.fields["kind"].initial = ImportKind.LEADS

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        # Checked before the file is read: the service checks the bytes again.
        if upload.size > MAX_FILE_BYTES:
            raise ValidationError(
                _("The file is %(size)s; at most %(limit)s can be imported at once: split it.")
                % {"size": filesizeformat(upload.size), "limit": filesizeformat(MAX_FILE_BYTES)}
            )
        return upload


class ImportMappingForm(forms.Form):
    """One choice per column of the file: which field it fills (or none)."""

    def __init__(
        self,
        *args: Any,
        job: ImportJob,
        user: User,
        samples: list[list[str]],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.job = job
        mapping = job.mapping or {}
        current = {int(index): key for key, index in mapping.get("columns", {}).items()}
        choices = [("", _("— not imported —"))] + [
            (f.key, f.label) for f in fields_for(kind=job.kind, user=user)
        ]
        self.field_help = [
            (f.label, f.help) for f in fields_for(kind=job.kind, user=user) if f.help
        ]
        for index, name in enumerate(job.header):
            examples = [row[index].strip() for row in samples if index < len(row)]
            examples = [value for value in examples if value][:3]
            self.fields[f"column_{index}"] = forms.ChoiceField(
                label=name,
                choices=choices,
                required=False,
                initial=current.get(index, ""),
                help_text=(_("For example: %(values)s") % {"values": " · ".join(examples)})
                if examples
                else _("Empty in the first rows."),
            )
        if job.kind == ImportKind.LEADS:
            self.fields["default_source"] = forms.ChoiceField(
                label=_("Source for rows without one"),
                choices=[
                    ("", _("— none: the file has a source for each row —")),
                    *LeadSource.choices,
                ],
                required=False,
                initial=mapping.get("default_source", ""),
            )
            self.fields["route"] = forms.BooleanField(
                label=_("Give leads without an owner to reps by the routing rules"),
                help_text=_(
                    "Unticked, only SQL leads are routed; the others stay unassigned. "
                    "Routing goes one lead at a time: at most %(limit)s in one import."
                )
                % {"limit": f"{ROUTE_AT_MOST:,}"},
                required=False,
                initial=mapping.get("route", True),
            )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        columns: dict[str, int] = {}
        for index in range(len(self.job.header)):
            key = cleaned.get(f"column_{index}")
            if not key:
                continue
            if key in columns:
                label = dict(self.fields[f"column_{index}"].choices)[key]
                self.add_error(
                    f"column_{index}",
                    _("%(field)s is already filled by the column “%(column)s”.")
                    % {"field": label, "column": self.job.header[columns[key]]},
                )
                continue
            columns[key] = index
        self.columns = columns
        return cleaned


class ImportConfirmForm(forms.Form):
    duplicates = forms.ChoiceField(
        label=_("Rows that look like duplicates"),
        choices=[
            ("skip", _("Leave them out")),
            ("import", _("Import them too")),
        ],
        initial="skip",
        widget=forms.RadioSelect,
    )

    @property
    def import_duplicates(self) -> bool:
        return self.cleaned_data.get("duplicates") == "import"
