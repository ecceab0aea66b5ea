"""/me/…: what a resident of the web chat may download about themselves.

The resident is the web chat's visitor (the signed ``linli_web`` cookie); a certificate
that is not theirs — or any, without the cookie — is "not found", never "forbidden".
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from community.errors import NotFound
from community.timebank import certificate_content, get_certificate
from community.webchat import web_identity
from storage.db import transaction
from web.checkin import resident_page
from web.dashboard.points import pdf_response
from web.dashboard.scope import Id, dacts
from web.visitor import visitor_id


def _missing(request: Request) -> Response:
    r = dacts()["resident"]
    return resident_page(
        request,
        {"heading": r["cert_title"], "message": r["cert_missing"], "chat_link": True},
        status_code=404,
    )


def build_router() -> APIRouter:
    router = APIRouter()

    @router.get("/me/certificates/{certificate_id}.pdf")
    async def my_certificate(request: Request, certificate_id: Id) -> Response:
        visitor = visitor_id(request)
        if visitor is None:
            return _missing(request)
        try:
            async with transaction(request.app.state.runtime.factory) as session:
                identity = await web_identity(session, visitor)
                certificate = await get_certificate(
                    session, certificate_id, user_id=identity.user_id
                )
                content = await certificate_content(session, certificate)
        except NotFound:
            return _missing(request)
        return await pdf_response(certificate.number, content)

    return router
