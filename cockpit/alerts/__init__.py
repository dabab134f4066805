"""Features that call attention while sessions work: live file collisions between sessions
(`collisions`) and notifications to a phone (`phone`). The engine runs them; they need no screen."""
