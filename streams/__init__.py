"""The stream processor (faust-streaming): joins quotes with customers, detects abandonment."""
