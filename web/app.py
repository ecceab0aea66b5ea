"""The FastAPI application factory: one process serves the web chat, the dashboard,
the platform webhooks and the health endpoints, and runs the background workers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from linli.runtime import Runtime
from linli.settings import Settings
from web import chat, health
from web import checkin as resident_checkin
from web import me as resident_me
from web.dashboard import activities as dashboard_activities
from web.dashboard import broadcasts as dashboard_broadcasts
from web.dashboard import keywords as dashboard_keywords
from web.dashboard import routes as dashboard
from web.dashboard import timebank as dashboard_timebank
from webhooks.dingtalk import view as dingtalk_view
from webhooks.feishu import view as feishu_view
from webhooks.generic import view as generic_view
from webhooks.telegram import view as telegram_view
from webhooks.wechat import view as wechat_view
from webhooks.wecom import view as wecom_view

HERE = Path(__file__).resolve().parent


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> FastAPI:
    settings = settings or Settings()
    runtime = runtime or Runtime(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title="Linli 邻里", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.runtime = runtime
    app.state.templates = Jinja2Templates(directory=str(HERE / "templates"))
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key.get_secret_value(),
        session_cookie="linli_staff",
        max_age=12 * 3600,
        same_site="lax",
        https_only=settings.env == "production",
    )
    app.add_middleware(health.MetricsMiddleware)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(health.build_router())
    app.include_router(chat.build_router())
    app.include_router(dashboard.build_router())
    app.include_router(dashboard_keywords.build_router())
    app.include_router(dashboard_activities.build_router())
    app.include_router(dashboard_timebank.build_router())
    app.include_router(dashboard_broadcasts.build_router())
    app.include_router(resident_checkin.build_router())
    app.include_router(resident_me.build_router())
    app.include_router(generic_view.build_router())
    app.include_router(telegram_view.build_router())
    app.include_router(wecom_view.build_router())
    app.include_router(wechat_view.build_router())
    app.include_router(dingtalk_view.build_router())
    app.include_router(feishu_view.build_router())
    return app
