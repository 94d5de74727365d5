"""``GET /v1/codes/{code}`` (lookup) and ``GET /v1/codes?q=`` (search) over the knowledge base."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from pipeline.errors import InputError
from service.deps import InfoDep, ReadCaller, SuggesterDep
from service.schemas import CodeHitOut, CodeOut, CodeSearchResponse, CodeSystem, error_responses
from service.suggesting import SuggesterLike

router = APIRouter(prefix="/v1", tags=["codes"])


def _versions(suggester: SuggesterLike, request_id: str) -> dict[str, Any]:
    return {
        "model_version": suggester.model_version,
        "code_set_versions": dict(suggester.code_set_versions),
        "request_id": request_id,
    }


@router.get(
    "/codes/{code}",
    response_model=CodeOut,
    responses=error_responses(401, 403, 404, 422),
    summary="Look up one code",
)
def get_code(
    code: Annotated[str, Path(min_length=1, max_length=32, examples=["S93.401A", "99213"])],
    _: ReadCaller,
    info: InfoDep,
    suggester: SuggesterDep,
    system: Annotated[
        CodeSystem | None,
        Query(description="Read the code as this system (S9340: HCPCS, or ICD-10-CM S93.40)."),
    ] = None,
) -> CodeOut:
    """A code as typed (``s93401a``, ``S93.401A``, ``l1906``, ``99213``): 404 when unknown, 422
    when it cannot be a code."""
    record = suggester.kb.lookup(code, system)
    return CodeOut(
        code=record.code,
        system=record.system,
        description=record.title,
        billable=record.billable,
        parent=record.parent,
        chapter=record.chapter,
        block=record.block,
        inclusion_terms=list(record.inclusion_terms),
        includes=list(record.includes),
        excludes1=list(record.excludes1),
        excludes2=list(record.excludes2),
        code_first=list(record.code_first),
        use_additional=list(record.use_additional),
        code_also=list(record.code_also),
        seventh=dict(record.seventh) if record.seventh is not None else None,
        placeholder=record.placeholder,
        terminated=record.terminated,
        synonyms=list(record.synonyms),
        **_versions(suggester, info.request_id),
    )


@router.get(
    "/codes",
    response_model=CodeSearchResponse,
    responses=error_responses(401, 403, 422),
    summary="Search codes by text",
)
def search_codes(
    q: Annotated[str, Query(min_length=1, max_length=200, pattern=r"\S", examples=["ankle sprain"])],
    _: ReadCaller,
    info: InfoDep,
    suggester: SuggesterDep,
    system: Annotated[CodeSystem | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> CodeSearchResponse:
    """Index terms, titles, inclusion terms and synonyms matching ``q``, best first."""
    if not q.strip():
        raise InputError("q is empty or whitespace only")
    hits = suggester.kb.search(q, system=system, limit=limit)
    return CodeSearchResponse(
        query=q,
        system=system,
        results=[
            CodeHitOut(
                code=h.code,
                system=h.system,
                description=h.title,
                score=float(h.score),
                matched=h.matched,
                source=h.source,
                billable=h.billable,
            )
            for h in hits
        ],
        **_versions(suggester, info.request_id),
    )
