"""Shadow runs in the cloud: name a challenger beside a slot's model on gateways, and sum up what
their comparison records say (``protocol/shadow.py``)."""
