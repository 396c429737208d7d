"""A local Databricks workspace: real HTTP on loopback, users, grants, downscoped tokens, an audit log."""

from obo_auth.local.seed import SeedError
from obo_auth.local.workspace import LocalWorkspace

__all__ = ["LocalWorkspace", "SeedError"]
