"""Pure values and rules of pacsync: pipeline specs, mapping, validation, records.

Nothing here performs I/O or imports another pacsync package.
"""
