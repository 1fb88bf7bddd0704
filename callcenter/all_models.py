"""Imports every module that defines tables, so Base.metadata knows them all (Alembic needs it)."""

from callcenter import models  # noqa: F401
from callcenter.ami import models as ami_models  # noqa: F401
from callcenter.audit import models as audit_models  # noqa: F401
from callcenter.callbacks import models as callback_models  # noqa: F401
from callcenter.incidents import models as incident_models  # noqa: F401
from callcenter.ivr import models as ivr_models  # noqa: F401
from callcenter.notify import models as notify_models  # noqa: F401
from callcenter.stats import models as stats_models  # noqa: F401
