"""Configuration and secrets inventory: the names of secrets, never their values."""
