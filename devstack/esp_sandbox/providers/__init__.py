"""The sandbox's per-provider request checks: one module per ESP, shared values in common.

:mod:`devstack.esp_sandbox.validate` picks the module a request's route belongs
to; each module holds that provider's path, error style, validator and lenient
reader of ids (:func:`identify`), so everything one API's rules say is in one place.
"""
