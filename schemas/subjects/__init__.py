"""The Schema Registry's subjects: what `quoteflow schemas register | check` work on.

- ``plan``: the subjects of the topic catalogue and how a registry differs from
  the repository (pure, unit-tested without a registry);
- ``admin``: :class:`SubjectAdmin`, reading and registering through
  confluent-kafka's registry client.
"""
