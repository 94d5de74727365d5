"""FHIR in: a ``DocumentReference``, a ``Bundle`` or ``Parameters`` -> one note to code.

What each input gives (docs/fhir.md has complete examples):

* ``DocumentReference``: the note is the first ``content`` whose attachment is ``text/plain``
  with inline ``data`` (base64; ``charset`` from the content type, UTF-8 when none). Other
  ``content`` entries are other formats of the same document. The patient and the encounter may
  be ``contained`` resources that ``subject`` and ``context.encounter`` point to (``#id``).
* ``Bundle`` (``document``, ``collection`` or ``searchset``): with a ``Composition``, the note is
  its sections in order, each as ``Title:`` then its narrative as plain text, plus the text of
  any ``DocumentReference`` a section lists as an entry; without one, the text of every
  ``DocumentReference`` in the Bundle. ``Patient`` and ``Encounter`` come from the Bundle.
* ``Parameters``: ``document`` (DocumentReference, repeating) or ``bundle`` (Bundle), and
  optionally ``patient`` (Patient), ``encounter`` (Encounter) and ``setting`` (code
  ``outpatient`` | ``inpatient``, which wins over the encounter class).

Several documents are one encounter's notes and are coded together, joined by a blank line;
:meth:`ClinicalNote.locate` maps an offset of the joined text back to its document and to the
offset within that document's text. The encounter's ``class`` sets the coding setting
(:data:`service.fhir.terminology.ENCOUNTER_CLASS_SETTING`); the patient's ``birthDate`` (at the
encounter's start) and ``gender`` give age and sex.

Everything is checked first with the ``fhir.resources`` models (400 with one issue per invalid
element); attachments over the note limit are refused before they are decoded (413); valid FHIR
that holds no usable note gets 422. Nothing is fetched: attachments given only by ``url`` are
refused with a message saying so.
"""

from __future__ import annotations

import binascii
import codecs
import datetime as dt
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from email.message import Message
from html.parser import HTMLParser
from typing import Any

from service.fhir import terminology as t
from service.fhir.models import check_input
from service.fhir.outcome import FhirError, Issue, invalid, unusable

OPERATION_INPUTS = ("DocumentReference", "Bundle", "Parameters")
BUNDLE_TYPES = frozenset({"document", "collection", "searchset"})
PARAMETER_NAMES = {
    "document": "DocumentReference",
    "bundle": "Bundle",
    "patient": "Patient",
    "encounter": "Encounter",
}
SETTINGS = ("outpatient", "inpatient")
SEPARATOR = "\n\n"
_WHITESPACE = re.compile(r"\s+")


class NoNoteError(FhirError):
    """Valid FHIR in which no document holds a note to code (422)."""

    def __init__(self, diagnostics: str) -> None:
        super().__init__(422, [Issue("required", diagnostics)])


@dataclass(frozen=True, slots=True)
class Source:
    """A document the note text came from.

    Attributes:
        reference: a FHIR ``Reference`` to it (``DocumentReference/123``; display only when the
            client gave it no id).
        section: the ``Composition`` section title, for section text.
    """

    reference: dict[str, Any]
    section: str | None = None


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of the joined note text that comes from one source.

    Attributes:
        start: first character in the joined text.
        end: one past the last.
        source: where it came from.
        source_start: offset of ``start`` within the source's own text.
    """

    start: int
    end: int
    source: Source
    source_start: int


@dataclass(slots=True)
class ClinicalNote:
    """The note to code and what the FHIR input says around it.

    Attributes:
        text: the note text (several documents joined by a blank line).
        segments: which part of ``text`` came from which document.
        sources: every document coded, in order.
        subject: ``Reference`` to the patient.
        encounter: ``Reference`` to the encounter, when known.
        provider: ``Reference`` to the organisation providing the service, when known.
        age: age in years at the encounter, when known.
        sex: ``female``, ``male`` or ``unknown``.
        setting: ``outpatient`` or ``inpatient``.
        setting_basis: why that setting (``Encounter.class EMER``, ``no Encounter given``...).
        encounter_date: the encounter's start date, when known.
        note_id: an id for the log and the feedback store (the document's id).
        issues: warnings about what was skipped or assumed.
    """

    text: str
    segments: list[Segment]
    sources: list[Source]
    subject: dict[str, Any]
    encounter: dict[str, Any] | None = None
    provider: dict[str, Any] | None = None
    age: int | None = None
    sex: str | None = None
    setting: str = "outpatient"
    setting_basis: str = "no Encounter given"
    encounter_date: dt.date | None = None
    note_id: str | None = None
    issues: list[Issue] = field(default_factory=list)

    def locate(self, start: int, end: int) -> tuple[Source, int, int] | None:
        """Map a span of :attr:`text` to its document.

        Args:
            start: first character in the joined text.
            end: one past the last.

        Returns:
            ``(source, start, end)`` with offsets within the source's own text (a span running
            past the end of its segment is cut there), or None for a span in a section heading
            or a separator.
        """
        for segment in self.segments:
            if segment.start <= start < segment.end:
                offset = segment.source_start - segment.start
                return segment.source, start + offset, min(end, segment.end) + offset
        return None


@dataclass(slots=True)
class _Part:
    text: str
    source: Source | None  # None: a heading written by this reader, not the client's text


@dataclass(slots=True)
class _Context:
    """Resources found with the note, by fullUrl and by ``Type/id``, for resolving references."""

    by_url: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_type: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    full_urls: dict[int, str] = field(default_factory=dict)
    contained: set[int] = field(default_factory=set)

    def add(self, resource: dict[str, Any], full_url: str | None = None) -> None:
        kind = str(resource.get("resourceType"))
        self.by_type.setdefault(kind, []).append(resource)
        if full_url:
            self.by_url[full_url] = resource
            self.full_urls[id(resource)] = full_url
        if resource.get("id"):
            self.by_url.setdefault(f"{kind}/{resource['id']}", resource)

    def only(self, kind: str) -> dict[str, Any] | None:
        found = self.by_type.get(kind, [])
        return found[0] if len(found) == 1 else None

    def resolve(self, reference: Any, holder: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
        """Find the resource a Reference points to, among ``holder.contained`` and the context."""
        if not isinstance(reference, dict) or not isinstance(reference.get("reference"), str):
            return None
        ref = reference["reference"]
        if ref.startswith("#"):
            for contained in (holder or {}).get("contained", []):
                if contained.get("id") == ref[1:] and contained.get("resourceType") == kind:
                    self.contained.add(id(contained))
                    return contained
            return None
        found = self.by_url.get(ref)
        if found is None:
            match = re.search(r"([A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$", ref)
            if match:
                found = self.by_url.get(f"{match.group(1)}/{match.group(2)}")
        return found if found is not None and found.get("resourceType") == kind else None

    def reference_to(self, resource: dict[str, Any], display: str | None = None) -> dict[str, Any]:
        """A Reference to a resource the client sent, usable outside the client's Bundle."""
        kind = str(resource.get("resourceType"))
        reference: dict[str, Any]
        full_url = self.full_urls.get(id(resource), "")
        identifiers = resource.get("identifier")
        if id(resource) in self.contained:
            # A contained resource has no identity outside its container: name it by its
            # business identifier when it has one.
            reference = {"type": kind}
            if isinstance(identifiers, list) and identifiers:
                reference["identifier"] = dict(identifiers[0])
            else:
                reference["display"] = display or f"the {kind} contained in the submitted document"
            return reference
        if resource.get("id"):
            reference = {"reference": f"{kind}/{resource['id']}"}
        elif full_url.startswith(("http://", "https://")):
            reference = {"reference": full_url}
        else:
            reference = {"type": kind}
        if display:
            reference["display"] = display
        elif "reference" not in reference:
            reference["display"] = f"the {kind} sent with the request (it had no id)"
        return reference


def read_operation_input(body: Any, max_chars: int) -> ClinicalNote:
    """Read the body of ``$suggest-codes``.

    Args:
        body: the parsed JSON body.
        max_chars: the longest note accepted (``CODESUGGEST_MAX_TEXT_CHARS``).

    Returns:
        The note and its context.

    Raises:
        FhirError: 400 (not valid FHIR), 413 (over the size limit) or 422 (no usable note, a
            resource this operation does not take, an unknown encounter class...).
    """
    resource = _resource_body(body, OPERATION_INPUTS)
    check_sizes(resource, max_chars)
    check_input(resource)
    kind = resource["resourceType"]
    if kind == "DocumentReference":
        return read_documents([resource], _Context(), max_chars)
    if kind == "Bundle":
        return read_bundle(resource, max_chars)
    return _read_parameters(resource, max_chars)


def _resource_body(body: Any, accepted: Sequence[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        kinds = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}
        raise invalid(f"the body must be a FHIR resource (a JSON object), not {kinds.get(type(body), 'null')}")
    kind = body.get("resourceType")
    if not isinstance(kind, str) or not kind:
        raise invalid("the body has no resourceType: send a FHIR resource", "resourceType", "required")
    if kind not in accepted:
        raise unusable(
            f"$suggest-codes reads a {', a '.join(accepted[:-1])} or {accepted[-1]}, not a {kind}",
            "resourceType",
            "not-supported",
        )
    return body


def check_sizes(resource: Any, max_chars: int, path: str = "") -> None:
    """Refuse an attachment over the note limit before anything decodes it.

    A base64 attachment of ``n`` characters holds about ``3n/4`` bytes; UTF-8 needs at most four
    bytes a character, so anything over ``4 * max_chars`` bytes is over the limit whatever it says.

    Args:
        resource: FHIR JSON (walked whole: attachments may sit in contained or entry resources).
        max_chars: the note limit in characters.
        path: where ``resource`` sits (for the message).

    Raises:
        FhirError: 413 naming the attachment.
    """
    for where, attachment in _attachments(resource, path or str(_kind(resource))):
        data = attachment.get("data")
        if isinstance(data, str) and len(data) * 3 // 4 > 4 * max_chars:
            raise FhirError(
                413,
                [
                    Issue(
                        "too-long",
                        f"the attachment holds about {len(data) * 3 // 4:,} bytes; this service codes notes "
                        f"of at most {max_chars:,} characters (CODESUGGEST_MAX_TEXT_CHARS)",
                        f"{where}.data",
                    )
                ],
            )


def _kind(resource: Any) -> str:
    return str(resource.get("resourceType", "")) if isinstance(resource, dict) else ""


def _attachments(value: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}"
            if key == "attachment" and isinstance(item, dict):
                yield where, item
            else:
                yield from _attachments(item, where)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _attachments(item, f"{path}[{i}]")


def read_documents(
    documents: Sequence[dict[str, Any]],
    context: _Context,
    max_chars: int,
    *,
    where: Sequence[str] | None = None,
    patient: dict[str, Any] | None = None,
    encounter: dict[str, Any] | None = None,
    setting: str | None = None,
    default_setting: str = "outpatient",
) -> ClinicalNote:
    """Read one encounter's notes from ``DocumentReference`` resources.

    Args:
        documents: the (already validated) resources.
        context: the other resources sent with them.
        max_chars: the note limit.
        where: FHIRPath of each document, for messages (``DocumentReference`` by default).
        patient: the Patient, when the caller already has it (Parameters, CDS prefetch).
        encounter: the Encounter, likewise.
        setting: a setting the caller chose (wins over the encounter class).
        default_setting: the setting when neither is known.

    Returns:
        The note.

    Raises:
        FhirError: 422 when no document has a usable text, or the documents belong to more than
            one patient or encounter; 400 for bad base64; 413 for a note over the limit.
    """
    paths = list(where) if where is not None else ["DocumentReference"] * len(documents)
    issues: list[Issue] = []
    parts: list[_Part] = []
    for document, path in zip(documents, paths, strict=True):
        if document.get("status") == "entered-in-error":
            issues.append(Issue("informational", "skipped: status entered-in-error", path, "warning"))
            continue
        text = document_text(document, path, max_chars)
        if text is None:
            continue
        if not text.strip():
            issues.append(Issue("informational", "skipped: the note text is empty", path, "warning"))
            continue
        parts.append(_Part(text, Source(context.reference_to(document, _document_title(document)))))
    if not parts:
        reasons = "; ".join(f"{i.expression}: {i.diagnostics}" for i in issues)
        raise NoNoteError(f"no document holds a note to code{': ' + reasons if reasons else ''}")
    holder = documents[0]
    patient = patient or _one_of(
        context, "Patient", [(d.get("subject"), d) for d in documents], "DocumentReference.subject"
    )
    encounter = encounter or _one_of(
        context,
        "Encounter",
        [(ref, d) for d in documents for ref in (d.get("context") or {}).get("encounter", [])],
        "DocumentReference.context.encounter",
    )
    note = _assemble(parts, max_chars)
    note.issues = issues
    note.note_id = holder.get("id")
    periods = [(d.get("context") or {}).get("period", {}).get("start") for d in documents]
    encounter_refs = [ref for d in documents for ref in (d.get("context") or {}).get("encounter", [])]
    refs = (holder.get("subject"), encounter_refs[0] if encounter_refs else None)
    _describe(note, context, patient, encounter, refs, setting, default_setting, periods)
    return note


def _one_of(
    context: _Context, kind: str, references: list[tuple[Any, dict[str, Any]]], where: str
) -> dict[str, Any] | None:
    """The one resource of ``kind`` the documents point to (or the only one sent)."""
    named = {ref["reference"] for ref, _ in references if isinstance(ref, dict) and ref.get("reference")}
    if len(named) > 1 and not all(n.startswith("#") for n in named):
        raise unusable(
            f"the documents point to {len(named)} different {kind} resources; send one {kind}'s notes per request",
            where,
        )
    for ref, holder in references:
        found = context.resolve(ref, holder, kind)
        if found is not None:
            return found
    return context.only(kind)


def _document_title(document: dict[str, Any]) -> str | None:
    kind = document.get("type") or {}
    for candidate in (
        document.get("description"),
        kind.get("text"),
        *(c.get("display") for c in kind.get("coding", [])),
    ):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()[:200]
    return None


def document_text(document: dict[str, Any], path: str, max_chars: int) -> str | None:
    """The note of a ``DocumentReference``: its first inline ``text/plain`` attachment.

    Args:
        document: the resource.
        path: its FHIRPath, for messages.
        max_chars: the note limit.

    Returns:
        The text.

    Raises:
        FhirError: 422 when no content is inline plain text (saying what there is instead), 400
            for data that is not base64, 422 for text that is not in its declared charset, 413
            over the limit.
    """
    contents = document.get("content") or []
    seen: list[str] = []
    for i, content in enumerate(contents):
        attachment = content.get("attachment") or {}
        where = f"{path}.content[{i}].attachment"
        media = attachment.get("contentType")
        if media is None:
            seen.append("an attachment without contentType")
            continue
        message = Message()
        message["content-type"] = media
        if message.get_content_type() != "text/plain":
            seen.append(f"contentType {message.get_content_type()}")
            continue
        data = attachment.get("data")
        if data is None:
            seen.append("a text/plain attachment given by url only" if attachment.get("url") else "an empty attachment")
            continue
        raw = _base64(data, f"{where}.data")
        charset = message.get_content_charset() or "utf-8"
        try:
            codecs.lookup(charset)
        except LookupError:
            raise unusable(
                f"unknown charset {charset!r} in contentType", f"{where}.contentType", "not-supported"
            ) from None
        try:
            text = raw.decode(charset)
        except UnicodeDecodeError as exc:
            raise unusable(
                f"the attachment is not valid {charset} text (byte {exc.start})", f"{where}.data", "invalid"
            ) from None
        text = text.removeprefix("\ufeff")
        if len(text) > max_chars:
            raise FhirError(
                413,
                [
                    Issue(
                        "too-long",
                        f"the note has {len(text):,} characters; this service codes at most {max_chars:,} "
                        "(CODESUGGEST_MAX_TEXT_CHARS)",
                        f"{where}.data",
                    )
                ],
            )
        return text
    found = f"found {', '.join(seen)}" if seen else "it has no content"
    raise unusable(
        f"no inline text/plain attachment to code ({found}); send the note as content.attachment with "
        "contentType text/plain and the text base64-encoded in data (this service fetches nothing)",
        f"{path}.content",
        "not-supported" if seen else "required",
    )


def _base64(data: Any, where: str) -> bytes:
    """Decode RFC 4648 base64 strictly (whitespace allowed, as FHIR's base64Binary allows)."""
    if not isinstance(data, str):
        raise invalid("attachment data must be a base64 string", where)
    compact = _WHITESPACE.sub("", data)
    try:
        if len(compact) % 4:
            raise ValueError("length is not a multiple of 4")
        return binascii.a2b_base64(compact, strict_mode=True)
    except (binascii.Error, ValueError):
        raise invalid("attachment data is not valid base64 (RFC 4648)", where) from None


def read_bundle(
    bundle: dict[str, Any],
    max_chars: int,
    *,
    patient: dict[str, Any] | None = None,
    encounter: dict[str, Any] | None = None,
    setting: str | None = None,
) -> ClinicalNote:
    """Read a ``Bundle``: a ``Composition`` with its sections, or ``DocumentReference`` entries.

    Args:
        bundle: the (already validated) Bundle.
        max_chars: the note limit.
        patient: a Patient given beside the Bundle (Parameters); wins over the Bundle's.
        encounter: an Encounter given beside the Bundle, likewise.
        setting: a setting the client chose (wins over the encounter class).

    Returns:
        The note.

    Raises:
        FhirError: 422 for a Bundle type or content this operation cannot use.
    """
    if bundle.get("type") not in BUNDLE_TYPES:
        raise unusable(
            f"Bundle.type {bundle.get('type')!r} is not read here; send a document, collection or searchset Bundle",
            "Bundle.type",
            "not-supported",
        )
    context = _Context()
    for entry in bundle.get("entry", []):
        if isinstance(entry.get("resource"), dict):
            context.add(entry["resource"], entry.get("fullUrl"))
    compositions = context.by_type.get("Composition", [])
    if len(compositions) > 1:
        raise unusable(
            f"the Bundle holds {len(compositions)} Compositions; send one encounter's document per request",
            "Bundle.entry",
        )
    if compositions:
        return _read_composition(
            compositions[0], context, max_chars, patient=patient, encounter=encounter, setting=setting
        )
    documents = context.by_type.get("DocumentReference", [])
    if not documents:
        raise unusable(
            "the Bundle holds no Composition and no DocumentReference: nothing to code", "Bundle.entry", "required"
        )
    where = [
        f"Bundle.entry[{i}].resource"
        for i, e in enumerate(bundle.get("entry", []))
        if _kind(e.get("resource")) == "DocumentReference"
    ]
    note = read_documents(
        documents, context, max_chars, where=where, patient=patient, encounter=encounter, setting=setting
    )
    note.note_id = note.note_id or bundle.get("id")
    return note


def _read_composition(
    composition: dict[str, Any],
    context: _Context,
    max_chars: int,
    *,
    patient: dict[str, Any] | None = None,
    encounter: dict[str, Any] | None = None,
    setting: str | None = None,
) -> ClinicalNote:
    if composition.get("status") == "entered-in-error":
        raise unusable("the Composition is entered-in-error", "Composition.status", "business-rule")
    parts: list[_Part] = []
    issues: list[Issue] = []
    reference = context.reference_to(composition, composition.get("title"))
    _section_parts(composition.get("section", []), "Composition", reference, context, max_chars, parts, issues)
    if not any(p.source is not None and p.text.strip() for p in parts):
        raise unusable("the Composition's sections hold no text to code", "Composition.section", "required")
    note = _assemble(parts, max_chars)
    note.issues = issues
    note.note_id = composition.get("id")
    patient = patient or _one_of(context, "Patient", [(composition.get("subject"), composition)], "Composition.subject")
    encounter = encounter or _one_of(
        context, "Encounter", [(composition.get("encounter"), composition)], "Composition.encounter"
    )
    provider = composition.get("custodian")
    refs = (composition.get("subject"), composition.get("encounter"))
    _describe(note, context, patient, encounter, refs, setting, "outpatient", [])
    if note.provider is None and isinstance(provider, dict):
        note.provider = dict(provider)
    return note


def _section_parts(
    sections: list[dict[str, Any]],
    path: str,
    reference: dict[str, Any],
    context: _Context,
    max_chars: int,
    parts: list[_Part],
    issues: list[Issue],
) -> None:
    for i, section in enumerate(sections):
        where = f"{path}.section[{i}]"
        title = _section_title(section)
        parts.append(_Part(f"{title}:", None))
        narrative = narrative_text((section.get("text") or {}).get("div", ""))
        if narrative:
            parts.append(_Part(narrative, Source(reference, title)))
        for j, entry in enumerate(section.get("entry", [])):
            document = context.resolve(entry, None, "DocumentReference")
            if document is None:
                continue
            text = document_text(document, f"{where}.entry[{j}]", max_chars)
            if text and text.strip():
                parts.append(_Part(text, Source(context.reference_to(document, _document_title(document)), title)))
        _section_parts(section.get("section", []), where, reference, context, max_chars, parts, issues)


def _section_title(section: dict[str, Any]) -> str:
    code = section.get("code") or {}
    for candidate in (section.get("title"), code.get("text"), *(c.get("display") for c in code.get("coding", []))):
        if isinstance(candidate, str) and candidate.strip():
            return " ".join(candidate.split())[:200]
    return "Section"


class _Narrative(HTMLParser):
    """XHTML narrative -> plain text: block elements end lines, table cells are tab-separated."""

    BLOCKS = frozenset(
        {"p", "div", "br", "li", "tr", "table", "ul", "ol", "dl", "dt", "dd", "pre", "blockquote", "hr"}
        | {f"h{n}" for n in range(1, 7)}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BLOCKS:
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append("\t")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(re.sub(r"[ \r\n\f\v]+", " ", data))


def narrative_text(div: str) -> str:
    """The plain text of a narrative ``div`` (tags removed, entities decoded, one line per block).

    Args:
        div: the XHTML.

    Returns:
        The text, lines stripped and empty lines dropped.
    """
    if not div:
        return ""
    parser = _Narrative()
    parser.feed(div)
    parser.close()
    lines = (
        " ".join(line.replace("\t", " \t ").split()).replace(" \t ", "\t") for line in "".join(parser.parts).split("\n")
    )
    return "\n".join(line.strip("\t ") for line in lines if line.strip("\t "))


def _assemble(parts: list[_Part], max_chars: int) -> ClinicalNote:
    text = ""
    segments: list[Segment] = []
    sources: list[Source] = []
    for i, part in enumerate(parts):
        if i:
            # A heading and its text sit on consecutive lines; documents and sections are
            # separated by a blank line, as the sectioniser expects.
            text += "\n" if parts[i - 1].source is None and part.source is not None else SEPARATOR
        start = len(text)
        text += part.text
        if part.source is not None:
            segments.append(Segment(start, len(text), part.source, 0))
            if all(s.reference != part.source.reference for s in sources):
                sources.append(Source(part.source.reference))
    if len(text) > max_chars:
        raise FhirError(
            413,
            [
                Issue(
                    "too-long",
                    f"the notes have {len(text):,} characters together; this service codes at most {max_chars:,} "
                    "(CODESUGGEST_MAX_TEXT_CHARS): send fewer documents",
                )
            ],
        )
    return ClinicalNote(text=text, segments=segments, sources=sources, subject={})


def _describe(
    note: ClinicalNote,
    context: _Context,
    patient: dict[str, Any] | None,
    encounter: dict[str, Any] | None,
    references: tuple[Any, Any],
    setting: str | None,
    default_setting: str,
    period_starts: Sequence[Any],
) -> None:
    """Fill in the patient, encounter, setting and date of a note.

    ``references`` are the document's own subject and encounter References, used when the
    resources themselves were not sent.
    """
    if patient is not None:
        note.subject = context.reference_to(patient)
    else:
        note.subject = _outside(references[0]) or {"display": "the patient of the submitted note (not identified)"}
    if encounter is not None:
        note.encounter = context.reference_to(encounter)
        provider = encounter.get("serviceProvider")
        note.provider = _outside(provider)
    else:
        note.encounter = _outside(references[1])
    starts = [(encounter or {}).get("period", {}).get("start"), *period_starts]
    note.encounter_date = next((d for d in (date_of(s) for s in starts) if d is not None), None)
    note.setting, note.setting_basis = coding_setting(encounter, setting, default_setting)
    if patient is not None:
        note.sex = t.GENDER_SEX.get(str(patient.get("gender")), "unknown") if patient.get("gender") else None
        note.age = age_at(patient.get("birthDate"), note.encounter_date or dt.datetime.now(dt.UTC).date())


def _outside(reference: Any) -> dict[str, Any] | None:
    """A copy of a Reference that means something outside the client's resource, or None."""
    if not isinstance(reference, dict):
        return None
    literal = reference.get("reference")
    if isinstance(literal, str) and literal.startswith(("#", "urn:")):
        literal = None
    if literal is None and not reference.get("identifier"):
        return None
    kept = {k: v for k, v in reference.items() if k in ("type", "identifier", "display")}
    return {"reference": literal, **kept} if literal else kept


def coding_setting(encounter: dict[str, Any] | None, explicit: str | None, default: str) -> tuple[str, str]:
    """The coding setting and why.

    Args:
        encounter: the Encounter, if any.
        explicit: a setting the client chose (wins).
        default: the setting when nothing says.

    Returns:
        ``(setting, basis)``.

    Raises:
        FhirError: 422 for an encounter class outside v3 ActCode or not one of its encounter codes.
    """
    if explicit is not None:
        return explicit, "the setting parameter"
    if encounter is None:
        return default, "no Encounter given"
    coding = encounter.get("class") or {}
    system, code = coding.get("system"), coding.get("code")
    if system is not None and system not in t.ACT_CODE_SYSTEMS:
        raise unusable(
            f"Encounter.class system {system!r} is not read here; use http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "Encounter.class.system",
            "code-invalid",
        )
    if code not in t.ENCOUNTER_CLASS_SETTING:
        raise unusable(
            f"Encounter.class code {code!r} is not one of {', '.join(t.ENCOUNTER_CLASS_SETTING)}",
            "Encounter.class.code",
            "code-invalid",
        )
    return t.ENCOUNTER_CLASS_SETTING[code], f"Encounter.class {code}"


def date_of(value: Any) -> dt.date | None:
    """The calendar date of a FHIR ``date``/``dateTime`` with at least a day (``2026-11-02...``).

    Args:
        value: the FHIR value.

    Returns:
        The date, or None for a missing or partial (year or month only) value.
    """
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None


def age_at(birth_date: Any, on: dt.date) -> int | None:
    """Age in whole years on a date.

    A partial birth date counts from its first day (``1980`` as 1 January 1980, ``1980-06`` as
    1 June 1980): at most one year more than the true age.

    Args:
        birth_date: ``Patient.birthDate`` (``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``).
        on: the date of the encounter.

    Returns:
        The age, or None without a birth date.

    Raises:
        FhirError: 422 for a birth date after the encounter.
    """
    if not isinstance(birth_date, str) or not birth_date:
        return None
    parts = [int(p) for p in birth_date[:10].split("-")]
    born = dt.date(parts[0], parts[1] if len(parts) > 1 else 1, parts[2] if len(parts) > 2 else 1)
    if born > on:
        raise unusable(f"Patient.birthDate {birth_date} is after the encounter ({on})", "Patient.birthDate", "value")
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _read_parameters(parameters: dict[str, Any], max_chars: int) -> ClinicalNote:
    documents: list[dict[str, Any]] = []
    where: list[str] = []
    found: dict[str, dict[str, Any]] = {}
    setting: str | None = None
    for i, parameter in enumerate(parameters.get("parameter", [])):
        name = parameter.get("name")
        path = f"Parameters.parameter[{i}]"
        if name == "setting":
            value = parameter.get("valueCode", parameter.get("valueString"))
            if value not in SETTINGS:
                raise unusable(
                    f"setting must be a code, outpatient or inpatient, not {value!r}", f"{path}.value", "value"
                )
            setting = str(value)
            continue
        if name not in PARAMETER_NAMES:
            known = ", ".join([*PARAMETER_NAMES, "setting"])
            raise unusable(f"unknown parameter {name!r}; $suggest-codes takes {known}", f"{path}.name", "not-supported")
        resource = parameter.get("resource")
        if _kind(resource) != PARAMETER_NAMES[name]:
            raise unusable(
                f"parameter {name!r} must hold a {PARAMETER_NAMES[name]} resource", f"{path}.resource", "structure"
            )
        assert isinstance(resource, dict)
        if name == "document":
            documents.append(resource)
            where.append(f"{path}.resource")
        elif name in found:
            raise unusable(f"parameter {name!r} may be given once", path, "structure")
        else:
            found[name] = resource
    bundle = found.pop("bundle", None)
    if bool(documents) == (bundle is not None):
        raise unusable(
            "send the note as 'document' (DocumentReference, repeating) or as 'bundle' (Bundle), one of the two",
            "Parameters.parameter",
            "required",
        )
    patient, encounter = found.get("patient"), found.get("encounter")
    if bundle is not None:
        return read_bundle(bundle, max_chars, patient=patient, encounter=encounter, setting=setting)
    context = _Context()
    for resource in found.values():
        context.add(resource)
    return read_documents(
        documents, context, max_chars, where=where, patient=patient, encounter=encounter, setting=setting
    )


def read_encounter_documents(
    documents: Sequence[dict[str, Any]],
    max_chars: int,
    *,
    patient: dict[str, Any] | None,
    encounter: dict[str, Any] | None,
    default_setting: str,
    where: Sequence[str],
) -> ClinicalNote:
    """Read the notes an EHR prefetched for a CDS Hooks call.

    Unlike ``$suggest-codes``, a document without an inline text note (a PDF, an attachment by
    url) is skipped with a warning: the EHR sent what its search found, and the others may do.

    Args:
        documents: the DocumentReference resources (not yet validated).
        max_chars: the note limit.
        patient: the prefetched Patient, if any (not yet validated).
        encounter: the prefetched Encounter, if any (not yet validated).
        default_setting: the setting when no Encounter was sent.
        where: where each document sits, for messages (``prefetch.documents.entry[0].resource``).

    Returns:
        The note.

    Raises:
        FhirError: 400 for invalid FHIR, 413 over the limit, 422 when no document holds a note.
    """
    for resource in [*documents, *(r for r in (patient, encounter) if r is not None)]:
        check_sizes(resource, max_chars)
        check_input(resource)
    usable: list[dict[str, Any]] = []
    paths: list[str] = []
    skipped: list[Issue] = []
    for document, path in zip(documents, where, strict=True):
        try:
            document_text(document, path, max_chars)
        except FhirError as exc:
            if exc.http_status != 422:
                raise
            skipped += [Issue(i.code, f"skipped: {i.diagnostics}", i.expression, "warning") for i in exc.issues]
            continue
        usable.append(document)
        paths.append(path)
    if not usable:
        reasons = "; ".join(f"{i.expression}: {i.diagnostics}" for i in skipped)
        raise NoNoteError(f"no prefetched document holds a note to code ({reasons})")
    context = _Context()
    for known in (patient, encounter):
        if known is not None:
            context.add(known)
    note = read_documents(
        usable, context, max_chars, where=paths, patient=patient, encounter=encounter, default_setting=default_setting
    )
    note.issues = skipped + note.issues
    return note
