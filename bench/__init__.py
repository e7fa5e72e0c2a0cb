"""``quoteflow bench streams``: the processor's speed, against what faust and Kafka allow."""
