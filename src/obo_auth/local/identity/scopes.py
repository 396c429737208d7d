"""The API scopes of the identity routes."""

from obo_auth.local.service import ALLOWLIST, ApiScope

API_SCOPES = {
    "scim.me": ApiScope("iam.current-user:read", f"{ALLOWLIST}; reported to be in every downscoped token"),
    "scim.directory": ApiScope("iam.access-control:read", f"{ALLOWLIST}; reported to be in every downscoped token"),
}
