"""The local stack's Schema Registry: Apicurio Registry with the Confluent-compatible API.

- ``dist``: the distribution, resolved from Maven Central with ``mvn`` and cached;
- ``config``: its application.properties (pure);
- ``component``: :class:`RegistryComponent`, the stack's Component.
"""

from devstack.stack.registry.component import RegistryComponent

__all__ = ["RegistryComponent"]
