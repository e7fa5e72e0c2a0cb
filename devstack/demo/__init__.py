"""``quoteflow demo``: the whole pipeline on a synthetic workload, quote to e-mail, live.

Modules: :mod:`.plan` (the workload as data, pure), :mod:`.driver` (writes it to
the QMS and CRM databases), :mod:`.supervisor` (the child processes),
:mod:`.observe` (what the pipeline wrote and the ESP sandbox received),
:mod:`.summary` (the verdict, pure), :mod:`.view` (rich), :mod:`.runs` (each
run's names and clean-up) and :mod:`.run` (the order of it all).
"""
