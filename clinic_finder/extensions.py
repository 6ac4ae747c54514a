"""Flask extensions, created unbound and attached to the app in the factory."""

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Declarative base whose constraints get stable names, so Alembic can alter them."""

    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


db = SQLAlchemy(model_class=Base)
# render_as_batch lets the same migrations alter tables on SQLite, which has no ALTER COLUMN.
migrate = Migrate(render_as_batch=True, compare_type=True)
csrf = CSRFProtect()

login_manager = LoginManager()
# Staff areas only; key by client address (ProxyFix sets it correctly behind a proxy).
# Storage comes from RATELIMIT_STORAGE_URI: memory:// by default, redis://… for several workers.
limiter = Limiter(key_func=get_remote_address, default_limits=[])
