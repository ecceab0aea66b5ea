"""Category ids and kinds from ``shared/spec/taxonomy.md`` (the routing contract)."""

from __future__ import annotations

# id -> Chinese display name, in the order of the taxonomy table.
CATEGORIES: dict[str, str] = {
    "elderly": "养老助老",
    "disability": "助残康复",
    "children": "儿童青少年",
    "assistance": "困难救助",
    "employment": "就业创业",
    "legal": "法律与调解",
    "mental": "心理关爱",
    "health": "医疗健康",
    "culture": "文体活动",
    "environment": "环境物业",
    "safety": "平安建设",
    "housekeeping": "家政便民",
    "other": "其他",
}

# What the resident is doing with the message.
KINDS: tuple[str, ...] = ("wish", "need", "suggestion", "query", "chitchat")

# Fallback category when nothing routable was recognised.
OTHER = "other"

# The emergency numbers the bot may tell residents to call.
EMERGENCY_SERVICES: tuple[str, ...] = ("110", "119", "120")
