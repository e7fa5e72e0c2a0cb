"""``[kafka]``: how pipeline processes reach Kafka, as a librdkafka config."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import SecretStr, model_validator

from quoteflow.kafkalog import CLIENT_LOG
from quoteflow.settings.base import Section


class KafkaSettings(Section):
    """How pipeline processes reach Kafka. Empty bootstrap means the local stack."""

    bootstrap_servers: str = ""
    client_id: str = "quoteflow"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None

    @model_validator(mode="after")
    def _sasl_complete(self) -> KafkaSettings:
        uses_sasl = self.security_protocol.startswith("SASL_")
        if uses_sasl and (
            self.sasl_mechanism is None or self.sasl_username is None or self.sasl_password is None
        ):
            raise ValueError(
                f"security_protocol {self.security_protocol} needs sasl_mechanism,"
                " sasl_username and sasl_password"
            )
        if not uses_sasl and self.sasl_mechanism is not None:
            raise ValueError("sasl_mechanism is set but security_protocol is not SASL_*")
        return self

    def as_librdkafka_dict(self) -> dict[str, Any]:
        """Client config for confluent-kafka; secrets only leave SecretStr here.

        The client's own log lines go through quoteflow's logging (``logger``),
        never raw to stderr; an idle connection the broker closes is not a line.
        """
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "client.id": self.client_id,
            "security.protocol": self.security_protocol,
            "logger": CLIENT_LOG,
            "log.connection.close": False,
        }
        if self.sasl_mechanism:
            conf["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username is not None:
            conf["sasl.username"] = self.sasl_username
        if self.sasl_password is not None:
            conf["sasl.password"] = self.sasl_password.get_secret_value()
        return conf
