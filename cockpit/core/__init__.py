"""The engine of the cockpit: sessions, worktrees, events, store. Never imports Textual."""
