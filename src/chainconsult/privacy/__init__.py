"""GDPR: export every row about a user, and erase their personal data."""
