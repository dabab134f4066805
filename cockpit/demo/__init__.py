"""`cockpit demo`: simulated agents doing real work in a sample repository, no API key needed."""
