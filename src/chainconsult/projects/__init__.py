"""Client project requests: submission, visibility, quotas, delivery and reviews."""
