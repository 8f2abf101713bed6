"""Schemathesis hooks for tests/api.rs' fuzz run.

Feed webhooks are authenticated by an HMAC of the raw body, which a fuzzer
cannot guess: this hook serializes each generated webhook body itself, sends
those exact bytes and signs them with the tenant's webhook secret, so the
fuzzer reaches the webhook handlers instead of stopping at 401. (Unsigned and
wrongly signed requests are covered by tests/webhooks.rs.)
"""

import hashlib
import hmac
import json
import os

import schemathesis
from schemathesis.core import NOT_SET

SECRET = os.environ["RECHECK_FUZZ_WEBHOOK_SECRET"].encode()
TENANT = os.environ["RECHECK_FUZZ_WEBHOOK_TENANT"]


@schemathesis.hook
def before_call(context, case, kwargs):
    if not case.path.startswith("/api/v1/webhooks/") or case.body is NOT_SET:
        return
    raw = json.dumps(case.body).encode()
    kwargs["data"] = raw
    if case.headers is None:
        case.headers = {}
    case.headers["X-Recheck-Tenant"] = TENANT
    case.headers["X-Recheck-Signature"] = (
        "sha256=" + hmac.new(SECRET, raw, hashlib.sha256).hexdigest()
    )
