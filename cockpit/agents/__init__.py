"""Agent backends and the built-in agent's tools, confinement and approval policy (no Textual here)."""
