"""The detection core: join state, deadlines and marketing rules as pure functions.

No faust, no Kafka, no clock of its own: it takes change events and times and
returns new state and outputs, so the live faust driver and a batch replay
driver run exactly the same logic (and it can be measured on its own).
"""
