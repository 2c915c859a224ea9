"""Service layer: every write path and report of the package lives here.

Views, commands, tasks and admin actions are thin wrappers over these
functions; only services send the package's signals.
"""
