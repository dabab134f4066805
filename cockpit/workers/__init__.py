"""Agent backends in worker processes, so the engine's loop stays free for the person."""
