"""In-app notifications (and, through the job queue, their emails)."""
