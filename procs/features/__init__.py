"""Feature worker: bridge bars -> validated, session-aligned BAR_SECONDS bars -> one feature vector per bar."""
