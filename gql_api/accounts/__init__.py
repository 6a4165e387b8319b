"""Sign-up, log-in and console sessions."""
