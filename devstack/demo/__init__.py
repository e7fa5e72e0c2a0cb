"""``quoteflow demo``: the whole pipeline on a synthetic workload, quote to e-mail, live.

Modules: :mod:`.plan` (the workload as data, pure), :mod:`.driver` (writes it to
the QMS and CRM databases), :mod:`.supervisor` (the child processes),
:mod:`.observe` (what the pipeline wrote and the ESP sandbox received),
:mod:`.summary` (the verdict, pure), :mod:`.view` (rich), :mod:`.runs` (each
run's names and clean-up), :mod:`.options` (what a run is asked to do),
:mod:`.launch` (the run's own pipeline started), :mod:`.live` (the loop while
it runs), :mod:`.finish` (the last words and the JSON line) and :mod:`.run`
(the order of it all).
"""
