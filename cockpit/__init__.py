"""Cockpit: supervise many coding agents, each in its own git worktree, from one terminal."""

__version__ = "0.1.0"
