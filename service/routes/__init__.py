"""HTTP routes: thin, each one validating input, calling the engine and shaping the response."""
