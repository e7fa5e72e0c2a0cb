"""``[postgres]``: the servers and databases of the CDC sources and of quoteflow's own."""

from __future__ import annotations

from pydantic import Field, SecretStr

from quoteflow.settings.base import Section
from quoteflow.settings.local_stack import LOCAL_HOST

_DATABASE_NAME = r"^[a-z_][a-z0-9_]*$"


class PostgresSettings(Section):
    """The QMS and CRM databases (and quoteflow's own). Empty port means the local stack's."""

    host: str = LOCAL_HOST
    port: int | None = Field(default=None, ge=1, le=65535)
    user: str = "quoteflow"
    password: SecretStr = SecretStr("quoteflow")
    #: Each CDC source's database, ``<source>_database``, named after the source unless set
    #: (CdcSource.database_setting names these fields; a test holds them to CDC_SOURCES).
    qms_database: str = Field(default="qms", pattern=_DATABASE_NAME)
    crm_database: str = Field(default="crm", pattern=_DATABASE_NAME)
    #: quoteflow's own operational database (the ESP sink's delivery ledger). Its server is
    #: ``ops_host``/``ops_port`` when set: in production, not the legacy QMS server.
    ops_database: str = Field(default="ops", pattern=_DATABASE_NAME)
    ops_host: str | None = None
    ops_port: int | None = Field(default=None, ge=1, le=65535)
    connect_timeout_s: int = Field(default=10, ge=1)

    def conninfo(self, database: str) -> str:
        """A libpq conninfo; built here so the password is read from SecretStr in one place."""
        from psycopg.conninfo import make_conninfo

        return make_conninfo(
            host=self.host,
            port=str(self.port),
            user=self.user,
            password=self.password.get_secret_value(),
            dbname=database,
            connect_timeout=str(self.connect_timeout_s),
            application_name="quoteflow",
        )

    def ops_conninfo(self) -> str:
        """The ops database's conninfo: its own server when configured, else this one."""
        ops = self.model_copy(
            update={"host": self.ops_host or self.host, "port": self.ops_port or self.port}
        )
        return ops.conninfo(self.ops_database)
