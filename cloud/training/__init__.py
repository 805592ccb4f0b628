"""Teaching the new normal: a dataset fit into a candidate model by the Celery worker, signed and
registered when the cloud holds a signing key, else kept for an engineer to sign and push."""
