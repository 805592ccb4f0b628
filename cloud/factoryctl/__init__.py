"""``factoryctl``: the engineer's command line against the cloud API."""
