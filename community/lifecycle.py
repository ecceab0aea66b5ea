"""The request state machine: the only transitions a request may take.

    pending_review ──assign──▶ routed ──accept──▶ accepted ──start──▶ in_progress
          ▲   │                  │  ▲                │                    │
          │   └─close/cancel     │  └──decline(next org)                 │
          └────decline(no org)───┘                   └──resolve──▶ resolved ◀┘

Terminal: resolved (then rated), closed (by staff, with a reason), cancelled (by the resident).

A 微心愿 on the wish wall takes the same path: a claim is an acceptance (several claimers may
join), a claim that ran out returns the wish to the wall (release), the claimer's proof
resolves it, and a resident who says it has not come true yet reopens it.
"""

from __future__ import annotations

from community.errors import InvalidTransition

PENDING_REVIEW = "pending_review"
ROUTED = "routed"
ACCEPTED = "accepted"
IN_PROGRESS = "in_progress"
RESOLVED = "resolved"
CLOSED = "closed"
CANCELLED = "cancelled"

OPEN_STATUSES = frozenset({PENDING_REVIEW, ROUTED, ACCEPTED, IN_PROGRESS})
TERMINAL_STATUSES = frozenset({RESOLVED, CLOSED, CANCELLED})
ALL_STATUSES = OPEN_STATUSES | TERMINAL_STATUSES

# action -> {from_status: to_status}; "route" and "review" pick the target at run time.
TRANSITIONS: dict[str, dict[str, str]] = {
    "route": {PENDING_REVIEW: ROUTED, ROUTED: ROUTED},
    "review": {ROUTED: PENDING_REVIEW, PENDING_REVIEW: PENDING_REVIEW},
    "assign": {PENDING_REVIEW: ROUTED, ROUTED: ROUTED, ACCEPTED: ROUTED, IN_PROGRESS: ROUTED},
    "accept": {ROUTED: ACCEPTED},
    "decline": {ROUTED: ROUTED},
    "start": {ACCEPTED: IN_PROGRESS},
    "resolve": {ACCEPTED: RESOLVED, IN_PROGRESS: RESOLVED},
    "close": {PENDING_REVIEW: CLOSED, ROUTED: CLOSED, ACCEPTED: CLOSED, IN_PROGRESS: CLOSED},
    "cancel": {PENDING_REVIEW: CANCELLED, ROUTED: CANCELLED, ACCEPTED: CANCELLED},
    "claim": {ROUTED: ACCEPTED, ACCEPTED: ACCEPTED, IN_PROGRESS: IN_PROGRESS},
    "release": {ACCEPTED: ROUTED, IN_PROGRESS: ROUTED},
    "reopen": {RESOLVED: IN_PROGRESS},
}


def next_status(action: str, current: str) -> str:
    """The status after ``action``; raises InvalidTransition when the rule forbids it."""
    allowed = TRANSITIONS.get(action, {})
    if current not in allowed:
        raise InvalidTransition("error.bad_transition", action=action, status=current)
    return allowed[current]


def can(action: str, current: str) -> bool:
    return current in TRANSITIONS.get(action, {})
