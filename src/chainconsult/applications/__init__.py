"""Expert applications and their vetting by admins."""
