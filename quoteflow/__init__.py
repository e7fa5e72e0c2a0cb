"""quoteflow: unaccepted quotes to personalised offer e-mails, in minutes.

This package holds the operational shell around the pipeline: settings, the
``quoteflow`` command line, the topic catalogue and the local stack. The
pipeline itself lives in the sibling packages ``connectors`` (CDC sources and
the ESP sink), ``streams`` (the faust processor) and ``schemas`` (Avro
contracts and serde).
"""

__version__ = "0.1.0"
