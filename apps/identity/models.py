from __future__ import annotations

from .oidc_models import GroupMapping, SsoIdentity

__all__ = ["GroupMapping", "SsoIdentity"]
