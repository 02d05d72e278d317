"""Reading results: judge arithmetic, logs, statistics, vector files from logs, reports, gates."""
