"""Security: the caller's context and, in one place, the access policy applied to it."""
