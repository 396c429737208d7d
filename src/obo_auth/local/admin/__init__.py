"""The admin API: what the CLI and local serving ask of the workspace with its admin credential."""

from obo_auth.local.admin.routes import routes
from obo_auth.local.service import Service

SERVICE = Service(name="admin", routes=routes, requires=("identity",))
