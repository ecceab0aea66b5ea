"""Time bank (时间银行): a double-entry points ledger, rewards, family transfers, certificates.

Every state change is one balanced transaction of immutable entries with an idempotency
key and an audit row, inside the caller's database transaction (``storage.db.transaction``).
See ledger.py for how overdrafts and deadlocks are prevented under concurrency.
"""

from typing import Any

from community.timebank.accounts import (
    Account,
    account_balance,
    ensure_accounts,
    lock_accounts,
    org_account,
    pool_account,
    rewards_account,
    user_account,
)
from community.timebank.certificates import (
    certificate_content,
    certificate_pdf,
    get_certificate,
    issue_certificate,
    list_certificates,
    verified_records,
)
from community.timebank.family import (
    DEFAULT_DAILY_LIMIT,
    create_family_code,
    family_members,
    is_family,
    link_family,
    transfer_points,
    transferred_today,
)
from community.timebank.ledger import InsufficientPoints, Leg, post_transaction
from community.timebank.points import (
    HistoryLine,
    adjust_points,
    earn_points,
    user_balance,
    user_history,
)
from community.timebank.redemptions import (
    RedemptionView,
    cancel_redemption,
    fulfil_redemption,
    redeem_reward,
    user_redemptions,
)
from community.timebank.reversal import reverse_transaction
from community.timebank.rewards import RewardView, create_reward, list_rewards, update_reward


def render_certificate_pdf(content: dict[str, Any]) -> bytes:
    """PDF bytes of ``certificate_content``; reportlab (~0.1 s to import) loads on first use."""
    from community.timebank.pdf import render_certificate_pdf as render

    return render(content)


__all__ = [
    "DEFAULT_DAILY_LIMIT",
    "Account",
    "HistoryLine",
    "InsufficientPoints",
    "Leg",
    "RedemptionView",
    "RewardView",
    "account_balance",
    "adjust_points",
    "cancel_redemption",
    "certificate_content",
    "certificate_pdf",
    "create_family_code",
    "create_reward",
    "earn_points",
    "ensure_accounts",
    "family_members",
    "fulfil_redemption",
    "get_certificate",
    "is_family",
    "issue_certificate",
    "link_family",
    "list_certificates",
    "list_rewards",
    "lock_accounts",
    "org_account",
    "pool_account",
    "post_transaction",
    "redeem_reward",
    "render_certificate_pdf",
    "reverse_transaction",
    "rewards_account",
    "transfer_points",
    "transferred_today",
    "update_reward",
    "user_account",
    "user_balance",
    "user_history",
    "user_redemptions",
    "verified_records",
]
