"""Conversations between a project's owner and an expert: messages, read markers, files."""
