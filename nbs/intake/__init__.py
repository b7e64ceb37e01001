"""Intake: finding the inbox's files, reading them, archiving them once committed."""
