"""``POST /v1/encounters`` (and ``/batch``) to queue notes for review; ``GET /v1/encounters/{id}``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from service.config import Settings
from service.db import Database
from service.deps import (
    BatchCaller,
    DatabaseDep,
    IdempotencyDep,
    IdempotencyKey,
    InfoDep,
    ReadCaller,
    SettingsDep,
    SuggesterDep,
)
from service.encounter_schemas import (
    ENCOUNTER_ID_PATTERN,
    EncounterBatchCreated,
    EncounterBatchIn,
    EncounterCreated,
    EncounterIn,
    EncounterOut,
    ReviewedCodeOut,
)
from service.encounters import (
    app_vault,
    get_encounter,
    open_query_counts,
    purge_now_and_then,
    review_url,
    store_encounters,
    submitted_code_set,
)
from service.idempotency import Answer
from service.models import Encounter
from service.schemas import error_responses
from service.security import Principal
from service.suggesting import SuggesterLike, check_length

router = APIRouter(prefix="/v1", tags=["encounters"])


def _versions(suggester: SuggesterLike, request_id: str) -> dict[str, Any]:
    return {
        "model_version": suggester.model_version,
        "code_set_versions": dict(suggester.code_set_versions),
        "request_id": request_id,
    }


def _created(row: Encounter, versions: dict[str, Any]) -> EncounterCreated:
    return EncounterCreated(
        encounter_id=row.encounter_id,
        status="new",
        review_url=review_url(row.encounter_id),
        text_length=row.text_length,
        purge_at=row.purge_at,
        **versions,
    )


def _store(
    request: Request,
    items: Sequence[EncounterIn],
    principal: Principal,
    settings: Settings,
    db: Database,
) -> list[Encounter]:
    for i, item in enumerate(items):
        check_length(item.text, settings.max_text_chars, field=f"encounters[{i}].text" if len(items) > 1 else "text")
    purge_now_and_then(db)
    return store_encounters(db, app_vault(request.app.state), items, principal, settings.encounter_retention_days)


@router.post(
    "/encounters",
    response_model=EncounterCreated,
    status_code=201,
    responses=error_responses(401, 403, 409, 413, 422),
    summary="Store an encounter for a coder's review in the workbench",
)
def create_encounter(
    body: EncounterIn,
    request: Request,
    response: Response,
    principal: BatchCaller,
    info: InfoDep,
    settings: SettingsDep,
    suggester: SuggesterDep,
    db: DatabaseDep,
    idempotency: IdempotencyDep,
    idempotency_key: IdempotencyKey = None,
) -> EncounterCreated:
    """The note text is sealed at rest (AES-256-GCM with the deployment's encounter key) and deleted
    after ``retention_days``; the encounter appears on the workbench's worklist at once and is coded
    when a coder first opens it. An id already stored: 409."""
    info.note_id, info.text_length, info.n_notes = body.encounter_id, len(body.text), 1

    def produce() -> Answer:
        (row,) = _store(request, [body], principal, settings, db)
        return Answer(201, _created(row, _versions(suggester, info.request_id)))

    answer = idempotency.run(
        key_id=principal.key_id,
        idem_key=idempotency_key,
        route="POST /v1/encounters",
        body=body,
        info=info,
        produce=produce,
        models={201: EncounterCreated},
    )
    answer.apply(response)
    assert isinstance(answer.body, EncounterCreated)
    return answer.body


@router.post(
    "/encounters/batch",
    response_model=EncounterBatchCreated,
    status_code=201,
    responses=error_responses(401, 403, 409, 413, 422),
    summary="Store up to 1,000 encounters for review at once (all or none)",
)
def create_encounters(
    body: EncounterBatchIn,
    request: Request,
    response: Response,
    principal: BatchCaller,
    info: InfoDep,
    settings: SettingsDep,
    suggester: SuggesterDep,
    db: DatabaseDep,
    idempotency: IdempotencyDep,
    idempotency_key: IdempotencyKey = None,
) -> EncounterBatchCreated:
    """Every encounter is checked first; one bad or already stored id stores none (the error names them)."""
    info.n_notes, info.text_length = len(body.encounters), sum(len(e.text) for e in body.encounters)

    def produce() -> Answer:
        rows = _store(request, body.encounters, principal, settings, db)
        versions = _versions(suggester, info.request_id)
        created = [_created(row, versions) for row in rows]
        return Answer(201, EncounterBatchCreated(created=len(created), encounters=created, **versions))

    answer = idempotency.run(
        key_id=principal.key_id,
        idem_key=idempotency_key,
        route="POST /v1/encounters/batch",
        body=body,
        info=info,
        produce=produce,
        models={201: EncounterBatchCreated},
    )
    answer.apply(response)
    assert isinstance(answer.body, EncounterBatchCreated)
    return answer.body


@router.get(
    "/encounters/{encounter_id}",
    response_model=EncounterOut,
    responses=error_responses(401, 403, 404, 422),
    summary="An encounter's review state and, once submitted, its code set",
)
def read_encounter(
    encounter_id: Annotated[str, Path(min_length=1, max_length=128, pattern=ENCOUNTER_ID_PATTERN)],
    _: ReadCaller,
    info: InfoDep,
    suggester: SuggesterDep,
    db: DatabaseDep,
) -> EncounterOut:
    """Never the note text. The code set lists the coder's final codes in claim order, with
    modifiers, units and diagnosis pointers."""
    info.note_id = encounter_id
    with db.session() as session:
        row = get_encounter(session, encounter_id)
        lines = submitted_code_set(session, row) if row.status == "submitted" else []
        queries = open_query_counts(session, [row.id]).get(row.id, 0)
    code_set = []
    for sequence, line in enumerate(lines, start=1):
        modified = line.status == "modified" and line.replaced_by
        code_set.append(
            ReviewedCodeOut(
                sequence=sequence,
                code=str(line.replaced_by if modified else line.code),
                system=(line.replaced_by_system if modified else line.system),  # type: ignore[arg-type]
                description=str(line.replaced_description if modified else line.description) or "",
                modifiers=[m for m in line.modifiers.split(",") if m],
                units=line.units,
                pointers=[p for p in line.pointers.split(",") if p],
            )
        )
    return EncounterOut(
        encounter_id=row.encounter_id,
        status=row.status,  # type: ignore[arg-type]
        setting=row.setting,  # type: ignore[arg-type]
        encounter_date=row.encounter_date,
        expected_value=row.expected_value,
        assigned_to=row.assigned_to,
        received_at=row.received_at,
        submitted_at=row.submitted_at,
        submitted_by=row.submitted_by,
        open_queries=queries,
        text_available=row.text_sealed is not None,
        review_url=review_url(row.encounter_id),
        code_set=code_set,
        **_versions(suggester, info.request_id),
    )
